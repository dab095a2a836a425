"""The camera-motion aligners measured: accuracy and time of each method of core/plate/align.py on
a synthetic plate moved by known camera motions.

    python -m matte_ros.tools.bench_align                  # 640x480, homography model
    python -m matte_ros.tools.bench_align --size 1280x720 --repeats 3

The plate is the empty scene of a SceneSequence (textured wall and floor, sensor noise on the frame);
the frame is the plate seen through a known warp (a shift and a rotation about the centre). Error:
the largest distance (px, over the image's corners) between where the estimated and the true warp
put a corner; "none" where no estimate came. Time: median of ``--repeats`` calls of ``align``.
"""
import sys
import time
from typing import List, Optional, Sequence

import cv2
import numpy as np

from matte_ros.core.cli import OneLineParser, run_cli
from matte_ros.core.plate.align import ALIGN_METHODS, align
from matte_ros.core.synthetic import SceneSequence

__all__ = ["MOTIONS", "true_warp", "corner_error", "measure", "main"]

MOTIONS = ((1.5, -1.0, 0.2), (4.0, 3.0, 0.5), (12.0, -8.0, 1.5), (30.0, 20.0, 4.0))   # (dx, dy px, degrees)


def true_warp(w: int, h: int, dx: float, dy: float, degrees: float) -> np.ndarray:
    """3x3 plate -> frame: a rotation by ``degrees`` about the image centre, then a shift."""
    m = np.eye(3)
    m[:2] = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    m[0, 2] += dx
    m[1, 2] += dy
    return m


def corner_error(est: Optional[np.ndarray], truth: np.ndarray, w: int, h: int) -> float:
    """Largest corner distance (px) between two warps; inf when est is None."""
    if est is None:
        return float("inf")
    c = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], np.float64).T
    a, b = est @ c, truth @ c
    return float(np.max(np.hypot(*(a[:2] / a[2] - b[:2] / b[2]))))


def measure(h: int, w: int, methods: Sequence[str], repeats: int) -> List[dict]:
    """One row per (method, motion): corner error (px) and median ms."""
    scene = SceneSequence(h, w, seed=5, noise=0.0)
    plate = scene.background()
    rows = []
    for dx, dy, deg in MOTIONS:
        truth = true_warp(w, h, dx, dy, deg)
        frame = cv2.warpPerspective(plate, truth, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        frame = np.clip(frame + np.random.default_rng(0).normal(0, 2.0, frame.shape), 0, 255).astype(np.uint8)
        for method in methods:
            times = []
            for _ in range(repeats):
                t = time.perf_counter()
                result = align(plate, frame, method)
                times.append(time.perf_counter() - t)
            rows.append({"method": method, "motion": f"{dx:g},{dy:g} px {deg:g} deg",
                         "error_px": corner_error(result.warp, truth, w, h), "ms": 1000 * float(np.median(times))})
    return rows


def _size(text: str):
    w, h = (int(v) for v in text.lower().split("x"))
    return h, w


def _run(argv) -> int:
    p = OneLineParser(prog="python -m matte_ros.tools.bench_align", description=__doc__.split("\n")[0])
    p.add_argument("--size", type=_size, default=(480, 640), help="WxH of plate and frame (default 640x480)")
    p.add_argument("--repeats", type=int, default=5, help="calls timed per case (default 5)")
    p.add_argument("--methods", default=",".join(ALIGN_METHODS), help="comma-separated (default: all)")
    args = p.parse_args(argv)
    h, w = args.size
    cv2.setNumThreads(1)
    print(f"| method | motion (shift, rotation) | corner error px | ms at {w}x{h} |\n|---|---|---|---|")
    for r in measure(h, w, args.methods.split(","), args.repeats):
        err = "none" if not np.isfinite(r["error_px"]) else f"{r['error_px']:.2f}"
        print(f"| {r['method']} | {r['motion']} | {err} | {r['ms']:.1f} |")
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    return run_cli("bench_align", lambda: _run(argv))


if __name__ == "__main__":
    sys.exit(main())
