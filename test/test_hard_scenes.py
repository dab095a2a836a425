"""Hard training scenes: plain walls, subjects coloured like the local background plus a small offset."""
import pytest
import torch

from training import augment
from training.hard_scenes import OFFSET_RANGE, flat_colour, follow_background, hard_scenes, plain_walls


def _batch(b=6, h=64, w=80, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, h, w, generator=g), torch.rand(b, 3, h, w, generator=g)


def test_share_zero_changes_nothing_and_draws_nothing():
    fgr, bgr = _batch()
    torch.manual_seed(3)
    f2, b2, chosen = hard_scenes(fgr, bgr, 0.0)
    after = torch.rand(())
    torch.manual_seed(3)
    assert torch.rand(()) == after                       # the RNG stream of existing recipes is untouched
    assert f2 is fgr and b2 is bgr and not chosen.any()


def test_share_one_rewrites_every_sample_and_keeps_inputs():
    fgr, bgr = _batch()
    f0, b0 = fgr.clone(), bgr.clone()
    torch.manual_seed(0)
    f2, b2, chosen = hard_scenes(fgr, bgr, 1.0)
    assert chosen.all()
    assert torch.equal(fgr, f0) and torch.equal(bgr, b0)
    assert all(not torch.equal(f2[i], fgr[i]) for i in range(len(fgr)))
    with pytest.raises(ValueError, match="0..1"):
        hard_scenes(fgr, bgr, 1.5)


def test_plain_walls_are_smooth_and_in_range():
    torch.manual_seed(1)
    walls = plain_walls(8, 96, 128, torch.zeros(1))
    assert walls.shape == (8, 3, 96, 128) and walls.min() >= 0 and walls.max() <= 1
    step = (walls[..., 1:] - walls[..., :-1]).abs().max()
    assert step < 0.01                                   # no texture, no edge: a wall
    span = walls.amax(dim=(2, 3)) - walls.amin(dim=(2, 3))
    assert span.max() <= 0.15 + 0.075                  # the gradient, the shading (bicubic may overshoot)


def test_followed_subject_differs_from_the_local_background_by_the_offset():
    torch.manual_seed(2)
    bgr = plain_walls(16, 64, 64, torch.zeros(1))
    fgr = torch.full_like(bgr, 0.5)                      # no texture of its own: only the offset remains
    out = follow_background(fgr, bgr)
    diff = (out - bgr).abs().mean(dim=(2, 3))            # per sample and channel
    lo, hi = OFFSET_RANGE
    assert diff.min() >= lo * 0.9 and diff.max() <= hi * 1.05
    flat = flat_colour(bgr)
    assert torch.equal(flat, flat[..., :1, :1].expand_as(flat))
    d = (flat[..., 0, 0] - bgr.mean(dim=(2, 3))).abs()
    assert d.min() >= lo - 1e-6 and d.max() <= hi + 1e-6


def test_compose_batch_keeps_the_plate_jitter_off_calm_samples(monkeypatch):
    seen = []
    real = augment.color_jitter

    def spy(x, *f):
        seen.append(x.shape[0])
        return real(x, *f)
    monkeypatch.setattr(augment, "color_jitter", spy)
    fgr, bgr = _batch(b=8)
    pha = torch.zeros(8, 1, 64, 80)
    torch.manual_seed(0)
    for _ in range(20):
        augment.compose_batch(pha, fgr, bgr, train=True, calm=torch.ones(8, dtype=torch.bool))
    assert seen == []
    for _ in range(5):
        augment.compose_batch(pha, fgr, bgr, train=True, calm=torch.tensor([True] * 4 + [False] * 4))
    assert seen and max(seen) <= 4
