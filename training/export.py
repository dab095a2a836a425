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
``sample_pixels / 16``, work).
"""
import contextlib
import copy
import warnings
from typing import Dict, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from matte_ros.core.files import atomic_write
from matte_ros.core.model import BaseOutput, MattingRefine, RefineOutput

__all__ = ["FORMATS", "ONNX_CROP_METHODS", "MIN_OPSET", "output_names", "script_model", "save_torchscript",
           "onnx_model", "onnx_example_size", "save_onnx", "load_torchscript", "apply_settings",
           "run_torchscript", "run_onnx", "compare"]

FORMATS = ("torchscript", "onnx")
ONNX_CROP_METHODS = ("roi_align", "gather")
ONNX_REPLACE_METHOD = "scatter_element"
MIN_OPSET = 17


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


def onnx_model(model: nn.Module, crop_method: str = "roi_align") -> nn.Module:
    """A CPU float32 copy of ``model`` whose refiner uses the ONNX-portable patch operations."""
    if crop_method not in ONNX_CROP_METHODS:
        raise ValueError(f"ONNX crop method must be one of {ONNX_CROP_METHODS}, got {crop_method!r}")
    model = _cpu_eval(model)
    if isinstance(model, MattingRefine):
        model.refiner.patch_crop_method = crop_method
        model.refiner.patch_replace_method = ONNX_REPLACE_METHOD
    return model


def onnx_example_size(model: nn.Module) -> Tuple[int, int]:
    """(H, W) of the input the ONNX graph is traced with: not a multiple of 4, so the padding to a
    multiple of 4 is part of the graph (every shape in it stays dynamic)."""
    return 130, 194


def save_onnx(model: nn.Module, path: str, opset: int = MIN_OPSET, crop_method: str = "roi_align") -> None:
    """Export ``model`` to ONNX at ``path`` (atomically) with dynamic batch, height and width."""
    if opset < MIN_OPSET:
        raise ValueError(f"ONNX opset must be {MIN_OPSET} or newer, got {opset}")
    model = onnx_model(model, crop_method)
    h, w = onnx_example_size(model)
    gen = torch.Generator().manual_seed(0)
    src = torch.rand(1, 3, h, w, generator=gen)
    bgr = torch.rand(1, 3, h, w, generator=gen)
    axes = {0: "batch", 2: "height", 3: "width"}
    names = output_names(model)
    dynamic = {"src": axes, "bgr": axes, **{n: {0: "batch", 2: f"{n}_height", 3: f"{n}_width"} for n in names}}

    def write(tmp: str) -> None:
        with _quiet():
            torch.onnx.export(model, (src, bgr), tmp, input_names=["src", "bgr"], output_names=list(names),
                              dynamic_axes=dynamic, opset_version=opset, dynamo=False, do_constant_folding=True)

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


def run_onnx(path: str, src: torch.Tensor, bgr: torch.Tensor) -> Tuple[np.ndarray, ...]:
    """Run an ONNX file with ONNX Runtime on the CPU."""
    import onnxruntime as ort
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return tuple(session.run(None, {"src": src.cpu().numpy(), "bgr": bgr.cpu().numpy()}))


def compare(expected: Sequence[torch.Tensor], got: Sequence, names: Sequence[str]) -> Dict[str, float]:
    """Largest absolute difference per output; ValueError when shapes differ."""
    result = {}
    for name, a, b in zip(names, expected, got):
        b = torch.as_tensor(np.asarray(b)) if not isinstance(b, torch.Tensor) else b
        if tuple(a.shape) != tuple(b.shape):
            raise ValueError(f"output {name}: shape {tuple(b.shape)} differs from the eager {tuple(a.shape)}")
        result[name] = float((a.float() - b.float()).abs().max()) if a.numel() else 0.0
    return result
