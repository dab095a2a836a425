"""Evaluation: load a test set, predict alpha and foreground, score each image.

Two test-set layouts (``DIR`` may also be a synth output folder whose ``test/`` holds layout 1):

1. ``DIR/{src,bgr,pha}/`` (+ optional ``fgr/`` and ``trimap/``): frame, clean plate, true alpha
   (and true foreground, trimap with 128 = unknown), files matched by name.
2. ``DIR/{fgr,pha}/`` + a backgrounds folder (default ``DIR/backgrounds``): image ``i`` (sorted
   by name) is composited over the background ``permutation(seed)[i % n]``, resized to the
   foreground's size; that background is also the plate. The same seed gives the same test set.

Predicted alphas and foregrounds are rounded to 8 bits before scoring, as when they are saved
as PNG for the MATLAB evaluation code; with 8-bit ground truth the metric values are then
those of that code (see :mod:`matte_ros.core.metrics`). Rows and tables report Grad and Conn divided
by 1000, as the evaluation scripts built on that code print them (SAD is divided by its function).
"""
import csv
import io
import os
from typing import Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from torch.nn import functional as F

from matte_ros.core.engine import PRECISIONS
from matte_ros.core.files import atomic_write
from matte_ros.core.metrics import METRICS, quantize, score
from matte_ros.core.model import MattingRefine
from matte_ros.core.model.fast import FastRefine

from .baseline import closed_form, difference_key
from .data import IMAGE_EXTENSIONS, read_image

__all__ = ["TestItem", "METRICS", "OUTPUTS", "find_layout", "list_test_set", "load_test_set", "model_predictor",
           "closed_form_predictor", "difference_key_predictor", "evaluate", "write_text", "write_csv",
           "write_results", "format_table"]

OUTPUTS = ("refine", "coarse")
Predictor = Callable[[np.ndarray, np.ndarray], Tuple[np.ndarray, np.ndarray]]


class TestItem(NamedTuple):
    """src, bgr: (H, W, 3) float32 0..1; pha: (H, W) float32; fgr: (H, W, 3) or None;
    trimap: (H, W) uint8 (128 = unknown) or None."""
    name: str
    src: np.ndarray
    bgr: np.ndarray
    pha: np.ndarray
    fgr: Optional[np.ndarray]
    trimap: Optional[np.ndarray]


def _images(folder: str) -> Dict[str, str]:
    """Stem -> path of the images directly in ``folder``."""
    out = {}
    for name in sorted(os.listdir(folder)):
        stem, ext = os.path.splitext(name)
        if ext.lower() in IMAGE_EXTENSIONS:
            out[stem] = os.path.join(folder, name)
    return out


def find_layout(root: str) -> Tuple[str, str]:
    """(layout, folder): ``("plates", dir)`` for layout 1, ``("composite", dir)`` for layout 2."""
    for folder in (root, os.path.join(root, "test")):
        if all(os.path.isdir(os.path.join(folder, d)) for d in ("src", "bgr", "pha")):
            return "plates", folder
    if all(os.path.isdir(os.path.join(root, d)) for d in ("fgr", "pha")):
        return "composite", root
    raise ValueError(f"{root} is not a test set: expected src/, bgr/ and pha/ folders (in it or in its test/), "
                     f"or fgr/ and pha/ folders with --backgrounds")


def list_test_set(root: str, backgrounds: Optional[str] = None, seed: int = 0) -> List[Dict[str, Optional[str]]]:
    """One dict of file paths per test image (keys src, bgr, pha, fgr, trimap; None where absent)."""
    layout, folder = find_layout(root)
    pha = _images(os.path.join(folder, "pha"))
    if not pha:
        raise ValueError(f"no alpha images in {os.path.join(folder, 'pha')}")

    def optional(name: str) -> Dict[str, str]:
        path = os.path.join(folder, name)
        return _images(path) if os.path.isdir(path) else {}

    fgr, trimap = optional("fgr"), optional("trimap")
    if layout == "plates":
        src, bgr = _images(os.path.join(folder, "src")), _images(os.path.join(folder, "bgr"))
        missing = sorted(s for s in pha if s not in src or s not in bgr)
        if missing:
            raise ValueError(f"{len(missing)} alpha image(s) in {folder} lack a src or bgr image, e.g. {missing[0]}")
        return [{"name": s, "src": src[s], "bgr": bgr[s], "pha": pha[s], "fgr": fgr.get(s), "trimap": trimap.get(s)}
                for s in pha]
    if backgrounds is None and os.path.isdir(os.path.join(root, "backgrounds")):
        backgrounds = os.path.join(root, "backgrounds")
    if backgrounds is None or not os.path.isdir(backgrounds):
        raise ValueError(f"{root} holds fgr/ and pha/: give a backgrounds folder (--backgrounds DIR)")
    bgs = list(_images(backgrounds).values())
    if not bgs:
        raise ValueError(f"no background images in {backgrounds}")
    missing = sorted(s for s in pha if s not in fgr)
    if missing:
        raise ValueError(f"{len(missing)} alpha image(s) lack a foreground in {folder}/fgr, e.g. {missing[0]}")
    order = np.random.default_rng(seed).permutation(len(bgs))
    return [{"name": s, "src": None, "bgr": bgs[order[i % len(bgs)]], "pha": pha[s], "fgr": fgr[s],
             "trimap": trimap.get(s)} for i, s in enumerate(pha)]


def _load(entry: Dict[str, Optional[str]]) -> TestItem:
    pha = read_image(entry["pha"], 1)
    h, w = pha.shape
    fgr = read_image(entry["fgr"], 3) if entry["fgr"] else None
    bgr = read_image(entry["bgr"], 3)
    trimap = None
    if entry["trimap"]:
        trimap = cv2.imread(entry["trimap"], cv2.IMREAD_GRAYSCALE)
        if trimap is None:
            raise ValueError(f"cannot decode {entry['trimap']}")
    if entry["src"] is None:   # composite layout
        if bgr.shape[:2] != (h, w):
            bgr = cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA)
        a = pha[..., None]
        src = (a * fgr + (1.0 - a) * bgr).astype(np.float32)
    else:
        src = read_image(entry["src"], 3)
    for what, img in (("src", src), ("bgr", bgr), ("fgr", fgr), ("trimap", trimap)):
        if img is not None and img.shape[:2] != (h, w):
            raise ValueError(f"{entry['name']}: {what} is {img.shape[1]}x{img.shape[0]}, the alpha {w}x{h}")
    return TestItem(entry["name"], src, bgr, pha, fgr, trimap)


def load_test_set(root: str, backgrounds: Optional[str] = None, seed: int = 0,
                  limit: Optional[int] = None) -> Iterator[TestItem]:
    """The test images one at a time (a large set never sits in memory at once)."""
    entries = list_test_set(root, backgrounds, seed)
    for entry in entries[:limit]:
        yield _load(entry)


def model_predictor(model: torch.nn.Module, output: str = "refine", device: str = "cpu",
                    precision: Optional[str] = None) -> Predictor:
    """A predictor running ``model``; ``output="coarse"`` returns MattingRefine's coarse alpha and
    foreground upsampled bilinearly to the full size (MattingBase has only one output).
    ``precision`` (fp32, bf16, fp16): run a MattingRefine's refine output on the engine's fast
    path (:class:`~matte_ros.core.model.fast.FastRefine`) in that precision instead of the
    published forward in float32 (None)."""
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    model = model.to(device).eval()
    to_t = lambda x: torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None].to(device)
    if precision is not None:
        if not isinstance(model, MattingRefine) or output != "refine":
            raise ValueError("a precision applies to a MattingRefine's refine output only")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        fast = FastRefine(model, dtype=PRECISIONS[precision])

        def predict_fast(src: np.ndarray, bgr: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
            pha, fgr = fast(to_t(src), fast.prepare_plate(to_t(bgr)))
            return pha[0, 0].float().cpu().numpy(), fgr[0].permute(1, 2, 0).float().cpu().numpy()

        return predict_fast

    def predict(src: np.ndarray, bgr: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        h, w = src.shape[:2]
        with torch.no_grad():
            out = model(to_t(src), to_t(bgr))
            pha, fgr = out.pha, out.fgr
            if output == "coarse" and isinstance(model, MattingRefine):
                # the coarse outputs describe the frame padded to a multiple of 4
                size = (h + (4 - h % 4) % 4, w + (4 - w % 4) % 4)
                pha = F.interpolate(out.pha_sm, size, mode="bilinear", align_corners=False)[..., :h, :w]
                fgr = F.interpolate(out.fgr_sm, size, mode="bilinear", align_corners=False)[..., :h, :w]
        return pha[0, 0].float().cpu().numpy(), fgr[0].permute(1, 2, 0).float().cpu().numpy()

    return predict


def closed_form_predictor(**params) -> Predictor:
    """A predictor running :func:`training.baseline.closed_form` (PyMatting) with ``params``."""
    return lambda src, bgr: closed_form(src, bgr, **params)


def difference_key_predictor(**params) -> Predictor:
    """A predictor running :func:`training.baseline.difference_key` with ``params``."""
    return lambda src, bgr: difference_key(src, bgr, **params)


def evaluate(items: Iterator[TestItem], predict: Predictor, quantized: bool = True,
             progress: Optional[Callable[[int, str], None]] = None) -> List[Dict]:
    """Per-image rows: ``name``, ``height``, ``width`` and every metric."""
    rows = []
    for i, item in enumerate(items):
        pha, fgr = predict(item.src, item.bgr)
        if not (np.isfinite(pha).all() and (fgr is None or np.isfinite(fgr).all())):
            raise ValueError(f"{item.name}: the predicted alpha or foreground holds NaN or infinity")
        if quantized:
            pha, fgr = quantize(pha), quantize(fgr)
        rows.append({"name": item.name, "height": item.pha.shape[0], "width": item.pha.shape[1],
                     **score(pha, fgr, item.pha, item.fgr, item.trimap)})
        if progress is not None:
            progress(i + 1, item.name)
    return rows


def write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    atomic_write(path, write)


def _csv_text(rows: Sequence[Dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["name", "height", "width", *METRICS], lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: (f"{v:.9g}" if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()


def write_csv(path: str, rows: Sequence[Dict]) -> None:
    """Per-image rows as CSV, written atomically."""
    write_text(path, _csv_text(rows))


def write_results(path: str, rows: Sequence[Dict], summary: str) -> str:
    """The per-image CSV at ``path`` and ``summary`` at ``<path>.summary.txt``, each written atomically,
    the summary (the file a reader of finished runs looks at) last; returns the summary's path."""
    summary_path = path + ".summary.txt"
    write_csv(path, rows)
    write_text(summary_path, summary)
    return summary_path


def format_table(results: Dict[str, Dict[str, float]], count: int) -> str:
    """A plain-text table: one row per method, the mean of each metric over ``count`` images."""
    width = max([28] + [len(m) + 2 for m in results])
    head = f"{'method':<{width}}{'SAD':>10}{'MSE':>12}{'Grad':>10}{'Conn':>10}{'fgr MSE':>12}"
    lines = [f"mean over {count} image(s); SAD, Grad and Conn divided by 1000 as in the literature", head]
    for method, s in results.items():
        lines.append(f"{method:<{width}}{s['sad']:>10.4f}{s['mse']:>12.6f}{s['grad']:>10.4f}{s['conn']:>10.4f}"
                     f"{s['fgr_mse']:>12.6f}")
    return "\n".join(lines)
