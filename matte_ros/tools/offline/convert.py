"""Matte outputs -> the integer images the writers store (pure numpy/OpenCV functions)."""
import cv2
import numpy as np

__all__ = ["to_u8", "to_u16", "rgba"]


def to_u8(x: np.ndarray) -> np.ndarray:
    """(H, W) float 0..1 -> uint8 0..255, rounded, values outside 0..1 saturated."""
    x = np.asarray(x, np.float32)
    if cv2.minMaxLoc(x)[0] < 0:                         # convertScaleAbs mirrors negatives
        x = cv2.threshold(x, 0, 0, cv2.THRESH_TOZERO)[1]
    return cv2.convertScaleAbs(x, alpha=255.0)


def to_u16(x: np.ndarray) -> np.ndarray:
    """(H, W) float 0..1 -> uint16 0..65535, rounded, values outside 0..1 saturated."""
    return np.rint(np.clip(np.asarray(x, np.float32), 0.0, 1.0) * 65535.0).astype(np.uint16)


def rgba(rgb: np.ndarray, alpha_u8: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB and (H, W) uint8 alpha -> (H, W, 4) uint8 RGBA."""
    out = cv2.cvtColor(rgb, cv2.COLOR_RGB2RGBA)
    out[:, :, 3] = alpha_u8
    return out
