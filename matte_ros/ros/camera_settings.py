"""The fake camera's parameters, declared once: the fields of :class:`CameraSettings`.

As the matting node's (:mod:`.params`), each field's metadata is the one source of the camera's ROS
descriptors, the check of its start-up values, the parameter table of docs/node.md
(``camera_markdown()``, between the camera_params markers) and the ranges the demo checks its
options against before it starts the camera. Every parameter is fixed at start-up. Imports no rclpy
node machinery, so the demo reads it before anything starts.
"""
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Tuple

from matte_ros.core.synthetic.disturbances import DISTURBANCES

from .declared import ParamSpec, markdown_table, setting, settings_of, specs_of
from .names import BACKGROUND, FAKE_CAMERA_NAME

__all__ = ["COMPRESSED_FORMATS", "CameraSettings", "CAMERA_PARAMS", "CAMERA_SPECS", "camera_settings_from",
           "camera_markdown"]

COMPRESSED_FORMATS = ("", "png", "jpeg")        # '' = no image/compressed


@dataclass(frozen=True)
class CameraSettings:
    """The fake camera's parameter values, typed; field names are the parameter names."""
    width: int = setting(320, "Frame width", range=(32, 7680))
    height: int = setting(240, "Frame height", range=(32, 4320))
    rate: float = setting(15.0, "Frames per second", range=(0.1, 240.0))
    empty_seconds: float = setting(2.0, "Seconds of empty scene before the subject enters", range=(0.0, 3600.0))
    wait_for_plate: bool = setting(False, "Keep the scene empty until the matting node has a plate (its latched "
                                   f"{BACKGROUND} in the camera's namespace carries one); empty_seconds count from "
                                   "then")
    seed: int = setting(0, "Scene seed (room and subject)", range=(0, 2 ** 31 - 1))
    noise: float = setting(0.01, "Sensor noise sigma (0..1 units)", range=(0.0, 0.2))
    frame_id: str = setting(FAKE_CAMERA_NAME, "frame_id of every header")
    compressed: str = setting("", "Also publish image/compressed in this format ('' = no)",
                              choices=COMPRESSED_FORMATS)
    disturbance: str = setting("none", "Camera disturbance once the subject walks (deterministic per seed; the true "
                               "alpha is unchanged; see docs/plate_upkeep.md)", choices=DISTURBANCES)
    disturbance_start: int = setting(30, "Scene frame where the disturbance starts", range=(0, 10 ** 6))
    disturbance_period: int = setting(120, "Frames of a drift cycle, light fade or pan", range=(1, 10 ** 6))


CAMERA_PARAMS: Tuple[ParamSpec, ...] = specs_of(CameraSettings)
CAMERA_SPECS: Dict[str, ParamSpec] = {p.name: p for p in CAMERA_PARAMS}


def camera_settings_from(values: Mapping[str, Any]) -> CameraSettings:
    """Typed settings from parameter values (missing names take their defaults); ValueError naming
    every unacceptable value."""
    return settings_of(CameraSettings, CAMERA_PARAMS, values)


def camera_markdown() -> str:
    """The fake camera's parameter table of docs/node.md."""
    return markdown_table(CAMERA_PARAMS)
