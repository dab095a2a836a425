"""Beyond the published code: any size, small frames in sampling mode, clear errors."""
import pytest
import torch
from torch.nn import functional as F

from matte_ros.core.model import MattingBase, MattingRefine, RefineOutput


@pytest.fixture(scope="module")
def model():
    return MattingRefine("mobilenetv2", refine_sample_pixels=4000).eval()


@pytest.mark.parametrize("h,w", [(101, 137), (66, 98), (63, 64), (9, 13)])
def test_any_size_is_padded_and_cropped_back(model, h, w):
    src, bgr = torch.rand(1, 3, h, w), torch.rand(1, 3, h, w)
    with torch.no_grad():
        out = model(src, bgr)
        H4, W4 = -(-h // 4) * 4, -(-w // 4) * 4
        padded = model(F.pad(src, (0, W4 - w, 0, H4 - h), mode="replicate"),
                       F.pad(bgr, (0, W4 - w, 0, H4 - h), mode="replicate"))
    assert out.pha.shape == (1, 1, h, w) and out.fgr.shape == (1, 3, h, w)
    assert out.ref_sm.shape == (1, 1, H4 // 4, W4 // 4)
    assert torch.equal(out.pha, padded.pha[:, :, :h, :w])
    assert torch.equal(out.fgr, padded.fgr[:, :, :h, :w])


def test_outputs_unpack_positionally_and_by_name(model):
    src = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        out = model(src, src.clone())
    pha, fgr, pha_sm, fgr_sm, err_sm, ref_sm = out
    assert isinstance(out, RefineOutput) and out.pha is pha and out.ref_sm is ref_sm
    assert pha_sm.shape == (1, 1, 16, 16) and fgr_sm.shape == (1, 3, 16, 16)
    base = MattingBase("mobilenetv2").eval()
    with torch.no_grad():
        p, f, e, h = base(src, src)
    assert h.shape == (1, 32, 64, 64) and e.min() >= 0


def test_sampling_more_pixels_than_the_frame_has_refines_every_candidate():
    model = MattingRefine("mobilenetv2", refine_sample_pixels=80_000).eval()
    src, bgr = torch.rand(2, 3, 48, 64), torch.rand(2, 3, 48, 64)
    with torch.no_grad():
        out = model(src, bgr)
        err = F.interpolate(out.err_sm, (12, 16), mode="bilinear", align_corners=False)
    assert torch.equal(out.ref_sm, (err > 0).float())
    model.refiner.prevent_oversampling = False
    with torch.no_grad():
        assert model(src, bgr).ref_sm.all()


def test_runtime_settings_change_the_selection(model):
    src, bgr = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        model.refiner.mode, model.refiner.sample_pixels = "sampling", 16 * 10
        assert model(src, bgr).ref_sm.sum() <= 10
        model.refiner.mode, model.refiner.threshold = "thresholding", 2.0
        assert model(src, bgr).ref_sm.sum() == 0
    model.refiner.mode, model.refiner.sample_pixels = "sampling", 4000


@pytest.mark.parametrize("kwargs,match", [
    ({"backbone": "resnet18"}, "unknown backbone"),
    ({"backbone": "mobilenetv2", "backbone_scale": 0.6}, "backbone_scale"),
    ({"backbone": "mobilenetv2", "refine_mode": "dense"}, "refine_mode must be one of"),
    ({"backbone": "mobilenetv2", "refine_kernel_size": 5}, "kernel size"),
    ({"backbone": "mobilenetv2", "refine_patch_crop_method": "slice"}, "crop method"),
    ({"backbone": "mobilenetv2", "refine_patch_replace_method": "put"}, "replace method"),
])
def test_bad_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MattingRefine(**kwargs)


def test_backbone_scale_below_the_smallest_is_refused_at_construction_and_at_run_time():
    for scale in (1e-9, 0.0001, 0.0, 1 / 128):
        with pytest.raises(ValueError, match="backbone_scale"):
            MattingRefine("mobilenetv2", backbone_scale=scale)
    model = MattingRefine("mobilenetv2", backbone_scale=1 / 64).eval()
    src = torch.rand(1, 3, 40, 40)
    with torch.no_grad():
        assert model(src, src.flip(3)).pha_sm.shape[2:] == (1, 1)     # 40x40 at 1/64: one coarse pixel, not none
        model.backbone_scale = 1e-9
        with pytest.raises(ValueError, match="backbone_scale"):
            model(src, src)


@pytest.mark.parametrize("src,bgr,match", [
    (torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 60), "same shape"),
    (torch.rand(1, 4, 64, 64), torch.rand(1, 4, 64, 64), "B, 3, H, W"),
    (torch.rand(3, 64, 64), torch.rand(3, 64, 64), "B, 3, H, W"),
    (torch.randint(0, 255, (1, 3, 64, 64), dtype=torch.uint8),) * 2 + ("floating-point",),
])
def test_bad_inputs_raise_value_error(model, src, bgr, match):
    with pytest.raises(ValueError, match=match):
        model(src, bgr)
    with pytest.raises(ValueError, match=match):
        MattingBase("mobilenetv2")(src, bgr)
