"""The BGMv2 training losses and the relativistic average least-squares GAN losses.

Every function returns a dict of named terms plus ``total`` (their sum, or the weighted sum for the GAN
players), computed in float32 whatever the autocast dtype of the predictions.
"""
from typing import Dict

import torch
from kornia.filters import sobel
from torch.nn import functional as F

__all__ = ["base_loss", "refine_loss", "ralsgan_d_loss", "ralsgan_g_loss"]


def _resize(x: torch.Tensor, size) -> torch.Tensor:
    if tuple(x.shape[2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


def _terms(pha: torch.Tensor, fgr: torch.Tensor, true_pha: torch.Tensor, true_fgr: torch.Tensor,
           suffix: str) -> Dict[str, torch.Tensor]:
    msk = (true_pha > 0).to(fgr.dtype)
    return {"pha_l1" + suffix: F.l1_loss(pha, true_pha),
            "pha_sobel" + suffix: F.l1_loss(sobel(pha), sobel(true_pha)),
            "fgr_l1" + suffix: F.l1_loss(fgr * msk, true_fgr * msk)}


def base_loss(pha: torch.Tensor, fgr: torch.Tensor, err: torch.Tensor, true_pha: torch.Tensor,
              true_fgr: torch.Tensor) -> Dict[str, torch.Tensor]:
    """pha, err, true_pha: (B, 1, H, W); fgr, true_fgr: (B, 3, H, W).
    L1(pha) + L1(sobel(pha)) + L1(fgr where true_pha > 0) + MSE(err, |pha.detach() - true_pha|)."""
    pha, fgr, err = pha.float(), fgr.float(), err.float()
    out = _terms(pha, fgr, true_pha, true_fgr, "")
    out["err_mse"] = F.mse_loss(err, (pha.detach() - true_pha).abs())
    out["total"] = sum(out.values())
    return out


def refine_loss(pha: torch.Tensor, fgr: torch.Tensor, pha_sm: torch.Tensor, fgr_sm: torch.Tensor,
                err_sm: torch.Tensor, true_pha: torch.Tensor, true_fgr: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Full-resolution pha (B, 1, H, W), fgr (B, 3, H, W) and coarse pha_sm, fgr_sm, err_sm (B, *, h, w):
    the base terms at both resolutions (ground truth resized bilinearly to the coarse size) and
    MSE(err_sm upsampled, |pha_sm.detach() upsampled - true_pha|) at full resolution."""
    pha, fgr, pha_sm, fgr_sm, err_sm = (t.float() for t in (pha, fgr, pha_sm, fgr_sm, err_sm))
    size, size_sm = true_pha.shape[2:], pha_sm.shape[2:]
    out = _terms(pha, fgr, true_pha, true_fgr, "")
    out.update(_terms(pha_sm, fgr_sm, _resize(true_pha, size_sm), _resize(true_fgr, size_sm), "_sm"))
    out["err_mse"] = F.mse_loss(_resize(err_sm, size), (_resize(pha_sm.detach(), size) - true_pha).abs())
    out["total"] = sum(out.values())
    return out


def ralsgan_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Discriminator, relativistic average LS: E[(D(r) - E D(f) - 1)^2] + E[(D(f) - E D(r) + 1)^2].
    real, fake: discriminator outputs (B, 1, h, w); ``fake`` should come from detached inputs."""
    real, fake = real.float(), fake.float()
    return ((real - fake.mean() - 1) ** 2).mean() + ((fake - real.mean() + 1) ** 2).mean()


def ralsgan_g_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Generator, the mirror image: E[(D(f) - E D(r) - 1)^2] + E[(D(r) - E D(f) + 1)^2]."""
    real, fake = real.float(), fake.float()
    return ((fake - real.mean() - 1) ** 2).mean() + ((real - fake.mean() + 1) ** 2).mean()
