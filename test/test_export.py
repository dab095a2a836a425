"""TorchScript and ONNX exports reload and agree with the eager model (1e-5 / 1e-4), with the
runtime settings of the TorchScript module live and the ONNX graph dynamic in batch and size."""
import copy

import onnx
import pytest
import torch

from matte_ros.core.model import MattingBase, MattingRefine, save_checkpoint
from training import export_cli
from training.export import (
    apply_settings,
    compare,
    load_torchscript,
    output_names,
    run_onnx,
    run_torchscript,
    save_onnx,
    save_torchscript,
)


def _randomised(model):
    """Random BatchNorm statistics (so every layer matters) and a positive error bias, so the
    refiner selects patches even with untrained weights."""
    for mod in model.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.2, 0.2)
            mod.running_var.uniform_(0.5, 2.0)
    with torch.no_grad():
        model.decoder.conv4.bias[4] = 0.3
    return model.eval()


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return _randomised(MattingRefine("mobilenetv2", refine_sample_pixels=2000, refine_threshold=0.3))


def _inputs(b, h, w, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, h, w, generator=gen), torch.rand(b, 3, h, w, generator=gen)


@pytest.mark.slow
def test_torchscript_matches_eager_and_keeps_runtime_settings(model, tmp_path):
    path = str(tmp_path / "m.ts")
    save_torchscript(model, path)
    scripted = load_torchscript(path)
    eager = copy.deepcopy(model)
    src, bgr = _inputs(1, 90, 134)
    default = {"backbone_scale": 0.25, "refine_mode": "sampling", "refine_sample_pixels": 2000,
               "refine_threshold": 0.3}
    cases = [{}, {"backbone_scale": 0.5}, {"refine_mode": "full"},
             {"refine_mode": "thresholding", "refine_threshold": 0.2},
             {"refine_sample_pixels": 400}]
    refined = []
    for case in cases:
        settings = {**default, **case}
        apply_settings(scripted, settings)
        apply_settings(eager, settings)
        with torch.no_grad():
            expected = tuple(eager(src, bgr))
        got = run_torchscript(scripted, src, bgr)
        diffs = compare(expected, got, output_names(model))
        assert max(diffs.values()) <= 1e-5, (settings, diffs)
        refined.append(int(got[-1].sum()))
    # the settings really changed what the loaded module did: patches refined per case
    assert refined[0] == 2000 // 16 and refined[2] == (92 // 4) * (136 // 4) and refined[4] == 400 // 16
    assert 0 < refined[3] < refined[2]
    with pytest.raises(ValueError, match="unknown runtime setting"):
        apply_settings(scripted, {"sample_pixels": 1})


@pytest.mark.slow
@pytest.mark.parametrize("crop", ["roi_align", "gather"])
def test_onnx_matches_eager_at_other_sizes(model, tmp_path, crop):
    path = str(tmp_path / "m.onnx")
    save_onnx(model, path, crop_method=crop)
    proto = onnx.load(path)
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    ops = {n.op_type for n in proto.graph.node}
    assert "ScatterElements" in ops and ("RoiAlign" if crop == "roi_align" else "GatherElements") in ops
    # the trace size; another batch and a size not divisible by 4; fewer patches than sampled
    sizes = [(1, 130, 194), (2, 97, 151), (1, 30, 42)] if crop == "roi_align" else [(2, 97, 151)]
    for b, h, w in sizes:
        src, bgr = _inputs(b, h, w, seed=h)
        with torch.no_grad():
            expected = tuple(model(src, bgr))
        got = run_onnx(path, src, bgr)
        assert int(expected[-1].sum()) == min(2000 // 16, -(-h // 4) * -(-w // 4)) * b
        assert (got[-1] == expected[-1].numpy()).all()
        diffs = compare(expected, got, output_names(model))
        assert max(diffs.values()) <= 1e-4, diffs


def test_base_model_exports(tmp_path):
    torch.manual_seed(1)
    base = _randomised(MattingBase("mobilenetv2"))
    src, bgr = _inputs(1, 64, 96)
    with torch.no_grad():
        expected = tuple(base(src, bgr))
    save_torchscript(base, str(tmp_path / "b.ts"))
    save_onnx(base, str(tmp_path / "b.onnx"))
    assert output_names(base) == ("pha", "fgr", "err", "hid")
    scripted = run_torchscript(load_torchscript(str(tmp_path / "b.ts")), src, bgr)
    assert max(compare(expected, scripted, output_names(base)).values()) <= 1e-5
    assert max(compare(expected, run_onnx(str(tmp_path / "b.onnx"), src, bgr), output_names(base)).values()) <= 1e-4


def test_bad_options_raise(model, tmp_path):
    with pytest.raises(ValueError, match="opset"):
        save_onnx(model, str(tmp_path / "x.onnx"), opset=16)
    with pytest.raises(ValueError, match="crop method"):
        save_onnx(model, str(tmp_path / "x.onnx"), crop_method="unfold")
    assert not (tmp_path / "x.onnx").exists()


def test_cli_writes_and_checks(model, tmp_path, capsys):
    ckpt = str(tmp_path / "m.pth")
    save_checkpoint(ckpt, model)
    out = str(tmp_path / "m.ts")
    assert export_cli.main(["--checkpoint", ckpt, "--format", "torchscript", "--output", out,
                            "--refine-mode", "thresholding", "--check-size", "66", "98"]) == 0
    text = capsys.readouterr().out
    assert "check on a 66x98 frame" in text and "ok (tolerance 1e-05)" in text
    assert load_torchscript(out).refiner.mode == "thresholding"
    assert export_cli.main(["--checkpoint", str(tmp_path / "missing.pth"), "--format", "onnx",
                            "--output", str(tmp_path / "y.onnx")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
