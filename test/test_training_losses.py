"""Losses against hand-computed values; the error target is detached; the PatchGAN's shape and parts."""
import pytest
import torch
from torch import nn

from training.discriminator import PatchDiscriminator, min_input_size
from training.losses import base_loss, ralsgan_d_loss, ralsgan_g_loss, refine_loss


def test_base_loss_known_values():
    true_pha = torch.zeros(1, 1, 8, 8)
    true_pha[..., :, 4:] = 1.0                                       # right half foreground
    true_fgr = torch.full((1, 3, 8, 8), 0.5)
    pha = torch.full((1, 1, 8, 8), 0.25)                             # constant: no edges
    fgr = torch.full((1, 3, 8, 8), 0.7)
    err = torch.zeros(1, 1, 8, 8)
    t = base_loss(pha, fgr, err, true_pha, true_fgr)
    assert t["pha_l1"].item() == pytest.approx(0.5 * 0.25 + 0.5 * 0.75)
    assert t["fgr_l1"].item() == pytest.approx(0.5 * 0.2)             # only where true_pha > 0
    assert t["err_mse"].item() == pytest.approx(0.5 * 0.25 ** 2 + 0.5 * 0.75 ** 2)
    assert t["pha_sobel"].item() > 0                                 # the true edge is missed
    assert t["total"].item() == pytest.approx(sum(v.item() for k, v in t.items() if k != "total"))
    perfect = base_loss(true_pha, true_fgr, torch.zeros_like(err), true_pha, true_fgr)
    assert perfect["total"].item() == pytest.approx(0.0, abs=1e-6)


def test_error_targets_use_the_detached_alpha():
    true_pha, true_fgr = torch.rand(2, 1, 16, 16), torch.rand(2, 3, 16, 16)
    pha = torch.rand(2, 1, 16, 16, requires_grad=True)
    err = torch.rand(2, 1, 16, 16, requires_grad=True)
    base_loss(pha, torch.rand(2, 3, 16, 16), err, true_pha, true_fgr)["err_mse"].backward()
    assert pha.grad is None and err.grad.abs().sum() > 0
    pha_sm = torch.rand(2, 1, 4, 4, requires_grad=True)
    err_sm = torch.rand(2, 1, 4, 4, requires_grad=True)
    t = refine_loss(torch.rand(2, 1, 16, 16), torch.rand(2, 3, 16, 16), pha_sm, torch.rand(2, 3, 4, 4), err_sm,
                    true_pha, true_fgr)
    t["err_mse"].backward()
    assert pha_sm.grad is None and err_sm.grad.abs().sum() > 0


def test_refine_loss_has_both_resolutions():
    true_pha, true_fgr = torch.ones(1, 1, 16, 16), torch.ones(1, 3, 16, 16)
    t = refine_loss(torch.ones(1, 1, 16, 16), torch.ones(1, 3, 16, 16), torch.zeros(1, 1, 4, 4),
                    torch.ones(1, 3, 4, 4), torch.ones(1, 1, 4, 4), true_pha, true_fgr)
    assert t["pha_l1"].item() == 0 and t["pha_l1_sm"].item() == pytest.approx(1.0)
    assert t["err_mse"].item() == pytest.approx(0.0)                 # |0 - 1| predicted exactly
    assert set(t) == {"pha_l1", "pha_sobel", "fgr_l1", "pha_l1_sm", "pha_sobel_sm", "fgr_l1_sm", "err_mse", "total"}


def test_relativistic_average_ls_known_values():
    real, fake = torch.full((2, 1, 3, 3), 0.5), torch.full((2, 1, 3, 3), -0.5)
    assert ralsgan_d_loss(real, fake).item() == pytest.approx(0.0)   # the discriminator's optimum
    assert ralsgan_g_loss(real, fake).item() == pytest.approx(4.0 + 4.0)
    assert ralsgan_d_loss(fake, real).item() == pytest.approx(ralsgan_g_loss(real, fake).item())
    same = torch.zeros(1, 1, 2, 2)
    assert ralsgan_d_loss(same, same).item() == ralsgan_g_loss(same, same).item() == pytest.approx(2.0)


@pytest.mark.parametrize("layers", [1, 2, 4])
def test_patchgan_shape_and_parts(layers):
    d = PatchDiscriminator(4, layers, 8)
    side = min_input_size(layers)
    assert d(torch.rand(2, 4, side, side + 8)).shape == (2, 1, 1, 1 + 8 // 2 ** layers)
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == layers + 2 and sum(c.stride == (2, 2) for c in convs) == layers
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d.modules()) == layers
    assert all(m.negative_slope == 0.2 for m in d.modules() if isinstance(m, nn.LeakyReLU))
    with pytest.raises(ValueError, match="--disc-layers"):
        d(torch.rand(2, 4, side - 1, side))
