"""Pure patch operations of the refiner: crop square patches out of an image and put
4x4 patches back, selected by (batch, row, column) indices on a patch grid.

Three crop methods and two replace methods give identical numbers; they differ in speed
and in which export formats they map to (``unfold``/``scatter_nd`` for PyTorch and
TorchScript, ``roi_align``/``gather``/``scatter_element`` for ONNX).
"""
import importlib
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Tuple

import torch
from torch.nn import functional as F

__all__ = ["CROP_METHODS", "REPLACE_METHODS", "crop_patches", "replace_patches", "pixel_indices"]

CROP_METHODS = ("unfold", "roi_align", "gather")
REPLACE_METHODS = ("scatter_nd", "scatter_element")
Index = Tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def pixel_indices(shape: Tuple[int, int, int, int], idx: Index, size: int, padding: int) -> torch.Tensor:
    """Flat indices into ``x.view(-1)`` of every pixel of every selected patch.

    shape: (B, C, H, W) of the (already padded) image; idx: patch grid coordinates (P,) each,
    patch origin at (row * size, col * size); returns (P, C, span, span) with span = size + 2 * padding.
    """
    _, C, H, W = shape
    span = size + 2 * padding
    b, row, col = idx
    device = b.device
    c = torch.arange(C, device=device).view(1, C, 1, 1) * (H * W)
    oy = torch.arange(span, device=device).view(1, 1, span, 1) * W
    ox = torch.arange(span, device=device).view(1, 1, 1, span)
    origin = (b * (C * H * W) + row * (size * W) + col * size).view(-1, 1, 1, 1)
    return origin + c + oy + ox


@torch.jit.unused
def _roi_align(x: torch.Tensor, boxes: torch.Tensor, span: int) -> torch.Tensor:
    """RoIAlign (one sample per bin) from torchvision, imported on first use only: the other crop
    methods need no torchvision, which costs a process ~190 MiB. Left out of TorchScript (a scripted
    model raises here): the ``roi_align`` method is for ONNX export.

    The first import runs on a thread of its own: importing torchvision calls its operators (a CUDA
    version check), which the ONNX exporter's trace, if one is in progress on this thread, would
    record and fail on; a trace follows only the thread that started it."""
    ops = sys.modules.get("torchvision.ops")
    if ops is None:
        with ThreadPoolExecutor(1) as importer:
            ops = importer.submit(importlib.import_module, "torchvision.ops").result()
    return ops.roi_align(x, boxes, span, sampling_ratio=1)


def crop_patches(x: torch.Tensor, idx: Index, size: int, padding: int, method: str = "unfold") -> torch.Tensor:
    """x: (B, C, H, W) -> (P, C, size + 2p, size + 2p): the patch of stride ``size`` at each
    grid index, grown by ``padding`` pixels of context on every side (zeros beyond the border)."""
    if padding != 0:
        x = F.pad(x, (padding, padding, padding, padding))
    span = size + 2 * padding
    if method == "unfold":
        return x.permute(0, 2, 3, 1).unfold(1, span, size).unfold(2, span, size)[idx[0], idx[1], idx[2]]
    if method == "roi_align":
        b, row, col = idx[0].to(x.dtype), idx[1].to(x.dtype), idx[2].to(x.dtype)
        # Boxes one pixel per bin, sampled once at each bin centre = exactly on the pixels.
        boxes = torch.stack([b, col * size - 0.5, row * size - 0.5,
                             col * size + span - 0.5, row * size + span - 0.5], dim=1)
        return _roi_align(x, boxes, span)
    if method == "gather":
        flat = pixel_indices((x.shape[0], x.shape[1], x.shape[2], x.shape[3]), idx, size, padding)
        return torch.gather(x.reshape(-1), 0, flat.reshape(-1)).view(-1, x.shape[1], span, span)
    raise ValueError("unknown patch crop method " + method + "; expected unfold, roi_align or gather")


def replace_patches(x: torch.Tensor, patches: torch.Tensor, idx: Index, method: str = "scatter_nd") -> torch.Tensor:
    """Write patches (P, C, S, S) into x (B, C, H, W) at grid indices idx; H, W divisible by S.
    Modifies and returns ``x``."""
    B, C, H, W = x.shape
    S = patches.shape[-1]
    if method == "scatter_nd":
        grid = x.view(B, C, H // S, S, W // S, S).permute(0, 2, 4, 1, 3, 5)
        grid[idx[0], idx[1], idx[2]] = patches
        return grid.permute(0, 3, 1, 4, 2, 5).reshape(B, C, H, W)
    if method == "scatter_element":
        flat = pixel_indices((B, C, H, W), idx, S, 0)
        return x.view(-1).scatter_(0, flat.reshape(-1), patches.reshape(-1)).view(B, C, H, W)
    raise ValueError("unknown patch replace method " + method + "; expected scatter_nd or scatter_element")
