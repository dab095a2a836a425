"""The decoder's 32 hidden channels computed only where the refiner reads them.

The decoder's last convolution (3x3, padding 1) gives 37 channels at the coarse size: pha, fgr (3),
err and 32 hidden channels. pha, fgr and err are needed on the whole frame (the coarse output and
the choice of patches); the hidden channels only inside the windows the refiner reads, a small part
of the frame in sampling and thresholding mode. It is also the costliest convolution of the
MobileNetV2 network (4.7 of 19.5 GFLOP at HD), and 37 output channels fill the CPU's vector lanes
badly: on 2 cores 54 -> 37 channels at 480x270 took 37 ms in float32, 54 -> 5 channels 11 ms.

    head = SplitHead(decoder.conv4)
    x5 = head.dense(y)                          # (B, 5, h, w): pha, fgr, err on the whole frame
    src = CoarseWindows(head, y, x5)            # reads like the 37-channel output, see bilinear_windows

The hidden channels of a window are an unpadded convolution of the input window grown by one
pixel, zeros outside the frame (what padding 1 gives), so they are the same numbers.
"""
from typing import Optional

import torch
from torch import nn
from torch.nn import functional as F

from .windows import clamped_block, windows

__all__ = ["SplitHead", "CoarseWindows"]

DENSE_CHANNELS = 5          # pha, fgr (3), err
# Per-window hidden channels cost about as much per output pixel as the dense convolution does; they
# are computed per window while the windows' pixels (with their overlap) stay under this share of the frame.
SPARSE_SHARE = 0.6


class SplitHead:
    """The decoder's last convolution split by output channels: ``dense`` (the first 5, padding
    1, for the whole frame) and ``hidden`` (the other 32, unpadded, for windows); ``full`` is
    the convolution itself."""

    def __init__(self, conv: nn.Conv2d):
        if conv.kernel_size != (3, 3) or conv.padding != (1, 1) or conv.bias is None:
            raise ValueError("SplitHead needs a 3x3 convolution with padding 1 and a bias")
        self.full = conv
        w, b = conv.weight.detach(), conv.bias.detach()
        self._w = (w[:DENSE_CHANNELS].contiguous(memory_format=torch.channels_last), b[:DENSE_CHANNELS].contiguous(),
                   w[DENSE_CHANNELS:].contiguous(memory_format=torch.channels_last), b[DENSE_CHANNELS:].contiguous())

    def dense(self, y: torch.Tensor) -> torch.Tensor:
        """y: (B, Cin, h, w) -> (B, 5, h, w)."""
        return F.conv2d(y, self._w[0], self._w[1], padding=1)

    def hidden(self, y: torch.Tensor) -> torch.Tensor:
        """y: (P, Cin, k + 2, l + 2) -> (P, 32, k, l) (unpadded)."""
        return F.conv2d(y, self._w[2], self._w[3])


class CoarseWindows:
    """The 37-channel coarse output (B, 37, h, w) as a source of windows for
    :func:`~matte_ros.core.model.windows.bilinear_windows`, computing the hidden channels per window
    while that is cheaper than on the whole frame (else once on the whole frame)."""

    def __init__(self, head: SplitHead, y: torch.Tensor, x5: torch.Tensor):
        self.head, self.y, self.x5 = head, y, x5
        self.shape = (x5.shape[0], head.full.out_channels, x5.shape[2], x5.shape[3])
        self.dtype, self.device = x5.dtype, x5.device
        self._full: Optional[torch.Tensor] = None

    def dense(self) -> torch.Tensor:
        """The whole (B, 37, h, w) output (computed once)."""
        if self._full is None:
            self._full = torch.cat([self.x5, self.head.hidden(F.pad(self.y, (1, 1, 1, 1)))], dim=1)
            self._full = self._full.contiguous(memory_format=torch.channels_last)
        return self._full

    def block(self, b: torch.Tensor, oy: torch.Tensor, ox: torch.Tensor, kh: int, kw: int) -> torch.Tensor:
        """(P, kh, kw, 37): rows oy..oy+kh-1, columns ox..ox+kw-1 of image b. Rows and columns past
        the frame's end may hold any finite values (bilinear taps never read them)."""
        B, _, h, w = self.shape
        if self._full is not None or b.shape[0] * (kh + 2) * (kw + 2) > SPARSE_SHARE * B * h * w:
            return clamped_block(self.dense(), b, oy, ox, kh, kw)
        size = max(kh, kw) + 2
        grown = windows(self.y, b, oy - 1, ox - 1, size)                       # (P, size, size, Cin)
        hid = self.head.hidden(grown.permute(0, 3, 1, 2))[:, :, :kh, :kw]       # (P, 32, kh, kw)
        out = torch.empty(b.shape[0], kh, kw, self.shape[1], dtype=self.dtype, device=self.device)
        out[..., :DENSE_CHANNELS] = clamped_block(self.x5, b, oy, ox, kh, kw)
        out[..., DENSE_CHANNELS:] = hid.permute(0, 2, 3, 1)
        return out
