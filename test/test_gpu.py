"""The CUDA path against the CPU float32 reference, with the packaged weights on the synthetic scene:
the engine in fp16 / bf16 in every refine mode, batches, plate upkeep, a MattingBase, FastRefine's
sync-free sampling against host-side selection, and ONNX exports on ONNX Runtime's CUDA provider.

Tolerances (alpha in 0..1, foreground and composite in 8-bit levels), from the number formats:
float16 keeps 11 significant bits (a step of 2^-11 ~ 4.9e-4 at 1.0), bfloat16 8 (3.9e-3 at 1.0).
Measured on the CPU on this scene against float32: FastRefine in float16, mean |d alpha| 2.3e-5
(largest 0.004); the engine in bfloat16, mean |d alpha| 2.6e-4 to 2.9e-4 in the three modes,
8.7e-4 for the MattingBase, 2.2e-3 with upkeep (the gain is fitted on the matte), foreground
0.25 to 0.64 levels, up to 0.9 % of pixels off by more than 0.05. CUDA accumulates differently,
and rounding may swap which 4x4 patches sit at the sampling cut, which moves single pixels a lot
and the mean little; so the checks are on the mean (fp16 1e-3, two float16 steps at 1.0, about
four times the bfloat16 figure scaled to float16's finer step; bf16 3e-3, 10x its CPU figure) and
on the share of pixels off by more than 0.05 (0.5 % fp16, 1 % bf16), never on the largest difference.
"""
import copy

import numpy as np
import pytest
import torch

from matte_ros.core.engine import MattingEngine
from matte_ros.core.model import DEFAULT_WEIGHTS, MattingBase, MattingRefine, load_checkpoint
from matte_ros.core.model.fast import FastRefine
from matte_ros.core.plate.upkeep import UpkeepSettings
from matte_ros.core.synthetic import SceneSequence

pytestmark = pytest.mark.gpu

H, W = 288, 512                                      # 16:9, 9216 patches: the default 5000 sampled cut through them
# fp32: ONNX Runtime's CUDA convolutions may run in TF32 (float16's 11 significant bits): fp16's budget
MEAN_TOL = {"fp16": 1e-3, "bf16": 3e-3, "fp32": 1e-3}
FAR = 0.05
FAR_SHARE = {"fp16": 5e-3, "bf16": 1e-2, "fp32": 5e-3}
LEVELS_TOL = {"fp16": 0.5, "bf16": 1.5}              # mean |d| of uint8 foreground / composite


@pytest.fixture(scope="module")
def weights():
    return load_checkpoint(DEFAULT_WEIGHTS).eval()


@pytest.fixture(scope="module")
def scene():
    """(src, bgr): frame 10 of the synthetic scene and its plate, (H, W, 3) uint8 RGB."""
    seq = SceneSequence(H, W, seed=0)
    return seq.frame(10)[0], seq.background()


def _tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255


def assert_alpha_close(got, ref, precision: str) -> None:
    d = np.abs(np.asarray(got, np.float32) - np.asarray(ref, np.float32))
    assert d.mean() <= MEAN_TOL[precision], f"mean |d alpha| {d.mean():.2e} > {MEAN_TOL[precision]:.0e}"
    far = (d > FAR).mean()
    assert far <= FAR_SHARE[precision], f"{far:.2%} of pixels off by more than {FAR} (> {FAR_SHARE[precision]:.1%})"


def assert_levels_close(got: np.ndarray, ref: np.ndarray, precision: str) -> None:
    d = np.abs(got.astype(np.int16) - ref.astype(np.int16)).mean()
    assert d <= LEVELS_TOL[precision], f"mean |d| {d:.2f} levels > {LEVELS_TOL[precision]}"


def _pair(weights, precision, **kw):
    """The CPU float32 engine and the CUDA one, same weights and settings."""
    return (MattingEngine(model=copy.deepcopy(weights), device="cpu", precision="fp32", **kw),
            MattingEngine(model=copy.deepcopy(weights), device="cuda", precision=precision, **kw))


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
@pytest.mark.parametrize("mode", ["sampling", "thresholding", "full"])
def test_engine_on_cuda_matches_cpu_fp32(weights, scene, precision, mode):
    src, bgr = scene
    cpu, gpu = _pair(weights, precision, refine_mode=mode)
    assert gpu._fast is not None and gpu._fast.sync_free and gpu._fast.dtype == gpu.dtype
    for e in (cpu, gpu):
        e.set_background(bgr)
    a, b = cpu.process(src, composite=(0, 255, 0)), gpu.process(src, composite=(0, 255, 0))
    assert b.alpha.dtype == np.float32 and b.alpha.shape == (H, W)
    assert a.alpha.mean() > 0.05                      # the subject is there: the comparison means something
    assert_alpha_close(b.alpha, a.alpha, precision)
    assert_levels_close(b.foreground, a.foreground, precision)
    assert_levels_close(b.composite, a.composite, precision)     # composited on the device, bytes copied back
    assert b.plate_difference == pytest.approx(a.plate_difference)


def test_engine_settings_and_upkeep_on_cuda(weights, scene):
    """configure() re-prepares the plate on the device; upkeep's exposure compensation runs there too."""
    src, bgr = scene
    dim = np.clip(src.astype(np.float32) * 0.85 + 6, 0, 255).astype(np.uint8)   # the camera's exposure changed
    cpu, gpu = _pair(weights, "fp16")
    for e in (cpu, gpu):
        e.set_background(bgr)
        e.configure(backbone_scale=0.25, refine_sample_pixels=40_000,
                    upkeep=UpkeepSettings(exposure="frame", health=True))
        e.process(dim)                                # the first frame fits the gain
    a, b = cpu.process(dim), gpu.process(dim)
    assert gpu.settings()["backbone_scale"] == 0.25 and b.plate_health is not None
    assert_alpha_close(b.alpha, a.alpha, "fp16")
    assert_levels_close(b.foreground, a.foreground, "fp16")


def test_matting_base_runs_as_is_on_cuda(weights, scene):
    """A model without refiner takes the engine's plain path: moved and cast, frames converted on the device."""
    base = MattingBase(weights.backbone_name)
    base.load_state_dict({k: v for k, v in weights.state_dict().items() if not k.startswith("refiner.")})
    src, bgr = scene
    cpu, gpu = _pair(base.eval(), "fp16")
    assert gpu._fast is None and next(gpu.model.parameters()).dtype == torch.float16
    for e in (cpu, gpu):
        e.set_background(bgr)
    assert_alpha_close(gpu.process(src).alpha, cpu.process(src).alpha, "fp16")


def test_sync_free_sampling_equals_host_selection(weights, scene, monkeypatch):
    """On CUDA, sampling is sync-free (every sampled patch refined, those of error 0 put back); with
    it off the patches of error 0 are dropped on the host and refined in tiles. Both give the same
    matte; in float32 without TF32 to within float32 rounding."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    src, bgr = (_tensor(x).cuda() for x in scene)
    fast = FastRefine(weights, device="cuda")
    plate = fast.prepare_plate(bgr)
    assert fast.sync_free
    pha, fgr = fast(src, plate)
    fast.sync_free = False
    pha_host, fgr_host = fast(src, plate)
    assert (pha - pha_host).abs().max() <= 1e-4 and (fgr - fgr_host).abs().max() <= 1e-4
    with torch.no_grad():
        ref = weights(src.cpu(), bgr.cpu())
    assert_alpha_close(pha.cpu()[0, 0], ref.pha[0, 0], "fp32")


def test_fp16_batch_with_one_plate_matches_single_frames(weights, scene):
    src, bgr = (_tensor(x).cuda() for x in scene)
    later = _tensor(SceneSequence(H, W, seed=0).frame(60)[0]).cuda()    # the subject elsewhere: other patches
    fast = FastRefine(weights, dtype=torch.float16, device="cuda")
    plate = fast.prepare_plate(bgr)                  # batch 1, expanded to the frames' batch
    pha, fgr = fast(torch.cat([src, later]), plate)
    assert pha.shape == (2, 1, H, W) and fgr.shape == (2, 3, H, W)
    for i, frame in enumerate((src, later)):
        one, _ = fast(frame, plate)
        assert_alpha_close(pha[i, 0].float().cpu(), one[0, 0].float().cpu(), "fp16")


def _cuda_onnx_providers():
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip(f"onnxruntime {ort.__version__} has no CUDAExecutionProvider (the CPU wheel): "
                    f"onnxruntime-gpu=={ort.__version__} has it")
    return ["CUDAExecutionProvider", "CPUExecutionProvider"]


@pytest.mark.parametrize("options", [{}, {"static": (H, W), "tensorrt": True},
                                     {"static": (H, W), "tensorrt": True, "fp16": True}],
                         ids=["dynamic", "static-tensorrt", "static-tensorrt-fp16"])
def test_onnx_on_cuda_provider_matches_pytorch(weights, scene, tmp_path, options):
    from training.export import TENSORRT_MAX_TOPK, compare, output_names, run_onnx, save_onnx
    providers = _cuda_onnx_providers()
    model = load_checkpoint(DEFAULT_WEIGHTS, refine_sample_pixels=16 * 3000).eval()    # under TensorRT's TopK K
    assert 3000 <= TENSORRT_MAX_TOPK and isinstance(model, MattingRefine)
    path = str(tmp_path / "m.onnx")
    save_onnx(model, path, **options)
    src, bgr = (_tensor(x) for x in scene)
    with torch.no_grad():
        expected = tuple(model(src, bgr))
    got = run_onnx(path, src, bgr, providers=providers)
    precision = "fp16" if options.get("fp16") else "fp32"
    assert_alpha_close(got[0][0, 0], expected[0][0, 0].numpy(), precision)
    mean = compare(expected, got, output_names(model), "mean")
    assert mean["fgr"] <= MEAN_TOL[precision] and mean["ref_sm"] <= 0.01, mean   # <= 1 % of patches swapped
