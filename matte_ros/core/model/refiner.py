"""The BGMv2 refiner: re-estimates alpha and foreground on 4x4 patches where the coarse
error is largest, at full resolution, and pastes them into the upsampled coarse result.

Its two stages (``Refiner.stage1``, ``Refiner.stage2``) and their context (:func:`patch_context`)
are public: the fast path (:mod:`.tile_refine`, :mod:`.fast`) runs the same stages on tiles of
patches and is tested stage by stage against them."""
from typing import Tuple

import torch
from torch import nn
from torch.nn import functional as F

from .patches import CROP_METHODS, REPLACE_METHODS, crop_patches, replace_patches
from .refine_settings import REFINE_MODES, require_refine

__all__ = ["REFINE_MODES", "Refiner", "patch_context", "select_regions"]

def patch_context(kernel_size: int) -> Tuple[int, int]:
    """(half, full): the pixels of context around a patch that stage 1 reads at half resolution
    and stage 2 at full resolution. Each valid k x k convolution eats k // 2 pixels a side: stage
    2's two at full resolution need full = 2 (k // 2); stage 1's two at half resolution need
    2 (k // 2) more than the full / 2 = k // 2 that stage 2's window adds: half = 3 (k // 2).
    (3, 2) for the published 3x3 refiner, (0, 0) for kernel 1."""
    k = kernel_size // 2
    return 3 * k, 2 * k


@torch.jit.unused
def _traced_top(flat: torch.Tensor, k: int) -> torch.Tensor:
    """Topk of ``min(k, patches)`` with the clamp kept in a traced (ONNX) graph, so an exported
    model works on frames with fewer patches than ``k``."""
    return flat.topk(torch.clamp(torch.as_tensor(flat.shape[1]), max=k), dim=1, sorted=False).indices


def select_regions(err: torch.Tensor, mode: str, sample_pixels: int, threshold: float,
                   prevent_oversampling: bool = True) -> torch.Tensor:
    """err: (B, 1, h, w) quarter-resolution error -> ref: (B, 1, h, w) float, 1 where a 4x4
    patch is refined. ``sampling`` takes the top ``sample_pixels // 16`` errors (all patches when
    the frame has fewer), ``thresholding`` takes err > threshold."""
    if mode == "sampling":
        b, _, h, w = err.shape
        flat = err.view(b, -1)
        if torch.jit.is_tracing():
            top = _traced_top(flat, sample_pixels // 16)
        else:
            top = flat.topk(min(sample_pixels // 16, h * w), dim=1, sorted=False).indices
        ref = torch.zeros_like(flat).scatter_(1, top, 1.0)
        if prevent_oversampling:
            ref = ref * flat.gt(0).to(ref.dtype)
        return ref.view(b, 1, h, w)
    return err.gt(threshold).to(err.dtype)


class Refiner(nn.Module):
    """Inputs: src, bgr (B, 3, H, W) with H, W divisible by 4; coarse pha (B, 1, h, w),
    fgr residual (B, 3, h, w), err (B, 1, h, w), hid (B, 32, h, w).
    Outputs: pha (B, 1, H, W), fgr residual (B, 3, H, W), ref (B, 1, H/4, W/4)."""

    __constants__ = ["kernel_size", "patch_crop_method", "patch_replace_method"]

    def __init__(self, mode: str = "sampling", sample_pixels: int = 80_000, threshold: float = 0.1,
                 kernel_size: int = 3, prevent_oversampling: bool = True,
                 patch_crop_method: str = "unfold", patch_replace_method: str = "scatter_nd"):
        super().__init__()
        require_refine(refine_mode=mode, refine_sample_pixels=sample_pixels, refine_threshold=threshold,
                       refine_prevent_oversampling=prevent_oversampling)
        if kernel_size not in (1, 3):
            raise ValueError(f"refine kernel size must be 1 or 3, got {kernel_size!r}")
        if patch_crop_method not in CROP_METHODS:
            raise ValueError(f"unknown patch crop method {patch_crop_method!r}; expected one of {CROP_METHODS}")
        if patch_replace_method not in REPLACE_METHODS:
            raise ValueError(f"unknown patch replace method {patch_replace_method!r}; "
                             f"expected one of {REPLACE_METHODS}")
        self.mode = mode
        self.sample_pixels = int(sample_pixels)
        self.threshold = float(threshold)
        self.kernel_size = kernel_size
        self.prevent_oversampling = prevent_oversampling
        self.patch_crop_method = patch_crop_method
        self.patch_replace_method = patch_replace_method

        ch = [32, 24, 16, 12, 4]
        self.conv1 = nn.Conv2d(ch[0] + 6 + 4, ch[1], kernel_size, bias=False)
        self.bn1 = nn.BatchNorm2d(ch[1])
        self.conv2 = nn.Conv2d(ch[1], ch[2], kernel_size, bias=False)
        self.bn2 = nn.BatchNorm2d(ch[2])
        self.conv3 = nn.Conv2d(ch[2] + 6, ch[3], kernel_size, bias=False)
        self.bn3 = nn.BatchNorm2d(ch[3])
        self.conv4 = nn.Conv2d(ch[3], ch[4], kernel_size, bias=True)
        self.relu = nn.ReLU(True)

    def stage1(self, x: torch.Tensor) -> torch.Tensor:
        """Stage 1, at half resolution: x (P, 42, s, s) = [hid (32), pha, fgr residual (3), src (3),
        bgr (3)] in windows of s = 2n + 2 * half pixels around n x n half pixels (half from
        ``patch_context``) -> (P, 16, s - 4 (k // 2), s - 4 (k // 2)): conv1, BN, ReLU, conv2, BN, ReLU."""
        x = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(x)))

    def stage2(self, x: torch.Tensor) -> torch.Tensor:
        """Stage 2, at full resolution: x (P, 22, s, s) = [stage 1's output nearest-upsampled 2x (16),
        src (3), bgr (3)] in windows of s = 4n + 2 * full pixels (full from ``patch_context``)
        -> (P, 4, 4n, 4n) = [pha, fgr residual]: conv3, BN, ReLU, conv4."""
        return self.conv4(self.relu(self.bn3(self.conv3(x))))

    def dense(self, x: torch.Tensor, src_bgr: torch.Tensor) -> torch.Tensor:
        """Both stages on every pixel (full mode): x (B, 42, H/2, W/2) stage 1's input at half
        resolution, src_bgr (B, 6, H, W) -> (B, 4, H, W); zeros around the frame stand for the
        context, as around a patch at the frame's edge."""
        H, W = src_bgr.shape[2], src_bgr.shape[3]
        half, full = patch_context(self.kernel_size)
        if half > 0:
            x = F.pad(x, (half, half, half, half))
            src_bgr = F.pad(src_bgr, (full, full, full, full))
        x = F.interpolate(self.stage1(x), (H + 2 * full, W + 2 * full), mode="nearest")
        return self.stage2(torch.cat([x, src_bgr], dim=1))

    def forward(self, src: torch.Tensor, bgr: torch.Tensor, pha: torch.Tensor, fgr: torch.Tensor,
                err: torch.Tensor, hid: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        H, W = src.shape[2], src.shape[3]
        half, quarter = (H // 2, W // 2), (H // 4, W // 4)
        src_bgr = torch.cat([src, bgr], dim=1)

        if self.mode == "full":
            x = F.interpolate(torch.cat([hid, pha, fgr], dim=1), half, mode="bilinear", align_corners=False)
            y = F.interpolate(src_bgr, half, mode="bilinear", align_corners=False)
            x = self.dense(torch.cat([x, y], dim=1), src_bgr)
            ref = torch.ones((src.shape[0], 1, quarter[0], quarter[1]), device=src.device, dtype=src.dtype)
            return x[:, :1], x[:, 1:], ref

        err = F.interpolate(err, quarter, mode="bilinear", align_corners=False)
        ref = select_regions(err, self.mode, self.sample_pixels, self.threshold, self.prevent_oversampling)
        nz = torch.nonzero(ref.squeeze(1))
        idx = (nz[:, 0], nz[:, 1], nz[:, 2])
        out = F.interpolate(torch.cat([pha, fgr], dim=1), (H, W), mode="bilinear", align_corners=False)
        if nz.shape[0] == 0 and not torch.jit.is_tracing():  # a traced graph keeps the general path
            return out[:, :1], out[:, 1:], ref

        pad_half, pad_full = patch_context(self.kernel_size)
        x = F.interpolate(torch.cat([hid, pha, fgr], dim=1), half, mode="bilinear", align_corners=False)
        x = crop_patches(x, idx, 2, pad_half, self.patch_crop_method)
        y = F.interpolate(src_bgr, half, mode="bilinear", align_corners=False)
        y = crop_patches(y, idx, 2, pad_half, self.patch_crop_method)
        x = self.stage1(torch.cat([x, y], dim=1))
        x = F.interpolate(x, (4 + 2 * pad_full, 4 + 2 * pad_full), mode="nearest")
        y = crop_patches(src_bgr, idx, 4, pad_full, self.patch_crop_method)
        x = self.stage2(torch.cat([x, y], dim=1))
        out = replace_patches(out, x, idx, self.patch_replace_method)
        return out[:, :1], out[:, 1:], ref
