"""The matting node's parameters, declared once: the fields of :class:`NodeSettings`.

Each field's metadata (description, choices, numeric range, live or fixed at start-up, an extra
check) is the one source of the ROS descriptors, the validation of start-up values and runtime
changes, ``config/matte.yaml`` and the parameter table of ``docs/node.md``:

    python -m matte_ros.ros.params --yaml > config/matte.yaml
    python -m matte_ros.ros.params --markdown     # the table between the params markers of docs/node.md

The declaring itself (descriptors, checks, the table) is :mod:`.declared`'s, shared with the fake
camera's parameters. Pure apart from building ``rcl_interfaces`` descriptors, so all of it is tested
without a running node.
"""
import argparse
import dataclasses
import functools
import sys
import textwrap
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from matte_ros.core.model import BACKBONES, REFINE_MODES
from matte_ros.core.model.refine_settings import refine_problem
from matte_ros.core.plate.upkeep import UpkeepSettings
from matte_ros.core.settings import DEVICES_HELP, PRECISION_NAMES, device_problem

from .declared import (
    ParamSpec,
    accepted,
    descriptor,
    markdown_table,
    setting,
    settings_of,
    specs_of,
    value_problem,
    yaml_value,
)
from .imaging import ALPHA_ENCODINGS, FOREGROUND_ENCODINGS
from .names import camera_namespaces

__all__ = ["ParamSpec", "NodeSettings", "PARAMS", "SPECS", "LIVE", "descriptor", "check_value", "check_changes",
           "settings_from", "cpu_threads_for", "engine_config", "ENGINE_LIVE", "UPKEEP_PARAMS", "params_yaml",
           "params_markdown", "main"]

MAX_FRAME_PIXELS = 7680 * 4320          # default: an 8K UHD frame
FRAME_PIXELS_LIMIT = 1 << 30            # OpenCV's own decoding limit


def _color_problem(value: Any) -> Optional[str]:
    vals = list(value) if isinstance(value, (list, tuple)) else value
    if not (isinstance(vals, list) and len(vals) == 3
            and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in vals)):
        return f"composite_color must be three integers 0..255 [r, g, b], got {vals!r}"
    return None


def _cameras_problem(value: Any) -> Optional[str]:
    if not isinstance(value, str):
        return f"cameras must be a string of namespaces separated by commas, got {value!r}"
    try:
        camera_namespaces(value)
    except ValueError as e:
        return str(e)
    return None


# the engine's refiner settings, live parameters of the same names
ENGINE_LIVE = ("backbone_scale", "refine_mode", "refine_sample_pixels", "refine_threshold")
# node parameter -> UpkeepSettings field: the plate upkeep settings a user tunes (the rest keep their defaults)
UPKEEP_PARAMS = {"plate_" + name: name for name in ("exposure", "refresh_frames", "motion", "max_motion_px",
                                                    "health", "stale_fraction")}
_UPKEEP_FIELDS = {f.name: f for f in dataclasses.fields(UpkeepSettings)}


def _upkeep_param(name: str) -> Any:
    """A live NodeSettings field mirroring UpkeepSettings field ``name`` (default, description, range, choices)."""
    f = _UPKEEP_FIELDS[name]
    return setting(f.default, f.metadata["description"], choices=f.metadata["choices"], range=f.metadata["range"],
                    live=True)


@dataclass(frozen=True)
class NodeSettings:
    """The node's parameter values, typed; field names are the parameter names."""
    model_path: str = setting("", "Weight file (.pth or .safetensors); '' = the packaged default model")
    backbone: str = setting("", "Expected backbone of the weight file; '' accepts the file's own, a name must match it",
                             choices=("",) + tuple(BACKBONES))
    backbone_scale: float = setting(
        0.0, "Downsampling of the frame for the coarse network; 0 = auto: 480 px on the long side, at most 0.5 "
        "(HD 0.25, 4K 0.125, 640x480 0.5)", range=(0.0, 0.5), live=True,
        check=functools.partial(refine_problem, "backbone_scale"), accepted="0 (auto) or 1/64 ... 1/2")
    refine_mode: str = setting("sampling", "Refiner patch selection: sampling (top errors), thresholding "
                                "(error > refine_threshold) or full", choices=REFINE_MODES, live=True,
                                check=functools.partial(refine_problem, "refine_mode"))
    refine_sample_pixels: int = setting(80_000, "Pixels refined per frame in sampling mode (80000 for HD, 320000 "
                                         "for 4K)", range=(16, 100_000_000), live=True,
                                         check=functools.partial(refine_problem, "refine_sample_pixels"))
    refine_threshold: float = setting(0.1, "Error threshold of thresholding mode", range=(0.0, 1.0), live=True,
                                       check=functools.partial(refine_problem, "refine_threshold"))
    device: str = setting("auto", "Inference device", check=device_problem, accepted=DEVICES_HELP)
    precision: str = setting("auto", "Inference precision (auto: fp16 on CUDA, bf16 on CPUs with native bf16, "
                              "else fp32)", choices=PRECISION_NAMES)
    cpu_threads: int = setting(0, "Torch CPU threads of the node's process (with several cameras on the CPU: split "
                                "between matting workers, one per camera, at most one per thread); 0 = auto: one "
                                "fewer than the cores, at least 1 (a core is left to the ROS callbacks and the "
                                "camera)", range=(0, 1024))
    compressed: bool = setting(False, "Subscribe to <image>/compressed (sensor_msgs/CompressedImage, PNG or JPEG) "
                                "instead of the raw image")
    cameras: str = setting(
        "", "Cameras matted by this one node with one model in memory: their namespaces, separated by commas "
        "('left,right'); each gets the topics, services, plates (<plate_path>/<camera>) and diagnostics a node in "
        "its namespace would have (/left/image in, /left/matte/alpha out, /left/matte_node/capture_background); "
        "'' = one camera, the node's own names", check=_cameras_problem, accepted="'' or namespaces, comma-separated")
    max_frame_pixels: int = setting(
        MAX_FRAME_PIXELS, "Largest frame accepted, in pixels (width x height; 8K UHD by default); larger frames "
        "are refused before conversion, compressed ones by the size their PNG or JPEG header declares",
        range=(1, FRAME_PIXELS_LIMIT))
    alpha_encoding: str = setting("mono8", "Encoding of the alpha output", choices=ALPHA_ENCODINGS, live=True)
    foreground_encoding: str = setting("rgb8", "Encoding of the foreground output; bgra8 carries the alpha",
                                        choices=FOREGROUND_ENCODINGS, live=True)
    publish_foreground: bool = setting(True, "Publish the foreground")
    publish_composite: bool = setting(False, "Publish the composite: the foreground over composite_image or "
                                       "composite_color")
    publish_debug_maps: bool = setting(
        False, "Publish the coarse pass's error map on matte/error and the refinement map (1 where the refiner "
        "re-estimated a 4x4 patch) on matte/refinement, encoded like the alpha, with the frame's header; "
        "computed in the same pass, only for frames one of them has a subscriber for")
    composite_color: Tuple[int, int, int] = setting((0, 255, 0), "Composite background colour [r, g, b]",
                                                     check=_color_problem, accepted="three integers 0..255")
    composite_image: str = setting("", "Composite background image file (resized to the frame); '' = use "
                                    "composite_color")
    plate_frames: int = setting(10, "Frames averaged into the plate by ~/capture_background", range=(1, 1000),
                                 live=True)
    plate_path: str = setting("", "Directory where plates are saved and reloaded at start-up (plate_<W>x<H>.png); "
                               "'' = keep them in memory only")
    plate_timeout: float = setting(10.0, "Seconds ~/capture_background waits for its frames before failing",
                                    range=(0.1, 3600.0), live=True)
    plate_max_moving: float = setting(0.02, "Fraction of the picture that may change while the plate's frames are "
                                       "averaged; more fails the capture (someone moving); 1 = no check",
                                       range=(0.0, 1.0), live=True)
    plate_warn_difference: float = setting(0.4, "Fraction of a frame's pixels that may differ from its plate before "
                                            "the node warns (once per plate) that the plate needs recapturing",
                                            range=(0.0, 1.0), live=True)
    plate_exposure: str = _upkeep_param("exposure")
    plate_refresh_frames: float = _upkeep_param("refresh_frames")
    plate_motion: str = _upkeep_param("motion")
    plate_max_motion_px: float = _upkeep_param("max_motion_px")
    plate_health: bool = _upkeep_param("health")
    plate_stale_fraction: float = _upkeep_param("stale_fraction")
    max_rate: float = setting(0.0, "Most frames matted per second; 0 = as fast as frames and the device allow. "
                               "With cameras, per camera. A change applies at once: the wait for the next frame is "
                               "recomputed",
                               range=(0.0, 1000.0), live=True)


PARAMS: Tuple[ParamSpec, ...] = specs_of(NodeSettings)
SPECS: Dict[str, ParamSpec] = {p.name: p for p in PARAMS}
LIVE: Tuple[str, ...] = tuple(p.name for p in PARAMS if p.live)


def check_value(name: str, value: Any) -> Optional[str]:
    """Why ``value`` is not acceptable for parameter ``name``, or None when it is."""
    spec = SPECS.get(name)
    return f"unknown parameter {name!r}" if spec is None else value_problem(spec, value)


def check_changes(changes: Mapping[str, Any]) -> Optional[str]:
    """Why a runtime change of these parameters is refused, or None when all can be applied live."""
    reasons: List[str] = []
    for name, value in changes.items():
        spec = SPECS.get(name)
        if spec is not None and not spec.live:
            reasons.append(f"{name} is fixed at start-up (restart the node with the new value); "
                           f"live parameters: {', '.join(LIVE)}")
            continue
        reason = check_value(name, value)
        if reason is not None:
            reasons.append(reason)
    return "; ".join(reasons) or None


def settings_from(values: Mapping[str, Any]) -> NodeSettings:
    """Typed settings from parameter values (missing names take their defaults).

    Raises ValueError naming every unacceptable value.
    """
    return settings_of(NodeSettings, PARAMS, values)


def engine_config(s: NodeSettings, changed: Optional[Iterable[str]] = None) -> Dict[str, Any]:
    """Keyword arguments of ``MattingEngine.configure`` for settings ``s``: the refiner settings and the
    plate upkeep (an UpkeepSettings); with ``changed`` (parameter names), only what those names touch."""
    names = None if changed is None else set(changed)
    out: Dict[str, Any] = {k: getattr(s, k) for k in ENGINE_LIVE if names is None or k in names}
    if names is None or names & UPKEEP_PARAMS.keys():
        out["upkeep"] = UpkeepSettings(**{field_: getattr(s, param) for param, field_ in UPKEEP_PARAMS.items()})
    return out


def cpu_threads_for(requested: int, cores: Optional[int]) -> int:
    """Torch threads for the ``cpu_threads`` parameter: ``requested`` when > 0, else one fewer than
    ``cores`` (os.cpu_count(), None when unknown), at least 1. With every core in torch's thread pool,
    each parallel operation waits for whichever thread the camera or the DDS threads preempted."""
    return requested if requested > 0 else max(1, (cores or 1) - 1)


# ---- derived texts: config/matte.yaml and the docs table ---------------------------------------
def params_yaml() -> str:
    """The text of config/matte.yaml: every parameter at its default, described in a comment."""
    lines = ["# Parameters of the matting node at their defaults. Generated from matte_ros/ros/params.py:",
             "#   python -m matte_ros.ros.params --yaml > config/matte.yaml",
             "# Use: matte_node --ros-args --params-file config/matte.yaml",
             "/**:", "  ros__parameters:"]
    for spec in PARAMS:
        values = accepted(spec)
        note = (f"{spec.description}. " + (f"Accepted: {values}. " if values else "")
                + ("Live." if spec.live else "Fixed at start-up."))
        lines += textwrap.wrap(note, 100, initial_indent="    # ", subsequent_indent="    #   ")
        lines.append(f"    {spec.name}: {yaml_value(spec.default)}")
    return "\n".join(lines) + "\n"


def params_markdown() -> str:
    """The parameter table of docs/node.md (GitHub markdown)."""
    return markdown_table(PARAMS)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m matte_ros.ros.params",
                                     description="Print the matting node's parameters as YAML or a markdown table.")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--yaml", action="store_true", help="the params file config/matte.yaml")
    group.add_argument("--markdown", action="store_true", help="the parameter table of docs/node.md")
    args = parser.parse_args(argv)
    sys.stdout.write(params_yaml() if args.yaml else params_markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
