"""Matting error metrics of the literature (SAD, MSE, Grad, Conn) and foreground MSE.

The values follow the MATLAB evaluation code used by the matting papers (Rhemann et al.'s
benchmark and its successors): alphas are read as 8-bit images and handled as
``single(x) / 255``, so everything here is computed in float32.

All alpha arguments are ``(H, W)`` float arrays in 0..1. ``trimap`` is an optional ``(H, W)``
uint8 array whose unknown region is 128; without it the whole image is the region.
"""
from typing import Optional

import numpy as np

__all__ = ["sad", "mse"]

UNKNOWN = 128


def _pair(pred: np.ndarray, true: np.ndarray):
    pred = np.asarray(pred)
    true = np.asarray(true)
    if pred.ndim != 2 or pred.shape != true.shape:
        raise ValueError(f"pred and true must be (H, W) arrays of one shape, got {pred.shape} and {true.shape}")
    return pred.astype(np.float32), true.astype(np.float32)


def _region(trimap: Optional[np.ndarray], shape) -> np.ndarray:
    """(H, W) bool mask of the pixels that count."""
    if trimap is None:
        return np.ones(shape, dtype=bool)
    trimap = np.asarray(trimap)
    if trimap.shape != tuple(shape):
        raise ValueError(f"trimap shape {trimap.shape} differs from the alpha shape {tuple(shape)}")
    return trimap == UNKNOWN


def sad(pred: np.ndarray, true: np.ndarray, trimap: Optional[np.ndarray] = None) -> float:
    """Sum of absolute differences over the region, divided by 1000."""
    pred, true = _pair(pred, true)
    region = _region(trimap, pred.shape)
    return float(np.abs(pred - true)[region].sum(dtype=np.float64) / 1000.0)


def mse(pred: np.ndarray, true: np.ndarray, trimap: Optional[np.ndarray] = None) -> float:
    """Mean squared difference over the region (0.0 for an empty region)."""
    pred, true = _pair(pred, true)
    region = _region(trimap, pred.shape)
    count = int(region.sum())
    if count == 0:
        return 0.0
    return float(((pred - true) ** 2)[region].sum(dtype=np.float64) / count)
