"""Atrous spatial pyramid pooling, the head of DeepLabV3 (Chen et al., 2017), as BGMv2 uses it on
the encoder's deepest features.

Five branches see the same input at different ranges: a 1x1 conv, one 3x3 conv per atrous rate,
and the image's mean (global average pool, 1x1 conv, spread back over the map); their outputs are
concatenated and projected back to ``out_channels`` (1x1 conv, BatchNorm, ReLU, dropout 0.5 in
training). Every conv is bias-free and followed by BatchNorm and ReLU.

Module layout (``convs.<branch>.<layer>``, ``project.<layer>``) and parameter names are those of
the released BGMv2 checkpoints, which load unchanged. Initialisation: PyTorch's defaults
(Kaiming-uniform with a = sqrt(5) for the convs, BatchNorm at weight 1 and bias 0), as the module
this one replaces had.
"""
from typing import List, Sequence

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["ASPP", "ImagePooling"]


def _conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1) -> nn.Sequential:
    """Conv2d ('same' padding, no bias), BatchNorm2d, ReLU: indices 0, 1, 2."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=dilation * (kernel_size - 1) // 2,
                  dilation=dilation, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU())


class ImagePooling(nn.Sequential):
    """The image-level branch: global average pool, 1x1 conv, BatchNorm, ReLU (indices 0 .. 3), then
    the (B, C, 1, 1) result resized bilinearly to the input's height and width."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(nn.AdaptiveAvgPool2d(1),
                         nn.Conv2d(in_channels, out_channels, 1, bias=False),
                         nn.BatchNorm2d(out_channels),
                         nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        for layer in self:
            x = layer(x)
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class ASPP(nn.Module):
    """x (B, in_channels, h, w) -> (B, out_channels, h, w)."""

    def __init__(self, in_channels: int, atrous_rates: Sequence[int], out_channels: int = 256):
        super().__init__()
        branches: List[nn.Module] = [_conv_bn_relu(in_channels, out_channels, 1)]
        branches += [_conv_bn_relu(in_channels, out_channels, 3, rate) for rate in atrous_rates]
        branches.append(ImagePooling(in_channels, out_channels))
        self.convs = nn.ModuleList(branches)
        self.project = nn.Sequential(
            nn.Conv2d(len(branches) * out_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Dropout(0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs: List[torch.Tensor] = []
        for branch in self.convs:
            outs.append(branch(x))
        return self.project(torch.cat(outs, dim=1))
