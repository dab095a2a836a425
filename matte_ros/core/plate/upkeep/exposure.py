"""Exposure and white balance: a per-channel gain and offset from the plate to the frame.

    fit = fit_exposure(plate_px, frame_px, usable)  # (N, 3) pixel pairs on confident background
    plate_now = apply_gain(plate, fit.gain, fit.offset)     # uint8, one lookup table per channel

Values are in 0..1 units: ``frame ~= gain * plate + offset`` per channel. Each channel is fitted
on its own pixels that are unsaturated in both images: a level near 0 or 255 may be clipped (a
warmer white balance on a bright scene clips red where the plate's red was above 255 / gain), and
clipped values follow no gain. On reduced images a pixel is an average, so one that mixes clipped
and unclipped pixels looks unsaturated: ``clipped_cells`` marks, from the full-size image, the
reduced pixels any clipped pixel went into (``usable`` is their complement). A channel whose fit
is implausible (too few usable pixels, a gain outside GAIN_RANGE, a poor residual) is rejected,
with the reason, rather than applied.
"""
from typing import NamedTuple, Optional, Tuple

import cv2
import numpy as np

__all__ = ["ExposureFit", "fit_exposure", "fit_gain", "clipped_cells", "apply_gain", "invert_gain",
           "MIN_FIT_PIXELS", "GAIN_RANGE", "CLIP_LEVELS", "CHANNELS"]

MIN_FIT_PIXELS = 64            # fewer usable background pixels than this in a channel: that channel not fitted
GAIN_RANGE = (0.2, 5.0)        # a fitted gain outside this is not an exposure change: not applied
MIN_SPREAD = 0.08              # plate values spread less than this (std, 0..1): gain only
MAX_OFFSET = 0.06              # a larger fitted offset is a gain in disguise: gain only
MAX_RESIDUAL = 0.04            # median |frame - fit| above this: the pixels do not follow one gain, not applied
CLIP_LEVELS = (5, 250)         # a level at or below the first, or at or above the second (of 255), may be clipped
CHANNELS = ("red", "green", "blue")
_IDENTITY = (np.ones(3, np.float32), np.zeros(3, np.float32))


class ExposureFit(NamedTuple):
    """gain, offset: (3,) float32, ``frame ~= gain * plate + offset`` (0..1 units), 1 and 0 in a
    rejected channel; rejected: per channel, why its fit is not used ('' where it is)."""
    gain: np.ndarray
    offset: np.ndarray
    rejected: Tuple[str, str, str]


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


def _rejection(g: float, o: float, residual: float) -> str:
    """Why the fit (g, o, residual) of one channel is implausible, '' when it is not."""
    if not (np.isfinite(g) and np.isfinite(o)):
        return "no finite fit"
    if not GAIN_RANGE[0] <= g <= GAIN_RANGE[1]:
        return f"gain {g:.2f} outside {GAIN_RANGE[0]:g}..{GAIN_RANGE[1]:g}"
    if abs(o) > MAX_OFFSET:
        return f"offset {o:+.3f} beyond {MAX_OFFSET:g}"
    if residual > MAX_RESIDUAL:                 # most pixels do not follow a gain: not an exposure change
        return f"the pixels follow no gain (median residual {residual:.3f} > {MAX_RESIDUAL:g})"
    return ""


def fit_exposure(plate_px: np.ndarray, frame_px: np.ndarray, usable: Optional[np.ndarray] = None) -> ExposureFit:
    """plate_px, frame_px: (N, 3) uint8 or float 0..1 values of the same background pixels; usable:
    (N, 3) bool, False where a channel's value may be clipped though it does not look it (see
    ``clipped_cells``), None: all -> the per-channel fit (:class:`ExposureFit`), robust to a minority
    of pixels that are not background. Each channel is fitted on its pixels that are usable and
    strictly inside CLIP_LEVELS in both images; a channel with fewer than MIN_FIT_PIXELS of them
    or an implausible fit is rejected (gain 1, offset 0, and the reason)."""
    p, f = np.asarray(plate_px), np.asarray(frame_px)
    if p.shape != f.shape or p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(f"plate_px and frame_px must both be (N, 3), got {p.shape} and {f.shape}")
    if usable is not None and np.shape(usable) != p.shape:
        raise ValueError(f"usable must be (N, 3) like the pixels, got {np.shape(usable)} for {p.shape}")
    scale = 1.0 / 255 if p.dtype == np.uint8 else 1.0
    p, f = p.astype(np.float32) * scale, f.astype(np.float32) * scale
    lo, hi = CLIP_LEVELS[0] / 255, CLIP_LEVELS[1] / 255
    gain, offset = _IDENTITY[0].copy(), _IDENTITY[1].copy()
    rejected = ["", "", ""]
    for c in range(3):
        ok = (p[:, c] > lo) & (p[:, c] < hi) & (f[:, c] > lo) & (f[:, c] < hi)
        if usable is not None:
            ok &= usable[:, c]
        n = int(np.count_nonzero(ok))
        if n < MIN_FIT_PIXELS:
            rejected[c] = f"{n} unsaturated background pixels (fewer than {MIN_FIT_PIXELS})"
            continue
        g, o, residual = _fit_channel(p[ok, c], f[ok, c])
        rejected[c] = _rejection(g, o, residual)
        if not rejected[c]:
            gain[c], offset[c] = g, o
    return ExposureFit(gain, offset, tuple(rejected))


def fit_gain(plate_px: np.ndarray, frame_px: np.ndarray, usable: Optional[np.ndarray] = None
             ) -> Tuple[np.ndarray, np.ndarray]:
    """``fit_exposure``'s gain (3,) and offset (3,) alone (a rejected channel: 1 and 0)."""
    fit = fit_exposure(plate_px, frame_px, usable)
    return fit.gain, fit.offset


def clipped_cells(img: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """img: (H, W, 3) uint8 -> (h, w, 3) bool at ``size`` = (w, h): True where some pixel of the cell
    (INTER_AREA's footprint) has that channel at or beyond CLIP_LEVELS, so the cell's average may
    hide a clipped value."""
    lut = np.zeros(256, np.uint8)
    lut[:CLIP_LEVELS[0] + 1] = lut[CLIP_LEVELS[1]:] = 255
    clipped = cv2.LUT(img, lut)
    if size != (img.shape[1], img.shape[0]):
        clipped = cv2.resize(clipped, size, interpolation=cv2.INTER_AREA)     # > 0: some pixel of the cell
    return clipped > 0


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
