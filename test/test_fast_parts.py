"""The fast path's parts against the straightforward operations they replace: OpenCV's bilinear
resize, the decoder's last convolution by output phases, the refiner's stages on coarse blocks and pixel phases,
per-window hidden channels, windows written into buffers of another dtype."""
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from matte_ros.core.model.decoder import up_cat
from matte_ros.core.model.fast import fold_batchnorm
from matte_ros.core.model.head import SplitHead
from matte_ros.core.model.hidden import CoarseWindows
from matte_ros.core.model.refiner import Refiner
from matte_ros.core.model.resize import bilinear_resize
from matte_ros.core.model.stage1 import PhaseStage1
from matte_ros.core.model.stage2 import PhaseStage2, to_phases
from matte_ros.core.model.windows import bilinear_windows, clamped_block, windows


@pytest.mark.parametrize("h, w, H, W", [(270, 480, 1080, 1920), (3, 5, 17, 9), (1, 1, 4, 4), (7, 11, 7, 11),
                                        (10, 10, 3, 4), (68, 121, 272, 484)])
def test_bilinear_resize_is_torchs_bilinear_interpolation(h, w, H, W):
    x = torch.rand(2, 4, h, w, generator=torch.Generator().manual_seed(h * w))
    want = F.interpolate(x, (H, W), mode="bilinear", align_corners=False)
    got = bilinear_resize(x, (H, W))
    assert got.shape == want.shape and got.is_contiguous() and got.dtype == torch.float32
    assert (got - want).abs().max().item() < 1e-6


def test_bilinear_resize_keeps_other_dtypes_on_torch():
    x = torch.rand(1, 2, 5, 6).to(torch.bfloat16)
    assert torch.equal(bilinear_resize(x, (20, 24)), F.interpolate(x, (20, 24), mode="bilinear", align_corners=False))
    assert bilinear_resize(x, (20, 24), torch.float32).dtype == torch.float32


def _head(cin=10, cout=37, seed=0):
    torch.manual_seed(seed)
    return nn.Conv2d(cin, cout, 3, padding=1).eval()


@pytest.mark.parametrize("h2, w2, h, w", [(13, 17, 26, 34), (2, 2, 4, 4), (135, 240, 270, 480),   # by phases
                                          (7, 9, 13, 17), (1, 3, 2, 6), (4, 4, 4, 4)])             # straight
def test_dense_head_is_the_convolution_of_the_upsampled_input(h2, w2, h, w):
    """The 5 dense channels equal conv4(cat(up(x), skip)), the outer ring (zero padding) included."""
    conv = _head(cin=7)
    head = SplitHead(conv, x_channels=4)
    g = torch.Generator().manual_seed(h2 * w2)
    x, skip = torch.rand(2, 4, h2, w2, generator=g), torch.rand(2, 3, h, w, generator=g)
    with torch.no_grad():
        want = conv(up_cat(x, skip))[:, :5]
    got = head.dense(x.contiguous(memory_format=torch.channels_last), skip)
    assert got.shape == want.shape and (got - want).abs().max().item() < 2e-6


def test_head_parts_are_the_convolutions_channels():
    conv = _head()
    head = SplitHead(conv, x_channels=6)
    y = torch.rand(1, 10, 9, 11)
    with torch.no_grad():
        want = conv(y)
    assert torch.allclose(head.full(y), want, atol=1e-6)
    assert torch.allclose(head.hidden(F.pad(y, (1, 1, 1, 1))), want[:, 5:], atol=1e-6)


def _coarse(conv, h2=7, w2=9, seed=0):
    """A head over x (6 channels, (h2, w2)) and skip (4 channels, twice the size), its windows source
    and the whole 37-channel output."""
    head = SplitHead(conv, x_channels=6)
    g = torch.Generator().manual_seed(seed)
    x, skip = torch.rand(2, 6, h2, w2, generator=g), torch.rand(2, 4, 2 * h2, 2 * w2, generator=g)
    with torch.no_grad():
        full = conv(up_cat(x, skip))
    return CoarseWindows(head, x, skip, head.dense(x, skip)), full


def test_coarse_windows_blocks_equal_the_full_convolution_inside_the_frame():
    src, full = _coarse(_head())
    b = torch.tensor([0, 1, 1, 0, 1])
    oy = torch.tensor([0, 0, 8, 11, 5])                       # corners, the last row, the middle
    ox = torch.tensor([0, 13, 0, 14, 7])
    with torch.no_grad():
        got = src.block(b, oy, ox, 4, 5)
    want = clamped_block(full, b, oy, ox, 4, 5)
    rows = (oy[:, None] + torch.arange(4)) < 14                # inside the frame: equal; beyond: finite
    cols = (ox[:, None] + torch.arange(5)) < 18
    inside = rows[:, :, None] & cols[:, None, :]
    assert torch.allclose(got[inside], want[inside], atol=1e-5)
    assert torch.isfinite(got).all()
    assert src._full is None                                   # per window, not the whole frame


def test_coarse_windows_fall_back_to_the_whole_frame_for_many_windows():
    src, full = _coarse(_head(), h2=3, w2=3)
    n = 30                                                     # 30 x 6 x 6 pixels >> the 36-pixel frame
    with torch.no_grad():
        got = src.block(torch.zeros(n, dtype=torch.long), torch.zeros(n, dtype=torch.long),
                        torch.zeros(n, dtype=torch.long), 4, 4)
    assert src._full is not None
    assert torch.allclose(got[0], full[0, :, :4, :4].permute(1, 2, 0), atol=1e-5)


def test_split_head_refuses_other_convolutions():
    with pytest.raises(ValueError, match="3x3 convolution with padding 1"):
        SplitHead(nn.Conv2d(4, 37, 1), x_channels=2)
    with pytest.raises(ValueError, match="x_channels"):
        SplitHead(nn.Conv2d(4, 37, 3, padding=1), x_channels=4)


@pytest.mark.parametrize("kernel", [3, 1])
def test_stage2_on_phases_is_the_refiners_stage2(kernel):
    """conv3, ReLU, conv4 on (nearest-upsampled y, src, plate) at full resolution, computed on phases."""
    torch.manual_seed(kernel)
    refiner = fold_batchnorm(Refiner(kernel_size=kernel).eval())
    for m in (refiner.conv3, refiner.conv4):                   # weights of both signs, biases that matter
        m.bias.data.uniform_(-0.5, 0.5)
    stage = PhaseStage2(refiner, torch.float32, "cpu")
    T, s = 3, 7
    y, src, bgr = torch.rand(T, 16, s, s), torch.rand(T, 2 * s, 2 * s, 3), torch.rand(T, 2 * s, 2 * s, 3)
    with torch.no_grad():
        z = torch.cat([F.interpolate(y, scale_factor=2, mode="nearest"), src.permute(0, 3, 1, 2),
                       bgr.permute(0, 3, 1, 2)], dim=1)
        want = refiner.stage2(z)
        got = stage(stage.input(y, to_phases(src), to_phases(bgr)))
    assert got.shape == want.shape == (T, 4, 2 * s - 2 * (kernel - 1), 2 * s - 2 * (kernel - 1))
    assert (got - want).abs().max().item() < 1e-5


@pytest.mark.parametrize("m", [2, 4, 8])
def test_stage1_on_coarse_blocks_is_conv1_of_the_upsampled_window(m):
    """conv1 of (the coarse output upsampled 2x, src, plate at half resolution) in a window inside
    the frame, from the coarse block and the half-resolution windows' phases."""
    torch.manual_seed(m)
    conv1 = nn.Conv2d(43, 24, 3).eval()
    stage = PhaseStage1(conv1, 37, torch.float32, "cpu")
    coarse = torch.rand(2, 37, 3 * m + 6, 3 * m + 8)
    up = F.interpolate(coarse, scale_factor=2, mode="bilinear", align_corners=False)
    sh, tile = 2 * m + 6, 1                                    # the window of tile 1: half rows 2m - 3 ..
    hy = 2 * m * tile - 3
    halves = torch.rand(2, sh, sh, 3), torch.rand(2, sh, sh, 3)
    with torch.no_grad():
        window = torch.cat([up[:, :, hy:hy + sh, hy:hy + sh]] + [h.permute(0, 3, 1, 2) for h in halves], dim=1)
        want = F.relu(conv1(window))
        block = coarse[:, :, m * tile - 2:m * tile + m + 2, m * tile - 2:m * tile + m + 2].permute(0, 2, 3, 1)
        got = stage(block.contiguous(), *halves)
    assert got.shape == want.shape == (2, 24, 2 * m + 4, 2 * m + 4)
    assert (got - want).abs().max().item() < 1e-5


def test_phases_are_the_pixels_of_each_parity_in_pixel_order():
    win = torch.rand(2, 6, 8, 3)
    got = to_phases(win)
    for qy in range(2):
        for qx in range(2):
            k = (qy * 2 + qx) * 3
            assert torch.equal(got[..., k:k + 3], win[:, qy::2, qx::2])


def test_stage2_takes_windows_or_their_phases_alike():
    refiner = fold_batchnorm(Refiner().eval())
    stage = PhaseStage2(refiner, torch.float32, "cpu")
    y, src, bgr = torch.rand(2, 16, 5, 5), torch.rand(2, 10, 10, 3), torch.rand(2, 10, 10, 3)
    assert torch.equal(stage.input(y, src, bgr), stage.input(y, to_phases(src), to_phases(bgr)))


def test_windows_write_into_a_buffer_of_another_dtype():
    x = torch.rand(1, 3, 9, 11)
    b, y0, x0 = torch.tensor([0, 0]), torch.tensor([-2, 4]), torch.tensor([3, 8])
    out = torch.zeros(2, 5, 5, 3, dtype=torch.bfloat16)
    windows(x, b, y0, x0, 5, out=out)
    assert torch.equal(out, windows(x, b, y0, x0, 5).to(torch.bfloat16))
    assert out[0, :2].abs().sum() == 0 and out[1, :, 3:].abs().sum() == 0        # zeros outside the image
    half = torch.zeros(2, 5, 5, 3, dtype=torch.bfloat16)
    bilinear_windows(x, (18, 22), b, y0, x0, 5, out=half)
    assert torch.equal(half, bilinear_windows(x, (18, 22), b, y0, x0, 5).to(torch.bfloat16))
