"""Encoders of the BGMv2 network: ResNet-50/101 and MobileNetV2 at output stride 16.

Each encoder takes the 6-channel ``src ++ bgr`` tensor and returns five feature maps,
deepest first, so the decoder can walk back up::

    x4: (B, C4, H/16, W/16)   x3: (B, C3, H/8, W/8)   x2: (B, C2, H/4, W/4)
    x1: (B, C1, H/2, W/2)     x0: the input itself (B, 6, H, W)

The encoders are this package's own (``mobilenetv2.py``, ``resnet.py``), so the node's process does
not import torchvision; their parameter names equal those of the released checkpoints.
"""
from torch import nn

from .mobilenetv2 import MobileNetV2Encoder
from .resnet import RESNET_DEPTHS, ResNetEncoder

__all__ = ["BACKBONES", "ENCODER_CHANNELS", "ResNetEncoder", "MobileNetV2Encoder", "build_encoder"]

BACKBONES = ("resnet50", "resnet101", "mobilenetv2")

# Channels of (x4, x3, x2, x1) for each encoder family.
ENCODER_CHANNELS = {
    "resnet50": [2048, 512, 256, 64],
    "resnet101": [2048, 512, 256, 64],
    "mobilenetv2": [320, 32, 24, 16],
}


def build_encoder(backbone: str, in_channels: int = 6) -> nn.Module:
    if backbone in RESNET_DEPTHS:
        return ResNetEncoder(in_channels, backbone)
    if backbone == "mobilenetv2":
        return MobileNetV2Encoder(in_channels)
    raise ValueError(f"unknown backbone {backbone!r}; expected one of {', '.join(BACKBONES)}")
