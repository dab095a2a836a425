"""Hard scenes for training: plain walls and subjects whose colours follow the background.

A difference key finds a smooth subject 0.1 away from a plain wall almost perfectly; a network trained
only on textured subjects over textured scenes learns to look for texture and edges instead of the
plate difference, and leaves holes there. :func:`hard_scenes` rewrites a share of a batch into such
scenes before compositing (per sample, on the training device, randomness from torch's global
generator like the rest of the batch augmentation):

- the background becomes a **plain wall** (p 0.5): one colour, a linear gradient of up to 0.15 across
  the image and a faint low-frequency shading;
- the subject's colour becomes the **local background plus a small offset** (p 0.7): the background
  blurred over a window of 1/8..1/4 of the side, plus a per-channel offset whose size per channel is
  drawn log-uniformly in 0.02..0.2, keeping a random share of the subject's own texture; or (p 0.3) a
  **flat colour** at such an offset from the background's mean.

The offset's sign per channel points away from the nearer end of 0..1, so the subject really differs
from the plate by that much. The samples chosen are returned as a mask: :func:`compose_batch` keeps
their plate's colour jitter off (a plate shifted by 18 % would make a 0.03 difference meaningless).
Images are (B, C, H, W) float in 0..1.
"""
import math
from typing import Tuple

import torch
from torch.nn import functional as F

__all__ = ["OFFSET_RANGE", "plain_walls", "follow_background", "flat_colour", "hard_scenes"]

OFFSET_RANGE = (0.02, 0.2)   # per-channel |subject - local background| of the rewritten subjects
WALL_SHARE = 0.5             # of the hard samples: background replaced by a plain wall
FOLLOW_SHARE = 0.7           # of the hard samples: subject = local background + offset (else a flat colour)


def _rand(n: int, *shape: int, like: torch.Tensor) -> torch.Tensor:
    return torch.rand(n, *shape).to(like)


def plain_walls(n: int, h: int, w: int, like: torch.Tensor) -> torch.Tensor:
    """(n, 3, h, w) smooth backgrounds: a colour in 0.05..0.95, a linear gradient of at most 0.15 end to
    end in a random direction, and low-frequency shading of at most +-0.03."""
    base = 0.05 + 0.9 * _rand(n, 3, 1, 1, like=like)
    angle = _rand(n, 1, 1, 1, like=like) * 2 * math.pi
    ys = torch.linspace(-0.5, 0.5, h).to(like).view(1, 1, h, 1)
    xs = torch.linspace(-0.5, 0.5, w).to(like).view(1, 1, 1, w)
    ramp = (torch.cos(angle) * xs + torch.sin(angle) * ys) / (torch.cos(angle).abs() + torch.sin(angle).abs())
    slope = 0.15 * _rand(n, 3, 1, 1, like=like) * torch.sign(_rand(n, 1, 1, 1, like=like) - 0.5)
    shade = torch.nn.functional.interpolate(_rand(n, 1, 4, 4, like=like) - 0.5, (h, w), mode="bicubic",
                                            align_corners=False) * 0.06
    return (base + slope * ramp + shade).clamp(0, 1)


def _offsets(reference: torch.Tensor) -> torch.Tensor:
    """Per-channel offsets (n, 3, 1, 1) of log-uniform size in OFFSET_RANGE, pointing away from the nearer
    end of 0..1 of ``reference`` (n, 3, 1, 1)."""
    lo, hi = OFFSET_RANGE
    size = torch.exp(math.log(lo) + (math.log(hi) - math.log(lo)) * torch.rand(reference.shape).to(reference))
    return torch.where(reference > 0.5, -size, size)


def _smooth(x: torch.Tensor, cells: int) -> torch.Tensor:
    """Average ``x`` over a ``cells`` x ``cells`` grid, upsampled back bilinearly (a cheap wide blur)."""
    return F.interpolate(F.adaptive_avg_pool2d(x, (cells, cells)), x.shape[-2:], mode="bilinear",
                         align_corners=False)


def follow_background(fgr: torch.Tensor, bgr: torch.Tensor) -> torch.Tensor:
    """fgr, bgr: (n, 3, H, W) -> subjects coloured like the local background (its average over cells of
    1/4..1/8 of the side) plus a small offset, keeping a random share (0..0.5) of their own texture."""
    n = fgr.shape[0]
    cells = int(torch.randint(4, 9, ()))
    local = _smooth(bgr, cells)
    detail = fgr - _smooth(fgr, cells)
    keep = 0.5 * _rand(n, 1, 1, 1, like=fgr)
    mean = local.mean(dim=(2, 3), keepdim=True)
    return (local + _offsets(mean) + keep * detail).clamp(0, 1)


def flat_colour(bgr: torch.Tensor) -> torch.Tensor:
    """bgr: (n, 3, H, W) -> (n, 3, H, W) subjects of one colour at a small offset from the background's mean."""
    mean = bgr.mean(dim=(2, 3), keepdim=True)
    return (mean + _offsets(mean)).clamp(0, 1).expand_as(bgr).clone()


def hard_scenes(fgr: torch.Tensor, bgr: torch.Tensor, p: float) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rewrite a share ``p`` of the samples into hard scenes (module docstring).

    fgr, bgr: (B, 3, H, W) -> (fgr, bgr, chosen) with chosen a (B,) bool mask of the rewritten samples.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"hard-scene share must be in 0..1, got {p}")
    b, _, h, w = bgr.shape
    if p == 0.0:
        return fgr, bgr, torch.zeros(b, dtype=torch.bool, device=bgr.device)
    chosen = (torch.rand(b) < p).to(bgr.device)
    wall = (torch.rand(b) < WALL_SHARE).to(bgr.device) & chosen
    follow = (torch.rand(b) < FOLLOW_SHARE).to(bgr.device)
    if not chosen.any():
        return fgr, bgr, chosen
    fgr, bgr = fgr.clone(), bgr.clone()
    if wall.any():
        bgr[wall] = plain_walls(int(wall.sum()), h, w, bgr)
    idx = chosen & follow
    if idx.any():
        fgr[idx] = follow_background(fgr[idx], bgr[idx])
    idx = chosen & ~follow
    if idx.any():
        fgr[idx] = flat_colour(bgr[idx])
    return fgr, bgr, chosen
