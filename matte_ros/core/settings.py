"""The settings every floor shares, validated in one place: device names, precisions and the backbone scale.

Each check returns the reason a value is unacceptable (``None`` when it is fine), so callers can
collect reasons (the node's parameters, the training config) or raise (``require_*``).
"""
import math
from typing import Any, Optional

import numpy as np
import torch

__all__ = ["DEVICES_HELP", "AUTO_SCALE", "MIN_BACKBONE_SCALE", "MAX_BACKBONE_SCALE", "BACKBONE_SCALE_RULE",
           "COARSE_LONG_SIDE",
           "device_problem", "resolve_device", "backbone_scale_problem",
           "auto_backbone_scale", "effective_backbone_scale", "is_real", "PRECISION_NAMES", "native_bf16",
           "auto_precision"]

DEVICES_HELP = "auto, cpu, cuda or cuda:N"
AUTO_SCALE = 0.0                   # backbone_scale 0: pick auto_backbone_scale per frame size
MIN_BACKBONE_SCALE = 1.0 / 64      # a 4K frame's coarse pass is then 60x33 px; below it, too few to see a subject
MAX_BACKBONE_SCALE = 0.5           # the coarse pass runs at most at half resolution
COARSE_LONG_SIDE = 480             # the paper's coarse-pass size: HD 0.25, 4K 0.125
# "auto": fp16 on CUDA; bf16 on a CPU with native bf16 arithmetic for the refine network's fast path; else fp32.
PRECISION_NAMES = ("auto", "fp32", "fp16", "bf16")


def native_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX-512 BF16 or AMX), where oneDNN's bf16
    convolutions are faster than float32 ones (elsewhere bf16 is emulated and slower)."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def auto_precision(device: torch.device, fast_path: bool) -> str:
    """What ``precision="auto"`` means on ``device``: fp16 on CUDA; bf16 on the CPU for the refine
    network's fast path where the CPU has native bf16 (its quality is checked for that path); fp32
    otherwise."""
    if device.type == "cuda":
        return "fp16"
    return "bf16" if fast_path and native_bf16() else "fp32"


def is_real(x: Any) -> bool:
    """A finite int or float (numpy scalars included), not a bool."""
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool) and math.isfinite(x)


def device_problem(spec: Any) -> Optional[str]:
    """Why ``spec`` is not a device name (syntax only: no CUDA query), or None."""
    if not isinstance(spec, str):
        return f"device must be a string ({DEVICES_HELP}), got {spec!r}"
    if spec in ("auto", "cpu", "cuda") or (spec.startswith("cuda:") and spec[5:].isdigit()):
        return None
    return f"unknown device {spec!r}; expected {DEVICES_HELP}"


def resolve_device(spec: str) -> torch.device:
    """``"auto"`` (CUDA when available, else CPU) | ``"cpu"`` | ``"cuda"`` | ``"cuda:N"`` -> torch.device.

    ValueError for a malformed name, or for CUDA where there is none (the message says what to use).
    """
    problem = device_problem(spec)
    if problem is not None:
        raise ValueError(problem)
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError(f"device {spec!r} requested but CUDA is not available on this machine; use 'cpu' or 'auto'")
    index = int(spec[5:]) if ":" in spec else torch.cuda.current_device()
    if index >= torch.cuda.device_count():
        raise ValueError(f"device {spec!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    return torch.device("cuda", index)


BACKBONE_SCALE_RULE = ("backbone_scale must be a number in [1/64, 1/2] (the coarse pass runs at most at half "
                       "resolution and needs enough pixels to see the subject)")


def backbone_scale_problem(scale: Any, allow_auto: bool = True) -> Optional[str]:
    """Why ``scale`` is not a usable backbone scale, or None. Valid: a number in
    [MIN_BACKBONE_SCALE, MAX_BACKBONE_SCALE], or AUTO_SCALE (0) where ``allow_auto``."""
    if allow_auto and is_real(scale) and scale == AUTO_SCALE:
        return None
    if not is_real(scale) or not MIN_BACKBONE_SCALE <= scale <= MAX_BACKBONE_SCALE:
        auto = " or 0 (auto)" if allow_auto else ""
        return f"{BACKBONE_SCALE_RULE}{auto}, got {scale!r}"
    return None


def auto_backbone_scale(height: int, width: int) -> float:
    """The backbone scale that puts the frame's long side near COARSE_LONG_SIDE pixels, at most
    MAX_BACKBONE_SCALE (HD 0.25, 4K 0.125, 640x480 0.5)."""
    return min(MAX_BACKBONE_SCALE, COARSE_LONG_SIDE / max(height, width))


def effective_backbone_scale(scale: float, height: int, width: int) -> float:
    """The scale the coarse pass of a (height x width) input (already padded to a multiple of 4)
    runs at: ``scale``, or, where ``scale`` would leave the coarse pass no pixel on the short side
    (a 40x40 frame at 1/64), the smallest scale that gives it one. Pixel counts are computed as
    ``F.interpolate(..., recompute_scale_factor=True)`` does: floor(side * scale)."""
    short = min(height, width)
    if math.floor(short * scale) >= 1:
        return scale
    lowest = 1.0 / short
    if math.floor(short * lowest) < 1:        # side * (1 / side) rounds below 1 for some sides (49, ...)
        lowest = (1.0 + 1e-12) / short
    return lowest
