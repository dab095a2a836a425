"""``python -m training.fine_crops``: crops of fine structure, truth vs predictions, as one PNG.

From a test set with ground truth it picks the windows with the most hair-like alpha (fractional
values with strong gradients: strands) and the most translucent alpha (0.2..0.8 over a smooth area),
and draws for each a row: frame, true alpha, then each model's predicted alpha. Used for the model
card's figure of what the refiner recovers.
"""
import os
from typing import List, Optional, Sequence, Tuple

from matte_ros.core.cli import Command, Failure, OneLineParser, exit_on_interrupt, number

PROG = "python -m training.fine_crops"

with exit_on_interrupt(PROG, active=__name__ == "__main__"):     # Ctrl-C while torch loads: one line, 130
    import cv2
    import numpy as np

    from matte_ros.core.files import atomic_write
    from matte_ros.core.model import load_checkpoint

    from .evaluate import load_test_set, model_predictor

__all__ = ["hair_score", "translucent_score", "best_window", "main"]


def _range3(pha: np.ndarray) -> np.ndarray:
    kernel = np.ones((3, 3), np.uint8)
    return cv2.dilate(pha, kernel) - cv2.erode(pha, kernel)


def hair_score(pha: np.ndarray) -> np.ndarray:
    """Per pixel: 1 where alpha is fractional (0.05..0.95) and its 3x3 range is over 0.3 (a strand)."""
    return ((pha > 0.05) & (pha < 0.95) & (_range3(pha) > 0.3)).astype(np.float32)


def translucent_score(pha: np.ndarray) -> np.ndarray:
    """Per pixel: 1 where alpha is 0.2..0.8 and its 3x3 range under 0.1 (a veil or glass, not an edge)."""
    return ((pha > 0.2) & (pha < 0.8) & (_range3(pha) < 0.1)).astype(np.float32)


def best_window(score: np.ndarray, size: int) -> Tuple[float, int, int]:
    """(mean score, top, left) of the ``size`` x ``size`` window with the highest mean ``score``."""
    h, w = score.shape
    if size > min(h, w):
        raise ValueError(f"window {size} larger than the image {h}x{w}")
    mean = cv2.boxFilter(score, -1, (size, size), normalize=True, borderType=cv2.BORDER_CONSTANT)
    half = size // 2
    inner = mean[half:h - size + half + 1, half:w - size + half + 1]
    top, left = np.unravel_index(int(np.argmax(inner)), inner.shape)
    return float(inner[top, left]), int(top), int(left)


def _tile(img: np.ndarray, zoom: int) -> np.ndarray:
    img = np.clip(np.round(img * 255), 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return cv2.resize(img, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="test set with ground truth (as for python -m training eval)")
    p.add_argument("--checkpoints", nargs="+", required=True, help="weight files, one prediction column each")
    p.add_argument("--backbone-scale", type=number(float, above=0, high=1), default=0.5)
    p.add_argument("--refine-sample-pixels", type=number(int, 16), default=80_000)
    p.add_argument("--per-kind", type=number(int, 1), default=3,
                   help="rows of hair and of translucent crops (default 3)")
    p.add_argument("--size", type=number(int, 4), default=96, help="crop side in pixels (default 96)")
    p.add_argument("--zoom", type=number(int, 1, 16), default=2, help="nearest-neighbour magnification (default 2)")
    p.add_argument("--out", required=True, help="output PNG")
    args = p.parse_args(argv)
    items = list(load_test_set(args.data))
    models = [model_predictor(load_checkpoint(c, backbone_scale=args.backbone_scale, refine_mode="sampling",
                                              refine_sample_pixels=args.refine_sample_pixels), "refine", "cpu")
              for c in args.checkpoints]
    picks: List[Tuple[float, int, int, int]] = []
    for kind in (hair_score, translucent_score):
        found = sorted(((*best_window(kind(it.pha), args.size), i) for i, it in enumerate(items)), reverse=True)
        picks += [f for f in found if f[0] > 0][:args.per_kind]
    rows = []
    for _, top, left, i in picks:
        it = items[i]
        box = (slice(top, top + args.size), slice(left, left + args.size))
        cols = [it.src[box], it.pha[box]] + [predict(it.src, it.bgr)[0][box] for predict in models]
        rows.append(np.hstack([_tile(c, args.zoom) for c in cols]))
    if not rows:
        raise ValueError(f"no fractional alpha in the test set {args.data}")
    sheet = cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR)
    ok, png = cv2.imencode(".png", sheet)
    if not ok:
        raise Failure("PNG encoding failed")

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(png.tobytes())

    atomic_write(args.out, write)
    print(f"{len(rows)} crops (columns: frame, true alpha, " + ", ".join(os.path.basename(c) for c in args.checkpoints)
          + f") -> {args.out}")
    return 0


COMMAND = Command(PROG, "training.fine_crops:main")

if __name__ == "__main__":
    COMMAND()
