"""The initialisation the encoders start from when trained without loaded weights.

He-normal weights (fan_out mode, ReLU gain sqrt(2)) for the convolutions, BatchNorm at weight 1 and
bias 0: the scheme ResNet and MobileNetV2 classifiers are commonly initialised with, and what the
torchvision-built encoders these modules replace started from (the encoders also draw the random
numbers in the same order: see ``mobilenetv2.py`` and ``resnet.py``).
"""
from typing import Iterable

from torch import nn

__all__ = ["he_fan_out"]


def he_fan_out(modules: Iterable[nn.Module]) -> None:
    """Initialise, in place, every Conv2d and BatchNorm2d among ``modules`` (not their children: pass
    ``m.modules()`` for a whole tree): conv weights N(0, 2 / fan_out), conv biases 0, BatchNorm 1 and 0."""
    for m in modules:
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
