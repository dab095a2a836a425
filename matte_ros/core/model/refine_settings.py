"""The settings of one MattingRefine inference, given with each call to the fast path.

    settings = RefineSettings(backbone_scale=0.25, mode="sampling", sample_pixels=80_000)
    settings.replace(threshold=0.2)     # a checked copy

Frozen and checked on construction, so a frame always runs with one consistent, valid set.

:func:`refine_problem` is the one check of these settings, by their public names (the node's
parameters, MattingRefine's keyword arguments): RefineSettings, the Refiner, MattingRefine and the
node's parameters (matte_ros.ros.params) all use it, so each problem has one message.
"""
import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from ..settings import AUTO_SCALE, auto_backbone_scale, backbone_scale_problem, is_real

if TYPE_CHECKING:
    from .matting import MattingRefine

__all__ = ["REFINE_MODES", "MIN_SAMPLE_PIXELS", "RefineSettings", "refine_problem", "require_refine"]

REFINE_MODES = ("full", "sampling", "thresholding")
MIN_SAMPLE_PIXELS = 16          # one 4x4 patch


def _mode_problem(mode: Any) -> Optional[str]:
    if mode not in REFINE_MODES:
        return f"refine_mode must be one of {', '.join(repr(m) for m in REFINE_MODES)}, got {mode!r}"
    return None


def _sample_pixels_problem(n: Any) -> Optional[str]:
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
        return f"refine_sample_pixels must be an integer, got {n!r}"
    if n < MIN_SAMPLE_PIXELS:
        return f"refine_sample_pixels must be at least {MIN_SAMPLE_PIXELS} (one 4x4 patch), got {n}"
    return None


def _threshold_problem(t: Any) -> Optional[str]:
    if not is_real(t) or not 0.0 <= t <= 1.0:
        return f"refine_threshold must be a number in [0, 1] (the error map's range), got {t!r}"
    return None


def _prevent_oversampling_problem(p: Any) -> Optional[str]:
    if not isinstance(p, bool):
        return f"refine_prevent_oversampling must be True or False, got {p!r}"
    return None


_PROBLEMS = {"refine_mode": _mode_problem, "refine_sample_pixels": _sample_pixels_problem,
             "refine_threshold": _threshold_problem, "refine_prevent_oversampling": _prevent_oversampling_problem}


def refine_problem(name: str, value: Any, allow_auto: bool = True) -> Optional[str]:
    """Why ``value`` is not acceptable for the refine setting ``name`` (backbone_scale, refine_mode,
    refine_sample_pixels, refine_threshold or refine_prevent_oversampling), or None when it is.
    ``allow_auto``: backbone_scale may be AUTO_SCALE (0), chosen per frame size."""
    if name == "backbone_scale":
        return backbone_scale_problem(value, allow_auto)
    if name not in _PROBLEMS:
        raise KeyError(f"unknown refine setting {name!r}; expected backbone_scale or one of {', '.join(_PROBLEMS)}")
    return _PROBLEMS[name](value)


def require_refine(allow_auto: bool = True, **settings: Any) -> None:
    """ValueError with :func:`refine_problem`'s reason for the first unacceptable setting (keyword
    arguments by public name)."""
    for name, value in settings.items():
        problem = refine_problem(name, value, allow_auto)
        if problem is not None:
            raise ValueError(problem)


@dataclass(frozen=True)
class RefineSettings:
    """The settings of one MattingRefine inference, checked on construction (ValueError naming the
    setting by its public name).

    backbone_scale: downsampling for the coarse pass, in [1/64, 1/2], or AUTO_SCALE (0) for
    ``auto_backbone_scale`` of each frame's size; mode: full | sampling | thresholding;
    sample_pixels: pixels refined per image in sampling mode (at least 16, one 4x4 patch);
    threshold: in thresholding mode, the error (0..1) above which a patch is refined;
    prevent_oversampling: sampling mode skips patches whose error is 0.
    """
    backbone_scale: float = 0.25
    mode: str = "sampling"
    sample_pixels: int = 80_000
    threshold: float = 0.1
    prevent_oversampling: bool = True

    def __post_init__(self):
        require_refine(backbone_scale=self.backbone_scale, refine_mode=self.mode,
                       refine_sample_pixels=self.sample_pixels, refine_threshold=self.threshold,
                       refine_prevent_oversampling=self.prevent_oversampling)
        for name, kind in (("backbone_scale", float), ("sample_pixels", int), ("threshold", float)):
            object.__setattr__(self, name, kind(getattr(self, name)))     # numpy scalars -> Python numbers

    @classmethod
    def of(cls, model: "MattingRefine") -> "RefineSettings":
        """The settings a MattingRefine's attributes hold now."""
        r = model.refiner
        return cls(model.backbone_scale, r.mode, r.sample_pixels, r.threshold, r.prevent_oversampling)

    def replace(self, **changes: Any) -> "RefineSettings":
        """A copy with ``changes`` (field names), checked."""
        return dataclasses.replace(self, **changes)

    def scale_for(self, height: int, width: int) -> float:
        """The backbone scale of a (height x width) frame: the fixed scale, or auto_backbone_scale."""
        return auto_backbone_scale(height, width) if self.backbone_scale == AUTO_SCALE else self.backbone_scale
