"""The published programs' error map and refinement map of a frame, at full resolution.

MattingEngine.process returns alpha and foreground only, so these run the coarse pass of the
engine's own MattingRefine (``engine.model``) once more, exactly as MattingRefine.forward does:
    error       err_sm (the coarse predicted error, clamped to 0..1) upsampled bilinearly
    refinement  ref_sm (1 where the refiner re-estimated a 4x4 patch, chosen from err_sm with the
                model's refine mode, sample pixels and threshold) upsampled nearest
both cropped to (H, W) from the size padded to a multiple of 4.
"""
from typing import Tuple

import numpy as np
import torch
from torch.nn import functional as F

from matte_ros.core.model import MattingRefine
from matte_ros.core.model.fast import FastRefine, RefineSettings
from matte_ros.core.model.refiner import select_regions

__all__ = ["coarse_maps"]


def _to_input(rgb: np.ndarray, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, H4, W4) ``dtype`` 0..1, replicate-padded to a multiple of 4."""
    if not (rgb.flags.writeable and rgb.flags.c_contiguous):      # torch wants its own writable memory
        rgb = np.array(rgb, order="C")
    x = torch.from_numpy(rgb).to(device).permute(2, 0, 1).unsqueeze(0).to(dtype).div_(255)
    h, w = rgb.shape[:2]
    pad_h, pad_w = (4 - h % 4) % 4, (4 - w % 4) % 4
    return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate") if pad_h + pad_w else x


@torch.inference_mode()
def coarse_maps(model: MattingRefine, frame: np.ndarray, plate: np.ndarray,
                settings: RefineSettings) -> Tuple[np.ndarray, np.ndarray]:
    """frame, plate: (H, W, 3) uint8 RGB; settings: the engine's live settings
    -> (error, refinement), each (H, W) float32 in 0..1 (refinement is 0 or 1)."""
    param = next(model.parameters())
    h, w = frame.shape[:2]
    scale = FastRefine.coarse_scale(settings, h, w)
    src, bgr = (_to_input(x, param.device, param.dtype) for x in (frame, plate))
    H4, W4 = src.shape[2], src.shape[3]
    src_sm, bgr_sm = (F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False,
                                    recompute_scale_factor=True) for x in (src, bgr))
    err_sm = model.coarse(src_sm, bgr_sm)[:, 4:5].clamp(0.0, 1.0)
    r = settings
    if r.mode == "full":
        ref_sm = torch.ones(1, 1, H4 // 4, W4 // 4, device=err_sm.device, dtype=err_sm.dtype)
    else:
        err_q = F.interpolate(err_sm, (H4 // 4, W4 // 4), mode="bilinear", align_corners=False)
        ref_sm = select_regions(err_q, r.mode, r.sample_pixels, r.threshold, r.prevent_oversampling)
    err = F.interpolate(err_sm, (H4, W4), mode="bilinear", align_corners=False)[0, 0, :h, :w]
    ref = F.interpolate(ref_sm, (H4, W4), mode="nearest")[0, 0, :h, :w]
    return err.float().cpu().numpy(), ref.float().cpu().numpy()
