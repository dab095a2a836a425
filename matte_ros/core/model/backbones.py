"""Encoders of the BGMv2 network: ResNet-50/101 and MobileNetV2 at output stride 16.

Each encoder takes the 6-channel ``src ++ bgr`` tensor and returns five feature maps,
deepest first, so the decoder can walk back up::

    x4: (B, C4, H/16, W/16)   x3: (B, C3, H/8, W/8)   x2: (B, C2, H/4, W/4)
    x1: (B, C1, H/2, W/2)     x0: the input itself (B, 6, H, W)

The parameter names equal those of the released checkpoints (torchvision layouts).
"""
from typing import List

import torch
from torch import nn
from torchvision.models.mobilenetv2 import MobileNetV2
from torchvision.models.resnet import Bottleneck, ResNet

__all__ = ["BACKBONES", "ResNetEncoder", "MobileNetV2Encoder", "build_encoder"]

_RESNET_BLOCKS = {"resnet50": [3, 4, 6, 3], "resnet101": [3, 4, 23, 3]}
BACKBONES = ("resnet50", "resnet101", "mobilenetv2")

# Channels of (x4, x3, x2, x1) for each encoder family.
ENCODER_CHANNELS = {
    "resnet50": [2048, 512, 256, 64],
    "resnet101": [2048, 512, 256, 64],
    "mobilenetv2": [320, 32, 24, 16],
}


class ResNetEncoder(ResNet):
    """torchvision ResNet with a 6-channel stem and a dilated last stage (stride 16)."""

    def __init__(self, in_channels: int = 6, variant: str = "resnet50"):
        super().__init__(Bottleneck, _RESNET_BLOCKS[variant],
                         replace_stride_with_dilation=[False, False, True])
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        del self.avgpool
        del self.fc

    def forward(self, x0: torch.Tensor) -> List[torch.Tensor]:
        x1 = self.relu(self.bn1(self.conv1(x0)))
        x2 = self.layer1(self.maxpool(x1))
        x3 = self.layer2(x2)
        x4 = self.layer4(self.layer3(x3))
        return [x4, x3, x2, x1, x0]


class MobileNetV2Encoder(MobileNetV2):
    """torchvision MobileNetV2 without its last block, with a 6-channel stem, stride 16."""

    def __init__(self, in_channels: int = 6):
        super().__init__()
        self.features[0][0] = nn.Conv2d(in_channels, 32, kernel_size=3, stride=2, padding=1, bias=False)
        self.features = self.features[:-1]
        # Output stride 16: block 14 keeps its resolution, the later depthwise convs dilate instead.
        self.features[14].conv[1][0].stride = (1, 1)
        for block in self.features[15:]:
            block.conv[1][0].dilation = (2, 2)
            block.conv[1][0].padding = (2, 2)
        del self.classifier

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


def build_encoder(backbone: str, in_channels: int = 6) -> nn.Module:
    if backbone in _RESNET_BLOCKS:
        return ResNetEncoder(in_channels, backbone)
    if backbone == "mobilenetv2":
        return MobileNetV2Encoder(in_channels)
    raise ValueError(f"unknown backbone {backbone!r}; expected one of {', '.join(BACKBONES)}")
