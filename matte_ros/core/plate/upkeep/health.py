"""Plate health: how much of what the matte calls background disagrees with the plate.

A plate that matches the scene agrees with every background pixel up to sensor noise; after a
change the compensation cannot follow (a camera knocked aside, a lamp switched on) a large part of
the background differs from it. The figure is measured on the reduced images, after compensation.
"""
import math
from typing import NamedTuple, Tuple

import numpy as np

__all__ = ["PlateHealth", "disagreement", "DISAGREE_LEVELS", "MIN_SUPPORT"]

DISAGREE_LEVELS = 25            # a pixel disagrees when some channel differs by more than 25/255 (~0.1)
MIN_SUPPORT = 0.02              # less confident background than this fraction of the frame: no figure


class PlateHealth(NamedTuple):
    """disagreement: fraction (0..1) of confident background pixels that differ from the compensated
    plate by more than DISAGREE_LEVELS in some channel (NaN when not measured: health off, or too
    little background visible; when the matte leaves almost no background, the last large enough
    background of the matte or else the whole frame is measured: see PlateUpkeep); background: the
    fraction of the frame it was measured on;
    stale: the plate no longer matches the scene (recapture it); reason: why, '' when not stale;
    gain / offset: the exposure compensation applied (per channel, 0..1 units); motion_px: the
    camera motion estimated (largest corner displacement, px), 0 when motion is off;
    exposure_note: the channels whose gain could not be fitted on this frame (too few unsaturated
    background pixels, an implausible fit) and kept their last fitted value, and why; '' when none."""
    disagreement: float
    background: float
    stale: bool
    reason: str
    gain: Tuple[float, float, float]
    offset: Tuple[float, float, float]
    motion_px: float
    exposure_note: str = ""

    def summary(self) -> str:
        """One line for logs and diagnostics."""
        d = "n/a" if math.isnan(self.disagreement) else f"{self.disagreement:.0%}"
        text = (f"plate disagreement {d} of background, gain {'/'.join(f'{g:.2f}' for g in self.gain)}, "
                f"motion {self.motion_px:.1f} px")
        if self.exposure_note:
            text += f" ({self.exposure_note})"
        return f"{text}; STALE: {self.reason}" if self.stale else text


def disagreement(plate: np.ndarray, frame: np.ndarray, mask: np.ndarray) -> Tuple[float, float]:
    """plate, frame: (h, w, 3) uint8; mask: (h, w) nonzero on confident background ->
    (fraction of the masked pixels where some channel differs by more than DISAGREE_LEVELS,
    fraction of the image masked); the first is NaN when under MIN_SUPPORT of the image is masked."""
    if plate.shape != frame.shape or mask.shape != plate.shape[:2]:
        raise ValueError(f"plate {plate.shape}, frame {frame.shape} and mask {mask.shape} differ in size")
    m = mask.astype(bool)
    n = int(np.count_nonzero(m))
    support = n / m.size
    if support < MIN_SUPPORT:
        return float("nan"), support
    d = np.abs(plate.astype(np.int16) - frame.astype(np.int16)).max(axis=2)
    return float(np.count_nonzero(d[m] > DISAGREE_LEVELS)) / n, support
