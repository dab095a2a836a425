"""Classical baselines: the difference key, and closed-form matting on a trimap from the plate.

The difference key is the floor of every evaluation table: smooth both images, take the
largest per-channel difference ``|src - bgr|``, map it to alpha with a soft ramp around a
threshold, and clean the matte with a small median and Gaussian blur. Closed-form matting
(Levin et al., via PyMatting, an evaluation-only dependency imported on use) solves for alpha
in the unknown band of a trimap drawn from the same difference. Both recover the foreground
from the compositing equation ``src = a * fgr + (1 - a) * bgr`` with the plate.
"""
from typing import Tuple

import cv2
import numpy as np

__all__ = ["difference_key", "plate_difference", "plate_trimap", "closed_form"]


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
    diff = plate_difference(src_s, bgr_s)
    pha = np.clip((diff - threshold) / softness + 0.5, 0.0, 1.0).astype(np.float32)
    if sigma > 0:
        pha = cv2.medianBlur(pha, 3)
        pha = np.clip(cv2.GaussianBlur(pha, (0, 0), sigma), 0.0, 1.0)
    return pha, _foreground(src, bgr, pha)


def _foreground(src: np.ndarray, bgr: np.ndarray, pha: np.ndarray) -> np.ndarray:
    a = pha[..., None]
    safe = np.maximum(a, 1e-3)
    return np.where(a > 0, np.clip((src - (1.0 - a) * bgr) / safe, 0.0, 1.0), 0.0).astype(np.float32)


def plate_difference(src: np.ndarray, bgr: np.ndarray) -> np.ndarray:
    """(H, W) float32: the largest per-channel ``|src - bgr|``."""
    return np.abs(np.asarray(src, np.float32) - np.asarray(bgr, np.float32)).max(axis=2)


def plate_trimap(src: np.ndarray, bgr: np.ndarray, threshold: float = 0.08, band: int = 7,
                 sigma: float = 1.0) -> np.ndarray:
    """(H, W) float64 trimap from the plate difference: 1 foreground, 0 background, 0.5 unknown.

    The difference of the ``sigma``-blurred images is thresholded into a mask (3x3 median to drop
    speckle); pixels further than ``band`` px inside it are foreground, further than ``band`` px
    outside it background, the rest unknown.
    """
    src = np.asarray(src, np.float32)
    bgr = np.asarray(bgr, np.float32)
    if src.ndim != 3 or src.shape[2] != 3 or src.shape != bgr.shape:
        raise ValueError(f"src and bgr must be (H, W, 3) arrays of one shape, got {src.shape} and {bgr.shape}")
    if band < 1:
        raise ValueError(f"band must be >= 1 px, got {band}")
    if sigma > 0:
        src, bgr = cv2.GaussianBlur(src, (0, 0), sigma), cv2.GaussianBlur(bgr, (0, 0), sigma)
    mask = cv2.medianBlur((plate_difference(src, bgr) > threshold).astype(np.uint8), 3)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
    fg = cv2.erode(mask, kernel, borderType=cv2.BORDER_REPLICATE)
    bg = cv2.erode(1 - mask, kernel, borderType=cv2.BORDER_REPLICATE)
    trimap = np.full(mask.shape, 0.5)
    trimap[fg > 0] = 1.0
    trimap[bg > 0] = 0.0
    return trimap


def closed_form(src: np.ndarray, bgr: np.ndarray, threshold: float = 0.08, band: int = 7
                ) -> Tuple[np.ndarray, np.ndarray]:
    """src, bgr: (H, W, 3) float 0..1 -> pha (H, W) float32, fgr (H, W, 3) float32: PyMatting's
    closed-form matting of ``src`` on :func:`plate_trimap` (its band halved until both a foreground
    and a background region remain); fgr from the compositing equation."""
    try:
        from pymatting import estimate_alpha_cf
    except ImportError as err:  # evaluation-only dependency
        raise ValueError("closed-form matting needs PyMatting: pip install pymatting (see requirements.txt)") from err
    trimap = plate_trimap(src, bgr, threshold, band)
    while band > 1 and not ((trimap == 1).any() and (trimap == 0).any()):  # a small subject: a narrower band
        band //= 2
        trimap = plate_trimap(src, bgr, threshold, band)
    if not (trimap == 1).any():                                              # nothing differs from the plate
        pha = np.zeros(trimap.shape, np.float32)
    elif not (trimap == 0).any() or not (trimap == 0.5).any():               # the subject fills the frame
        pha = (trimap > 0).astype(np.float32)
    else:
        pha = np.clip(estimate_alpha_cf(np.asarray(src, np.float64), trimap), 0, 1).astype(np.float32)
    return pha, _foreground(np.asarray(src, np.float32), np.asarray(bgr, np.float32), pha)
