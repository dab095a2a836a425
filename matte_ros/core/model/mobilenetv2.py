"""MobileNetV2 (Sandler et al., 2018) cut to the BGMv2 encoder: a stem for 6 input channels, the
seventeen inverted-residual blocks up to 320 channels (no 1x1 conv to 1280, no classifier), and
output stride 16 instead of 32.

``features[0]`` is the stem, ``features[i]`` block i. A block's ``conv`` is a Sequential of
[1x1 expansion (absent when the ratio is 1), 3x3 depthwise, 1x1 projection, BatchNorm]; the first
two are :class:`ConvBNReLU6` (conv ``0``, BatchNorm ``1``, ReLU6 ``2``). These indices are the
parameter names of the released BGMv2 checkpoints, which load unchanged.

Output stride 16: block 14, the first of the 160-channel stage, keeps stride 1 where the classifier
halves the resolution a fifth time; the depthwise convs of blocks 15 to 17 dilate by 2 instead, so
they see as far as they would at stride 32.

Initialisation: :func:`~.weight_init.he_fan_out` for every block; the stem's conv keeps PyTorch's
default (Kaiming-uniform with a = sqrt(5)). The random numbers are drawn in the order the
torchvision-built encoder this one replaces drew them, those of the layers it then dropped included
(a 3-channel stem, the 1x1 conv to 1280 channels and the classifier, built and discarded here), so a
model built after ``torch.manual_seed(s)`` starts from the same weights as before.
"""
from typing import List

import torch
from torch import nn

from .weight_init import he_fan_out

__all__ = ["ConvBNReLU6", "InvertedResidual", "MobileNetV2Encoder", "MOBILENETV2_STAGES"]

# (expansion ratio, output channels, blocks, stride of the stage's first block)
MOBILENETV2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                      (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
_STRIDE16_BLOCK = 14        # this block keeps the resolution; the ones after it dilate by 2
_STEM_CHANNELS = 32


class ConvBNReLU6(nn.Sequential):
    """Conv2d without bias ('same' padding for its dilation), BatchNorm2d, ReLU6."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 dilation: int = 1, groups: int = 1):
        padding = dilation * (kernel_size - 1) // 2
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                      dilation=dilation, groups=groups, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """Expand (1x1), filter each channel (3x3 depthwise), project back (1x1, linear); the input is
    added to the result when the block keeps both shape and resolution."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio: int, dilation: int = 1):
        super().__init__()
        hidden = in_channels * expand_ratio
        layers: List[nn.Module] = [] if expand_ratio == 1 else [ConvBNReLU6(in_channels, hidden, 1)]
        layers += [ConvBNReLU6(hidden, hidden, 3, stride=stride, dilation=dilation, groups=hidden),
                   nn.Conv2d(hidden, out_channels, 1, bias=False),
                   nn.BatchNorm2d(out_channels)]
        self.conv = nn.Sequential(*layers)
        self.use_res_connect = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


def _blocks() -> List[nn.Module]:
    """The inverted-residual blocks 1 .. 17, in order, at output stride 16."""
    blocks: List[nn.Module] = []
    channels = _STEM_CHANNELS
    for ratio, out_channels, count, first_stride in MOBILENETV2_STAGES:
        for k in range(count):
            i = len(blocks) + 1
            stride = first_stride if k == 0 and i < _STRIDE16_BLOCK else 1
            dilation = 2 if i > _STRIDE16_BLOCK else 1
            blocks.append(InvertedResidual(channels, out_channels, stride, ratio, dilation))
            channels = out_channels
    return blocks


class MobileNetV2Encoder(nn.Module):
    """x0 (B, in_channels, H, W) -> [x4 (B, 320, H/16), x3 (B, 32, H/8), x2 (B, 24, H/4), x1 (B, 16, H/2), x0]."""

    def __init__(self, in_channels: int = 6):
        super().__init__()
        # Random draws in the classifier's order (see the module doc); rgb_stem, head and classifier are dropped.
        rgb_stem = nn.Conv2d(3, _STEM_CHANNELS, 3, bias=False)
        blocks = _blocks()
        head = nn.Conv2d(MOBILENETV2_STAGES[-1][1], 1280, 1, bias=False)
        classifier = nn.Linear(1280, 1000)
        he_fan_out([rgb_stem, *(m for block in blocks for m in block.modules()), head])
        nn.init.normal_(classifier.weight, 0.0, 0.01)
        stem = ConvBNReLU6(in_channels, _STEM_CHANNELS, 3, stride=2)
        self.features = nn.Sequential(stem, *blocks)

    def forward(self, x0: torch.Tensor) -> List[torch.Tensor]:
        x1, x2, x3, x = x0, x0, x0, x0
        for i, block in enumerate(self.features):  # enumerate: the form TorchScript accepts
            x = block(x)
            if i == 1:
                x1 = x
            elif i == 3:
                x2 = x
            elif i == 6:
                x3 = x
        return [x, x3, x2, x1, x0]
