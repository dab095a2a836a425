"""Export a matting model to TorchScript or ONNX and compare an export with the eager model.

TorchScript keeps the model's runtime settings as attributes of the loaded module, as the
released TorchScript models of the paper do::

    m = torch.jit.load("model.ts")
    m.backbone_scale = 0.125
    m.refiner.mode = "thresholding"      # "full" | "sampling" | "thresholding"
    m.refiner.sample_pixels = 320_000
    m.refiner.threshold = 0.1

ONNX (opset 17 or newer) fixes those settings at export time and uses the portable patch
operations (crop with ``roi_align`` or ``gather``, replace with ``scatter_element``); batch,
height and width stay dynamic (frames of any size, also with fewer patches than
``sample_pixels / 16``, work) unless ``static=(H, W)`` fixes the input to (1, 3, H, W).
``fp16=True`` writes float16 weights and computes in float16 between float32 inputs and outputs
(BatchNorm folded in float32 first). ``tensorrt=True`` avoids what TensorRT rejects or handles
badly: sampling mode takes its patch indices straight from a sorted TopK (no NonZero, a fixed
patch count; patches of error 0 are refined and their coarse values kept, as
``FastRefine.sync_free`` does), and K must stay below TensorRT's TopK limit.
"""
import contextlib
import copy
import warnings
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from matte_ros.core.files import atomic_write
from matte_ros.core.model import BaseOutput, MattingRefine, RefineOutput, Refiner
from matte_ros.core.model.fast import fold_batchnorm
from matte_ros.core.model.patches import crop_patches, replace_patches
from matte_ros.core.model.refiner import patch_context

__all__ = ["FORMATS", "ONNX_CROP_METHODS", "MIN_OPSET", "MAX_OPSET", "TENSORRT_MAX_TOPK", "output_names",
           "script_model", "save_torchscript", "TopKRefiner", "onnx_model", "onnx_example_size", "save_onnx",
           "load_torchscript", "apply_settings", "run_torchscript", "run_onnx", "compare"]

FORMATS = ("torchscript", "onnx")
ONNX_CROP_METHODS = ("roi_align", "gather")
ONNX_REPLACE_METHOD = "scatter_element"
MIN_OPSET = 17
MAX_OPSET = 23           # the newest opset the TorchScript-based exporter of PyTorch 2.14 writes
# TensorRT's TopK takes K < 3840 (and sorted=1): onnx-tensorrt's operator table, TensorRT 10.
TENSORRT_MAX_TOPK = 3839


@contextlib.contextmanager
def _quiet():
    """Torch 2.14 marks torch.jit.script/save/load as deprecated, and the ONNX exporter reports
    constant-folding limits and tracer notes; none of it concerns the user of an export."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=r".*torch\.jit\.")
        warnings.filterwarnings("ignore", category=UserWarning, message=r".*Constant folding.*")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        yield


def output_names(model: nn.Module) -> Tuple[str, ...]:
    """Names of the model's outputs, in order (the ONNX output names)."""
    model = model.model if isinstance(model, _Float16) else model
    return RefineOutput._fields if isinstance(model, MattingRefine) else BaseOutput._fields


def _cpu_eval(model: nn.Module) -> nn.Module:
    model = copy.deepcopy(model).float().cpu().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def script_model(model: nn.Module) -> torch.jit.ScriptModule:
    """The model compiled with ``torch.jit.script`` (a CPU float32 copy in eval mode)."""
    with _quiet():
        return torch.jit.script(_cpu_eval(model))


def save_torchscript(model: nn.Module, path: str) -> torch.jit.ScriptModule:
    """Script ``model`` and write it to ``path`` atomically; returns the scripted module."""
    scripted = script_model(model)
    with _quiet():
        atomic_write(path, lambda tmp: torch.jit.save(scripted, tmp))
    return scripted


class TopKRefiner(Refiner):
    """The Refiner with sampling mode free of NonZero (for TensorRT): the indices of a sorted TopK
    are the patches, always ``min(sample_pixels // 16, patches)`` of them; with prevent_oversampling,
    those of error 0 are refined anyway and their coarse values put back, so the outputs (ref too)
    are the Refiner's. Other modes run as the Refiner does."""

    def forward(self, src: torch.Tensor, bgr: torch.Tensor, pha: torch.Tensor, fgr: torch.Tensor,
                err: torch.Tensor, hid: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.mode != "sampling":
            return super().forward(src, bgr, pha, fgr, err, hid)
        H, W = src.shape[2], src.shape[3]
        err = F.interpolate(err, (H // 4, W // 4), mode="bilinear", align_corners=False)
        B, w4 = err.shape[0], err.shape[3]
        flat = err.flatten(1)
        k = self.sample_pixels // 16
        if torch.jit.is_tracing():        # the clamp stays in the graph: frames with fewer patches work
            k = torch.clamp(torch.as_tensor(flat.shape[1]), max=k)
        else:
            k = min(k, flat.shape[1])
        top = flat.topk(k, dim=1, sorted=True)
        ref = torch.zeros_like(flat).scatter(1, top.indices, 1.0)
        if self.prevent_oversampling:
            ref = ref * flat.gt(0).to(ref.dtype)
        i = top.indices.reshape(-1)
        row = i // w4
        idx = (torch.arange(B, device=err.device).view(B, 1).expand_as(top.indices).reshape(-1), row, i - row * w4)
        out = F.interpolate(torch.cat([pha, fgr], dim=1), (H, W), mode="bilinear", align_corners=False)
        # from here as Refiner.forward: crop with context, two conv stages
        pad_half, pad_full = patch_context(self.kernel_size)
        method, half = self.patch_crop_method, (H // 2, W // 2)
        src_bgr = torch.cat([src, bgr], dim=1)
        x = F.interpolate(torch.cat([hid, pha, fgr], dim=1), half, mode="bilinear", align_corners=False)
        y = F.interpolate(src_bgr, half, mode="bilinear", align_corners=False)
        x = self.stage1(torch.cat([crop_patches(x, idx, 2, pad_half, method),
                                    crop_patches(y, idx, 2, pad_half, method)], dim=1))
        x = F.interpolate(x, (4 + 2 * pad_full, 4 + 2 * pad_full), mode="nearest")
        x = self.stage2(torch.cat([x, crop_patches(src_bgr, idx, 4, pad_full, method)], dim=1))
        if self.prevent_oversampling:
            x = torch.where(top.values.reshape(-1, 1, 1, 1).gt(0), x, crop_patches(out, idx, 4, 0, method))
        out = replace_patches(out, x, idx, self.patch_replace_method)
        return out[:, :1], out[:, 1:], ref.view(B, 1, H // 4, w4)


class _Float16(nn.Module):
    """``model`` in float16 between float32 inputs and outputs."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = fold_batchnorm(model).half().eval()   # folded in float32, then cast
        self.requires_grad_(False)

    def forward(self, src: torch.Tensor, bgr: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        return tuple(o.float() for o in self.model(src.half(), bgr.half()))


def _topk_refiner(r: Refiner) -> TopKRefiner:
    out = TopKRefiner(r.mode, r.sample_pixels, r.threshold, r.kernel_size, r.prevent_oversampling,
                      r.patch_crop_method, r.patch_replace_method)
    out.load_state_dict(r.state_dict())
    return out.eval()


def onnx_model(model: nn.Module, crop_method: str = "roi_align", fp16: bool = False,
               tensorrt: bool = False) -> nn.Module:
    """A CPU copy of ``model`` whose refiner uses the ONNX-portable patch operations (float32, or
    float16 inside float32 inputs and outputs with ``fp16``; the TopKRefiner with ``tensorrt``)."""
    if crop_method not in ONNX_CROP_METHODS:
        raise ValueError(f"ONNX crop method must be one of {ONNX_CROP_METHODS}, got {crop_method!r}")
    model = _cpu_eval(model)
    if isinstance(model, MattingRefine):
        model.refiner.patch_crop_method = crop_method
        model.refiner.patch_replace_method = ONNX_REPLACE_METHOD
        if tensorrt:
            model.refiner = _topk_refiner(model.refiner)
    return _Float16(model) if fp16 else model


def onnx_example_size(model: nn.Module) -> Tuple[int, int]:
    """(H, W) of the input the ONNX graph is traced with: not a multiple of 4, so the padding to a
    multiple of 4 is part of the graph (every shape in it stays dynamic)."""
    return 130, 194


def _check_tensorrt(model: nn.Module, static: Optional[Tuple[int, int]]) -> None:
    r = getattr(model, "refiner", None)
    if r is None or r.mode != "sampling":
        return
    k = r.sample_pixels // 16
    if static is not None:
        k = min(k, -(-static[0] // 4) * -(-static[1] // 4))
    if k > TENSORRT_MAX_TOPK:
        raise ValueError(f"TensorRT's TopK takes at most {TENSORRT_MAX_TOPK} patches, but sampling mode selects {k} "
                         f"(refine sample pixels {r.sample_pixels}); use --refine-sample-pixels "
                         f"{16 * TENSORRT_MAX_TOPK} or less, or a smaller --static size")


def save_onnx(model: nn.Module, path: str, opset: int = MIN_OPSET, crop_method: str = "roi_align",
              static: Optional[Sequence[int]] = None, fp16: bool = False, tensorrt: bool = False) -> None:
    """Export ``model`` to ONNX at ``path`` (atomically): dynamic batch, height and width, or a fixed
    (1, 3, H, W) input with ``static=(H, W)``; float16 compute with ``fp16``; the TensorRT-friendly
    sampling mode with ``tensorrt`` (see the module docstring)."""
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f"ONNX opset must be in {MIN_OPSET}..{MAX_OPSET}, got {opset}")
    if static is not None:
        if len(static) != 2 or not all(isinstance(v, int) and v >= 1 for v in static):
            raise ValueError(f"static size must be two positive integers H W, got {static!r}")
        static = (int(static[0]), int(static[1]))
    if tensorrt:
        _check_tensorrt(model, static)
    model = onnx_model(model, crop_method, fp16, tensorrt)
    h, w = static or onnx_example_size(model)
    gen = torch.Generator().manual_seed(0)
    src = torch.rand(1, 3, h, w, generator=gen)
    bgr = torch.rand(1, 3, h, w, generator=gen)
    axes = {0: "batch", 2: "height", 3: "width"}
    names = output_names(model)
    dynamic = {"src": axes, "bgr": axes, **{n: {0: "batch", 2: f"{n}_height", 3: f"{n}_width"} for n in names}}

    def write(tmp: str) -> None:
        with _quiet():
            torch.onnx.export(model, (src, bgr), tmp, input_names=["src", "bgr"], output_names=list(names),
                              dynamic_axes=None if static else dynamic, opset_version=opset, dynamo=False,
                              do_constant_folding=True)
        if static:                        # every shape is known: fold the shape arithmetic (TopK's K too)
            import onnx
            import onnxscript.optimizer
            onnx.save(onnxscript.optimizer.optimize(onnx.load(tmp)), tmp)

    atomic_write(path, write)


def load_torchscript(path: str) -> torch.jit.ScriptModule:
    """A TorchScript file on the CPU."""
    with _quiet():
        return torch.jit.load(path, map_location="cpu")


def apply_settings(module: nn.Module, settings: Dict[str, object]) -> None:
    """Set ``backbone_scale``, ``refine_mode``, ``refine_sample_pixels``, ``refine_threshold`` on a
    MattingRefine or its scripted module, the way a user of the TorchScript file does."""
    for key, value in settings.items():
        if key == "backbone_scale":
            module.backbone_scale = float(value)
        elif key in ("refine_mode", "refine_sample_pixels", "refine_threshold"):
            setattr(module.refiner, key[len("refine_"):], value)
        else:
            raise ValueError(f"unknown runtime setting {key!r}")


def run_torchscript(module: torch.jit.ScriptModule, src: torch.Tensor,
                    bgr: torch.Tensor) -> Tuple[torch.Tensor, ...]:
    """Run a loaded TorchScript module on src, bgr without autograd."""
    with torch.no_grad():
        return tuple(module(src, bgr))


def run_onnx(path: str, src: torch.Tensor, bgr: torch.Tensor,
             providers: Sequence[str] = ("CPUExecutionProvider",)) -> Tuple[np.ndarray, ...]:
    """Run an ONNX file with ONNX Runtime's ``providers`` (in order of preference; default the CPU).
    ValueError when ONNX Runtime lacks one or cannot start it (it would fall back to the CPU silently)."""
    import onnxruntime as ort
    missing = [p for p in providers if p not in ort.get_available_providers()]
    if missing:
        raise ValueError(f"ONNX Runtime {ort.__version__} has no {', '.join(missing)} (available: "
                         f"{', '.join(ort.get_available_providers())}); for CUDA install onnxruntime-gpu")
    session = ort.InferenceSession(path, providers=list(providers))
    failed = [p for p in providers if p not in session.get_providers()]
    if failed:
        raise ValueError(f"ONNX Runtime could not start {', '.join(failed)} (its log says why: CUDA or cuDNN "
                         "libraries missing or of another version)")
    return tuple(session.run(None, {"src": src.float().cpu().numpy(), "bgr": bgr.float().cpu().numpy()}))


def compare(expected: Sequence[torch.Tensor], got: Sequence, names: Sequence[str],
            reduce: str = "max") -> Dict[str, float]:
    """Largest (``reduce="max"``) or mean (``"mean"``) absolute difference per output; ValueError when
    shapes differ."""
    if reduce not in ("max", "mean"):
        raise ValueError(f"reduce must be 'max' or 'mean', got {reduce!r}")
    result = {}
    for name, a, b in zip(names, expected, got):
        b = torch.as_tensor(np.asarray(b)) if not isinstance(b, torch.Tensor) else b
        if tuple(a.shape) != tuple(b.shape):
            raise ValueError(f"output {name}: shape {tuple(b.shape)} differs from the eager {tuple(a.shape)}")
        d = (a.float().cpu() - b.float().cpu()).abs()
        result[name] = (float(d.max()) if reduce == "max" else float(d.mean())) if a.numel() else 0.0
    return result
