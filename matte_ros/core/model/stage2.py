"""The refiner's second stage run at half resolution, on pixel phases.

Stage 2 reads the first stage's output (16 channels at half resolution) upsampled 2x (nearest)
and concatenated with src and the plate at full resolution, and two valid convolutions give the
refined pixels: conv3 (22 -> 12 channels), ReLU, conv4 (12 -> 4). Those convolutions have few
channels, which fill the CPU's 16-wide vectors badly, and three quarters of the values conv3 reads
from the first stage are the upsample's repeats.

A full-resolution image is four half-resolution ones, its phases (rows 2i + qy, columns
2j + qx). The output pixel 2i + p of a valid filter with taps j = 0 .. k-1 reads input pixel
2i + p + j, which is pixel i + (p + j) // 2 of phase (p + j) % 2. So a valid convolution at full
resolution is one at half resolution from phase channels to phase channels, with (k // 2 + 1)^2
taps: conv3 becomes 16 + 4 * 6 -> 4 * 12 channels with 2x2 taps, conv4 4 * 12 -> 4 * 4. A
nearest-upsampled input is the same in all four phases, so its phase weights are summed back
into one channel. The same arithmetic, at 0.8 of conv3's multiply-adds and with channel counts
the vectors take whole; a pixel shuffle turns the output phases back into pixels.

    stage = PhaseStage2(refiner, torch.float32, "cpu")      # from the folded float32 refiner
    x = stage.input(y, src_windows, bgr_phases)              # (T, s, s, 40) channels last
    out = stage(x)                                           # (T, 4, 2s - 4, 2s - 4) (kernel 3)

Stage 2's phase channels of src and the plate are in pixel order, (qy * 2 + qx) * 3 + c, so that
they are copied from interleaved pixels in runs of whole pixel pairs; the phases of conv3's output
are in ``F.pixel_shuffle``'s order, c * 4 + qy * 2 + qx.
"""
import functools
from typing import Union

import torch
from torch import nn
from torch.nn import functional as F

from .head import placed

__all__ = ["PhaseStage2", "phase_weights", "to_phases", "phases_into"]


def _taps(k: int) -> torch.Tensor:
    """(2, 2, k // 2 + 1, k): [p, q, a, j] = 1 where output phase p's tap j reads phase q at offset a."""
    t = torch.zeros(2, 2, k // 2 + 1, k, dtype=torch.float64)
    for p in range(2):
        for j in range(k):
            t[p, (p + j) % 2, (p + j) // 2, j] = 1.0
    return t


def phase_weights(w: torch.Tensor, nearest: int, pixel: int = 1) -> torch.Tensor:
    """w: (O, C, k, k) weights of a valid convolution at full resolution -> (4 O, C', a, a) weights
    of the same convolution from phase channels to phase channels (a = k // 2 + 1): the first
    ``nearest`` input channels, nearest-upsampled from half resolution, as one channel each, the
    other C - nearest as four phase channels each (C' = nearest + 4 (C - nearest)), in images of
    ``pixel`` channels whose phases are in pixel order (``to_phases``): image g's channel c of
    phase (qy, qx) at g * 4 * pixel + (qy * 2 + qx) * pixel + c (with pixel = 1, ``F.pixel_shuffle``'s
    order c * 4 + qy * 2 + qx); output channel o * 4 + py * 2 + px."""
    n, c, k = w.shape[0], w.shape[1], w.shape[2]
    t = _taps(k)
    a = t.shape[2]
    full = torch.einsum("pqaj,rsbl,ocjl->oprcqsab", t, t, w.double())       # (n, 2, 2, c, 2, 2, a, a)
    up = full[:, :, :, :nearest].sum(dim=(4, 5))
    rest = full[:, :, :, nearest:].reshape(n, 2, 2, (c - nearest) // pixel, pixel, 2, 2, a, a)
    rest = rest.permute(0, 1, 2, 3, 5, 6, 4, 7, 8).reshape(n, 2, 2, (c - nearest) * 4, a, a)
    return torch.cat([up, rest], dim=3).reshape(n * 4, nearest + (c - nearest) * 4, a, a)


class PhaseStage2:
    """The refiner's stage 2 (conv3, ReLU, conv4 of a folded ``refiner``, in float32) on phase
    channels, in ``dtype`` on ``device``."""

    def __init__(self, refiner: nn.Module, dtype: torch.dtype, device: Union[str, torch.device]):
        conv3, conv4 = refiner.conv3, refiner.conv4
        if conv3.bias is None or conv4.bias is None:
            raise ValueError("PhaseStage2 needs the refiner with its BatchNorm folded (biased convolutions)")
        self.nearest = refiner.conv2.out_channels
        keep = functools.partial(placed, dtype=dtype, device=device)

        w3 = phase_weights(conv3.weight.detach(), self.nearest, pixel=3)          # src, plate: RGB images
        self._w3 = (keep(w3), keep(conv3.bias.repeat_interleave(4)))
        self._w4 = (keep(phase_weights(conv4.weight.detach(), 0)), keep(conv4.bias.repeat_interleave(4)))
        self.in_channels = self._w3[0].shape[1]

    def input(self, y: torch.Tensor, *full: torch.Tensor) -> torch.Tensor:
        """y: (T, nearest, s, s) stage 1's output; full: the full-resolution inputs (src, plate), each
        as windows (T, 2s, 2s, c) or already as their phases (T, s, s, 4c) (``to_phases``)
        -> (T, s, s, in_channels), the stage's input."""
        T, s = y.shape[0], y.shape[2]
        x = torch.empty(T, s, s, self.in_channels, dtype=y.dtype, device=y.device)
        x[..., :self.nearest] = y.permute(0, 2, 3, 1)
        at = self.nearest
        for f in full:
            if f.shape[1] == 2 * s:                            # windows: their phases, in one copy
                phases_into(x[..., at:at + 4 * f.shape[3]], f)
                at += 4 * f.shape[3]
            else:
                x[..., at:at + f.shape[3]] = f
                at += f.shape[3]
        if at != self.in_channels:
            raise ValueError(f"stage 2 reads {self.in_channels - self.nearest} phase channels, got {at - self.nearest}")
        return x

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x: (T, s, s, in_channels) from ``input`` -> (T, 4, H, W) full-resolution output pixels."""
        z = F.relu(F.conv2d(x.permute(0, 3, 1, 2), *self._w3))
        return F.pixel_shuffle(F.conv2d(z, *self._w4), 2)


def phases_into(dst: torch.Tensor, win: torch.Tensor) -> torch.Tensor:
    """Write the phase channels of win (T, 2s, 2t, c) (full-resolution windows or images, channels
    last) into dst (T, s, t, 4c), which may be a channel slice of a larger buffer, in pixel order:
    channel (qy * 2 + qx) * c + ch holds pixel (2i + qy, 2j + qx); one copy. Returns dst."""
    T, n, m, c = win.shape
    dst.view(T, n // 2, m // 2, 2, 2, c).copy_(win.view(T, n // 2, 2, m // 2, 2, c).permute(0, 1, 3, 2, 4, 5))
    return dst


def to_phases(win: torch.Tensor) -> torch.Tensor:
    """win: (T, 2s, 2t, c) -> (T, s, t, 4c): its phase channels in pixel order (``phases_into``)."""
    T, n, m, c = win.shape
    return phases_into(torch.empty(T, n // 2, m // 2, 4 * c, dtype=win.dtype, device=win.device), win)
