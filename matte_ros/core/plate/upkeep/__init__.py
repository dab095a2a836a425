"""Plate upkeep: keeping the background plate matching a real camera (docs/plate_upkeep.md).

Exposure and white balance (:mod:`.exposure`), slow lighting drift (:mod:`.drift`), small camera
motion (the plate's aligner, :mod:`matte_ros.core.plate.align`) and the plate's health (:mod:`.health`),
tied together per plate by :class:`PlateUpkeep` and switched by one frozen :class:`UpkeepSettings`.
Pure numpy/OpenCV.
"""
from .drift import background_mask, refresh_plate
from .exposure import ExposureFit, apply_gain, clipped_cells, fit_exposure, fit_gain, invert_gain
from .health import PlateHealth, disagreement
from .settings import EXPOSURE_MODES, MOTION_MODELS, UpkeepSettings, upkeep_problem
from .state import PlateUpkeep, UpkeepStep

__all__ = ["UpkeepSettings", "EXPOSURE_MODES", "MOTION_MODELS", "upkeep_problem", "PlateUpkeep", "UpkeepStep",
           "PlateHealth", "ExposureFit", "fit_exposure", "fit_gain", "clipped_cells", "apply_gain", "invert_gain",
           "background_mask", "refresh_plate", "disagreement"]
