"""The settings of one MattingRefine inference, given with each call to the fast path.

    settings = RefineSettings(backbone_scale=0.25, mode="sampling", sample_pixels=80_000)
    settings.replace(threshold=0.2)     # a checked copy

Frozen and checked on construction, so a frame always runs with one consistent, valid set.
"""
import dataclasses
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ..settings import AUTO_SCALE, auto_backbone_scale, backbone_scale_problem, is_real
from .matting import MattingRefine
from .refiner import REFINE_MODES

__all__ = ["RefineSettings"]


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
        problem = _settings_problem(self)
        if problem is not None:
            raise ValueError(problem)
        for name, kind in (("backbone_scale", float), ("sample_pixels", int), ("threshold", float)):
            object.__setattr__(self, name, kind(getattr(self, name)))     # numpy scalars -> Python numbers

    @classmethod
    def of(cls, model: MattingRefine) -> "RefineSettings":
        """The settings a MattingRefine's attributes hold now."""
        r = model.refiner
        return cls(model.backbone_scale, r.mode, r.sample_pixels, r.threshold, r.prevent_oversampling)

    def replace(self, **changes: Any) -> "RefineSettings":
        """A copy with ``changes`` (field names), checked."""
        return dataclasses.replace(self, **changes)

    def scale_for(self, height: int, width: int) -> float:
        """The backbone scale of a (height x width) frame: the fixed scale, or auto_backbone_scale."""
        return auto_backbone_scale(height, width) if self.backbone_scale == AUTO_SCALE else self.backbone_scale


def _settings_problem(s: RefineSettings) -> Optional[str]:
    """Why ``s`` is not usable (the first problem found), or None."""
    problem = backbone_scale_problem(s.backbone_scale)
    if problem is not None:
        return problem
    if s.mode not in REFINE_MODES:
        return f"refine_mode must be one of {', '.join(REFINE_MODES)}, got {s.mode!r}"
    n = s.sample_pixels
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
        return f"refine_sample_pixels must be an integer, got {n!r}"
    if n < 16:
        return f"refine_sample_pixels must be at least 16 (one 4x4 patch), got {n}"
    if not is_real(s.threshold) or not 0.0 <= s.threshold <= 1.0:
        return f"refine_threshold must be a number in [0, 1] (the error map's range), got {s.threshold!r}"
    if not isinstance(s.prevent_oversampling, bool):
        return f"refine_prevent_oversampling must be True or False, got {s.prevent_oversampling!r}"
    return None
