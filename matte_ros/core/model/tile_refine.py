"""The refiner's two stages on tiles of m x m selected patches, read from windows of the frame:
the sampling and thresholding modes of :class:`~matte_ros.core.model.fast.FastRefine`.

``stage1`` and ``stage2`` compute, for each tile, what :meth:`Refiner.stage1
<matte_ros.core.model.refiner.Refiner.stage1>` and ``Refiner.stage2`` compute on the tile's
windows cropped from the whole frame (equal within float rounding; test_fast_stages.py), without
building the frame's half-resolution input.

Where a tile's windows lie along one axis, for kernel 3 (HALF, FULL = ``patch_context(3)`` = 3, 2)
and a tile of m = 1 patch; positions from the tile's first pixel, 4 m row at full resolution,
2 m row at half resolution, m row at the coarse size (one column a full-resolution pixel; T the
tile, + the context a window adds around it, . what its convolutions consume)::

    full px      -8 -7 -6 -5 -4 -3 -2 -1  0  1  2  3  4  5  6  7  8  9 10 11
    tile                                  T  T  T  T
    stage 2                         +  +  T  T  T  T  +  +
    src_win             .  .  .  .  +  +  T  T  T  T  +  +  .  .  .  .
    half px         -4    -3    -2    -1     0     1     2     3     4     5
    stage 1                .     .     +     T     T     +     .     .
    coarse px          -2          -1           0           1           2
    block               .           +           T           +           .

- stage 2: 4m + 2 FULL pixels from 4m row - FULL; conv3 and conv4 (valid 3x3) leave the tile.
- stage 1: 2m + 2 HALF half-resolution pixels from 2m row - HALF; conv1 and conv2 (valid 3x3)
  leave 2m + 2, which upsampled 2x (nearest) is stage 2's window.
- src_win: stage 1's window at full resolution, 2 (2m + 2 HALF) from 2 (2m row - HALF); stage 2's
  window starts 2 HALF - FULL = 4 pixels into it (``TileWindow.stage2_offset``).
- block: the coarse pixels phase stage 1 reads, m + 2 MARGIN from m row - MARGIN (MARGIN = 2).

The phases of the 2x steps line up because HALF is odd and FULL even:

- stage 1's window starts on an odd half-resolution row, so conv1's first output row is even:
  phase 0 of a coarse row. Where the half resolution is exactly twice the coarse size, conv1 of
  the 2x bilinear upsample of the coarse output is a convolution of the coarse block itself with
  four output phases (:mod:`.stage1`), which a pixel shuffle puts back in place. Its outputs cover
  coarse pixels m row - 1 .. m row + m, each reading one coarse pixel a side: MARGIN = 2.
- src over stage 1's window at full resolution (``src_win``) is read once: its 2x2 means are src
  at half resolution (the taps of a 2x bilinear downsample), its middle is stage 2's window.
- stage 2's window starts on an even full-resolution row, so its pixel phases (:mod:`.stage2`)
  are the plate's own phases cut at (4m row - FULL) / 2, and stage 1's nearest-upsampled output is
  the same in all four of them.

Kernel 1 has no context (HALF = FULL = 0) and no phase form of stage 1.
"""
from typing import NamedTuple, Tuple, Union

import torch
from torch import nn
from torch.nn import functional as F

from .head import placed
from .hidden import CoarseWindows
from .refiner import Refiner, patch_context
from .stage1 import PhaseStage1
from .stage2 import PhaseStage2
from .windows import bilinear_windows, windows

__all__ = ["COARSE_MARGIN", "TileWindow", "Tiles", "TileRefiner"]

COARSE_MARGIN = 2       # coarse pixels a side of a tile that phase stage 1 reads (see the diagram)
IntOrTensor = Union[int, torch.Tensor]


class TileWindow(NamedTuple):
    """Where the two stages of a tile of m x m patches read (the module's diagram): ``half`` and
    ``full`` from :func:`~matte_ros.core.model.refiner.patch_context`; m may be a tensor of sides."""
    m: IntOrTensor
    half: int
    full: int

    @property
    def half_side(self) -> IntOrTensor:
        """Stage 1's window at half resolution: 2m + 2 HALF."""
        return 2 * self.m + 2 * self.half

    @property
    def full_side(self) -> IntOrTensor:
        """Stage 2's window at full resolution: 4m + 2 FULL."""
        return 4 * self.m + 2 * self.full

    @property
    def stage2_offset(self) -> int:
        """Where stage 2's window starts inside stage 1's window at full resolution: 2 HALF - FULL."""
        return 2 * self.half - self.full

    def half_origin(self, i: torch.Tensor) -> torch.Tensor:
        """First half-resolution row (column) of stage 1's window of tile row (column) i."""
        return 2 * self.m * i - self.half

    def full_origin(self, i: torch.Tensor) -> torch.Tensor:
        """First full-resolution row (column) of stage 2's window of tile row (column) i."""
        return 4 * self.m * i - self.full

    def coarse_origin(self, i: torch.Tensor) -> torch.Tensor:
        """First coarse row (column) of phase stage 1's block of tile row (column) i."""
        return self.m * i - COARSE_MARGIN

    @property
    def coarse_side(self) -> IntOrTensor:
        """Phase stage 1's block: m + 2 MARGIN coarse pixels."""
        return self.m + 2 * COARSE_MARGIN


class Tiles(NamedTuple):
    """Tiles of m x m patches: image b, tile row, tile column, each (T,), in units of tiles."""
    b: torch.Tensor
    row: torch.Tensor
    col: torch.Tensor
    m: int


def coarse_activations(block: torch.Tensor) -> None:
    """In place on (..., 37) channels of the decoder output: what the refiner reads of them
    (pha clamped to 0..1, the hidden channels ReLU'd; fgr residual and err unchanged)."""
    block[..., 0].clamp_(0.0, 1.0)
    block[..., 5:].relu_()


def permuted_conv1(conv: nn.Conv2d) -> nn.Conv2d:
    """The refiner's first conv reading [pha, fgr(3), err, hid(32), src(3), bgr(3)] (the decoder
    output's own order, err with weight 0) instead of [hid(32), pha, fgr(3), src(3), bgr(3)]."""
    w = conv.weight
    hid = w.shape[1] - 10
    out = nn.Conv2d(w.shape[1] + 1, w.shape[0], conv.kernel_size, bias=conv.bias is not None)
    out = out.to(w.device, w.dtype)
    with torch.no_grad():
        out.weight.copy_(torch.cat([w[:, hid:hid + 4], torch.zeros_like(w[:, :1]), w[:, :hid], w[:, hid + 4:]], 1))
        if conv.bias is not None:
            out.bias.copy_(conv.bias)
    return out.to(memory_format=torch.channels_last).eval()


class TileRefiner:
    """The stages of a BatchNorm-folded float32 ``refiner`` on tiles, in ``dtype`` on ``device``
    (weights derived in float32, then cast); ``coarse_channels``: the decoder output's (37).

    A ``plate`` is a prepared plate: ``half`` (B, 3, H/2, W/2) and ``phases`` (B, 12, H/2, W/2),
    batch 1 (one plate for every image) or B; ``x`` the coarse output as a source of windows.
    """

    def __init__(self, refiner: Refiner, coarse_channels: int, dtype: torch.dtype,
                 device: Union[str, torch.device]):
        conv1 = permuted_conv1(refiner.conv1)
        self.kernel_size = refiner.kernel_size
        self.half, self.full = patch_context(self.kernel_size)
        self.dtype = dtype
        self.phase_stage1 = PhaseStage1(conv1, coarse_channels, dtype, device) if self.kernel_size == 3 else None
        self.phase_stage2 = PhaseStage2(refiner, dtype, device)
        self.conv1 = conv1.to(device, dtype, memory_format=torch.channels_last)
        self.conv2 = (placed(refiner.conv2.weight, dtype, device), placed(refiner.conv2.bias, dtype, device))
        self.channels = (self.conv1.in_channels, self.conv1.out_channels, refiner.conv2.out_channels,
                         refiner.conv3.in_channels, refiner.conv3.out_channels)

    def window(self, m: IntOrTensor) -> TileWindow:
        return TileWindow(m, self.half, self.full)

    def inside(self, sides: torch.Tensor, row: torch.Tensor, col: torch.Tensor, H: int, W: int) -> torch.Tensor:
        """Whether stage 1's window of each tile (side ``sides``, tile row, col) lies inside the
        half-resolution frame of a (H, W) one, as phase stage 1 needs."""
        g = self.window(sides)
        hy, hx = g.half_origin(row), g.half_origin(col)
        return (hy >= 0) & (hx >= 0) & (hy + g.half_side <= H // 2) & (hx + g.half_side <= W // 2)

    def cost(self, m: int) -> int:
        """Multiply-adds of the four convolutions on the windows of one tile of m x m patches."""
        c0, c1, c2, cf, c3 = self.channels
        k = self.kernel_size // 2
        g = self.window(m)
        sh, sf = g.half_side, g.full_side
        return ((sh - 2 * k) ** 2 * c1 * c0 + (sh - 4 * k) ** 2 * c2 * c1
                + (sf - 2 * k) ** 2 * c3 * cf + (sf - 4 * k) ** 2 * 4 * c3) * self.kernel_size ** 2

    def stage1(self, src: torch.Tensor, plate, x: CoarseWindows, t: Tiles,
               by_phases: bool) -> Tuple[torch.Tensor, torch.Tensor]:
        """src: (B, 3, H, W), H and W multiples of 4 -> (y, src_win): y (T, 16, 2m + 2, 2m + 2) (2m at
        kernel 1) stage 1 over each tile's window (Refiner.stage1 of the window of [hid, pha, fgr, src, bgr] at half
        resolution, zeros outside the frame); src_win (T, 2 sh, 2 sh, 3) src over the window at full
        resolution. ``by_phases``: conv1 from the coarse block (:mod:`.stage1`; the windows must lie
        inside the frame, see ``inside``), else from the window upsampled."""
        H, W = src.shape[2], src.shape[3]
        g, b, row, col = self.window(t.m), t.b, t.row, t.col
        bp = b if plate.half.shape[0] > 1 else torch.zeros_like(b)
        sh, hy, hx = g.half_side, g.half_origin(row), g.half_origin(col)
        T, dt = b.shape[0], self.dtype
        # src once at full resolution over stage 1's footprint: its 2x2 means are src at half resolution
        # (the taps of a 2x bilinear downsample), its middle is stage 2's window.
        src_win = windows(src, b, 2 * hy, 2 * hx, 2 * sh)                     # (T, 2sh, 2sh, 3)
        pairs = src_win.view(T, sh, 2, sh, 2, 3)
        cols = pairs[:, :, :, :, 0] + pairs[:, :, :, :, 1]                   # (T, sh, 2, sh, 3)
        src_half = (cols[:, :, 0] + cols[:, :, 1]).mul_(0.25)               # (T, sh, sh, 3)
        if by_phases:                                                        # inside the frame, by phases
            block = x.block(b, g.coarse_origin(row), g.coarse_origin(col), g.coarse_side, g.coarse_side)
            coarse_activations(block)
            y = self.phase_stage1(block, src_half.to(dt), windows(plate.half, bp, hy, hx, sh))
        else:
            # channels last: x's 37 channels (pha clamped, fgr, err, hid ReLU'd) upsampled to half
            # resolution inside the windows, then src and plate at half resolution, the order of
            # the permuted conv1 (err gets weight 0).
            y = torch.empty(T, sh, sh, x.shape[1] + 6, dtype=dt, device=src.device)
            bilinear_windows(x, (H // 2, W // 2), b, hy, hx, sh, out=y[..., :x.shape[1]],
                             transform=coarse_activations)
            y[..., -6:-3] = src_half
            windows(plate.half, bp, hy, hx, sh, out=y[..., -3:])
            y = F.relu(self.conv1(y.permute(0, 3, 1, 2)))
        return F.conv2d(y, *self.conv2).relu_(), src_win                    # (T, 16, sh - 4k, sh - 4k)

    def stage2(self, y: torch.Tensor, src_win: torch.Tensor, plate, t: Tiles) -> torch.Tensor:
        """Stage 1's (y, src_win) -> (T, 4, 4m, 4m) pha ++ fgr residual of each tile: Refiner.stage2
        of [y upsampled 2x (nearest), src, bgr] in stage 2's window, run on pixel phases."""
        g, b, row, col = self.window(t.m), t.b, t.row, t.col
        bp = b if plate.phases.shape[0] > 1 else torch.zeros_like(b)
        o, sf = g.stage2_offset, g.full_side
        bgr_phases = windows(plate.phases, bp, g.full_origin(row) // 2, g.full_origin(col) // 2, sf // 2)
        return self.phase_stage2(self.phase_stage2.input(y, src_win[:, o:o + sf, o:o + sf], bgr_phases))

    def __call__(self, src: torch.Tensor, plate, x: CoarseWindows, t: Tiles, by_phases: bool) -> torch.Tensor:
        """Both stages: (T, 4, 4m, 4m) in src's dtype. Valid convolutions make every output pixel
        the same as the published per-patch refinement's."""
        y, src_win = self.stage1(src, plate, x, t, by_phases)
        return self.stage2(y, src_win, plate, t).to(src.dtype)
