"""The fast path's refiner stages (matte_ros.core.model.tile_refine) against the reference stages
(Refiner.stage1, Refiner.stage2) on the same tile windows, cropped from the whole frame as the
published refiner crops its patches."""
import types

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from matte_ros.core.model.fast import fold_batchnorm
from matte_ros.core.model.head import SplitHead
from matte_ros.core.model.hidden import CoarseWindows
from matte_ros.core.model.patches import crop_patches
from matte_ros.core.model.refiner import Refiner, patch_context
from matte_ros.core.model.stage2 import to_phases
from matte_ros.core.model.tile_refine import COARSE_MARGIN, TileRefiner, Tiles, TileWindow

H, W = 48, 64                    # full resolution; half 24 x 32, coarse (the decoder output) 12 x 16
X_CHANNELS = 48                  # channels of the decoder input upsampled 2x into its last convolution


def _refiner(kernel: int) -> Refiner:
    """Random weights and BatchNorm statistics, so folding and every channel matter."""
    g = torch.Generator().manual_seed(kernel)
    ref = Refiner(kernel_size=kernel).eval()
    for m in ref.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.4 - 0.2)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return ref


def _scene(batch: int = 2):
    """A frame, a plate for all its images (bgr, its half-resolution copy and its phases, as a
    prepared plate holds them) and the coarse output as a source of windows (37 channels at H/4 x W/4)."""
    torch.manual_seed(0)
    head = SplitHead(nn.Conv2d(X_CHANNELS + 6, 37, 3, padding=1).eval(), X_CHANNELS)
    x = CoarseWindows(head, torch.randn(batch, X_CHANNELS, H // 8, W // 8), torch.rand(batch, 6, H // 4, W // 4),
                      torch.randn(batch, 5, H // 4, W // 4))
    src, bgr = torch.rand(batch, 3, H, W), torch.rand(1, 3, H, W)
    plate = types.SimpleNamespace(bgr=bgr, half=F.interpolate(bgr, (H // 2, W // 2), mode="bilinear",
                                                               align_corners=False),
                                  phases=to_phases(bgr.permute(0, 2, 3, 1)).permute(0, 3, 1, 2))
    return src, plate, x


def _reference_stage1_input(src, plate, x) -> torch.Tensor:
    """The refiner's half-resolution input on the whole frame: [hid, pha, fgr, src, bgr] (42 channels),
    as MattingRefine builds it (pha clamped, hid ReLU'd, bilinear 2x from the coarse size)."""
    y = x.dense()
    coarse = torch.cat([y[:, 5:].relu(), y[:, :1].clamp(0.0, 1.0), y[:, 1:4]], dim=1)
    half = (H // 2, W // 2)
    src_bgr = torch.cat([src, plate.bgr.expand(src.shape[0], -1, -1, -1)], dim=1)
    return torch.cat([F.interpolate(coarse, half, mode="bilinear", align_corners=False),
                      F.interpolate(src_bgr, half, mode="bilinear", align_corners=False)], dim=1)


# (kernel, m, tiles (b, row, col) in units of tiles, by phases): tiles at the frame's edges (zero
# context) and inside it; phase stage 1 only where its windows lie inside the frame (kernel 3)
CASES = [(3, 1, [(0, 0, 0), (1, 11, 15), (0, 5, 7), (1, 0, 9)], False),
         (3, 2, [(0, 0, 0), (1, 5, 7), (0, 2, 3), (1, 3, 0)], False),
         (3, 2, [(0, 1, 1), (1, 3, 5), (0, 4, 6)], True),
         (3, 4, [(0, 1, 1), (1, 1, 2)], True),
         (1, 2, [(0, 0, 0), (1, 5, 7), (0, 2, 3)], False)]


def _tiles(m, where):
    b, row, col = (torch.tensor(v) for v in zip(*where))
    return Tiles(b, row, col, m)


@pytest.mark.parametrize("kernel, m, where, by_phases", CASES)
def test_stage1_is_the_refiners_stage1_on_the_tiles_windows(kernel, m, where, by_phases):
    ref = _refiner(kernel)
    folded = fold_batchnorm(ref)
    fast = TileRefiner(folded, 37, torch.float32, "cpu")
    src, plate, x = _scene()
    t = _tiles(m, where)
    if by_phases:
        assert fast.inside(torch.full_like(t.row, m), t.row, t.col, H, W).all()
    half, _ = patch_context(kernel)
    with torch.no_grad():
        want = ref.stage1(crop_patches(_reference_stage1_input(src, plate, x), (t.b, t.row, t.col), 2 * m, half))
        got, src_win = fast.stage1(src, plate, x, t, by_phases)
    side = 2 * m + 2 * (kernel // 2)
    assert got.shape == want.shape == (len(where), 16, side, side)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    # src over stage 1's window at full resolution, zeros outside the frame
    g = fast.window(m)
    assert torch.equal(src_win.permute(0, 3, 1, 2),
                       crop_patches(src, (t.b, t.row, t.col), 4 * m, 2 * g.half))


@pytest.mark.parametrize("kernel, m, where, by_phases", CASES)
def test_stage2_is_the_refiners_stage2_on_the_tiles_windows(kernel, m, where, by_phases):
    ref = _refiner(kernel)
    fast = TileRefiner(fold_batchnorm(ref), 37, torch.float32, "cpu")
    src, plate, x = _scene()
    t = _tiles(m, where)
    _, full = patch_context(kernel)
    with torch.no_grad():
        y, src_win = fast.stage1(src, plate, x, t, by_phases)
        src_bgr = torch.cat([src, plate.bgr.expand(src.shape[0], -1, -1, -1)], dim=1)
        window = crop_patches(src_bgr, (t.b, t.row, t.col), 4 * m, full)
        want = ref.stage2(torch.cat([F.interpolate(y, scale_factor=2, mode="nearest"), window], dim=1))
        got = fast.stage2(y, src_win, plate, t)
    assert got.shape == want.shape == (len(where), 4, 4 * m, 4 * m)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_window_arithmetic_of_the_published_refiner():
    half, full = patch_context(3)
    assert (half, full) == (3, 2) and patch_context(1) == (0, 0)
    g = TileWindow(1, half, full)
    assert (g.half_side, g.full_side, g.stage2_offset, g.coarse_side) == (8, 8, 4, 5)
    row = torch.tensor([0, 3])
    assert g.half_origin(row).tolist() == [-3, 3] and g.full_origin(row).tolist() == [-2, 10]
    assert g.coarse_origin(row).tolist() == [-2, 1] and COARSE_MARGIN == 2
    # stage 1's window starts on odd half rows (phase stage 1), stage 2's on even full rows (the plate's phases)
    assert g.half_origin(row).remainder(2).eq(1).all() and g.full_origin(row).remainder(2).eq(0).all()


def test_inside_is_the_stage1_window_within_the_half_frame():
    fast = TileRefiner(fold_batchnorm(_refiner(3)), 37, torch.float32, "cpu")
    sides = torch.tensor([2, 2, 2, 1, 4, 4])
    rows = torch.tensor([0, 1, 4, 2, 1, 2])
    # a half frame of 24 rows: a tile of 2 at row 0 reads half rows -3 .. 6, at row 1 rows 1 .. 10, at row 4
    # rows 13 .. 22; a tile of 4 at row 2 rows 13 .. 26
    assert fast.inside(sides, rows, torch.full_like(rows, 2), H, W).tolist() == [False, True, True, True, True,
                                                                                  False]
