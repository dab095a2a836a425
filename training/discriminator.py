"""The PatchGAN discriminator of gan mode: judges (composite, alpha) pairs at the coarse size."""
from typing import Any, Dict

import torch
from torch import nn

__all__ = ["PatchDiscriminator", "min_input_size"]


def min_input_size(layers: int) -> int:
    """Smallest input side that leaves at least one output patch: ``layers`` stride-2 4x4 convs halve
    the side, the two final stride-1 4x4 convs (padding 1) take one pixel each."""
    return 3 * 2 ** layers


class PatchDiscriminator(nn.Module):
    """x: (B, in_channels, H, W) -> (B, 1, H / 2**layers - 2, W / 2**layers - 2) realness scores.

    ``layers`` stride-2 4x4 convs (the first without normalisation), a stride-1 4x4 conv, each followed
    by BatchNorm (except the first) and LeakyReLU 0.2; then a 4x4 conv to one channel. Channels double
    per layer from ``channels`` up to 8x.
    """

    def __init__(self, in_channels: int = 4, layers: int = 4, channels: int = 64):
        super().__init__()
        if layers < 1 or channels < 1:
            raise ValueError(f"layers and channels must be at least 1, got {layers} and {channels}")
        self.in_channels, self.layers, self.channels = in_channels, layers, channels
        seq = [nn.Conv2d(in_channels, channels, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        prev = channels
        for i in range(1, layers + 1):
            ch = channels * min(2 ** i, 8)
            seq += [nn.Conv2d(prev, ch, 4, 2 if i < layers else 1, 1, bias=False), nn.BatchNorm2d(ch),
                    nn.LeakyReLU(0.2, True)]
            prev = ch
        seq.append(nn.Conv2d(prev, 1, 4, 1, 1))
        self.net = nn.Sequential(*seq)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=0.2, nonlinearity="leaky_relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        need = min_input_size(self.layers)
        if x.dim() != 4 or x.shape[1] != self.in_channels or min(x.shape[2:]) < need:
            raise ValueError(f"the {self.layers}-layer discriminator needs (B, {self.in_channels}, H, W) with "
                             f"H, W >= {need}, got {list(x.shape)}; lower --disc-layers or raise the crop size "
                             f"or --backbone-scale")
        return self.net(x)

    def config(self) -> Dict[str, Any]:
        return {"in_channels": self.in_channels, "layers": self.layers, "channels": self.channels}
