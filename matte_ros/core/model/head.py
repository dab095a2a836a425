"""The decoder's last convolution, split by what the fast path needs of it.

The decoder ends with ``conv4(cat(up(x), skip))``: ``x`` (48 channels for MobileNetV2) bilinearly
upsampled to the size of ``skip`` (src and plate at the coarse size, 6 channels), then a 3x3
convolution (padding 1) to 37 channels: pha, fgr (3), err and 32 hidden channels.

- pha, fgr and err (``dense``) are needed on the whole coarse frame. Where ``skip`` is exactly twice
  the size of ``x`` (the paper's HD and 4K settings), the upsample and the convolution of the ``x``
  part are one convolution at x's own size, with four output phases: an output pixel 2i + p reads
  upsampled rows 2i + p - 1 .. 2i + p + 1, which are fixed mixes (1/4, 3/4) of x's rows i - 1 .. i + 1,
  so each phase is a 3x3 convolution of x whose weights are those mixes of conv4's. The four phases
  (4 x 5 = 20 output channels, which fill the CPU's 16-wide vectors far better than 5) are
  interleaved by a pixel shuffle and the ``skip`` part is added; the upsampled x (48 x 270 x 480
  at HD) is not needed for them. Replicate padding of x gives the upsample's clamped edges; the
  outermost output ring, where conv4 reads its zero padding instead, is recomputed the
  straightforward way on thin strips.
- the 32 hidden channels (``hidden``) only inside the refiner's windows (see :mod:`.hidden`).

    head = SplitHead(decoder.conv4, x_channels=48, dtype=torch.float32, device="cpu")
    x5 = head.dense(x, skip)          # (B, 5, h, w) = conv4(cat(up(x), skip))[:, :5]
    hid = head.hidden(y_windows)      # (P, 32, k, l) unpadded, y_windows: (P, 54, k + 2, l + 2)
    y37 = head.full(cat(up(x), skip)) # the convolution itself
"""
import functools
from typing import Union

import torch
from torch import nn
from torch.nn import functional as F

from .decoder import up_cat

__all__ = ["SplitHead", "DENSE_CHANNELS", "placed", "upsample_phase_weights"]

DENSE_CHANNELS = 5          # pha, fgr (3), err
# Row p of MIX[q] (q: output phase) is how much of conv4's taps -1, 0, +1 (columns) fall on x's row
# i - 1 + p for the output row 2i + q, through the 2x bilinear upsample (align_corners=False):
# upsampled row 2i - 1 = 3/4 x[i-1] + 1/4 x[i], 2i = 1/4 x[i-1] + 3/4 x[i], 2i + 1 = 3/4 x[i] + 1/4 x[i+1].
_MIX = torch.tensor([[[0.75, 0.25, 0.00], [0.25, 0.75, 0.75], [0.00, 0.00, 0.25]],
                     [[0.25, 0.00, 0.00], [0.75, 0.75, 0.25], [0.00, 0.25, 0.75]]], dtype=torch.float64)


def placed(t: torch.Tensor, dtype: torch.dtype, device: Union[str, torch.device]) -> torch.Tensor:
    """A derived weight or bias, detached, in ``dtype`` on ``device``: channels_last when 4-D, else contiguous."""
    t = t.detach().to(device, dtype)
    return t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t.contiguous()


def upsample_phase_weights(w: torch.Tensor) -> torch.Tensor:
    """w: (C, Cx, 3, 3) weights of a 3x3 convolution of x upsampled 2x (bilinear) -> (4C, Cx, 3, 3)
    weights of one on x itself, output channel c * 4 + qy * 2 + qx for the output pixel
    (2i + qy, 2j + qx) of the one centred on x's pixel (i, j) (pixel_shuffle's order)."""
    k = torch.einsum("pay,qbx,oiyx->opqiab", _MIX, _MIX, w.double())
    return k.reshape(w.shape[0] * 4, w.shape[1], 3, 3)


class SplitHead:
    """The decoder's last convolution ``conv`` (3x3, padding 1, with bias) on cat(up(x), skip), with
    ``x_channels`` channels of x: ``dense`` (the first 5 output channels on the whole frame),
    ``hidden`` (the other 32, unpadded, for windows) and ``full`` (all of them). The weights are
    derived from conv's in float64 and stored in ``dtype`` on ``device``, channels_last."""

    def __init__(self, conv: nn.Conv2d, x_channels: int, dtype: torch.dtype = torch.float32,
                 device: Union[str, torch.device] = "cpu"):
        if conv.kernel_size != (3, 3) or conv.padding != (1, 1) or conv.bias is None:
            raise ValueError("SplitHead needs a 3x3 convolution with padding 1 and a bias")
        if not 0 < x_channels < conv.in_channels:
            raise ValueError(f"x_channels must be in 1..{conv.in_channels - 1}, got {x_channels}")
        self.in_channels, self.out_channels, self.x_channels = conv.in_channels, conv.out_channels, x_channels
        w, b = conv.weight.detach().double(), conv.bias.detach().double()
        d = DENSE_CHANNELS
        keep = functools.partial(placed, dtype=dtype, device=device)

        self._full = (keep(w), keep(b))
        self._dense = (keep(w[:d]), keep(b[:d]))
        self._hidden = (keep(w[d:]), keep(b[d:]))
        self._phases = (keep(upsample_phase_weights(w[:d, :x_channels])), keep(b[:d].repeat_interleave(4)))
        self._skip = keep(w[:d, x_channels:])

    def full(self, y: torch.Tensor) -> torch.Tensor:
        """y: (B, Cin, h, w) = up_cat(x, skip) -> (B, 37, h, w)."""
        return F.conv2d(y, *self._full, padding=1)

    def hidden(self, y: torch.Tensor) -> torch.Tensor:
        """y: (P, Cin, k + 2, l + 2) -> (P, 32, k, l) (unpadded)."""
        return F.conv2d(y, *self._hidden)

    def dense(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """x: (B, Cx, h2, w2), skip: (B, Cs, h, w) -> (B, 5, h, w): pha, fgr, err of
        conv(up_cat(x, skip)), channels_last. By output phases where (h, w) = 2 (h2, w2), h2, w2 >= 2."""
        B, _, h2, w2 = x.shape
        h, w = skip.shape[2], skip.shape[3]
        skip = skip.to(x.dtype)
        if (h, w) != (2 * h2, 2 * w2) or h2 < 2 or w2 < 2:
            return F.conv2d(up_cat(x, skip), *self._dense, padding=1)
        phases = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), *self._phases)       # (B, 20, h2, w2)
        out = F.pixel_shuffle(phases, 2).contiguous(memory_format=torch.channels_last)
        out += F.conv2d(skip, self._skip, padding=1)
        # The outer ring read conv4's zero padding, not the upsample's clamped edge: recompute it on
        # strips two rows (columns) of x deep, whose first (last) three upsampled rows are exact.
        top = F.conv2d(up_cat(x[:, :, :2], skip[:, :, :4]), *self._dense, padding=1)
        bottom = F.conv2d(up_cat(x[:, :, -2:], skip[:, :, -4:]), *self._dense, padding=1)
        left = F.conv2d(up_cat(x[:, :, :, :2], skip[:, :, :, :4]), *self._dense, padding=1)
        right = F.conv2d(up_cat(x[:, :, :, -2:], skip[:, :, :, -4:]), *self._dense, padding=1)
        out[:, :, 0], out[:, :, -1] = top[:, :, 0], bottom[:, :, -1]
        out[:, :, :, 0], out[:, :, :, -1] = left[:, :, :, 0], right[:, :, :, -1]
        return out
