"""TorchScript and ONNX exports reload and agree with the eager model (1e-5 / 1e-4), with the
runtime settings of the TorchScript module live and the ONNX graph dynamic in batch and size; the
TensorRT-friendly options (static size, fp16, NonZero-free sampling) load and run in ONNX Runtime
on the CPU."""
import copy

import onnx
import pytest
import torch
from training_tiny import exit_code

from matte_ros.core.model import MattingBase, MattingRefine, save_checkpoint
from training.export import (
    TENSORRT_MAX_TOPK,
    TopKRefiner,
    apply_settings,
    compare,
    load_torchscript,
    onnx_model,
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
    assert exit_code(["export", "--checkpoint", ckpt, "--format", "torchscript", "--output", out,
                            "--refine-mode", "thresholding", "--check-size", "66", "98"]) == 0
    text = capsys.readouterr().out
    assert "check on a 66x98 frame" in text and "ok (tolerance 1e-05)" in text
    assert load_torchscript(out).refiner.mode == "thresholding"
    assert exit_code(["export", "--checkpoint", str(tmp_path / "missing.pth"), "--format", "onnx",
                            "--output", str(tmp_path / "y.onnx")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def _ops(path):
    proto = onnx.load(path)
    return proto, {n.op_type for n in proto.graph.node}


def _dims(value_info):
    return [d.dim_value or d.dim_param for d in value_info.type.tensor_type.shape.dim]


def test_topk_refiner_gives_the_refiners_outputs(model):
    m = copy.deepcopy(model)
    with torch.no_grad():
        m.decoder.conv4.bias[4] = 0.1                     # errors 0 in most patches: prevent_oversampling acts
    topk = copy.deepcopy(m)
    r = m.refiner
    topk.refiner = TopKRefiner(r.mode, r.sample_pixels, r.threshold, r.kernel_size, r.prevent_oversampling).eval()
    topk.refiner.load_state_dict(r.state_dict())
    for b, h, w in [(1, 64, 96), (2, 30, 42)]:              # 125 of 384 patches sampled; all 88 of a small frame
        src, bgr = _inputs(b, h, w, seed=h)
        with torch.no_grad():
            expected, got = m(src, bgr), topk(src, bgr)
        assert torch.equal(expected.ref_sm, got.ref_sm)
        assert max(compare(expected, got, output_names(m)).values()) <= 1e-5
        assert 0 < int(got.ref_sm.sum()) < b * min(125, (-(-h // 4)) * (-(-w // 4)))


def test_static_tensorrt_export_is_fixed_folded_and_nonzero_free(model, tmp_path):
    path = str(tmp_path / "s.onnx")
    save_onnx(model, path, static=(64, 96), tensorrt=True)
    proto, ops = _ops(path)
    assert [_dims(i) for i in proto.graph.input] == [[1, 3, 64, 96]] * 2
    assert _dims(proto.graph.output[0]) == [1, 1, 64, 96]
    assert not ops & {"NonZero", "Shape"}, ops                # no data-dependent shapes, shape arithmetic folded
    (topk,) = [n for n in proto.graph.node if n.op_type == "TopK"]
    assert {a.name: a.i for a in topk.attribute}["sorted"] == 1
    assert topk.input[1] in {i.name for i in proto.graph.initializer}     # K is a constant (125)
    src, bgr = _inputs(1, 64, 96, seed=3)
    with torch.no_grad():
        expected = tuple(model(src, bgr))
    got = run_onnx(path, src, bgr)
    assert (got[-1] == expected[-1].numpy()).all() and int(got[-1].sum()) == 2000 // 16
    assert max(compare(expected, got, output_names(model)).values()) <= 1e-4


def test_dynamic_tensorrt_export_keeps_sizes_dynamic(model, tmp_path):
    path = str(tmp_path / "d.onnx")
    save_onnx(model, path, tensorrt=True, crop_method="gather")
    _, ops = _ops(path)
    assert "NonZero" not in ops and "GatherElements" in ops
    for b, h, w in [(1, 66, 98), (2, 30, 42)]:                # more patches than sampled; fewer
        src, bgr = _inputs(b, h, w, seed=h)
        with torch.no_grad():
            expected = tuple(model(src, bgr))
        got = run_onnx(path, src, bgr)
        assert (got[-1] == expected[-1].numpy()).all()
        assert max(compare(expected, got, output_names(model)).values()) <= 1e-4


def test_fp16_export_runs_on_the_cpu_close_to_float32(model, tmp_path):
    """float16 weights and compute: the mean difference from the float32 model stays within 1e-3 (two
    float16 steps at 1.0: 11-bit significands, weights and activations rounded at every layer)."""
    path = str(tmp_path / "h.onnx")
    save_onnx(model, path, static=(64, 96), fp16=True, tensorrt=True)
    proto, _ = _ops(path)
    floats = {i.data_type for i in proto.graph.initializer if i.data_type in (onnx.TensorProto.FLOAT,
                                                                                onnx.TensorProto.FLOAT16)}
    assert floats == {onnx.TensorProto.FLOAT16}
    assert {i.type.tensor_type.elem_type for i in [*proto.graph.input, *proto.graph.output]} == {onnx.TensorProto.FLOAT}
    src, bgr = _inputs(1, 64, 96, seed=4)
    with torch.no_grad():
        expected = tuple(model(src, bgr))
        half = onnx_model(model, fp16=True, tensorrt=True)(src, bgr)
    got = run_onnx(path, src, bgr)
    assert all(v <= 1e-3 for v in compare(expected, got, output_names(model), "mean").values())
    assert all(v <= 1e-3 for v in compare(half, got, output_names(model), "mean").values())   # the fp16 model


def test_tensorrt_and_static_options_are_checked(model, tmp_path):
    path = str(tmp_path / "x.onnx")
    hd = MattingRefine("mobilenetv2", refine_sample_pixels=80_000)
    with pytest.raises(ValueError, match=f"at most {TENSORRT_MAX_TOPK} patches"):
        save_onnx(hd, path, tensorrt=True)
    with pytest.raises(ValueError, match="static size"):
        save_onnx(model, path, static=(64,))
    with pytest.raises(ValueError, match="reduce"):
        compare([torch.zeros(1)], [torch.zeros(1)], ["pha"], "median")
    assert not (tmp_path / "x.onnx").exists()


def test_run_onnx_refuses_a_missing_provider(model, tmp_path):
    import onnxruntime as ort
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this ONNX Runtime has the CUDA provider")
    with pytest.raises(ValueError, match="has no CUDAExecutionProvider"):
        run_onnx(str(tmp_path / "never-opened.onnx"), *_inputs(1, 8, 8), providers=["CUDAExecutionProvider"])


def test_cli_exports_tensorrt_friendly_fp16(model, tmp_path, capsys):
    ckpt = str(tmp_path / "m.pth")
    save_checkpoint(ckpt, model)
    out = str(tmp_path / "m.onnx")
    assert exit_code(["export", "--checkpoint", ckpt, "--format", "onnx", "--output", out,
                            "--static", "64", "96", "--fp16", "--tensorrt"]) == 0
    text = capsys.readouterr().out
    assert "check on a 64x96 frame, mean |export - eager|" in text and "ok (tolerance 2e-03)" in text
    assert exit_code(["export", "--checkpoint", ckpt, "--format", "torchscript", "--output", str(tmp_path / "m.ts"),
                            "--fp16"]) == 2
    assert "--fp16 apply to --format onnx only" in capsys.readouterr().err
    assert exit_code(["export", "--checkpoint", ckpt, "--format", "onnx", "--output", out, "--static", "64", "96",
                            "--check-size", "32", "32"]) == 2
    assert "differs from the --static size" in capsys.readouterr().err
