"""ResNet-50 and ResNet-101 (He et al., 2016) cut to the BGMv2 encoder: a 7x7 stem for 6 input
channels, the four bottleneck stages, no pooling head or classifier, and output stride 16.

Attribute names (``conv1``, ``bn1``, ``layer1`` .. ``layer4``; in a block ``conv1`` .. ``conv3``,
``bn1`` .. ``bn3`` and ``downsample.0`` / ``.1``) are the parameter names of the released BGMv2
checkpoints, which load unchanged.

Output stride 16: the last stage keeps the resolution (its first block has stride 1, as does its
shortcut's 1x1 conv), and the 3x3 convs of its later blocks dilate by 2 instead.

Initialisation: :func:`~.weight_init.he_fan_out` for everything but the stem's conv, which keeps
PyTorch's default (Kaiming-uniform with a = sqrt(5)); the last BatchNorm of each block starts at
weight 1 (no zero-initialised residual branches). The random numbers are drawn in the order the
torchvision-built encoder this one replaces drew them, those of the layers it then dropped included
(a 3-channel stem and the classifier, built and discarded here), so a model built after
``torch.manual_seed(s)`` starts from the same weights as before.
"""
from typing import List, Optional, Tuple

import torch
from torch import nn

from .weight_init import he_fan_out

__all__ = ["Bottleneck", "ResNetEncoder", "RESNET_DEPTHS"]

# blocks per stage
RESNET_DEPTHS = {"resnet50": (3, 4, 6, 3), "resnet101": (3, 4, 23, 3)}
_EXPANSION = 4      # a bottleneck block's output channels over its inner width


class Bottleneck(nn.Module):
    """1x1 reduce to ``width``, 3x3 (carrying the block's stride and dilation), 1x1 expand to
    4 * ``width``; the shortcut (``downsample`` when shape or resolution change) is added, then ReLU."""

    def __init__(self, in_channels: int, width: int, stride: int = 1, dilation: int = 1,
                 downsample: Optional[nn.Module] = None):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * _EXPANSION, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * _EXPANSION)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        y += x if self.downsample is None else self.downsample(x)
        return self.relu(y)


def _stage(in_channels: int, width: int, count: int, stride: int, dilation: int) -> Tuple[nn.Sequential, int]:
    """``count`` bottleneck blocks and their output channels. The first block takes ``stride`` (and
    dilation 1, as it has a stride or comes right after a stage that has); the others ``dilation``."""
    out_channels = width * _EXPANSION
    downsample = None
    if stride != 1 or in_channels != out_channels:
        downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                   nn.BatchNorm2d(out_channels))
    blocks = [Bottleneck(in_channels, width, stride, 1, downsample)]
    blocks += [Bottleneck(out_channels, width, 1, dilation) for _ in range(count - 1)]
    return nn.Sequential(*blocks), out_channels


class ResNetEncoder(nn.Module):
    """x0 (B, in_channels, H, W) -> [x4 (B, 2048, H/16), x3 (B, 512, H/8), x2 (B, 256, H/4), x1 (B, 64, H/2), x0]."""

    def __init__(self, in_channels: int = 6, variant: str = "resnet50"):
        super().__init__()
        if variant not in RESNET_DEPTHS:
            raise ValueError(f"unknown ResNet variant {variant!r}; expected one of {', '.join(RESNET_DEPTHS)}")
        depths = RESNET_DEPTHS[variant]
        # Random draws in the classifier's order (see the module doc); rgb_stem and classifier are dropped.
        rgb_stem = nn.Conv2d(3, 64, kernel_size=7, bias=False)
        layer1, c = _stage(64, 64, depths[0], stride=1, dilation=1)
        layer2, c = _stage(c, 128, depths[1], stride=2, dilation=1)
        layer3, c = _stage(c, 256, depths[2], stride=2, dilation=1)
        layer4, c = _stage(c, 512, depths[3], stride=1, dilation=2)
        nn.Linear(c, 1000)      # the classifier
        he_fan_out([rgb_stem, *(m for layer in (layer1, layer2, layer3, layer4) for m in layer.modules())])
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1, self.layer2, self.layer3, self.layer4 = layer1, layer2, layer3, layer4

    def forward(self, x0: torch.Tensor) -> List[torch.Tensor]:
        x1 = self.relu(self.bn1(self.conv1(x0)))
        x2 = self.layer1(self.maxpool(x1))
        x3 = self.layer2(x2)
        x4 = self.layer4(self.layer3(x3))
        return [x4, x3, x2, x1, x0]
