"""The difference-key baseline: alpha from how far each pixel is from the clean plate.

A classical keyer and the floor of every evaluation table: smooth both images, take the
largest per-channel difference ``|src - bgr|``, map it to alpha with a soft ramp around a
threshold, and clean the matte with a small median and Gaussian blur. The foreground is
recovered from the compositing equation ``src = a * fgr + (1 - a) * bgr``.
"""
from typing import Tuple

import cv2
import numpy as np

__all__ = ["difference_key"]


def difference_key(src: np.ndarray, bgr: np.ndarray, threshold: float = 0.08, softness: float = 0.08,
                   sigma: float = 1.0) -> Tuple[np.ndarray, np.ndarray]:
    """src, bgr: (H, W, 3) float 0..1 -> pha (H, W) float32 0..1, fgr (H, W, 3) float32 0..1.

    alpha = clip((d - threshold) / softness + 1/2, 0, 1) with d the largest channel of
    |blur(src) - blur(bgr)|, so d = threshold gives alpha 1/2; then a 3x3 median and a Gaussian
    blur of ``sigma`` (0 turns both smoothing steps off)."""
    src = np.asarray(src, dtype=np.float32)
    bgr = np.asarray(bgr, dtype=np.float32)
    if src.ndim != 3 or src.shape[2] != 3 or src.shape != bgr.shape:
        raise ValueError(f"src and bgr must be (H, W, 3) arrays of one shape, got {src.shape} and {bgr.shape}")
    if softness <= 0:
        raise ValueError(f"softness must be positive, got {softness}")
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    if sigma > 0:
        src_s = cv2.GaussianBlur(src, (0, 0), sigma)
        bgr_s = cv2.GaussianBlur(bgr, (0, 0), sigma)
    else:
        src_s, bgr_s = src, bgr
    diff = np.abs(src_s - bgr_s).max(axis=2)
    pha = np.clip((diff - threshold) / softness + 0.5, 0.0, 1.0).astype(np.float32)
    if sigma > 0:
        pha = cv2.medianBlur(pha, 3)
        pha = np.clip(cv2.GaussianBlur(pha, (0, 0), sigma), 0.0, 1.0)
    a = pha[..., None]
    safe = np.maximum(a, 1e-3)
    fgr = np.where(a > 0, np.clip((src - (1.0 - a) * bgr) / safe, 0.0, 1.0), 0.0).astype(np.float32)
    return pha, fgr
