"""The BGMv2 decoder: upsample, concatenate the skip feature, conv-BN-ReLU, four times."""
from typing import List, Tuple

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["Decoder", "up_cat"]


def up_cat(x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    """cat(x bilinearly resized to skip's size, skip): what each of the decoder's convolutions reads."""
    x = F.interpolate(x, size=skip.shape[2:], mode="bilinear", align_corners=False)
    return torch.cat([x, skip], dim=1)


class Decoder(nn.Module):
    """channels: [in, c1, c2, c3, out]; skip_channels: channels of x3, x2, x1, x0.

    forward(x4, x3, x2, x1, x0) -> (B, out, H0, W0), at the resolution of ``x0``;
    ``features`` is what the last convolution (``conv4``) reads.
    """

    def __init__(self, channels: List[int], skip_channels: List[int]):
        super().__init__()
        self.conv1 = nn.Conv2d(channels[0] + skip_channels[0], channels[1], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels[1])
        self.conv2 = nn.Conv2d(channels[1] + skip_channels[1], channels[2], 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels[2])
        self.conv3 = nn.Conv2d(channels[2] + skip_channels[2], channels[3], 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels[3])
        self.conv4 = nn.Conv2d(channels[3] + skip_channels[3], channels[4], 3, padding=1, bias=True)
        self.relu = nn.ReLU(True)

    def last_inputs(self, x4: torch.Tensor, x3: torch.Tensor, x2: torch.Tensor,
                    x1: torch.Tensor, x0: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(x, x0): what the last convolution reads, before x (B, c3, H1, W1) is upsampled to x0's
        size and concatenated with it."""
        x = self.relu(self.bn1(self.conv1(up_cat(x4, x3))))
        x = self.relu(self.bn2(self.conv2(up_cat(x, x2))))
        return self.relu(self.bn3(self.conv3(up_cat(x, x1)))), x0

    def features(self, x4: torch.Tensor, x3: torch.Tensor, x2: torch.Tensor,
                 x1: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """(B, c3 + skip0, H0, W0): the input of the last convolution."""
        return up_cat(*self.last_inputs(x4, x3, x2, x1, x0))

    def forward(self, x4: torch.Tensor, x3: torch.Tensor, x2: torch.Tensor,
                x1: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        return self.conv4(self.features(x4, x3, x2, x1, x0))
