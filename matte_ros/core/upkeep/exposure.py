"""Exposure and white balance: a per-channel gain and offset from the plate to the frame.

    gain, offset = fit_gain(plate_px, frame_px)     # (N, 3) pixel pairs on confident background
    plate_now = apply_gain(plate, gain, offset)     # uint8, one lookup table per channel

Values are in 0..1 units: ``frame ~= gain * plate + offset`` per channel.
"""
from typing import Tuple

import cv2
import numpy as np

__all__ = ["fit_gain", "apply_gain", "invert_gain", "MIN_FIT_PIXELS", "GAIN_RANGE"]

MIN_FIT_PIXELS = 64            # fewer background pixels than this: no fit (identity)
GAIN_RANGE = (0.2, 5.0)        # a fitted gain outside this is not an exposure change: no fit
MIN_SPREAD = 0.08              # plate values spread less than this (std, 0..1): gain only
MAX_OFFSET = 0.06              # a larger fitted offset is a gain in disguise: gain only
MAX_RESIDUAL = 0.04            # median |frame - fit| above this: the pixels do not follow one gain, no fit
_IDENTITY = (np.ones(3, np.float32), np.zeros(3, np.float32))


def _fit_channel(p: np.ndarray, f: np.ndarray) -> Tuple[float, float, float]:
    """The fit f ~ g * p + o by least squares, refitted once without the residuals beyond 3 robust sigmas.
    An offset is kept only where the plate's values spread enough to tell it from a gain and it is
    small (a black level, MAX_OFFSET at most); otherwise the fit is a gain alone. Returns
    (gain, offset, the median absolute residual over all pixels)."""
    keep = np.ones(p.shape, bool)
    g, o = 1.0, 0.0
    for _ in range(2):
        pk, fk = p[keep], f[keep]
        if pk.size < MIN_FIT_PIXELS:
            break
        g, o = float(np.dot(pk, fk) / max(float(np.dot(pk, pk)), 1e-9)), 0.0
        if pk.std() >= MIN_SPREAD:
            (g2, o2), *_ = np.linalg.lstsq(np.stack([pk, np.ones_like(pk)], axis=1), fk, rcond=None)
            if abs(o2) <= MAX_OFFSET:
                g, o = float(g2), float(o2)
        r = np.abs(f - (g * p + o))
        sigma = 1.4826 * np.median(r[keep]) + 1e-3
        keep = r <= 3.0 * sigma
    return g, o, float(np.median(np.abs(f - (g * p + o))))


def fit_gain(plate_px: np.ndarray, frame_px: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """plate_px, frame_px: (N, 3) uint8 or float 0..1 values of the same background pixels ->
    gain (3,), offset (3,) float32 with ``frame ~= gain * plate + offset`` (0..1 units), robust to a
    minority of pixels that are not background. Too few pixels or an implausible fit: identity.
    Saturated pixels (0 or 1 in either image) are left out: they carry no exposure information."""
    p, f = np.asarray(plate_px), np.asarray(frame_px)
    if p.shape != f.shape or p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(f"plate_px and frame_px must both be (N, 3), got {p.shape} and {f.shape}")
    scale = 1.0 / 255 if p.dtype == np.uint8 else 1.0
    p, f = p.astype(np.float32) * scale, f.astype(np.float32) * scale
    gain, offset = _IDENTITY[0].copy(), _IDENTITY[1].copy()
    for c in range(3):
        ok = (p[:, c] > 0.01) & (p[:, c] < 0.99) & (f[:, c] > 0.01) & (f[:, c] < 0.99)
        if np.count_nonzero(ok) < MIN_FIT_PIXELS:
            return _IDENTITY[0].copy(), _IDENTITY[1].copy()
        gain[c], offset[c], residual = _fit_channel(p[ok, c], f[ok, c])
        if residual > MAX_RESIDUAL:             # most pixels do not follow a gain: not an exposure change
            return _IDENTITY[0].copy(), _IDENTITY[1].copy()
    if not (np.all(np.isfinite(gain)) and np.all(np.isfinite(offset))
            and GAIN_RANGE[0] <= gain.min() and gain.max() <= GAIN_RANGE[1] and np.abs(offset).max() <= MAX_OFFSET):
        return _IDENTITY[0].copy(), _IDENTITY[1].copy()
    return gain, offset


def _luts(gain: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """(1, 256, 3) uint8: for each channel, level v -> round(255 * (gain * v / 255 + offset))."""
    v = np.arange(256, dtype=np.float32)[:, None]
    lut = v * np.asarray(gain, np.float32)[None, :] + 255.0 * np.asarray(offset, np.float32)[None, :]
    return np.clip(np.rint(lut), 0, 255).astype(np.uint8)[None]


def apply_gain(img: np.ndarray, gain: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """img: (H, W, 3) uint8 -> gain * img + offset per channel, rounded and clipped (a new array)."""
    return cv2.LUT(img, _luts(gain, offset))


def invert_gain(gain: np.ndarray, offset: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The gain and offset that undo (gain, offset)."""
    g = np.asarray(gain, np.float32)
    return (1.0 / g).astype(np.float32), (-np.asarray(offset, np.float32) / g).astype(np.float32)
