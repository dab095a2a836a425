"""The refine settings are checked by one function (refine_settings.refine_problem): RefineSettings,
the Refiner, MattingRefine (at construction and per call, eager and TorchScript) and the node's
parameters refuse each bad value with its one message."""
import io
import warnings

import pytest
import torch

from matte_ros.core.model import MattingRefine, Refiner
from matte_ros.core.model.refine_settings import RefineSettings, refine_problem, require_refine

# (public name, bad value, the one message)
BAD = [
    ("backbone_scale", 0.6, "backbone_scale must be a number in [1/64, 1/2] (the coarse pass runs at most at half "
                            "resolution and needs enough pixels to see the subject), got 0.6"),
    ("refine_mode", "dense", "refine_mode must be one of 'full', 'sampling', 'thresholding', got 'dense'"),
    ("refine_sample_pixels", 15, "refine_sample_pixels must be at least 16 (one 4x4 patch), got 15"),
    ("refine_sample_pixels", 160.0, "refine_sample_pixels must be an integer, got 160.0"),
    ("refine_threshold", 1.5, "refine_threshold must be a number in [0, 1] (the error map's range), got 1.5"),
    ("refine_prevent_oversampling", 1, "refine_prevent_oversampling must be True or False, got 1"),
]
# RefineSettings field and Refiner argument of each public name
FIELD = {"backbone_scale": "backbone_scale", "refine_mode": "mode", "refine_sample_pixels": "sample_pixels",
         "refine_threshold": "threshold", "refine_prevent_oversampling": "prevent_oversampling"}


@pytest.mark.parametrize("name,value,message", BAD)
def test_every_place_refuses_a_bad_value_with_the_one_message(name, value, message):
    assert refine_problem(name, value, allow_auto=False) == message
    with pytest.raises(ValueError) as e:
        RefineSettings(**{FIELD[name]: value})
    assert str(e.value) == (message if name != "backbone_scale" else message.replace(", got", " or 0 (auto), got"))
    with pytest.raises(ValueError) as e:
        MattingRefine("mobilenetv2", **{name: value})
    assert str(e.value) == message
    if name != "backbone_scale":
        with pytest.raises(ValueError) as e:
            Refiner(**{FIELD[name]: value})
        assert str(e.value) == message


@pytest.mark.parametrize("name,value,message", [b for b in BAD if b[0] != "refine_prevent_oversampling"])
def test_the_nodes_parameters_give_the_same_message(name, value, message):
    pytest.importorskip("rcl_interfaces")
    from matte_ros.ros.params import check_value
    want = message.replace(", got", " or 0 (auto), got") if name == "backbone_scale" else message
    assert check_value(name, value) == want


def test_good_values_pass_everywhere():
    assert all(refine_problem(n, v) is None for n, v in [("backbone_scale", 0.0), ("backbone_scale", 1 / 64),
                                                         ("refine_mode", "full"), ("refine_sample_pixels", 16),
                                                         ("refine_threshold", 0.0), ("refine_prevent_oversampling",
                                                                                     False)])
    assert refine_problem("backbone_scale", 0.0, allow_auto=False).startswith("backbone_scale must be")
    require_refine(refine_mode="thresholding", refine_threshold=1.0)
    with pytest.raises(KeyError, match="unknown refine setting 'refine_kernel'"):
        refine_problem("refine_kernel", 3)


def test_a_scale_set_after_construction_is_refused_per_call_eager_and_scripted():
    model = MattingRefine("mobilenetv2", backbone_scale=0.25).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        buf = io.BytesIO()
        torch.jit.save(torch.jit.script(model), buf)
        buf.seek(0)
        scripted = torch.jit.load(buf)
    src = torch.rand(1, 3, 32, 32)
    model.backbone_scale, scripted.backbone_scale = 0.75, 0.75
    with torch.no_grad(), pytest.raises(ValueError) as e:
        model(src, src)
    assert str(e.value) == refine_problem("backbone_scale", 0.75, allow_auto=False)
    with torch.no_grad(), pytest.raises(Exception) as e:
        scripted(src, src)
    assert refine_problem("backbone_scale", 0.75, allow_auto=False) in str(e.value)
