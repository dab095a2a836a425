"""The network equals the published BGMv2: same parameter names and shapes, same numbers."""
import itertools
import json
import os

import pytest
import torch
from conftest import DATA

from matte_ros.core.model import CROP_METHODS, REPLACE_METHODS, MattingBase, MattingRefine

METHODS = list(itertools.product(CROP_METHODS, REPLACE_METHODS))


def _randomise_bn(model):
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    return model.eval()


def _inputs(b=2, h=96, w=128, seed=0):
    g = torch.Generator().manual_seed(seed)
    bgr = torch.rand(b, 3, h, w, generator=g)
    src = bgr.clone()
    region = src[:, :, h // 4: 3 * h // 4, w // 3: 2 * w // 3]
    region.copy_(torch.rand(region.shape, generator=g))
    return src, bgr


@pytest.mark.parametrize("key", sorted(json.load(open(os.path.join(DATA, "bgmv2_state_dict_shapes.json")))))
def test_state_dict_keys_and_shapes(key):
    expected = json.load(open(os.path.join(DATA, "bgmv2_state_dict_shapes.json")))[key]
    arch, backbone, *kernel = key.split("/")
    if arch == "MattingBase":
        model = MattingBase(backbone)
    else:
        model = MattingRefine(backbone, refine_kernel_size=int(kernel[0][-1]))
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == expected


@pytest.mark.slow
@pytest.mark.parametrize("crop,replace", METHODS)
def test_reference_outputs(crop, replace, parity_reference):
    ref = parity_reference
    for name, case in ref["cases"].items():
        if name == "base":
            model = MattingBase(ref["backbone"])
            model.load_state_dict({k: v for k, v in ref["state_dict"].items() if not k.startswith("refiner.")})
        else:
            model = MattingRefine(ref["backbone"], refine_patch_crop_method=crop,
                                  refine_patch_replace_method=replace, **case["config"])
            model.load_state_dict(ref["state_dict"])
        with torch.no_grad():
            out = model.eval()(ref["src"], ref["bgr"])
        for key, want in case["outputs"].items():
            diff = (getattr(out, key) - want).abs().max().item()
            assert diff <= 1e-5, f"{name}/{key}: max |diff| {diff}"


@pytest.mark.slow
@pytest.mark.slow
@pytest.mark.parametrize("backbone,kernel", [("resnet50", 3), ("resnet50", 1), ("mobilenetv2", 1)])
def test_crop_and_replace_methods_agree(backbone, kernel):
    model = _randomise_bn(MattingRefine(backbone, refine_kernel_size=kernel, refine_mode="sampling",
                                        refine_sample_pixels=2000))
    src, bgr = _inputs()
    outs = []
    with torch.no_grad():
        for crop, replace in METHODS:
            model.refiner.patch_crop_method, model.refiner.patch_replace_method = crop, replace
            outs.append(model(src, bgr))
    assert outs[0].ref_sm.sum() > 0
    for out in outs[1:]:
        for a, b in zip(outs[0], out):
            assert (a - b).abs().max().item() <= 1e-5


@pytest.mark.parametrize("kernel", [3, 1])
def test_full_mode_equals_refining_every_patch(kernel):
    """Refining every 4x4 patch must give exactly what the dense 'full' mode computes."""
    model = _randomise_bn(MattingRefine("mobilenetv2", refine_kernel_size=kernel, refine_mode="full"))
    src, bgr = _inputs(b=1, h=64, w=96)
    with torch.no_grad():
        full = model(src, bgr)
        model.refiner.mode, model.refiner.threshold = "thresholding", -1.0
        patched = model(src, bgr)
    assert patched.ref_sm.all()
    assert (full.pha - patched.pha).abs().max().item() <= 1e-5
    assert (full.fgr - patched.fgr).abs().max().item() <= 1e-5


def test_batch_items_are_independent():
    model = _randomise_bn(MattingRefine("mobilenetv2", refine_sample_pixels=1600))
    src, bgr = _inputs(b=2)
    with torch.no_grad():
        both = model(src, bgr)
        one = model(src[1:], bgr[1:])
    for a, b in zip(both, one):
        assert (a[1:] - b).abs().max().item() <= 1e-5


def test_base_on_refine_weights_equals_refine_coarse_output():
    refine = _randomise_bn(MattingRefine("mobilenetv2", backbone_scale=0.5))
    base = MattingBase("mobilenetv2")
    base.load_state_dict({k: v for k, v in refine.state_dict().items() if not k.startswith("refiner.")})
    src, bgr = _inputs(b=1, h=64, w=64)
    # The coarse path sees an exact 1/2 bilinear downsample, which is the 2x2 mean.
    src_sm, bgr_sm = torch.nn.functional.avg_pool2d(src, 2), torch.nn.functional.avg_pool2d(bgr, 2)
    with torch.no_grad():
        r = refine(src, bgr)
        b = base.eval()(src_sm, bgr_sm)
    assert (r.pha_sm - b.pha).abs().max().item() <= 1e-5
    assert (r.fgr_sm - b.fgr).abs().max().item() <= 1e-5


def test_base_outputs_follow_the_published_formulas_with_an_error_map_above_one():
    """The published MattingBase clamps the error map to 0..1 (hidden channels through ReLU, alpha and
    foreground clamped): with a decoder bias that drives the raw error channel past 1 and below 0, every
    output must equal those formulas on the raw 37-channel decoder output."""
    model = _randomise_bn(MattingBase("mobilenetv2"))
    with torch.no_grad():
        model.decoder.conv4.weight[4] *= 20.0
        model.decoder.conv4.bias[4] = 1.0
    src, bgr = _inputs(b=2, h=64, w=96)
    with torch.no_grad():
        x = model.coarse(src, bgr)
        out = model(src, bgr)
    assert x[:, 4].max() > 1.5 and x[:, 4].min() < 0.0, "the raw error channel must cross 0 and 1 for this test"
    want = {"pha": x[:, 0:1].clamp(0, 1), "fgr": (x[:, 1:4] + src).clamp(0, 1),
            "err": x[:, 4:5].clamp(0, 1), "hid": x[:, 5:].relu()}
    for key, value in want.items():
        assert torch.equal(getattr(out, key), value), key
    assert out.err.max().item() == 1.0 and out.err.min().item() == 0.0
