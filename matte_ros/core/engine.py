"""Frame in, matte out: the BGMv2 network behind a small, thread-safe API usable without ROS.

    engine = MattingEngine("model.pth", device="auto", precision="auto")   # fp16 on CUDA, bf16 on bf16 CPUs
    engine.set_background(plate)            # (H, W, 3) uint8 RGB, the empty scene
    res = engine.process(frame, composite=(0, 255, 0))
    res.alpha, res.foreground, res.composite, res.plate_difference
    res = engine.process(frame, maps=True)  # also res.error, res.refinement, from the same coarse pass
    engine.configure(upkeep=UpkeepSettings(exposure="frame", health=True))   # plate upkeep, all off by default
    res.plate_health                        # PlateHealth (None while upkeep is off)

A MattingRefine runs on the fast path (:class:`~matte_ros.core.model.fast.FastRefine`: BatchNorm
folded in float32, then cast to the engine's precision; the only copy of the weights on the
device). The settings (backbone scale, refine mode, sample pixels, threshold) are one frozen
:class:`~matte_ros.core.model.fast.RefineSettings`, replaced as a whole by ``configure`` and given
to the network with each call; the network's own attributes are never changed.

The network is called in exactly two places, :meth:`MattingEngine._prepare_plate` (once per plate)
and :meth:`MattingEngine._infer` (once per frame: one coarse pass, which also gives the error and
refinement maps when asked), so another execution path can be swapped in by overriding those two
methods. The plates (capture, storage, alignment, upkeep and the per-size entries held here) are
:mod:`matte_ros.core.plate`'s; with plate upkeep on, the plate the network sees is compensated per
frame (motion, exposure, drift) and prepared again when it changes.
"""
import copy
import dataclasses
import os
import threading
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .model import DEFAULT_WEIGHTS, MattingBase, MattingRefine, load_checkpoint
from .model.fast import FastRefine, RefineSettings
from .model.graphs import GraphedRefine
from .plate import NoBackgroundError, PlateEntry, SizeMismatchError, find_plate
from .plate.upkeep import PlateHealth, PlateUpkeep, UpkeepSettings, UpkeepStep
from .settings import auto_precision, resolve_device
from .transfer import FrameIO, Pending

__all__ = ["MattingEngine", "MatteResult", "NetOutput", "NoBackgroundError", "SizeMismatchError", "PRECISIONS",
           "PLATE_DIFF_THRESHOLD", "UpkeepSettings", "PlateHealth"]

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# A pixel "differs from the plate" when some channel differs by more than this (values 0..1).
PLATE_DIFF_THRESHOLD = 0.1
_DIFF_LEVELS = int(PLATE_DIFF_THRESHOLD * 255)    # |a - b| / 255 > 0.1  <=>  |a - b| > 25 for integers

Composite = Union[None, Sequence[int], np.ndarray]
# configure()'s keywords -> RefineSettings fields
_SETTING_FIELDS = {"backbone_scale": "backbone_scale", "refine_mode": "mode",
                   "refine_sample_pixels": "sample_pixels", "refine_threshold": "threshold"}


class MatteResult(NamedTuple):
    """alpha: (H, W) float32 0..1; foreground: (H, W, 3) uint8 RGB; composite: (H, W, 3) uint8 RGB
    or None; plate_difference: fraction (0..1) of pixels where some channel of frame and plate
    differ by more than PLATE_DIFF_THRESHOLD (near 1 means the plate is not this scene's); while
    upkeep compensates, between the compensated frame and plate on their reduced copies;
    plate_health: the plate's health for this frame when upkeep is on, else None;
    error: (H, W) float32 0..1, the coarse pass's predicted error upsampled bilinearly (the published
    programs' error map), and refinement: (H, W) float32, 1 where the refiner re-estimated the pixel's
    4x4 patch, else 0, both from the frame's own coarse pass, when ``process(maps=True)`` asked for
    them, else None (refinement is None for a model without refiner)."""
    alpha: np.ndarray
    foreground: np.ndarray
    composite: Optional[np.ndarray]
    plate_difference: float
    plate_health: Optional[PlateHealth] = None
    error: Optional[np.ndarray] = None
    refinement: Optional[np.ndarray] = None


class NetOutput(NamedTuple):
    """What ``MattingEngine._infer`` returns: pha: (1, 1, H, W), fgr: (1, 3, H, W) in 0..1; with maps
    asked, err: (1, 1, h, w) the coarse error 0..1 at the coarse pass's size (padded to a multiple of 4
    before scaling) or at (H, W), ref: (1, 1, H4/4, W4/4) the refined patches (None without refiner)."""
    pha: torch.Tensor
    fgr: torch.Tensor
    err: Optional[torch.Tensor] = None
    ref: Optional[torch.Tensor] = None


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


# k / 255 in float32 for every byte value k: exactly what converting and dividing by 255 gives.
_UNIT = (torch.arange(256, dtype=torch.float32) / 255).numpy()


def _to_float(u8: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """u8: (H, W, 3) uint8 on the device -> (1, 3, H, W) contiguous ``dtype`` in 0..1. On the CPU
    OpenCV splits the bytes into planes and looks each byte up in a table of k / 255 straight into
    the result (no float pass over interleaved pixels, no separate division)."""
    if u8.device.type == "cpu" and u8.is_contiguous():
        out = torch.empty(1, 3, u8.shape[0], u8.shape[1], dtype=torch.float32)
        planes = out[0].numpy()
        for c, plane in enumerate(cv2.split(u8.numpy())):
            cv2.LUT(plane, _UNIT, dst=planes[c])
        return out if dtype == torch.float32 else out.to(dtype)
    return u8.permute(2, 0, 1).unsqueeze(0).to(dtype, memory_format=torch.contiguous_format).div_(255)


def _to_u8_hwc(x: torch.Tensor, io: FrameIO) -> Pending:
    """x: (1, 3, H, W) float in 0..1 -> (H, W, 3) contiguous uint8, rounded. On the CPU OpenCV
    converts each plane and interleaves the bytes (16 ms at 3840x2160, one thread, against 38 ms
    interleaving the floats first and torch's ~80 ms); elsewhere it is converted on the device and
    only the bytes are copied back (a download of ``io``)."""
    if x.device.type == "cpu":
        return cv2.merge([cv2.convertScaleAbs(p, alpha=255.0) for p in x[0].float().numpy()])
    return io.download(x[0].float().mul(255).round_().to(torch.uint8).permute(1, 2, 0).contiguous())


def _plate_difference(frame: np.ndarray, plate: np.ndarray) -> float:
    """Fraction of pixels where some channel of two (H, W, 3) uint8 images differs by more than
    PLATE_DIFF_THRESHOLD; on the host, overlapping the device's work. Each channel is set to 255
    where it differs, and the pixel's grey level (at least 0.114 * 255 for any channel set) is then
    non-zero exactly where some channel differs: three OpenCV passes instead of numpy's maximum over
    strided channels."""
    _, over = cv2.threshold(cv2.absdiff(frame, plate), _DIFF_LEVELS, 255, cv2.THRESH_BINARY)
    return cv2.countNonZero(cv2.cvtColor(over, cv2.COLOR_RGB2GRAY)) / (frame.shape[0] * frame.shape[1])


def _to_frame_size(m: torch.Tensor, h: int, w: int, mode: str) -> torch.Tensor:
    """m: (1, 1, h', w') a map of the frame padded to a multiple of 4 -> (h, w) float32: resized
    (``mode``) to the padded size and cropped, as the published programs write their maps."""
    h4, w4 = -(-h // 4) * 4, -(-w // 4) * 4
    if m.shape[2:] != (h4, w4) and m.shape[2:] != (h, w):
        m = F.interpolate(m, (h4, w4), mode=mode, **({"align_corners": False} if mode == "bilinear" else {}))
    return m[0, 0, :h, :w].float()


def _regain_(x: torch.Tensor, gain: np.ndarray, offset: np.ndarray) -> torch.Tensor:
    """In place on x: (1, 3, H, W) in 0..1: gain * x + offset per channel, clamped to 0..1."""
    g = torch.as_tensor(gain, dtype=x.dtype).view(1, 3, 1, 1).to(x.device)
    o = torch.as_tensor(offset, dtype=x.dtype).view(1, 3, 1, 1).to(x.device)
    return x.mul_(g).add_(o).clamp_(0.0, 1.0)


class MattingEngine:
    """Background matting of uint8 RGB frames against cached background plates.

    Thread safety: every public method may be called from any thread. One lock guards the plate
    cache and the settings. ``process`` holds it from the plate lookup to the end of the
    network's run, so each result comes from one plate and one set of settings; ``set_background``,
    ``clear_background`` and ``configure`` wait for a running frame to finish (at most one frame's
    time) and take effect from the next frame. Concurrent ``process`` calls run one at a time.
    Input conversion and the copies back to host memory run outside the lock.

    ``model``: the network the engine runs, on the device in the engine's precision. For a
    MattingRefine it is the fast path's folded copy (the model given is neither changed nor kept);
    its settings attributes are not read: ``refine_settings`` holds the live ones. Any
    other module (a MattingBase, or a ``forward(src, bgr) -> (pha, fgr, ...)`` of your own) is moved
    to the device and precision, put in eval mode and run as is.

    ``precision``: fp32, bf16 (CPU), fp16 (CUDA) or auto (the default): fp16 on CUDA, bf16 for a
    MattingRefine on a CPU with native bf16 (AVX-512 BF16 or AMX), fp32 otherwise; ``precision``
    holds the resolved name. Reduced precision applies to the network; the full-resolution frame,
    the refined output and the arrays returned stay float32.

    ``cuda_graphs`` (default True): on CUDA the fast path's frames are captured as CUDA graphs and
    replayed (:mod:`~matte_ros.core.model.graphs`; sampling and full mode, one capture per frame
    size and settings, eager where a capture fails); False runs every frame eagerly.

    Process-wide settings are not changed here; a long-running program that mattes large frames
    may call :func:`~matte_ros.core.host_memory.keep_freed_memory` first, in its ``main()``.
    """

    def __init__(self, checkpoint: Optional[str] = None, model: Optional[nn.Module] = None,
                 device: str = "auto", precision: str = "auto", backbone_scale: Optional[float] = None,
                 refine_mode: Optional[str] = None, refine_sample_pixels: Optional[int] = None,
                 refine_threshold: Optional[float] = None, upkeep: Optional[UpkeepSettings] = None,
                 cuda_graphs: bool = True):
        self.device = resolve_device(device)
        if precision != "auto" and precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; expected auto or one of {', '.join(PRECISIONS)}")
        if precision == "fp16" and self.device.type == "cpu":
            raise ValueError("precision fp16 needs CUDA (half-precision convolutions are not supported well on "
                             "the CPU); use bf16 or fp32 on the CPU")
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
            model = load_checkpoint(checkpoint)          # on the CPU, float32
        if precision == "auto":
            precision = auto_precision(self.device, isinstance(model, MattingRefine))
        self.precision = precision
        self.dtype = PRECISIONS[precision]
        self._fast: Optional[FastRefine] = None
        self._run: Any = None                     # what _infer calls: the fast path, or its CUDA graphs
        self._settings: Optional[RefineSettings] = None   # None: a model without refiner settings
        if isinstance(model, MattingRefine):
            self._fast = FastRefine(model, dtype=self.dtype, device=self.device)    # folded in fp32, then cast
            self._settings = self._fast.default_settings
            self._run = (GraphedRefine(self._fast) if cuda_graphs and self.device.type == "cuda"
                         else self._fast)
            self.model = self._fast.net
        else:
            self.model = model.eval().to(self.device, self.dtype)
        # The fast path takes full-resolution frames in float32 and casts only what its network reads.
        self._frame_dtype = torch.float32 if self._fast is not None else self.dtype
        self._io = FrameIO(self.device)            # pinned copies on a stream of the engine's own on CUDA
        self._lock = threading.Lock()
        self._plates: Dict[Tuple[int, int], PlateEntry] = {}
        self._upkeep = UpkeepSettings()
        self.configure(backbone_scale=backbone_scale, refine_mode=refine_mode,
                       refine_sample_pixels=refine_sample_pixels, refine_threshold=refine_threshold, upkeep=upkeep)

    # ---- settings -------------------------------------------------------------------------
    @property
    def refine_settings(self) -> Optional[RefineSettings]:
        """The current live settings as one frozen value (None for a model without refiner); what
        the next frame runs with. Replaced whole by ``configure``, so reading it needs no lock."""
        return self._settings

    def settings(self) -> Dict[str, Any]:
        """The current live settings by their public names (empty for a model without refiner)."""
        s = self._settings
        if s is None:
            return {}
        return {"backbone_scale": s.backbone_scale, "refine_mode": s.mode,
                "refine_sample_pixels": s.sample_pixels, "refine_threshold": s.threshold}

    @property
    def upkeep_settings(self) -> UpkeepSettings:
        """The plate upkeep settings the next frame runs with (replaced whole by ``configure``)."""
        return self._upkeep

    def configure(self, *, refine_mode: Optional[str] = None, refine_sample_pixels: Optional[int] = None,
                  refine_threshold: Optional[float] = None, backbone_scale: Optional[float] = None,
                  upkeep: Optional[UpkeepSettings] = None) -> None:
        """Change settings live (None = keep). upkeep: an UpkeepSettings (the plate's upkeep state
        restarts from the captured plate when refresh or the motion model change, or upkeep is
        switched off). backbone_scale AUTO_SCALE (0) picks
        auto_backbone_scale for each frame size; a frame too small for the scale's coarse pass runs
        at the smallest scale that gives it a pixel (see ``FastRefine.coarse_scale``). All values are
        checked before any is applied; ValueError says which one is wrong and why. Takes effect from
        the next frame."""
        given = {k: v for k, v in (("refine_mode", refine_mode), ("refine_sample_pixels", refine_sample_pixels),
                                   ("refine_threshold", refine_threshold), ("backbone_scale", backbone_scale))
                 if v is not None}
        if upkeep is not None and not isinstance(upkeep, UpkeepSettings):
            raise ValueError(f"upkeep must be an UpkeepSettings, got {type(upkeep).__name__}")
        if given:
            self._configure_refine(given)
        if upkeep is not None:
            self._configure_upkeep(upkeep)

    def _configure_refine(self, given: Dict[str, Any]) -> None:
        if self._settings is None:
            raise ValueError(f"cannot set {', '.join(given)}: the model is {type(self.model).__name__}, "
                             "which has no refiner and no backbone_scale (only MattingRefine has)")
        with self._lock:
            new = self._settings.replace(**{_SETTING_FIELDS[k]: v for k, v in given.items()})   # checks all
            with torch.inference_mode(), self._io.stream():
                plates = {size: p if self._scale_for(new, *size) == p.scale
                          else self._new_plate(p.rgb, p.u8, new, p.upkeep)
                          for size, p in self._plates.items()}             # plate-side work depends on the scale
                self._io.finish()
            self._settings, self._plates = new, plates

    def _configure_upkeep(self, upkeep: UpkeepSettings) -> None:
        with self._lock:
            old = self._upkeep
            restart = (not upkeep.enabled or not old.enabled or upkeep.refresh != old.refresh
                       or upkeep.motion != old.motion)
            if restart:
                self._plates = {size: dataclasses.replace(p, upkeep=PlateUpkeep(p.rgb) if upkeep.enabled else None,
                                                          upkept=None)
                                for size, p in self._plates.items()}
            self._upkeep = upkeep

    def _scale_for(self, settings: Optional[RefineSettings], h: int, w: int) -> Optional[float]:
        return None if settings is None else FastRefine.coarse_scale(settings, h, w)

    def _new_plate(self, rgb: np.ndarray, u8: torch.Tensor, settings: Optional[RefineSettings],
                   upkeep: Optional[PlateUpkeep]) -> PlateEntry:
        """The plate of rgb/u8 prepared for ``settings`` (under the lock)."""
        return PlateEntry(rgb, u8, self._scale_for(settings, *rgb.shape[:2]),
                      self._prepare_plate(_to_float(u8, self.dtype), settings), upkeep)

    # ---- plates ---------------------------------------------------------------------------
    @torch.inference_mode()
    def set_background(self, frame: np.ndarray) -> None:
        """Cache ``frame`` ((H, W, 3) uint8 RGB, the empty scene) as the plate for its size,
        replacing any plate of that size; it is converted and prepared once, here."""
        frame = _check_frame(frame, "background")
        rgb = np.array(frame, copy=True)                         # ours: the caller may reuse its buffer
        host = torch.from_numpy(rgb)
        rgb.flags.writeable = False
        with self._io.stream(), self._lock:
            u8 = host.to(self.device)
            self._plates[rgb.shape[:2]] = self._new_plate(rgb, u8, self._settings,
                                                          PlateUpkeep(rgb) if self._upkeep.enabled else None)
            self._io.finish()                    # the plate is ready before any frame reads it

    def clear_background(self, size: Optional[Tuple[int, int]] = None) -> int:
        """Forget the plate of ``size`` = (H, W), or every plate when size is None; how many were forgotten."""
        with self._lock:
            if size is None:
                n = len(self._plates)
                self._plates.clear()
                return n
            return int(self._plates.pop(tuple(size), None) is not None)

    @property
    def parallel_frames(self) -> bool:
        """Whether engines made by ``with_own_plates`` run their frames at the same time (from
        several threads): on the CPU, where a frame's network run keeps no state between calls; on
        CUDA they take turns (the captured graphs' buffers and the copy stream are the engine's)."""
        return self.device.type == "cpu"

    def with_own_plates(self) -> "MattingEngine":
        """Another engine over this one's network and device buffers, with a plate store of its own
        (empty) and this one's settings as they are now (``configure`` on either changes that one
        only): one model in memory for several cameras, each with its own plates even at the same
        frame size. With ``parallel_frames`` it has a lock of its own, so frames of different twins
        run at the same time; else the lock is shared and their frames run one at a time."""
        twin = copy.copy(self)
        twin._plates = {}
        if self.parallel_frames:
            twin._lock = threading.Lock()
        return twin

    def has_background(self, size: Tuple[int, int]) -> bool:
        with self._lock:
            return tuple(size) in self._plates

    def plate_sizes(self) -> List[Tuple[int, int]]:
        """(H, W) of every plate the engine holds, sorted."""
        with self._lock:
            return sorted(self._plates)

    def background(self, size: Tuple[int, int]) -> Optional[np.ndarray]:
        """The plate of ``size`` = (H, W) as given to set_background ((H, W, 3) uint8, read-only), or None."""
        with self._lock:
            p = self._plates.get(tuple(size))
            return None if p is None else p.rgb

    def plate_health(self, size: Tuple[int, int]) -> Optional[PlateHealth]:
        """The health of the plate of ``size`` = (H, W) at its last frame, or None (no plate, upkeep
        off, or no frame yet)."""
        with self._lock:
            p = self._plates.get(tuple(size))
            return None if p is None or p.upkeep is None else p.upkeep.last

    def maintained_background(self, size: Tuple[int, int]) -> Optional[np.ndarray]:
        """The plate of ``size`` as upkeep maintains it (refreshed; in the captured plate's geometry
        and exposure), (H, W, 3) uint8, or None (no plate or upkeep off)."""
        with self._lock:
            p = self._plates.get(tuple(size))
            return None if p is None or p.upkeep is None else p.upkeep.plate

    # ---- frames ---------------------------------------------------------------------------
    @torch.inference_mode()
    def process(self, frame: np.ndarray, composite: Composite = None, maps: bool = False) -> MatteResult:
        """frame: (H, W, 3) uint8 RGB of any size with a plate of that size set.
        composite: None, an (r, g, b) colour (ints 0..255) or an (H, W, 3) uint8 RGB image to put
        the foreground over (``fgr * pha + bg * (1 - pha)``, computed on the device).
        maps: also return the error and refinement maps of the same pass (``MatteResult.error``,
        ``refinement``); on CUDA such a frame runs eagerly, not as a captured graph."""
        frame = _check_frame(frame)
        h, w = frame.shape[:2]
        step: Optional[UpkeepStep] = None
        with self._io.stream():
            bg = self._composite_background(composite, h, w)
            src = _to_float(self._io.upload(frame), self._frame_dtype)
            with self._lock:
                plate, upkeep = find_plate(self._plates, h, w), self._upkeep
                prepared = plate.prepared
                if plate.upkeep is not None:
                    step = plate.upkeep.compensate(frame, upkeep)
                    if step.plate is not None:       # compensated: prepared again when it changed
                        prepared = plate.upkept_for(step.plate, self._settings)
                        if prepared is None:
                            prepared = self._prepare_upkept(step.plate)
                            plate.keep_upkept(step.plate, self._settings, prepared)
                    if step.normalise:               # the frame in the plate's exposure
                        _regain_(src, *step.to_plate)
                pha, fgr, err, ref = (self._infer(src, prepared, self._settings, maps=True) if maps
                                      else self._infer(src, prepared, self._settings))
            if step is not None and step.normalise:   # the foreground back in the camera's exposure
                _regain_(fgr, *step.to_camera)
            comp = None if bg is None else _to_u8_hwc(torch.lerp(bg, fgr.float(), pha.float()), self._io)
            pending = (self._io.download(pha[0, 0].float()), _to_u8_hwc(fgr, self._io), comp,
                       None if err is None else self._io.download(_to_frame_size(err, h, w, "bilinear")),
                       None if ref is None else self._io.download(_to_frame_size(ref, h, w, "nearest")))
            # host work while the copies are in flight on CUDA
            if step is not None and step.frame_small is not None:
                diff = _plate_difference(step.frame_small, step.plate_small)        # as compensated, reduced
            else:
                diff = _plate_difference(frame, plate.rgb if step is None or step.plate is None else step.plate)
        alpha, foreground, comp, err, ref = self._io.finish(*pending)
        health = None if step is None else plate.upkeep.observe(frame, alpha, step, upkeep)
        return MatteResult(alpha, foreground, comp, diff, health, err, ref)

    def _prepare_upkept(self, rgb: np.ndarray) -> Any:
        """A compensated plate ((H, W, 3) uint8) prepared for the network (under the lock)."""
        return self._prepare_plate(_to_float(torch.from_numpy(rgb).to(self.device), self.dtype), self._settings)

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

    # ---- the two places the network runs (override both for another execution path) ---------
    def _prepare_plate(self, bgr: torch.Tensor, settings: Optional[RefineSettings]) -> Any:
        """bgr: (1, 3, H, W) plate in 0..1, engine dtype, on the device -> what _infer receives as
        ``plate``. Called once per set_background (and again when a settings change changes the
        plate's coarse scale; per frame while plate upkeep changes the plate), under the engine
        lock. settings: None for a model without them."""
        return bgr if self._fast is None else self._fast.prepare_plate(bgr, settings)

    def _infer(self, src: torch.Tensor, plate: Any, settings: Optional[RefineSettings],
               maps: bool = False) -> NetOutput:
        """src: (1, 3, H, W) frame in 0..1 -> NetOutput: pha, fgr and, with ``maps``, the error and
        refinement maps of the same coarse pass. Called under the engine lock and torch.inference_mode."""
        if self._fast is not None:
            if maps:
                out = self._fast.forward(src, plate, settings, maps=True)
                return NetOutput(out.pha, out.fgr, out.err_sm, out.ref_sm)
            return NetOutput(*self._run(src, plate, settings))
        out = self.model(src, plate)
        err = out[2] if maps and isinstance(self.model, MattingBase) else None
        return NetOutput(out[0], out[1], err)
