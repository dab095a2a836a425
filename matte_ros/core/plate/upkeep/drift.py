"""Slow lighting drift: the plate refreshed from what the camera sees of the background now.

    mask = background_mask(alpha_small, 0.05, margin)        # confident background, away from the subject
    refresh_plate(plate, target, mask_full, rate, tolerance)  # plate += rate * (target - plate) there

A subject must never be burned into the plate. Three guards: only pixels the matte calls background
(alpha below a small threshold) are refreshed; a margin around everything the matte calls
foreground is left out (edges, hair, the matte's own blur); and only pixels whose colour already
nearly agrees with the plate move, so a subject the matte misses for a while (a person holding still
in front of a similar wall) is not blended in: a slow drift passes the tolerance, a person does not.
"""
from typing import Optional, Tuple

import cv2
import numpy as np

__all__ = ["background_mask", "refresh_plate"]


def background_mask(alpha: np.ndarray, threshold: float, margin: int,
                    size: Optional[Tuple[int, int]] = None) -> np.ndarray:
    """Confident background of a matte. alpha: (H, W) float 0..1; size: (w, h) of the mask
    (default: alpha's). Returns (h, w) uint8, 1 where no pixel of the cell has alpha >= threshold
    and no such cell lies within ``margin`` cells (a square neighbourhood), else 0."""
    if alpha.ndim != 2:
        raise ValueError(f"alpha must be (H, W), got {alpha.shape}")
    fg = (alpha >= threshold).view(np.uint8)
    if size is not None and size != (alpha.shape[1], alpha.shape[0]):
        fg = cv2.resize(fg * np.uint8(255), size, interpolation=cv2.INTER_AREA)     # > 0: some pixel of the cell
    bg = (fg == 0).view(np.uint8)
    if margin > 0:
        bg = cv2.erode(bg, cv2.getStructuringElement(cv2.MORPH_RECT, (2 * margin + 1, 2 * margin + 1)),
                       borderType=cv2.BORDER_CONSTANT, borderValue=1)
    return bg


def _max_abs_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The largest |a - b| over the channels of two (H, W, 3) uint8 images -> (H, W) uint8."""
    d = cv2.absdiff(a, b)
    return np.maximum(np.maximum(d[:, :, 0], d[:, :, 1]), d[:, :, 2])


def refresh_plate(plate: np.ndarray, target: np.ndarray, mask: np.ndarray, rate: float, tolerance: float,
                  plate_u8: Optional[np.ndarray] = None) -> int:
    """In place: ``plate += rate * (target - plate)`` where ``mask`` is set and ``target`` differs
    from the plate by less than ``tolerance`` (0..1) in every channel. plate: (H, W, 3) float32
    0..255; target: (H, W, 3) uint8 (the frame in the plate's geometry and exposure); mask: (H, W)
    uint8; rate in (0, 1]; plate_u8: the plate rounded to uint8 when the caller has it.
    Returns the number of pixels refreshed."""
    if plate.dtype != np.float32 or target.dtype != np.uint8 or plate.shape != target.shape:
        raise ValueError(f"plate must be float32 and target uint8 of one shape, got {plate.dtype} {plate.shape} and "
                         f"{target.dtype} {target.shape}")
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"rate must be in (0, 1], got {rate}")
    current = cv2.convertScaleAbs(plate) if plate_u8 is None else plate_u8
    agree = (_max_abs_diff(current, target) < tolerance * 255).view(np.uint8)
    cv2.bitwise_and(agree, mask, dst=agree)
    cv2.accumulateWeighted(target, plate, rate, mask=agree)
    return int(cv2.countNonZero(agree))
