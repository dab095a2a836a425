"""The decoder's 32 hidden channels computed only where the refiner reads them.

The decoder's last convolution (3x3, padding 1, on cat(up(x), skip); see :mod:`.head`) gives 37
channels at the coarse size: pha, fgr (3), err and 32 hidden channels. pha, fgr and err are needed
on the whole frame (the coarse output and the choice of patches); the hidden channels only inside
the windows the refiner reads, a small part of the frame in sampling and thresholding mode. They
are also the costliest part of the MobileNetV2 network's costliest convolution (4.7 of 19.5 GFLOP at
HD).

    head = SplitHead(decoder.conv4, x_channels)
    src = CoarseWindows(head, x, skip, head.dense(x, skip))   # reads like the 37-channel output, see bilinear_windows

The hidden channels of a window are an unpadded convolution of the input window grown by one
pixel, zeros outside the frame (what padding 1 gives), so they are the same numbers. The input
windows are cut from x upsampled once for the whole frame and from skip, without concatenating
the two for the whole frame.
"""
from typing import Optional

import torch
from torch.nn import functional as F

from .decoder import up_cat
from .head import DENSE_CHANNELS, SplitHead
from .windows import clamped_block, windows

__all__ = ["CoarseWindows"]

# Per-window hidden channels cost about as much per output pixel as the dense convolution does; they
# are computed per window while the windows' pixels (with their overlap) stay under this share of the frame.
SPARSE_SHARE = 0.6


class CoarseWindows:
    """The 37-channel coarse output (B, 37, h, w) of ``head`` on up_cat(x, skip), as a source of
    windows for :func:`~matte_ros.core.model.windows.bilinear_windows`, given its first 5 channels
    ``x5`` (B, 5, h, w); the hidden channels are computed per window while that is cheaper than on
    the whole frame (else once on the whole frame)."""

    def __init__(self, head: SplitHead, x: torch.Tensor, skip: torch.Tensor, x5: torch.Tensor):
        self.head, self.x, self.skip, self.x5 = head, x, skip.to(x.dtype), x5
        self.shape = (x5.shape[0], head.out_channels, x5.shape[2], x5.shape[3])
        self.dtype, self.device = x5.dtype, x5.device
        self._full: Optional[torch.Tensor] = None
        self._up: Optional[torch.Tensor] = None

    def dense(self) -> torch.Tensor:
        """The whole (B, 37, h, w) output (computed once)."""
        if self._full is None:
            y = up_cat(self.x, self.skip)
            self._full = torch.cat([self.x5, self.head.hidden(F.pad(y, (1, 1, 1, 1)))], dim=1)
            self._full = self._full.contiguous(memory_format=torch.channels_last)
        return self._full

    def _grown(self, b: torch.Tensor, oy: torch.Tensor, ox: torch.Tensor, size: int) -> torch.Tensor:
        """(P, size, size, Cin): windows of up_cat(x, skip) at (oy, ox), zeros outside the frame."""
        cx = self.x.shape[1]
        if self._up is None:
            self._up = F.interpolate(self.x, self.shape[2:], mode="bilinear", align_corners=False)
        out = torch.empty(b.shape[0], size, size, self.head.in_channels, dtype=self.dtype, device=self.device)
        windows(self._up, b, oy, ox, size, out=out[..., :cx])
        windows(self.skip, b, oy, ox, size, out=out[..., cx:])
        return out

    def block(self, b: torch.Tensor, oy: torch.Tensor, ox: torch.Tensor, kh: int, kw: int) -> torch.Tensor:
        """(P, kh, kw, 37): rows oy..oy+kh-1, columns ox..ox+kw-1 of image b. Rows and columns past
        the frame's end may hold any finite values (bilinear taps never read them)."""
        B, _, h, w = self.shape
        if self._full is not None or b.shape[0] * (kh + 2) * (kw + 2) > SPARSE_SHARE * B * h * w:
            return clamped_block(self.dense(), b, oy, ox, kh, kw)
        grown = self._grown(b, oy - 1, ox - 1, max(kh, kw) + 2)                    # (P, size, size, Cin)
        hid = self.head.hidden(grown.permute(0, 3, 1, 2))[:, :, :kh, :kw]            # (P, 32, kh, kw)
        out = torch.empty(b.shape[0], kh, kw, self.shape[1], dtype=self.dtype, device=self.device)
        out[..., :DENSE_CHANNELS] = clamped_block(self.x5, b, oy, ox, kh, kw)
        out[..., DENSE_CHANNELS:] = hid.permute(0, 2, 3, 1)
        return out
