"""The refiner's first convolution on whole tiles, without upsampling the coarse output.

Stage 1 reads, in a window around each tile, the coarse output (37 channels at the coarse size)
bilinearly upsampled 2x to half resolution, and src and the plate at half resolution; conv1 (a
valid 3x3 convolution, 43 -> 24 channels) and conv2 follow. Where the half resolution is exactly
twice the coarse size (the paper's HD setting) and the window lies inside the frame, conv1 of the
upsampled coarse channels is a convolution of the coarse block itself with four output phases (as
the decoder's last convolution is in :mod:`.head`: an output pixel's three upsampled rows are
fixed 1/4, 3/4 mixes of three coarse rows), and conv1 of src and the plate is one on their pixel
phases (as stage 2 is, :mod:`.stage2`). Both give 4 x 24 = 96 phase channels at the coarse size,
which a pixel shuffle turns back into conv1's output. The upsampled window (37 channels at half
resolution) is never built.

    stage = PhaseStage1(conv1, coarse_channels=37, dtype=torch.float32, device="cpu")
    y = stage(block, src_half, bgr_half)     # ReLU(conv1(...)) (T, 24, 2m + 4, 2m + 4)

block: (T, m + 4, m + 4, 37) the coarse output from coarse row (column) m * tile - 2, activated;
src_half, bgr_half: (T, 2m + 6, 2m + 6, 3) the half-resolution windows, whose first row is odd
(``TileWindow`` of :mod:`.tile_refine`, whose diagram shows where these lie).
"""
import functools
from typing import Union

import torch
from torch import nn
from torch.nn import functional as F

from .head import placed, upsample_phase_weights
from .stage2 import phase_weights, phases_into

__all__ = ["PhaseStage1"]


class PhaseStage1:
    """conv1 (3x3, valid, with bias; input channels: ``coarse_channels`` coarse ones, then src and
    the plate at half resolution) of a folded refiner, in float32, on coarse blocks and phases,
    in ``dtype`` on ``device``."""

    def __init__(self, conv1: nn.Conv2d, coarse_channels: int, dtype: torch.dtype,
                 device: Union[str, torch.device]):
        if conv1.kernel_size != (3, 3) or conv1.padding != (0, 0) or conv1.bias is None:
            raise ValueError("PhaseStage1 needs the refiner's folded 3x3 conv1 (valid, with bias)")
        w, b = conv1.weight.detach().double(), conv1.bias.detach().double()
        self.coarse_channels = coarse_channels
        keep = functools.partial(placed, dtype=dtype, device=device)

        self._coarse = (keep(upsample_phase_weights(w[:, :coarse_channels])), keep(b.repeat_interleave(4)))
        self._halves = keep(phase_weights(w[:, coarse_channels:], 0, pixel=3))

    def __call__(self, block: torch.Tensor, *halves: torch.Tensor) -> torch.Tensor:
        T, n = halves[0].shape[0], halves[0].shape[1]
        s = n // 2
        p = torch.empty(T, s, s, 12 * len(halves), dtype=block.dtype, device=block.device)
        for i, half in enumerate(halves):
            phases_into(p[..., 12 * i:12 * (i + 1)], half)
        z = F.conv2d(block.permute(0, 3, 1, 2), *self._coarse)
        z += F.conv2d(p.permute(0, 3, 1, 2), self._halves)
        return F.pixel_shuffle(z.relu_(), 2)
