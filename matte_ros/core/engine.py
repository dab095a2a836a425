"""Frame in, matte out: the BGMv2 network behind a small, thread-safe API usable without ROS.

    engine = MattingEngine("model.pth", device="auto", precision="fp32")
    engine.set_background(plate)            # (H, W, 3) uint8 RGB, the empty scene
    res = engine.process(frame, composite=(0, 255, 0))
    res.alpha, res.foreground, res.composite, res.plate_difference

The model is called in exactly two places, :meth:`MattingEngine._prepare_plate` (once per plate)
and :meth:`MattingEngine._infer` (once per frame), so a faster execution path can be swapped in
by overriding those two methods.
"""
import math
import os
import threading
from typing import Any, Dict, NamedTuple, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
from torch import nn

from .host_memory import keep_freed_memory
from .model import DEFAULT_WEIGHTS, REFINE_MODES, MattingRefine, load_checkpoint
from .model.fast import FastRefine, Plate

__all__ = ["MattingEngine", "MatteResult", "NoBackgroundError", "SizeMismatchError", "PRECISIONS",
           "PLATE_DIFF_THRESHOLD", "AUTO_SCALE", "auto_backbone_scale", "resolve_device"]

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# A pixel "differs from the plate" when some channel differs by more than this (values 0..1).
PLATE_DIFF_THRESHOLD = 0.1
_DIFF_LEVELS = int(PLATE_DIFF_THRESHOLD * 255)    # |a - b| / 255 > 0.1  <=>  |a - b| > 25 for integers

Composite = Union[None, Sequence[int], np.ndarray]

# backbone_scale setting meaning "choose per frame size with auto_backbone_scale".
AUTO_SCALE = 0.0
# The paper runs the coarse pass 480 pixels wide: HD at 0.25, 4K at 0.125.
_COARSE_LONG_SIDE = 480


def auto_backbone_scale(height: int, width: int) -> float:
    """The backbone_scale that runs the coarse pass with a long side of 480 pixels, as the paper's
    settings do (1920x1080 -> 0.25, 3840x2160 -> 0.125), at most 1/2 (640x480 -> 0.5)."""
    return min(0.5, _COARSE_LONG_SIDE / max(height, width))


class MatteResult(NamedTuple):
    """alpha: (H, W) float32 0..1; foreground: (H, W, 3) uint8 RGB; composite: (H, W, 3) uint8 RGB
    or None; plate_difference: fraction (0..1) of pixels where some channel of frame and plate
    differ by more than PLATE_DIFF_THRESHOLD (near 1 means the plate is not this scene's)."""
    alpha: np.ndarray
    foreground: np.ndarray
    composite: Optional[np.ndarray]
    plate_difference: float


class NoBackgroundError(RuntimeError):
    """process() was called before any background plate was set."""


class SizeMismatchError(ValueError):
    """The frame's size differs from every cached background plate."""


def resolve_device(spec: str) -> torch.device:
    """"auto" (CUDA when available, else CPU) | "cpu" | "cuda" | "cuda:N" -> torch.device."""
    if not isinstance(spec, str):
        raise ValueError(f"device must be a string (auto, cpu, cuda or cuda:N), got {spec!r}")
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda" or (spec.startswith("cuda:") and spec[5:].isdigit()):
        if not torch.cuda.is_available():
            raise ValueError(f"device {spec!r} requested but CUDA is not available on this machine; "
                             "use 'cpu' or 'auto'")
        index = int(spec[5:]) if ":" in spec else torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            raise ValueError(f"device {spec!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
        return torch.device("cuda", index)
    raise ValueError(f"unknown device {spec!r}; expected auto, cpu, cuda or cuda:N")


def _check_frame(frame: Any, what: str = "frame") -> np.ndarray:
    """The frame as an array torch.from_numpy accepts (copied only when its strides are negative
    or it is read-only); ValueError unless it is a non-empty (H, W, 3) uint8 array."""
    if not isinstance(frame, np.ndarray):
        raise ValueError(f"{what} must be a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise ValueError(f"{what} must be uint8 RGB with values 0..255, got dtype {frame.dtype}")
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"{what} must have shape (H, W, 3) (RGB), got {frame.shape}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"{what} is empty: shape {frame.shape}")
    if any(s < 0 for s in frame.strides) or not frame.flags.writeable:
        frame = np.array(frame, order="C")
    return frame


def _to_float(u8: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """u8: (H, W, 3) uint8 on the device -> (1, 3, H, W) contiguous ``dtype`` in 0..1 (one copy)."""
    return u8.permute(2, 0, 1).unsqueeze(0).to(dtype, memory_format=torch.contiguous_format).div_(255)


def _to_u8_hwc(x: torch.Tensor) -> np.ndarray:
    """x: (1, 3, H, W) float in 0..1 -> (H, W, 3) contiguous uint8, rounded. On the CPU OpenCV
    converts each plane and interleaves the bytes (16 ms at 3840x2160, one thread, against 38 ms
    interleaving the floats first and torch's ~80 ms); elsewhere it is converted on the device and
    only the bytes are copied back."""
    if x.device.type == "cpu":
        return cv2.merge([cv2.convertScaleAbs(p, alpha=255.0) for p in x[0].float().numpy()])
    return x[0].float().mul(255).round_().to(torch.uint8).permute(1, 2, 0).contiguous().cpu().numpy()


def _plate_difference(frame: np.ndarray, plate: np.ndarray) -> float:
    """Fraction of pixels where some channel of two (H, W, 3) uint8 images differs by more than
    PLATE_DIFF_THRESHOLD; on the host (2.5 ms at 1920x1080), overlapping the device's work."""
    d = cv2.absdiff(frame, plate)
    d = np.maximum(np.maximum(d[:, :, 0], d[:, :, 1]), d[:, :, 2])
    return np.count_nonzero(d > _DIFF_LEVELS) / d.size


class _Plate(NamedTuple):
    rgb: np.ndarray          # (H, W, 3) uint8, read-only: the plate as given
    u8: torch.Tensor         # (H, W, 3) uint8 on the device (to re-prepare when backbone_scale changes)
    scale: float             # the backbone_scale of frames of this size (auto resolved)
    prepared: Any            # what _prepare_plate returned at that scale


class MattingEngine:
    """Background matting of uint8 RGB frames against cached background plates.

    Thread safety: every public method may be called from any thread. One lock guards the plate
    cache and the model settings. ``process`` holds it from the plate lookup to the end of the
    network's run, so each result comes from one plate and one set of settings; ``set_background``,
    ``clear_background`` and ``configure`` wait for a running frame to finish (at most one frame's
    time) and take effect from the next frame. Concurrent ``process`` calls run one at a time.
    Input conversion and the copies back to host memory run outside the lock.

    The engine owns ``model``: it is moved to the device and precision and put in eval mode.
    """

    def __init__(self, checkpoint: Optional[str] = None, model: Optional[nn.Module] = None,
                 device: str = "auto", precision: str = "fp32", backbone_scale: Optional[float] = None,
                 refine_mode: Optional[str] = None, refine_sample_pixels: Optional[int] = None,
                 refine_threshold: Optional[float] = None):
        self.device = resolve_device(device)
        keep_freed_memory()                 # frame-sized buffers reused, not re-faulted per frame (host_memory.py)
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
        if precision == "fp16" and self.device.type == "cpu":
            raise ValueError("precision fp16 needs CUDA (half-precision convolutions are not supported well on "
                             "the CPU); use bf16 or fp32 on the CPU")
        self.precision = precision
        self.dtype = PRECISIONS[precision]
        if checkpoint is not None and model is not None:
            raise ValueError("pass either checkpoint or model, not both")
        if model is None:
            if checkpoint is None:
                checkpoint = DEFAULT_WEIGHTS
                if not os.path.isfile(checkpoint):
                    raise FileNotFoundError(
                        f"no model given and the default weights {checkpoint} do not exist; pass checkpoint= a "
                        "weight file (a released BGMv2 .pth such as pytorch_mobilenetv2.pth, a .safetensors "
                        "export, or last.pth/best.pth written by `python -m training train`)")
            model = load_checkpoint(checkpoint)
        self.model = model.eval().to(self.device, self.dtype)
        # The fast execution path (same numbers, see model/fast.py); it reads the model's live settings.
        self._fast = FastRefine(self.model) if isinstance(self.model, MattingRefine) else None
        self._lock = threading.Lock()
        self._plates: Dict[Tuple[int, int], _Plate] = {}
        self._scale_setting = getattr(self.model, "backbone_scale", None)     # AUTO_SCALE or a fixed scale
        self.configure(backbone_scale=backbone_scale, refine_mode=refine_mode,
                       refine_sample_pixels=refine_sample_pixels, refine_threshold=refine_threshold)

    # ---- settings -------------------------------------------------------------------------
    def settings(self) -> Dict[str, Any]:
        """The current live settings (empty for a model without refiner)."""
        with self._lock:
            if not isinstance(self.model, MattingRefine):
                return {}
            r = self.model.refiner
            return {"backbone_scale": self._scale_setting, "refine_mode": r.mode,
                    "refine_sample_pixels": r.sample_pixels, "refine_threshold": r.threshold}

    def configure(self, *, refine_mode: Optional[str] = None, refine_sample_pixels: Optional[int] = None,
                  refine_threshold: Optional[float] = None, backbone_scale: Optional[float] = None) -> None:
        """Change settings live (None = keep). backbone_scale AUTO_SCALE (0) picks
        auto_backbone_scale for each frame size. All values are checked before any is applied;
        ValueError says which one is wrong and why. Takes effect from the next frame."""
        given = {k: v for k, v in (("refine_mode", refine_mode), ("refine_sample_pixels", refine_sample_pixels),
                                   ("refine_threshold", refine_threshold), ("backbone_scale", backbone_scale))
                 if v is not None}
        if not given:
            return
        if not isinstance(self.model, MattingRefine):
            raise ValueError(f"cannot set {', '.join(given)}: the model is {type(self.model).__name__}, "
                             "which has no refiner and no backbone_scale (only MattingRefine has)")
        _validate_settings(**given)
        with self._lock:
            r = self.model.refiner
            if refine_mode is not None:
                r.mode = refine_mode
            if refine_sample_pixels is not None:
                r.sample_pixels = int(refine_sample_pixels)
            if refine_threshold is not None:
                r.threshold = float(refine_threshold)
            if backbone_scale is not None:
                self._scale_setting = float(backbone_scale)
                if self._scale_setting != AUTO_SCALE:
                    self.model.backbone_scale = self._scale_setting
                with torch.inference_mode():
                    for size, p in self._plates.items():    # plate-side work depends on the scale
                        if self._scale_for(*size) != p.scale:
                            self._plates[size] = self._new_plate(p.rgb, p.u8)

    def _scale_for(self, h: int, w: int) -> Optional[float]:
        s = self._scale_setting                   # None: a model without backbone_scale
        return auto_backbone_scale(h, w) if s == AUTO_SCALE else s

    def _use_scale(self, scale: Optional[float]) -> None:
        if scale is not None:
            self.model.backbone_scale = scale

    def _new_plate(self, rgb: np.ndarray, u8: torch.Tensor) -> _Plate:
        """The plate of rgb/u8 prepared at its frame size's scale (under the lock)."""
        scale = self._scale_for(*rgb.shape[:2])
        self._use_scale(scale)
        return _Plate(rgb, u8, scale, self._prepare_plate(_to_float(u8, self.dtype)))

    # ---- plates ---------------------------------------------------------------------------
    @torch.inference_mode()
    def set_background(self, frame: np.ndarray) -> None:
        """Cache ``frame`` ((H, W, 3) uint8 RGB, the empty scene) as the plate for its size,
        replacing any plate of that size; it is converted and prepared once, here."""
        frame = _check_frame(frame, "background")
        rgb = np.array(frame, copy=True)                         # ours: the caller may reuse its buffer
        u8 = torch.from_numpy(rgb).to(self.device)
        rgb.flags.writeable = False
        with self._lock:
            self._plates[rgb.shape[:2]] = self._new_plate(rgb, u8)

    def clear_background(self, size: Optional[Tuple[int, int]] = None) -> None:
        """Forget the plate of ``size`` = (H, W), or every plate when size is None."""
        with self._lock:
            if size is None:
                self._plates.clear()
            else:
                self._plates.pop(tuple(size), None)

    def has_background(self, size: Tuple[int, int]) -> bool:
        with self._lock:
            return tuple(size) in self._plates

    def background(self, size: Tuple[int, int]) -> Optional[np.ndarray]:
        """The plate of ``size`` = (H, W) as given to set_background ((H, W, 3) uint8, read-only), or None."""
        with self._lock:
            p = self._plates.get(tuple(size))
            return None if p is None else p.rgb

    def _plate_for(self, h: int, w: int) -> _Plate:
        p = self._plates.get((h, w))
        if p is not None:
            return p
        if not self._plates:
            raise NoBackgroundError("no background plate has been set: call set_background() with a frame of "
                                    "the empty scene first")
        sizes = ", ".join(f"{ph}x{pw}" for ph, pw in sorted(self._plates))
        raise SizeMismatchError(f"frame is {h}x{w} (HxW) but the background plate(s) are {sizes}; "
                                "capture a plate at this frame size")

    # ---- frames ---------------------------------------------------------------------------
    @torch.inference_mode()
    def process(self, frame: np.ndarray, composite: Composite = None) -> MatteResult:
        """frame: (H, W, 3) uint8 RGB of any size with a plate of that size set.
        composite: None, an (r, g, b) colour (ints 0..255) or an (H, W, 3) uint8 RGB image to put
        the foreground over (``fgr * pha + bg * (1 - pha)``, computed on the device)."""
        frame = _check_frame(frame)
        h, w = frame.shape[:2]
        bg = self._composite_background(composite, h, w)
        u8 = torch.from_numpy(frame).to(self.device, non_blocking=True)
        src = _to_float(u8, self.dtype)
        with self._lock:
            plate = self._plate_for(h, w)
            self._use_scale(plate.scale)
            pha, fgr = self._infer(src, plate.prepared)
        diff = _plate_difference(frame, plate.rgb)
        comp = None if bg is None else _to_u8_hwc(torch.lerp(bg, fgr.float(), pha.float()))
        alpha = pha[0, 0].float().contiguous().cpu().numpy()
        return MatteResult(alpha, _to_u8_hwc(fgr), comp, diff)

    def _composite_background(self, composite: Composite, h: int, w: int) -> Optional[torch.Tensor]:
        """None | (1, 3, 1, 1) colour | (1, 3, H, W) image, float32 0..1 on the device."""
        if composite is None:
            return None
        if isinstance(composite, np.ndarray) and composite.ndim != 1:
            if composite.dtype != np.uint8 or composite.shape != (h, w, 3):
                raise ValueError(f"composite image must be uint8 of shape ({h}, {w}, 3) like the frame, "
                                 f"got {composite.dtype} {composite.shape}")
            return _to_float(torch.from_numpy(_check_frame(composite, "composite image")).to(self.device),
                             torch.float32)
        rgb = tuple(composite) if isinstance(composite, (tuple, list, np.ndarray)) else ()
        if len(rgb) != 3 or not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) and 0 <= c <= 255
                                    for c in rgb):
            raise ValueError(f"composite must be None, an (r, g, b) colour of ints 0..255 or an (H, W, 3) uint8 "
                             f"image, got {composite!r}")
        return torch.tensor([float(c) / 255 for c in rgb], device=self.device).view(1, 3, 1, 1)

    # ---- the two places the model runs (override both for a faster execution path) -----------
    def _prepare_plate(self, bgr: torch.Tensor) -> Any:
        """bgr: (1, 3, H, W) plate in 0..1, engine dtype, on the device -> what _infer receives as
        ``plate``. Called once per set_background (and again for every plate when backbone_scale
        changes), under the engine lock."""
        return bgr if self._fast is None else self._fast.prepare_plate(bgr)

    def _infer(self, src: torch.Tensor, plate: Any) -> Tuple[torch.Tensor, torch.Tensor]:
        """src: (1, 3, H, W) frame in 0..1 -> pha: (1, 1, H, W), fgr: (1, 3, H, W), both 0..1.
        Called under the engine lock and torch.inference_mode."""
        if isinstance(plate, Plate):            # prepared by the fast path; a plain tensor runs the model
            return self._fast(src, plate)
        out = self.model(src, plate)
        return out[0], out[1]


def _validate_settings(refine_mode=None, refine_sample_pixels=None, refine_threshold=None, backbone_scale=None):
    if refine_mode is not None and refine_mode not in REFINE_MODES:
        raise ValueError(f"refine_mode must be one of {', '.join(REFINE_MODES)}, got {refine_mode!r}")
    if refine_sample_pixels is not None:
        if not isinstance(refine_sample_pixels, (int, np.integer)) or isinstance(refine_sample_pixels, bool):
            raise ValueError(f"refine_sample_pixels must be an integer, got {refine_sample_pixels!r}")
        if refine_sample_pixels < 16:
            raise ValueError(f"refine_sample_pixels must be at least 16 (one 4x4 patch), got {refine_sample_pixels}")
    if refine_threshold is not None:
        if not _is_real(refine_threshold) or not 0.0 <= refine_threshold <= 1.0:
            raise ValueError(f"refine_threshold must be a number in [0, 1] (the error map's range), "
                             f"got {refine_threshold!r}")
    if backbone_scale is not None:
        if not _is_real(backbone_scale) or not (0.0 < backbone_scale <= 0.5 or backbone_scale == AUTO_SCALE):
            raise ValueError(f"backbone_scale must be a number in (0, 0.5] (the coarse pass runs at most at half "
                             f"resolution) or 0 (auto), got {backbone_scale!r}")


def _is_real(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool) and math.isfinite(x)
