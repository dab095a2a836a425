"""The plate upkeep settings: one frozen :class:`UpkeepSettings`, checked on construction.

Each field carries metadata (``description``, numeric ``range`` or ``choices``) from which the
node's parameters and the docs table are derived. Everything that costs time is off by default;
``UpkeepSettings()`` leaves the engine exactly as it is without upkeep.
"""
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional, Tuple

from ...settings import is_real
from ..align import ALIGN_METHODS
from ..align import MOTION_MODELS as WARP_MODELS

__all__ = ["UpkeepSettings", "MOTION_MODELS", "EXPOSURE_MODES", "upkeep_problem"]

MOTION_MODELS = ("none",) + WARP_MODELS
EXPOSURE_MODES = ("none", "frame", "plate")


def _setting(default: Any, description: str, *, range: Optional[Tuple[float, float]] = None,
             choices: Tuple[str, ...] = ()) -> Any:
    return field(default=default, metadata={"description": description, "range": range, "choices": choices})


@dataclass(frozen=True)
class UpkeepSettings:
    """How the engine keeps a plate matching the camera (see docs/plate_upkeep.md)."""
    exposure: str = _setting(
        "none", "Per-channel gain and offset between plate and frame (auto exposure and white balance), fitted on "
        "confident background: 'frame' brings the frame back to the plate's exposure for the network (the "
        "foreground is returned in the camera's), 'plate' brings the plate to the frame's", choices=EXPOSURE_MODES)
    refresh_frames: float = _setting(
        0.0, "Time constant, in frames, of the plate's refresh from confident background (slow lighting drift); "
        "0 = off", range=(0.0, 1e6))
    motion: str = _setting("none", "Plate warped to the frame (small camera motion), estimated on confident "
                           "background (by ECC alignment unless motion_method says otherwise)", choices=MOTION_MODELS)
    motion_method: str = _setting("ecc", "How the camera motion is estimated (core/plate/align.py): ecc, tracked "
                                  "from frame to frame (the fastest), or by features: orb, sift, orb+ecc",
                                  choices=ALIGN_METHODS)
    max_motion_px: float = _setting(
        12.0, "Largest camera motion compensated (px at the frame's size, any corner); beyond it the plate is "
        "declared stale and used unwarped", range=(0.5, 1000.0))
    health: bool = _setting(False, "Plate health per frame: the fraction of confident background that disagrees "
                            "with the (compensated) plate")
    stale_fraction: float = _setting(
        0.2, "Plate declared stale when more than this fraction of confident background disagrees with it",
        range=(0.0, 1.0))
    background_alpha: float = _setting(
        0.05, "Alpha below which a pixel counts as background for fitting, health and refresh", range=(0.0, 0.5))
    edge_margin_px: int = _setting(
        8, "Distance (px at the frame's size) kept from anything the matte calls foreground when fitting and "
        "refreshing", range=(0, 256))
    refresh_tolerance: float = _setting(
        0.08, "Only pixels whose colour differs from the plate by less than this (0..1, any channel) are "
        "refreshed, so a subject the matte misses is not blended in unless its colour is that close to the "
        "background's", range=(0.0, 1.0))
    work_long_side: int = _setting(
        320, "Long side (px) of the reduced copy on which gain, motion and health are estimated",
        range=(64, 4096))

    def __post_init__(self):
        problem = upkeep_problem(self)
        if problem is not None:
            raise ValueError(problem)
        for name in ("refresh_frames", "max_motion_px", "stale_fraction", "background_alpha", "refresh_tolerance"):
            object.__setattr__(self, name, float(getattr(self, name)))
        for name in ("edge_margin_px", "work_long_side"):
            object.__setattr__(self, name, int(getattr(self, name)))

    @property
    def refresh(self) -> bool:
        return self.refresh_frames > 0

    @property
    def enabled(self) -> bool:
        """Whether any per-frame work is asked for (else the engine runs exactly as without upkeep)."""
        return self.exposure != "none" or self.refresh or self.motion != "none" or self.health

    def replace(self, **changes: Any) -> "UpkeepSettings":
        """A copy with ``changes`` (field names), checked."""
        return dataclasses.replace(self, **changes)


def upkeep_problem(s: UpkeepSettings) -> Optional[str]:
    """Why ``s`` is not usable (the first problem found, naming the setting), or None."""
    for f in dataclasses.fields(s):
        value, meta = getattr(s, f.name), f.metadata
        if f.type is bool or isinstance(f.default, bool):
            if not isinstance(value, bool):
                return f"upkeep {f.name} must be True or False, got {value!r}"
        elif meta["choices"]:
            if value not in meta["choices"]:
                return f"upkeep {f.name} must be one of {', '.join(meta['choices'])}, got {value!r}"
        else:
            lo, hi = meta["range"]
            integral = isinstance(f.default, int)
            if not is_real(value) or (integral and int(value) != value):
                kind = "an integer" if integral else "a number"
                return f"upkeep {f.name} must be {kind} in [{lo:g}, {hi:g}], got {value!r}"
            if not lo <= value <= hi:
                return f"upkeep {f.name} must be in [{lo:g}, {hi:g}], got {value!r}"
    return None
