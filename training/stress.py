"""The stress suite: a cached, categorised benchmark that training cannot flatter, and its scores.

    root = ensure_suite("datasets/stress", SuiteSpec(), stress_photos())   # generated on first use
    rows = score_suite(root, SuiteSpec(), predict)                        # predict(src, bgr) -> (pha, fgr)
    print(format_markdown({"model": summarise(rows)}))

Layout: ``ROOT/<category>/{src,bgr,pha,fgr,trimap}/NNNNN.png`` (each category a test set that
``python -m training eval --data ROOT/<category>`` also reads) and ``ROOT/manifest.yaml``, written
last: the suite's version, seed, size, count, categories and the SHA-256 of every photograph used.
A cache whose manifest differs from what is asked for (another seed, size, count, a new generator
version or other photographs) is deleted and generated anew; the same request on the same
photographs writes byte-identical files. Scenes: :mod:`training.stress_scenes`.

Scores per image (``STRESS_METRICS``): SAD, MSE, Grad and Conn inside the trimap's unknown band
(``band_*``), SAD and MSE over the whole image; SAD, Grad and Conn divided by 1000 as in
:mod:`training.evaluate`; predictions rounded to 8 bits first.
"""
import csv
import io
import os
import shutil
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import cv2
import numpy as np
import yaml

from matte_ros.core.files import atomic_write
from matte_ros.core.metrics import connectivity_error, gradient_error, mse, quantize, sad

from .evaluate import load_test_set
from .heldout import file_sha256
from .stress_scenes import CATEGORIES, make_stress_sample

__all__ = ["STRESS_VERSION", "STRESS_METRICS", "DEFAULT_ROOT", "SuiteSpec", "suite_manifest", "ensure_suite",
           "stress_scores", "score_suite", "summarise", "format_markdown", "write_rows"]

STRESS_VERSION = 1          # bump with every change to the scenes: a cache of another version is regenerated
STRESS_METRICS = ("band_sad", "band_mse", "band_grad", "band_conn", "sad", "mse")
_HEADS = ("band SAD", "band MSE", "band Grad", "band Conn", "SAD", "MSE")
DEFAULT_ROOT = os.path.join("datasets", "stress")
Predictor = Callable[[np.ndarray, np.ndarray], Tuple[np.ndarray, np.ndarray]]


class SuiteSpec(NamedTuple):
    """What suite: seed, images per category, (H, W), categories (default: all of CATEGORIES)."""
    seed: int = 0
    count: int = 24
    size: Tuple[int, int] = (320, 448)
    categories: Tuple[str, ...] = tuple(CATEGORIES)

    def check(self) -> "SuiteSpec":
        if self.seed < 0 or not 1 <= self.count <= 99999:
            raise ValueError(f"seed must be >= 0 and count in 1..99999, got {self.seed}, {self.count}")
        if min(self.size) < 32:
            raise ValueError(f"size must be at least 32x32, got {self.size[0]}x{self.size[1]}")
        unknown = [c for c in self.categories if c not in CATEGORIES]
        if unknown or not self.categories:
            raise ValueError(f"unknown stress categories {unknown}; expected some of {tuple(CATEGORIES)}")
        return self


def suite_manifest(spec: SuiteSpec, photos: Sequence[str]) -> Dict:
    return {"version": STRESS_VERSION, "seed": int(spec.seed), "count": int(spec.count),
            "size": [int(s) for s in spec.size], "categories": list(spec.categories),
            "photos": [{"name": os.path.basename(p), "sha256": file_sha256(p)} for p in photos]}


def _write_png(path: str, img: np.ndarray) -> None:
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)

    def write(tmp: str) -> None:
        if not cv2.imwrite(tmp, img, [cv2.IMWRITE_PNG_COMPRESSION, 3]):
            raise OSError(f"could not write {path}")

    atomic_write(path, write)


def ensure_suite(root: str, spec: SuiteSpec, photos: Sequence[str], regenerate: bool = False,
                 log: Callable[[str], None] = print) -> str:
    """The suite of ``spec`` in ``root``, generated unless a matching manifest says it is there."""
    spec.check()
    if not photos:
        raise ValueError("the stress suite needs its held-out photographs: apt-get install lomiri-wallpapers "
                         "lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 (see training/heldout.py)")
    want = suite_manifest(spec, photos)
    path = os.path.join(root, "manifest.yaml")
    if not regenerate and os.path.isfile(path):
        with open(path) as f:
            if yaml.safe_load(f) == want:
                return root
        log(f"{root}: the cached suite differs from the one asked for; generating it anew")
    if os.path.isfile(path):
        os.remove(path)
    for category in CATEGORIES:
        shutil.rmtree(os.path.join(root, category), ignore_errors=True)
    for category in spec.categories:
        for i in range(spec.count):
            sample = make_stress_sample(spec.seed, category, i, spec.size, photos)
            for key in ("src", "bgr", "pha", "fgr", "trimap"):
                _write_png(os.path.join(root, category, key, f"{i:05d}.png"), getattr(sample, key))
        log(f"  {category}: {spec.count} image(s)")
    text = yaml.safe_dump(want, sort_keys=False)

    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write(text)

    atomic_write(path, write)
    return root


def stress_scores(pred: np.ndarray, true: np.ndarray, trimap: np.ndarray) -> Dict[str, float]:
    """One image's STRESS_METRICS: (H, W) alphas in 0..1, trimap with 128 = unknown band."""
    return {"band_sad": sad(pred, true, trimap), "band_mse": mse(pred, true, trimap),
            "band_grad": gradient_error(pred, true, trimap) / 1000.0,
            "band_conn": connectivity_error(pred, true, trimap) / 1000.0,
            "sad": sad(pred, true), "mse": mse(pred, true)}


def score_suite(root: str, spec: SuiteSpec, predict: Predictor, method: str = "model",
                progress: Optional[Callable[[str, int], None]] = None) -> List[Dict]:
    """One row per image: category, name, method and STRESS_METRICS."""
    rows = []
    for category in spec.categories:
        for item in load_test_set(os.path.join(root, category), limit=spec.count):
            pha, _ = predict(item.src, item.bgr)
            rows.append({"category": category, "name": item.name, "method": method,
                         **stress_scores(quantize(pha), item.pha, item.trimap)})
        if progress is not None:
            progress(category, len(rows))
    return rows


def summarise(rows: Sequence[Dict]) -> Dict[str, Dict[str, float]]:
    """Category -> the mean of each metric over its rows (in the rows' order of categories)."""
    out: Dict[str, Dict[str, float]] = {}
    for category in dict.fromkeys(r["category"] for r in rows):
        mine = [r for r in rows if r["category"] == category]
        out[category] = {k: float(np.mean([r[k] for r in mine])) for k in STRESS_METRICS}
    return out


def format_markdown(results: Dict[str, Dict[str, Dict[str, float]]], count: int) -> str:
    """A markdown table, one row per (category, method), STRESS_METRICS as columns; with several
    methods the best (lowest) value of each category and column is in bold."""
    methods = list(results)
    categories = list(dict.fromkeys(c for m in methods for c in results[m]))
    lines = [f"Mean over {count} image(s) per category; band = the trimap's unknown band; SAD, Grad, Conn / 1000.",
             "", "| category | method | " + " | ".join(_HEADS) + " |", "|---|---|" + "---:|" * len(_HEADS)]
    for c in categories:
        present = [m for m in methods if c in results[m]]
        best = {k: min(results[m][c][k] for m in present) for k in STRESS_METRICS}
        for m in present:
            cells = []
            for k in STRESS_METRICS:
                v = results[m][c][k]
                text = f"{v:.5f}" if k.endswith("mse") else f"{v:.3f}"
                cells.append(f"**{text}**" if len(present) > 1 and v == best[k] else text)
            lines.append(f"| {c} | {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_rows(path: str, rows: Sequence[Dict]) -> None:
    """Per-image rows as CSV, written atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["category", "name", "method", *STRESS_METRICS], lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: (f"{v:.9g}" if isinstance(v, float) else v) for k, v in r.items()})

    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write(buf.getvalue())

    atomic_write(path, write)
