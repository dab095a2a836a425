"""Augmentation: affine maths, alignment of foreground and alpha, jitter identities, batch compositing."""
import math

import numpy as np
import pytest
import torch

from training.augment import (
    AffineRange,
    affine_matrix,
    augment_background,
    augment_pair,
    color_jitter,
    compose_batch,
    jpeg_batch,
    motion_blur_pair,
    random_crop,
    warp_batch,
    warp_centred,
)


def test_affine_matrix_known_values():
    m = affine_matrix(90.0, (1.0, 2.0), 2.0, (0.0, 0.0), (3.0, 4.0), (10.0, 10.0))
    assert np.allclose(m @ [3.0, 4.0, 1.0], [11.0, 12.0])          # centre -> output centre + translation
    assert np.allclose(m @ [4.0, 4.0, 1.0], [11.0, 14.0])          # +x scaled by 2, rotated by 90 degrees
    shear = affine_matrix(0.0, (0.0, 0.0), 1.0, (45.0, 0.0), (0.0, 0.0), (0.0, 0.0))
    assert np.allclose(shear[:, :2], [[1.0, 1.0], [0.0, 1.0]])


def test_batch_warps_known_answers():
    x = torch.rand(2, 3, 9, 9)
    assert torch.allclose(warp_batch(x, AffineRange(0, 0, (1, 1), 0)), x, atol=1e-5)
    shift = affine_matrix(0.0, (2.0, -1.0), 1.0, (0.0, 0.0), (0.0, 0.0), (0.0, 0.0))
    y = warp_centred(x[:1], [shift])
    assert torch.allclose(y[..., 1:-1, 2:], x[:1, :, 2:, :-2], atol=1e-5)       # 2 px right, 1 px up
    assert float(y[..., :, :2].abs().max()) == 0.0                              # zeros shifted in
    quarter = affine_matrix(90.0, (0.0, 0.0), 1.0, (0.0, 0.0), (0.0, 0.0), (0.0, 0.0))
    r = warp_centred(x[:1], [quarter])
    assert torch.allclose(r, torch.rot90(x[:1], -1, dims=(2, 3)), atol=1e-5)


def test_pair_stays_aligned():
    rng = np.random.default_rng(0)
    pha = rng.random((30, 40)).astype(np.float32)
    fgr = np.repeat(pha[:, :, None], 3, axis=2)
    f, p = augment_pair(rng, fgr, pha, 24, (0.4, 1.0), train=False)
    assert f.shape == (24, 24, 3) and p.shape == (24, 24)
    assert np.allclose(f[:, :, 0], p, atol=1e-6)
    f, p = augment_pair(np.random.default_rng(1), fgr, pha, 24, (0.4, 1.0), train=True)
    assert f.dtype == p.dtype == np.float32 and 0 <= p.min() and p.max() <= 1 and 0 <= f.min() and f.max() <= 1
    bgr = augment_background(np.random.default_rng(2), fgr, 20)
    assert bgr.shape == (20, 20, 3) and bgr.min() >= 0 and bgr.max() <= 1


def test_color_jitter_identities():
    x = torch.rand(3, 3, 8, 8) * 0.9 + 0.05
    one, zero = torch.ones(3), torch.zeros(3)
    assert torch.allclose(color_jitter(x, one, one, one, zero), x, atol=1e-5)
    assert torch.allclose(color_jitter(x, one, one, one, one), x, atol=1e-5)      # a full hue turn
    assert torch.allclose(color_jitter(x, one * 0.5, one, one, zero), x * 0.5, atol=1e-5)
    grey = color_jitter(x, one, one, zero, zero)
    assert torch.allclose(grey[:, 0], grey[:, 1], atol=1e-5) and torch.allclose(grey[:, 1], grey[:, 2], atol=1e-5)


def test_random_crop_sizes():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 64, 64)
    for _ in range(20):
        (y,) = random_crop([x], 36, 60, multiple=4)
        assert 36 <= y.shape[2] <= 60 and 36 <= y.shape[3] <= 60 and y.shape[2] % 4 == 0 == y.shape[3] % 4
    with pytest.raises(ValueError, match="multiple of 4"):
        random_crop([x], 37, 39, multiple=4)


def test_compose_batch():
    pha, fgr, bgr = torch.rand(4, 1, 16, 16), torch.rand(4, 3, 16, 16), torch.rand(4, 3, 16, 16)
    b = compose_batch(pha, fgr, bgr, train=False)
    assert torch.equal(b.src, fgr * pha + bgr * (1 - pha)) and b.bgr is bgr
    torch.manual_seed(3)
    b = compose_batch(pha, fgr, bgr.clone(), train=True)
    assert b.src.shape == (4, 3, 16, 16) and b.bgr.shape == (4, 3, 16, 16)
    assert float(b.src.min()) >= 0 and float(b.src.max()) <= 1 and float(b.bgr.min()) >= 0
    assert torch.equal(b.pha, pha) and torch.equal(b.fgr, fgr)
    assert math.isfinite(float(b.src.sum()))


def test_motion_blur_pair_spreads_alpha_along_the_motion_and_keeps_colour():
    pha = np.zeros((21, 21), np.float32)
    pha[:, 10] = 1.0                                              # a vertical line, moving horizontally
    fgr = np.zeros((21, 21, 3), np.float32)
    fgr[...] = (0.2, 0.6, 0.9)
    fgr_b, pha_b = motion_blur_pair(fgr, pha, 5.0, 0.0)
    np.testing.assert_allclose(pha_b.sum(axis=1), 1.0, atol=1e-4)  # coverage is conserved along each row
    assert pha_b[10, 10] < 0.5 and pha_b[10, 8] > 0.05 and pha_b[10, 12] > 0.05 and pha_b[10, 4] == 0
    inside = pha_b > 0.01
    np.testing.assert_allclose(fgr_b[inside], np.broadcast_to([0.2, 0.6, 0.9], fgr_b[inside].shape), atol=1e-4)
    _, pha_v = motion_blur_pair(fgr, pha, 5.0, np.pi / 2)      # moving along the line: unchanged inside
    np.testing.assert_allclose(pha_v[5:16, 10], 1.0, atol=1e-4)


def test_jpeg_batch_compresses_each_image_at_its_quality():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32)
    y = jpeg_batch(x, [95, 20])
    assert y.shape == x.shape and y.dtype == x.dtype and float(y.min()) >= 0 and float(y.max()) <= 1
    err = (y - x).abs().mean(dim=(1, 2, 3))
    assert 0 < float(err[0]) < float(err[1])
    flat = torch.full((1, 3, 16, 16), 100 / 255)
    assert float((jpeg_batch(flat, [80]) - flat).abs().max()) <= 1.5 / 255
    with pytest.raises(ValueError, match="one quality per image"):
        jpeg_batch(x, [90])
