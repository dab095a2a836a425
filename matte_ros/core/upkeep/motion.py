"""Small camera motion: the warp from the plate to the frame, estimated on background pixels.

    w = estimate_motion(plate_grey, frame_grey, mask, "translation", init)   # 3x3, plate -> frame px
    plate_now = warp_image(plate, w)                                         # the plate as the frame sees it

The warp is found by ECC alignment (Evangelidis and Psarakis, enhanced correlation coefficient;
OpenCV's findTransformECC) on the reduced grey images, with the subject masked out. ECC's
correlation is invariant to gain and offset, so it works under exposure changes too; it runs on
the images' detail (less a blurred copy), so a light changing smoothly across the room does not
look like motion.
"""
from typing import Optional, Tuple

import cv2
import numpy as np

__all__ = ["estimate_motion", "warp_image", "warp_valid", "motion_extent", "rescale_warp", "IDENTITY"]

IDENTITY = np.eye(3, dtype=np.float64)
_ECC_MODELS = {"translation": cv2.MOTION_TRANSLATION, "homography": cv2.MOTION_HOMOGRAPHY}
_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-4)
MIN_MASK_FRACTION = 0.05       # less visible background than this: no estimate
DETAIL_SIGMA = 6.0             # px of the reduced image: light varying more slowly is ignored


def _detail(grey: np.ndarray) -> np.ndarray:
    """The grey image less its blurred self: texture without the smooth light across the room."""
    return grey - cv2.GaussianBlur(grey, (0, 0), DETAIL_SIGMA)


def _ecc(plate: np.ndarray, frame: np.ndarray, mask: np.ndarray, model: str,
         init: np.ndarray) -> Optional[np.ndarray]:
    kind = _ECC_MODELS[model]
    w0 = (init[:2] if model == "translation" else init).astype(np.float32)
    if model == "translation":
        w0 = np.array([[1, 0, w0[0, 2]], [0, 1, w0[1, 2]]], np.float32)
    try:
        _, w = cv2.findTransformECC(plate, frame, w0, kind, _CRITERIA, mask, 3)
    except cv2.error:       # did not converge, or the images have no texture under the mask
        return None
    out = IDENTITY.copy()
    out[:w.shape[0]] = w
    return out if np.all(np.isfinite(out)) else None


def estimate_motion(plate: np.ndarray, frame: np.ndarray, mask: Optional[np.ndarray], model: str,
                    init: Optional[np.ndarray] = None) -> Optional[np.ndarray]:
    """plate, frame: (h, w) float32 grey images of the same size; mask: (h, w) uint8, nonzero where
    the frame shows background (None: everywhere); model: "translation" | "homography";
    init: the 3x3 warp to start from (the previous frame's; default identity).
    Returns the 3x3 float64 warp ``W`` taking plate pixel coordinates to frame coordinates
    (``frame(W x) ~ plate(x)``), or None where no estimate is possible."""
    if model not in _ECC_MODELS:
        raise ValueError(f"motion model must be one of {', '.join(_ECC_MODELS)}, got {model!r}")
    if plate.shape != frame.shape or plate.ndim != 2:
        raise ValueError(f"plate and frame must be grey images of one size, got {plate.shape} and {frame.shape}")
    if mask is not None and np.count_nonzero(mask) < MIN_MASK_FRACTION * mask.size:
        return None
    start = IDENTITY if init is None else init
    plate, frame = _detail(plate), _detail(frame)
    w = _ecc(plate, frame, mask, model, start)
    if w is None and init is not None:
        w = _ecc(plate, frame, mask, model, IDENTITY)
    return w


def rescale_warp(w: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """The same warp on images scaled by (sx, sy): w on full-size pixels -> on scaled pixels."""
    s = np.diag([sx, sy, 1.0])
    return s @ w @ np.linalg.inv(s)


def motion_extent(w: np.ndarray, width: int, height: int) -> float:
    """The largest displacement (px) the warp gives a corner of a (width x height) image."""
    c = np.array([[0, 0, 1], [width, 0, 1], [0, height, 1], [width, height, 1]], np.float64).T
    m = w @ c
    return float(np.max(np.hypot(*(m[:2] / m[2] - c[:2]))))


def _is_affine(w: np.ndarray) -> bool:
    return bool(w[2, 0] == 0 and w[2, 1] == 0 and w[2, 2] == 1)


def warp_image(img: np.ndarray, w: np.ndarray, border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
    """The image seen through the warp: ``out(W x) = img(x)`` (bilinear), same size; what falls outside
    the source is filled by ``border``."""
    h, wd = img.shape[:2]
    if _is_affine(w):
        return cv2.warpAffine(img, w[:2], (wd, h), flags=cv2.INTER_LINEAR, borderMode=border)
    return cv2.warpPerspective(img, w, (wd, h), flags=cv2.INTER_LINEAR, borderMode=border)


def warp_valid(shape: Tuple[int, int], w: np.ndarray) -> np.ndarray:
    """(h, w) bool: the pixels of a warped image that come from inside the source, not from its
    border fill."""
    ones = np.full(shape, 255, np.uint8)
    return warp_image(ones, w, cv2.BORDER_CONSTANT) == 255
