"""The matting node's parameters: one table of names, defaults, descriptions and ranges.

Pure apart from building ``rcl_interfaces`` descriptors, so the table, the start-up validation and
the runtime-change rules are tested without a running node. ``config/matte.yaml`` repeats the
defaults for ``--params-file`` / launch users; a test keeps the two equal.
"""
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

from matte_ros.core.engine import PRECISIONS
from .imaging import ALPHA_ENCODINGS, FOREGROUND_ENCODINGS
from matte_ros.core.model import BACKBONES, REFINE_MODES

__all__ = ["ParamSpec", "PARAMS", "SPECS", "LIVE", "NodeSettings", "descriptor", "check_value", "check_changes",
           "settings_from", "cpu_threads_for"]

_DEVICE = re.compile(r"^(auto|cpu|cuda|cuda:\d+)$")


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: Any
    description: str
    choices: Tuple[str, ...] = ()
    range: Optional[Tuple[float, float]] = None     # inclusive bounds for numbers
    live: bool = False                              # may change while the node runs


PARAMS: Tuple[ParamSpec, ...] = (
    ParamSpec("model_path", "", "Weight file (.pth or .safetensors); '' = the packaged default model"),
    ParamSpec("backbone", "", "Expected backbone of the weight file; '' accepts the file's own, a name "
              "(resnet50, resnet101, mobilenetv2) must match it", choices=("",) + tuple(BACKBONES)),
    ParamSpec("backbone_scale", 0.0, "Downsampling of the frame for the coarse network; 0 = auto: "
              "480 px on the long side, at most 0.5 (HD 0.25, 4K 0.125, 640x480 0.5)", range=(0.0, 0.5), live=True),
    ParamSpec("refine_mode", "sampling", "Refiner patch selection: sampling (top errors), thresholding "
              "(error > refine_threshold) or full", choices=tuple(REFINE_MODES), live=True),
    ParamSpec("refine_sample_pixels", 80_000, "Pixels refined per frame in sampling mode "
              "(80000 for HD, 320000 for 4K)", range=(16, 100_000_000), live=True),
    ParamSpec("refine_threshold", 0.1, "Error threshold of thresholding mode", range=(0.0, 1.0), live=True),
    ParamSpec("device", "auto", "Inference device: auto, cpu, cuda or cuda:N"),
    ParamSpec("precision", "fp32", "Inference precision: fp32, fp16 or bf16", choices=tuple(PRECISIONS)),
    ParamSpec("cpu_threads", 0, "Torch CPU threads of the node's process; 0 = auto: one fewer than the "
              "cores, at least 1 (a core is left to the ROS callbacks and the camera)", range=(0, 1024)),
    ParamSpec("compressed", False, "Subscribe to <image>/compressed (sensor_msgs/CompressedImage) "
              "instead of the raw image"),
    ParamSpec("alpha_encoding", "mono8", "Encoding of /matte/alpha: mono8 or 32FC1", choices=ALPHA_ENCODINGS, live=True),
    ParamSpec("foreground_encoding", "rgb8", "Encoding of /matte/foreground: rgb8, or bgra8 carrying the alpha",
              choices=FOREGROUND_ENCODINGS, live=True),
    ParamSpec("publish_foreground", True, "Publish /matte/foreground"),
    ParamSpec("publish_composite", False, "Publish /matte/composite: the foreground over composite_image "
              "or composite_color"),
    ParamSpec("composite_color", [0, 255, 0], "Composite background colour [r, g, b], 0..255 each"),
    ParamSpec("composite_image", "", "Composite background image file (resized to the frame); "
              "'' = use composite_color"),
    ParamSpec("plate_frames", 10, "Frames averaged into the plate by ~/capture_background", range=(1, 1000),
              live=True),
    ParamSpec("plate_path", "", "Directory where plates are saved and reloaded at start-up "
              "(plate_<W>x<H>.png); '' = keep them in memory only"),
    ParamSpec("plate_timeout", 10.0, "Seconds ~/capture_background waits for its frames before failing",
              range=(0.1, 3600.0), live=True),
    ParamSpec("max_rate", 0.0, "Most frames matted per second; 0 = as fast as frames and the device allow",
              range=(0.0, 1000.0), live=True),
)
SPECS: Dict[str, ParamSpec] = {p.name: p for p in PARAMS}
LIVE: Tuple[str, ...] = tuple(p.name for p in PARAMS if p.live)


@dataclass(frozen=True)
class NodeSettings:
    """The node's parameter values, typed (field names equal parameter names)."""
    model_path: str
    backbone: str
    backbone_scale: float
    refine_mode: str
    refine_sample_pixels: int
    refine_threshold: float
    device: str
    precision: str
    cpu_threads: int
    compressed: bool
    alpha_encoding: str
    foreground_encoding: str
    publish_foreground: bool
    publish_composite: bool
    composite_color: Tuple[int, int, int]
    composite_image: str
    plate_frames: int
    plate_path: str
    plate_timeout: float
    max_rate: float


def descriptor(spec: ParamSpec) -> ParameterDescriptor:
    """The ROS descriptor of ``spec``: description, choices as constraints text, numeric range."""
    d = ParameterDescriptor(description=spec.description)
    constraints = []
    if spec.choices:
        constraints.append("one of: " + ", ".join(repr(c) for c in spec.choices))
    if not spec.live:
        constraints.append("fixed at start-up")
    d.additional_constraints = "; ".join(constraints)
    if spec.range is not None:
        lo, hi = spec.range
        if isinstance(spec.default, int) and not isinstance(spec.default, bool):
            d.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=1)]
        else:
            d.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)]
    return d


def check_value(name: str, value: Any) -> Optional[str]:
    """Why ``value`` is not acceptable for parameter ``name``, or None when it is."""
    spec = SPECS.get(name)
    if spec is None:
        return f"unknown parameter {name!r}"
    if spec.choices and value not in spec.choices:
        return f"{name} must be one of {', '.join(repr(c) for c in spec.choices)}, got {value!r}"
    if spec.range is not None and not spec.range[0] <= value <= spec.range[1]:
        return f"{name} must be in [{spec.range[0]}, {spec.range[1]}], got {value!r}"
    if name == "device" and not _DEVICE.match(str(value)):
        return f"device must be auto, cpu, cuda or cuda:N, got {value!r}"
    if name == "composite_color":
        vals = list(value)
        if len(vals) != 3 or not all(isinstance(v, int) and 0 <= v <= 255 for v in vals):
            return f"composite_color must be three integers 0..255 [r, g, b], got {vals!r}"
    return None


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
    merged = {p.name: values.get(p.name, p.default) for p in PARAMS}
    reasons = [r for r in (check_value(n, v) for n, v in merged.items()) if r is not None]
    if reasons:
        raise ValueError("invalid parameters: " + "; ".join(reasons))
    typed = {name: tuple(int(v) for v in value) if name == "composite_color" else type(SPECS[name].default)(value)
             for name, value in merged.items()}
    return NodeSettings(**typed)


def cpu_threads_for(requested: int, cores: Optional[int]) -> int:
    """Torch threads for the ``cpu_threads`` parameter: ``requested`` when > 0, else one fewer than
    ``cores`` (os.cpu_count(), None when unknown), at least 1. With every core in torch's thread pool,
    each parallel operation waits for whichever thread the camera or the DDS threads preempted."""
    return requested if requested > 0 else max(1, (cores or 1) - 1)
