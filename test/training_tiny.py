"""Tiny generated matting datasets for the training tests (both layouts, a dataset config), and
``python -m training`` run in the test's process."""
import os

import cv2
import numpy as np

__all__ = ["exit_code", "make_dataset", "one_line", "tiny_args"]


def _subject(rng: np.random.Generator, h: int, w: int):
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx = h / 2 + rng.uniform(-h / 8, h / 8), w / 2 + rng.uniform(-w / 8, w / 8)
    r = min(h, w) * rng.uniform(0.2, 0.35)
    pha = np.clip(r - np.hypot(yy - cy, xx - cx), 0, 1)
    rgb = np.broadcast_to((rng.random(3) * 255).astype(np.uint8), (h, w, 3)).copy()
    return rgb, (pha * 255).astype(np.uint8)


def make_dataset(root: str, n_train: int = 4, n_valid: int = 2, size=(72, 64), seed: int = 0) -> str:
    """Write rgba/, fp/{split}/{fgr,pha}/clip0/, bg/ and data.yaml (datasets 'tiny' and 'tinyfp');
    returns the config path."""
    rng = np.random.default_rng(seed)
    h, w = size
    for split, n in (("train", n_train), ("valid", n_valid)):
        for d in ("rgba/" + split, f"fp/{split}/fgr/clip0", f"fp/{split}/pha/clip0", "bg/" + split):
            os.makedirs(os.path.join(root, d), exist_ok=True)
        for i in range(n):
            rgb, pha = _subject(rng, h, w)
            cv2.imwrite(os.path.join(root, "rgba", split, f"{i:03d}.png"), np.dstack([rgb[:, :, ::-1], pha]))
            cv2.imwrite(os.path.join(root, "fp", split, "fgr", "clip0", f"{i:03d}.png"), rgb[:, :, ::-1])
            cv2.imwrite(os.path.join(root, "fp", split, "pha", "clip0", f"{i:03d}.png"), pha)
            bg = (rng.random((h + 8, w + 8, 3)) * 255).astype(np.uint8)
            cv2.imwrite(os.path.join(root, "bg", split, f"{i:03d}.png"), bg)
    path = os.path.join(root, "data.yaml")
    with open(path, "w") as fh:
        fh.write("datasets:\n"
                 "  tiny: {layout: rgba, train: rgba/train, valid: rgba/valid}\n"
                 "  tinyfp:\n    layout: fgr_pha\n"
                 "    train: {fgr: fp/train/fgr, pha: fp/train/pha}\n"
                 "    valid: {fgr: fp/valid/fgr, pha: fp/valid/pha}\n"
                 "backgrounds: {train: bg/train, valid: bg/valid}\n")
    return path


def tiny_args(config: str, out: str, model_type: str = "base", steps: int = 2, dataset: str = "tiny"):
    """CLI arguments of a tiny CPU run: 32 px samples and crops, batch 2, no workers."""
    return ["--model-type", model_type, "--dataset-config", config, "--dataset", dataset, "--image-size", "32",
            "--crop-size", "32", "32", "--batch-size", "2", "--num-workers", "0", "--valid-samples", "2",
            "--valid-every", "0", "--max-steps", str(steps), "--output-dir", out, "--device", "cpu",
            "--refine-sample-pixels", "256", "--backbone-scale", "0.5", "--disc-layers", "2",
            "--disc-channels", "8", "--image-every", "0", "--log-every", "1", "--threads", "1"]


def exit_code(argv) -> int:
    """The exit code of ``python -m training ARGV`` run here: main's return value, or argparse's SystemExit."""
    from training.__main__ import main
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


def one_line(capsys) -> str:
    """What the command wrote on stderr, which must be one line and no traceback (without its newline)."""
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.rstrip("\n")
