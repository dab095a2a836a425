"""MattingBase and MattingRefine: the Background Matting V2 networks.

Parameter names and numbers equal the published models, so the released weights load
with ``strict=True`` and give the same outputs. Beyond the published code: any H x W works
(MattingRefine pads to a multiple of 4 and crops back), sampling never asks for more patches
than a frame has, and bad arguments raise ``ValueError``.
"""
from typing import Any, Dict, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from ..settings import BACKBONE_SCALE_RULE, MAX_BACKBONE_SCALE, MIN_BACKBONE_SCALE, effective_backbone_scale
from .aspp import ASPP
from .backbones import BACKBONES, ENCODER_CHANNELS, build_encoder
from .decoder import Decoder
from .refine_settings import require_refine
from .refiner import Refiner

__all__ = ["MattingBase", "MattingRefine", "BaseOutput", "RefineOutput", "build_model", "check_inputs"]


class BaseOutput(NamedTuple):
    """pha: (B, 1, H, W) alpha 0..1; fgr: (B, 3, H, W) foreground 0..1;
    err: (B, 1, H, W) predicted error >= 0; hid: (B, 32, H, W) hidden features >= 0."""
    pha: torch.Tensor
    fgr: torch.Tensor
    err: torch.Tensor
    hid: torch.Tensor


class RefineOutput(NamedTuple):
    """pha: (B, 1, H, W), fgr: (B, 3, H, W) full-resolution alpha and foreground, 0..1;
    pha_sm, fgr_sm, err_sm: (B, *, Hc, Wc) coarse outputs (Hc = H4 * backbone_scale);
    ref_sm: (B, 1, H4/4, W4/4) 1 where a 4x4 patch was refined. H4, W4 are H, W rounded up
    to a multiple of 4 (the padded frame the coarse outputs describe)."""
    pha: torch.Tensor
    fgr: torch.Tensor
    pha_sm: torch.Tensor
    fgr_sm: torch.Tensor
    err_sm: torch.Tensor
    ref_sm: torch.Tensor


def check_inputs(src: torch.Tensor, bgr: torch.Tensor) -> None:
    """Raise ValueError unless src and bgr are float (B, 3, H, W) tensors of the same shape."""
    if not src.is_floating_point() or not bgr.is_floating_point():
        raise ValueError("src and bgr must be floating-point tensors with values in 0..1, got "
                         + str(src.dtype) + " and " + str(bgr.dtype))
    if src.dim() != 4 or src.shape[1] != 3:
        raise ValueError("src must have shape (B, 3, H, W), got " + str(list(src.shape)))
    if src.shape != bgr.shape:
        raise ValueError("src and bgr must have the same shape, got " + str(list(src.shape))
                         + " and " + str(list(bgr.shape)))


class MattingBase(nn.Module):
    """The coarse network: encoder + ASPP + decoder on ``src ++ bgr`` at the input resolution.

    forward(src, bgr) with src, bgr: (B, 3, H, W) in 0..1 -> BaseOutput(pha, fgr, err, hid).
    """

    def __init__(self, backbone: str = "mobilenetv2"):
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {backbone!r}; expected one of {', '.join(BACKBONES)}")
        self.backbone_name = backbone
        c4, c3, c2, c1 = ENCODER_CHANNELS[backbone]
        self.backbone = build_encoder(backbone, 6)
        self.aspp = ASPP(c4, [3, 6, 9])
        self.decoder = Decoder([256, 128, 64, 48, 1 + 3 + 1 + 32], [c3, c2, c1, 6])

    def coarse(self, src: torch.Tensor, bgr: torch.Tensor) -> torch.Tensor:
        """The raw 37-channel decoder output for src, bgr at their own resolution."""
        x = self.backbone(torch.cat([src, bgr], dim=1))
        return self.decoder(self.aspp(x[0]), x[1], x[2], x[3], x[4])

    def forward(self, src: torch.Tensor, bgr: torch.Tensor) -> BaseOutput:
        check_inputs(src, bgr)
        x = self.coarse(src, bgr)
        pha = x[:, 0:1].clamp(0.0, 1.0)
        fgr = (x[:, 1:4] + src).clamp(0.0, 1.0)
        err = x[:, 4:5].clamp(0.0, 1.0)
        hid = x[:, 5:].relu()
        return BaseOutput(pha, fgr, err, hid)

    @torch.jit.unused
    def config(self) -> Dict[str, Any]:
        """Constructor keyword arguments that rebuild this model (saved in checkpoints)."""
        return {"arch": "MattingBase", "backbone": self.backbone_name}


class MattingRefine(MattingBase):
    """The full network: MattingBase on a downsampled copy, then the Refiner at full resolution.

    forward(src, bgr) with src, bgr: (B, 3, H, W) in 0..1, any H, W -> RefineOutput.
    ``backbone_scale`` (in [1/64, 1/2]) and the refiner's ``mode``, ``sample_pixels``, ``threshold``
    may be changed between calls. A frame so small that ``backbone_scale`` would leave its coarse
    pass no pixel (40x40 at 1/64) runs at the smallest scale that gives it one
    (:func:`~matte_ros.core.settings.effective_backbone_scale`); every other frame at ``backbone_scale``.
    """

    __constants__ = ["min_backbone_scale", "max_backbone_scale", "backbone_scale_rule"]   # for TorchScript
    min_backbone_scale = MIN_BACKBONE_SCALE
    max_backbone_scale = MAX_BACKBONE_SCALE
    backbone_scale_rule = BACKBONE_SCALE_RULE

    def __init__(self, backbone: str = "mobilenetv2", backbone_scale: float = 0.25,
                 refine_mode: str = "sampling", refine_sample_pixels: int = 80_000,
                 refine_threshold: float = 0.1, refine_kernel_size: int = 3,
                 refine_prevent_oversampling: bool = True, refine_patch_crop_method: str = "unfold",
                 refine_patch_replace_method: str = "scatter_nd"):
        require_refine(allow_auto=False, backbone_scale=backbone_scale)
        super().__init__(backbone)
        self.backbone_scale = float(backbone_scale)
        self.refiner = Refiner(refine_mode, refine_sample_pixels, refine_threshold, refine_kernel_size,
                               refine_prevent_oversampling, refine_patch_crop_method,
                               refine_patch_replace_method)

    def forward(self, src: torch.Tensor, bgr: torch.Tensor) -> RefineOutput:
        check_inputs(src, bgr)
        if torch.jit.is_scripting():    # refine_problem's rule, with its bounds and words as constants
            if not self.min_backbone_scale <= self.backbone_scale <= self.max_backbone_scale:
                raise ValueError(self.backbone_scale_rule + ", got " + str(self.backbone_scale))
        else:                           # backbone_scale may have been set after construction
            require_refine(allow_auto=False, backbone_scale=self.backbone_scale)
        H, W = src.shape[2], src.shape[3]
        pad_h, pad_w = (4 - H % 4) % 4, (4 - W % 4) % 4
        if pad_h + pad_w > 0:
            src = F.pad(src, (0, pad_w, 0, pad_h), mode="replicate")
            bgr = F.pad(bgr, (0, pad_w, 0, pad_h), mode="replicate")

        scale = effective_backbone_scale(self.backbone_scale, H + pad_h, W + pad_w)
        src_sm = F.interpolate(src, scale_factor=scale, mode="bilinear", align_corners=False,
                               recompute_scale_factor=True)
        bgr_sm = F.interpolate(bgr, scale_factor=scale, mode="bilinear", align_corners=False,
                               recompute_scale_factor=True)
        x = self.coarse(src_sm, bgr_sm)
        pha_sm = x[:, 0:1].clamp(0.0, 1.0)
        fgr_sm = x[:, 1:4]
        err_sm = x[:, 4:5].clamp(0.0, 1.0)
        hid_sm = x[:, 5:].relu()

        pha, fgr, ref_sm = self.refiner(src, bgr, pha_sm, fgr_sm, err_sm, hid_sm)
        pha = pha.clamp(0.0, 1.0)
        fgr = (fgr + src).clamp(0.0, 1.0)
        fgr_sm = (fgr_sm + src_sm).clamp(0.0, 1.0)
        if pad_h + pad_w > 0:
            pha, fgr = pha[:, :, :H, :W], fgr[:, :, :H, :W]
        return RefineOutput(pha, fgr, pha_sm, fgr_sm, err_sm, ref_sm)

    @torch.jit.unused
    def config(self) -> Dict[str, Any]:
        r = self.refiner
        return {"arch": "MattingRefine", "backbone": self.backbone_name,
                "backbone_scale": self.backbone_scale, "refine_mode": r.mode,
                "refine_sample_pixels": r.sample_pixels, "refine_threshold": r.threshold,
                "refine_kernel_size": r.kernel_size, "refine_prevent_oversampling": r.prevent_oversampling,
                "refine_patch_crop_method": r.patch_crop_method,
                "refine_patch_replace_method": r.patch_replace_method}


def build_model(config: Dict[str, Any]) -> nn.Module:
    """Model from its config dict (``arch`` plus constructor keyword arguments, as ``config()`` returns)."""
    config = dict(config)
    arch = config.pop("arch", "MattingRefine")
    if arch == "MattingRefine":
        return MattingRefine(**config)
    if arch == "MattingBase":
        return MattingBase(backbone=config.get("backbone", "mobilenetv2"))
    raise ValueError(f"unknown model arch {arch!r}; expected MattingBase or MattingRefine")
