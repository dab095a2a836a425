"""Building blocks of the matting subjects: coverage drawn supersampled, strands, blur, compositing.

A subject is built from layers, each a coverage map ``a`` (h, w) and a colour ``c`` (h, w, 3),
composited front over back in premultiplied form (``P = a*c + (1-a)*P``, ``A = a + (1-a)*A``); the
foreground is ``fgr = P / A``. So ``pha*fgr + (1-pha)*bgr`` is exactly the image of the layers in
front of ``bgr``. Coverage is drawn at ``SUPERSAMPLE`` times the resolution and area-averaged, so
strands a quarter of a pixel wide give fractional alpha. Pure numpy/OpenCV.
"""
from typing import Callable, List, Optional, Tuple

import cv2
import numpy as np

__all__ = ["SUPERSAMPLE", "Layer", "Texture", "coverage", "pts", "motion_kernel", "blur_layer", "strands",
           "fur_layer", "composite"]

SUPERSAMPLE = 4
Layer = Tuple[np.ndarray, np.ndarray]  # (a (h, w) float32, c (h, w, 3) float32)
Texture = Callable[[np.random.Generator, int, int, Optional[np.ndarray]], np.ndarray]


def coverage(h: int, w: int, draw: Callable[[np.ndarray, int], None]) -> np.ndarray:
    """Run ``draw(canvas, S)`` on a zeroed uint8 canvas S times larger, area-average back to (h, w) float32 0..1."""
    s = SUPERSAMPLE
    canvas = np.zeros((h * s, w * s), np.uint8)
    draw(canvas, s)
    return cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def pts(points, s: int) -> np.ndarray:
    """Points (..., 2) in pixels -> int32 canvas coordinates at supersampling ``s``."""
    return np.round(np.asarray(points, np.float64) * s).astype(np.int32)


def motion_kernel(length: float, angle: float) -> np.ndarray:
    """Normalised linear motion-blur kernel of ``length`` px at ``angle`` radians."""
    k = int(np.ceil(length)) | 1
    kernel = np.zeros((k, k), np.float32)
    c, d = (k - 1) / 2, (length - 1) / 2
    p0 = (c - d * np.cos(angle), c - d * np.sin(angle))
    p1 = (c + d * np.cos(angle), c + d * np.sin(angle))
    cv2.line(kernel, pts(p0, 16).tolist(), pts(p1, 16).tolist(), 1.0, 1, cv2.LINE_AA, shift=4)
    return kernel / kernel.sum()


def blur_layer(layer: Layer, kernel: np.ndarray) -> Layer:
    """Blur a layer in premultiplied form (what a moving or defocused object does over a static background)."""
    a, c = layer
    a_b = cv2.filter2D(a, -1, kernel, borderType=cv2.BORDER_CONSTANT)
    p_b = cv2.filter2D(c * a[..., None], -1, kernel, borderType=cv2.BORDER_CONSTANT)
    safe = np.maximum(a_b, 1e-6)[..., None]
    return np.clip(a_b, 0, 1), np.where(a_b[..., None] > 1e-6, np.clip(p_b / safe, 0, 1), c)


def strands(rng: np.random.Generator, roots: np.ndarray, directions: np.ndarray, length: Tuple[float, float],
            curl: float, steps: int = 12, gravity: float = 0.0) -> List[np.ndarray]:
    """Smooth random curves ``(steps+1, 2)`` starting at ``roots`` (N, 2) heading along ``directions`` (N,) rad.

    gravity in 0..1 bends each strand, more towards its tip, to hang down (image +y) on its own side.
    """
    n = len(roots)
    seg = rng.uniform(*length, n)[:, None] / steps
    turn = np.cumsum(rng.normal(0.0, curl, (n, steps)), axis=1) + rng.normal(0.0, curl, (n, 1)) * 3
    ang = directions[:, None] + np.cumsum(turn * 0.25, axis=1)
    if gravity > 0:
        down = np.where(np.cos(directions) >= 0, np.pi / 2, -1.5 * np.pi)[:, None]  # turn the short way round
        ang = np.unwrap(ang, axis=1)
        ang = ang + (down - ang) * gravity * np.linspace(0.5, 1.0, steps)[None]
    step = np.stack([np.cos(ang), np.sin(ang)], axis=2) * seg[..., None]
    return list(np.concatenate([roots[:, None], roots[:, None] + np.cumsum(step, axis=1)], axis=1))


def fur_layer(rng: np.random.Generator, a: np.ndarray, color: np.ndarray, center: Tuple[float, float],
              count: Tuple[int, int], length: Tuple[float, float], opacity: int = 200, curl: float = 0.2
              ) -> Optional[Layer]:
    """Strands rooted on the rim of the solid ``a`` (h, w) pointing away from ``center`` (x, y): fur.
    A number of strands drawn in ``count`` (lo, hi), at most one per rim pixel, each ``length`` px long;
    None when ``a`` has no rim."""
    h, w = a.shape
    edge = cv2.Canny((a > 0.5).astype(np.uint8) * 255, 50, 150)
    ys, xs = np.nonzero(edge)
    if not len(xs):
        return None
    pick = rng.choice(len(xs), min(len(xs), int(rng.integers(*count))), replace=False)
    roots = np.stack([xs[pick], ys[pick]], 1).astype(np.float64)
    out = np.arctan2(roots[:, 1] - center[1], roots[:, 0] - center[0]) + rng.normal(0, 0.5, len(pick))
    lines = strands(rng, roots, out, length, curl, steps=6)
    fur = coverage(h, w, lambda cv, s: cv2.polylines(cv, [pts(p, s) for p in lines], False, opacity, 1 + (s >= 4),
                                                     cv2.LINE_AA))
    return fur, color


def composite(layers: List[Layer], h: int, w: int, fill: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Premultiplied front-over-back composite of ``layers`` (back first) -> (fgr, pha); ``fill`` where pha is 0."""
    pre = np.zeros((h, w, 3), np.float32)
    pha = np.zeros((h, w), np.float32)
    for a, c in layers:
        rows, cols = np.nonzero(a.any(axis=1))[0], np.nonzero(a.any(axis=0))[0]
        if not len(rows):
            continue
        box = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)  # only where the layer covers
        ab = a[box][..., None]
        pre[box] += ab * (c[box] - pre[box])  # = a*c + (1-a)*pre
        pha[box] += ab[..., 0] * (1 - pha[box])  # = a + (1-a)*pha
    fgr = np.where(pha[..., None] > 1e-6, pre / np.maximum(pha, 1e-6)[..., None], fill)
    return np.clip(fgr, 0, 1).astype(np.float32), np.clip(pha, 0, 1).astype(np.float32)
