"""MattingEngine: shapes, parity with the model, plate cache, composite, errors, settings, threads.
The fold order of reduced precision and the backbone-scale range: test_engine_settings.py."""
import copy
import threading
import time

import numpy as np
import pytest
import torch
from torch import nn

from matte_ros.core import engine as engine_mod
from matte_ros.core.engine import (
    PLATE_DIFF_THRESHOLD,
    PRECISIONS,
    MattingEngine,
    NoBackgroundError,
    SizeMismatchError,
    _plate_difference,
)
from matte_ros.core.model import MattingBase, MattingRefine, save_checkpoint
from matte_ros.core.settings import AUTO_SCALE, MIN_BACKBONE_SCALE, auto_backbone_scale, resolve_device

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return MattingRefine("mobilenetv2", backbone_scale=0.25, refine_mode="sampling", refine_sample_pixels=400).eval()


def make_engine(net, **kw):
    kw.setdefault("precision", "fp32")                   # parity with the model; "auto" has its own test
    return MattingEngine(model=copy.deepcopy(net), device="cpu", **kw)


def frames(h, w, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8), rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def model_out(model, src, bgr):
    """The model's own output on the engine's input convention (uint8 HWC -> float CHW / 255)."""
    def t(x):
        return torch.from_numpy(x).permute(2, 0, 1).unsqueeze(0).float().contiguous().div_(255)
    with torch.inference_mode():
        return model(t(src), t(bgr))


class DiffKey(nn.Module):
    """Known-answer stand-in for the network: pha = min(1, 4 * max_c |src - bgr|), fgr = src."""

    def forward(self, src, bgr):
        return (src - bgr).abs().amax(dim=1, keepdim=True).mul(4).clamp(0, 1), src


def diffkey_alpha(src, bgr):
    d = np.abs(src.astype(np.float32) / 255 - bgr.astype(np.float32) / 255).max(axis=2)
    return np.minimum(1.0, 4 * d)


@pytest.mark.parametrize("h,w", [(1, 1), (7, 5), (37, 53), (48, 64)])
def test_shapes_dtypes_and_parity_with_the_model(net, h, w):
    src, bgr = frames(h, w)
    eng = make_engine(net)
    eng.set_background(bgr)
    res = eng.process(src, composite=(0, 255, 0))
    assert res.alpha.shape == (h, w) and res.alpha.dtype == np.float32 and res.alpha.flags.c_contiguous
    assert res.foreground.shape == (h, w, 3) and res.foreground.dtype == np.uint8 and res.foreground.flags.c_contiguous
    assert res.composite.shape == (h, w, 3) and res.composite.dtype == np.uint8
    assert 0.0 <= res.alpha.min() and res.alpha.max() <= 1.0
    ref = model_out(net, src, bgr)
    assert np.abs(res.alpha - ref.pha[0, 0].numpy()).max() <= 1e-6
    fgr = np.round(ref.fgr[0].permute(1, 2, 0).numpy() * 255).astype(np.int16)
    assert np.abs(res.foreground.astype(np.int16) - fgr).max() <= 1     # float rounding at .5 only


def test_parity_in_every_refine_mode(net):
    src, bgr = frames(40, 60, seed=1)
    eng = make_engine(net)
    eng.set_background(bgr)
    for mode in ("full", "thresholding", "sampling"):
        eng.configure(refine_mode=mode, refine_threshold=0.01)
        ref_net = copy.deepcopy(net)
        ref_net.refiner.mode, ref_net.refiner.threshold = mode, 0.01
        assert np.abs(eng.process(src).alpha - model_out(ref_net, src, bgr).pha[0, 0].numpy()).max() <= 1e-6


def test_known_answers_with_a_difference_key_model():
    src, bgr = frames(9, 11, seed=2)
    eng = MattingEngine(model=DiffKey(), device="cpu")
    eng.set_background(bgr)
    res = eng.process(src)
    np.testing.assert_allclose(res.alpha, diffkey_alpha(src, bgr), atol=1e-6)
    np.testing.assert_array_equal(res.foreground, src)                    # fgr = src survives the round trip


def test_composite_over_colour_and_image_matches_the_formula():
    src, bgr = frames(16, 24, seed=3)
    bg_img = frames(16, 24, seed=4)[0]
    eng = MattingEngine(model=DiffKey(), device="cpu")
    eng.set_background(bgr)
    pha = diffkey_alpha(src, bgr)[..., None].astype(np.float64)
    np.testing.assert_array_equal(eng.process(src, composite=np.array([10, 200, 30], np.uint8)).composite,
                                  eng.process(src, composite=[10, 200, 30]).composite)
    for bg in ((10, 200, 30), bg_img):
        res = eng.process(src, composite=bg)
        bgf = np.asarray(bg, np.float64).reshape((1, 1, 3) if isinstance(bg, tuple) else bg.shape) / 255
        want = np.round((src / 255 * pha + bgf * (1 - pha)) * 255)
        assert np.abs(res.composite - want).max() <= 1
        assert np.mean(res.composite == want) > 0.99
    # alpha 0 everywhere (frame == plate): the composite is the background colour exactly
    res = eng.process(bgr, composite=(1, 2, 3))
    assert (res.composite == np.array([1, 2, 3], np.uint8)).all()


def test_composite_with_the_real_model_uses_its_alpha_and_foreground(net):
    src, bgr = frames(20, 28, seed=5)
    eng = make_engine(net)
    eng.set_background(bgr)
    res = eng.process(src, composite=(255, 0, 255))
    a = res.alpha[..., None].astype(np.float64)
    want = res.foreground / 255 * a + np.array([1.0, 0.0, 1.0]) * (1 - a)
    assert np.abs(res.composite - want * 255).max() <= 1.0     # fgr quantised to uint8 + rounding


def test_plate_difference_known_values():
    bgr = np.full((10, 10, 3), 100, np.uint8)
    eng = MattingEngine(model=DiffKey(), device="cpu")
    eng.set_background(bgr)
    assert eng.process(bgr).plate_difference == 0.0
    assert PLATE_DIFF_THRESHOLD == 0.1
    src = bgr.copy()
    src[:5, :, 1] = 126                       # |26| / 255 > 0.1 on half the pixels, one channel
    assert eng.process(src).plate_difference == pytest.approx(0.5)
    src[:5, :, 1] = 125                       # |25| / 255 < 0.1
    src[:2, :, 2] = 0                         # 2 rows differ a lot
    assert eng.process(src).plate_difference == pytest.approx(0.2)
    assert eng.process(255 - bgr).plate_difference == 1.0


def test_frames_convert_to_the_floats_of_dividing_by_255():
    frame = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (5, 7, 3), dtype=np.uint8))
    want = frame.permute(2, 0, 1)[None].float() / 255
    got = engine_mod._to_float(frame, torch.float32)
    assert got.is_contiguous() and torch.equal(got, want)
    assert torch.equal(engine_mod._to_float(frame, torch.bfloat16), want.to(torch.bfloat16))
    assert torch.equal(engine_mod._to_float(frame[:, ::2], torch.float32), want[..., ::2])    # strided: torch


def test_plate_difference_counts_pixels_with_any_channel_over_the_threshold():
    rng = np.random.default_rng(3)
    for _ in range(20):
        a = rng.integers(0, 256, (31, 47, 3), dtype=np.uint8)
        b = np.clip(a.astype(int) + rng.integers(-30, 31, a.shape), 0, 255).astype(np.uint8)   # near the threshold
        want = (np.abs(a.astype(int) - b.astype(int)) > 25).any(axis=2).mean()
        assert _plate_difference(a, b) == want


def test_plate_is_prepared_once_per_plate_and_again_on_scale_change(net):
    calls = []

    class Counting(MattingEngine):
        def _prepare_plate(self, bgr, settings):
            calls.append(tuple(bgr.shape))
            return ("prepared", super()._prepare_plate(bgr, settings))

        def _infer(self, src, plate, settings):
            assert plate[0] == "prepared"
            return super()._infer(src, plate[1], settings)

    eng = Counting(model=copy.deepcopy(net), device="cpu")
    a, b = frames(12, 16)
    eng.set_background(b)
    for _ in range(3):
        eng.process(a)
    assert calls == [(1, 3, 12, 16)]
    eng.set_background(frames(8, 8)[1])
    eng.configure(refine_mode="full", refine_sample_pixels=64, refine_threshold=0.2)   # plate-independent
    assert len(calls) == 2
    eng.configure(backbone_scale=0.5)                                                  # re-prepares both plates
    assert sorted(calls[2:]) == [(1, 3, 8, 8), (1, 3, 12, 16)]
    eng.configure(backbone_scale=0.5)                                                  # unchanged: no work
    assert len(calls) == 4


def test_auto_backbone_scale_follows_the_paper_per_frame_size(net):
    assert auto_backbone_scale(1080, 1920) == 0.25 and auto_backbone_scale(2160, 3840) == 0.125
    assert auto_backbone_scale(720, 1280) == 0.375 and auto_backbone_scale(480, 640) == 0.5
    assert auto_backbone_scale(1920, 1080) == 0.25                       # portrait: the long side counts
    seen = []

    class Recording(MattingEngine):
        def _prepare_plate(self, bgr, settings):
            return (settings.scale_for(*bgr.shape[2:]), super()._prepare_plate(bgr, settings))

        def _infer(self, src, plate, settings):
            seen.append((src.shape[-1], plate[0], settings.scale_for(*src.shape[2:])))
            return super()._infer(src, plate[1], settings)

    eng = Recording(model=copy.deepcopy(net), device="cpu", precision="fp32", backbone_scale=AUTO_SCALE)
    small, large = frames(48, 64), frames(40, 1920)
    for _, bgr in (small, large):
        eng.set_background(bgr)
    for src, _ in (small, large, small):
        eng.process(src)
    assert seen == [(64, 0.5, 0.5), (1920, 0.25, 0.25), (64, 0.5, 0.5)]
    assert eng.settings()["backbone_scale"] == AUTO_SCALE
    ref = make_engine(net, backbone_scale=0.25)                          # auto at 1920 wide = fixed 0.25
    ref.set_background(large[1])
    np.testing.assert_allclose(eng.process(large[0]).alpha, ref.process(large[0]).alpha, atol=1e-4)
    eng.configure(backbone_scale=0.125)                                  # fixed again: every size re-prepared
    eng.process(small[0])
    assert seen[-1] == (64, 0.125, 0.125)


def test_plate_cache_api_and_errors():
    eng = MattingEngine(model=DiffKey(), device="cpu")
    src, bgr = frames(6, 8)
    with pytest.raises(NoBackgroundError, match="set_background"):
        eng.process(src)
    keep = bgr.copy()
    eng.set_background(bgr)
    bgr[:] = 0                                  # the caller reusing its buffer does not touch the plate
    assert eng.has_background((6, 8)) and not eng.has_background((8, 6))
    plate = eng.background((6, 8))
    np.testing.assert_array_equal(plate, keep)
    assert not plate.flags.writeable and eng.background((5, 5)) is None
    eng.set_background(frames(4, 4)[1])
    with pytest.raises(SizeMismatchError) as e:
        eng.process(frames(5, 7)[0])
    assert "5x7" in str(e.value) and "4x4" in str(e.value) and "6x8" in str(e.value)
    eng.clear_background((4, 4))
    assert not eng.has_background((4, 4)) and eng.has_background((6, 8))
    eng.process(src)
    eng.clear_background()
    with pytest.raises(NoBackgroundError):
        eng.process(src)


def test_input_validation():
    eng = MattingEngine(model=DiffKey(), device="cpu")
    src, bgr = frames(6, 8)
    eng.set_background(bgr)
    bad = [src.astype(np.float32), src[..., 0], np.dstack([src, src[..., :1]]), src[:0], src.tolist()]
    for x in bad:
        with pytest.raises(ValueError):
            eng.process(x)
        with pytest.raises(ValueError):
            eng.set_background(x)
    for comp in [(256, 0, 0), (1, 2), "red", (1.0, 2, 3), (True, 0, 0), np.array([0.0, 1.0, 0.0]), src[:3],
                 src.astype(np.float32)]:
        with pytest.raises(ValueError, match="composite"):
            eng.process(src, composite=comp)
    # non-contiguous, negative-stride and read-only frames are accepted and give the same answer
    flipped = src[:, ::-1]
    eng.set_background(bgr[:, ::-1])
    ro = np.ascontiguousarray(flipped)
    ro.flags.writeable = False
    np.testing.assert_array_equal(eng.process(flipped).alpha, eng.process(ro).alpha)
    padded = np.zeros((6, 9, 3), np.uint8)
    padded[:, :8] = src[:, ::-1]
    np.testing.assert_array_equal(eng.process(padded[:, :8]).alpha, eng.process(ro).alpha)
    rgba_view = np.dstack([ro, np.full((6, 8), 9, np.uint8)])[:, :, :3]       # pixel stride 4, as rgba8 gives
    res = eng.process(rgba_view)
    np.testing.assert_array_equal(res.alpha, eng.process(ro).alpha)
    np.testing.assert_array_equal(res.foreground, ro)


def test_configure_validation_is_atomic_and_settings_apply(net):
    eng = make_engine(net, refine_mode="thresholding", refine_threshold=0.3, backbone_scale=0.125)
    assert eng.settings() == {"backbone_scale": 0.125, "refine_mode": "thresholding",
                              "refine_sample_pixels": 400, "refine_threshold": 0.3}
    bad = [dict(refine_mode="sample"), dict(refine_sample_pixels=15), dict(refine_sample_pixels=100.0),
           dict(refine_sample_pixels=True), dict(refine_threshold=1.5), dict(refine_threshold=float("nan")),
           dict(backbone_scale=-0.25), dict(backbone_scale=0.75), dict(backbone_scale="0.25"),
           dict(refine_mode="full", backbone_scale=2.0)]
    for kw in bad:
        with pytest.raises(ValueError, match=next(iter(kw)) if len(kw) == 1 else "backbone_scale"):
            eng.configure(**kw)
    assert eng.settings()["refine_mode"] == "thresholding"               # nothing of a rejected call applied
    eng.configure(refine_mode="sampling", refine_sample_pixels=160, backbone_scale=0.5)
    assert eng.settings() == {"backbone_scale": 0.5, "refine_mode": "sampling", "refine_sample_pixels": 160,
                              "refine_threshold": 0.3}
    for kw in (dict(backbone_scale=1e-9), dict(backbone_scale=0.0001), dict(backbone_scale=MIN_BACKBONE_SCALE / 2)):
        with pytest.raises(ValueError, match=r"backbone_scale must be a number in \[1/64, 1/2\]"):
            eng.configure(**kw)
    with pytest.raises(ValueError, match="no refiner"):
        MattingEngine(model=DiffKey(), device="cpu").configure(refine_mode="full")
    with pytest.raises(ValueError, match="no refiner"):
        MattingEngine(model=MattingBase("mobilenetv2"), device="cpu", backbone_scale=0.25)


def test_checkpoint_loading_and_default_weights(net, tmp_path, monkeypatch):
    path = str(tmp_path / "m.pth")
    save_checkpoint(path, net)
    eng = MattingEngine(path, device="cpu", precision="fp32", refine_mode="full")
    assert eng.settings()["refine_mode"] == "full" and eng.settings()["refine_sample_pixels"] == 400
    src, bgr = frames(20, 20)
    eng.set_background(bgr)
    ref_net = copy.deepcopy(net)
    ref_net.refiner.mode = "full"
    assert np.abs(eng.process(src).alpha - model_out(ref_net, src, bgr).pha[0, 0].numpy()).max() <= 1e-6
    missing = str(tmp_path / "nowhere" / "default.safetensors")
    monkeypatch.setattr(engine_mod, "DEFAULT_WEIGHTS", missing)
    with pytest.raises(FileNotFoundError, match="nowhere/default.safetensors") as e:
        MattingEngine(device="cpu")
    assert "checkpoint=" in str(e.value)
    with pytest.raises(ValueError, match="either"):
        MattingEngine(path, model=net, device="cpu")


def test_device_and_precision_choices(net):
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    for spec in ("tpu", "cuda:x", "", 0):
        with pytest.raises(ValueError, match="device"):
            resolve_device(spec)
    if not torch.cuda.is_available():
        for spec in ("cuda", "cuda:0"):
            with pytest.raises(ValueError, match="CUDA is not available"):
                resolve_device(spec)
    with pytest.raises(ValueError, match="precision"):
        make_engine(net, precision="fp64")
    with pytest.raises(ValueError, match="fp16 needs CUDA"):
        make_engine(net, precision="fp16")
    src, bgr = frames(24, 32)
    fp32, bf16 = make_engine(net, precision="fp32"), make_engine(net, precision="bf16")
    for e in (fp32, bf16):
        e.set_background(bgr)
    a, b = fp32.process(src, composite=(0, 0, 0)), bf16.process(src, composite=(0, 0, 0))
    assert bf16.precision == "bf16" and next(bf16.model.parameters()).dtype == torch.bfloat16
    assert b.alpha.dtype == np.float32 and b.foreground.dtype == np.uint8
    assert np.abs(a.alpha - b.alpha).max() < 0.02
    assert np.abs(a.foreground.astype(int) - b.foreground).max() <= 8


def test_auto_precision_is_bf16_for_the_fast_path_where_the_cpu_has_it(net, monkeypatch):
    from matte_ros.core import settings
    from matte_ros.core.model import MattingBase
    for native, want in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(settings.torch.cpu, "_is_avx512_bf16_supported", lambda n=native: n)
        monkeypatch.setattr(settings.torch.cpu, "_is_amx_tile_supported", lambda: False)
        assert settings.native_bf16() is native
        e = MattingEngine(model=copy.deepcopy(net), device="cpu")  # precision="auto" is the default
        assert e.precision == want and next(e.model.parameters()).dtype == PRECISIONS[want]
        base = MattingEngine(model=MattingBase("mobilenetv2"), device="cpu")
        assert base.precision == "fp32"                            # bf16's quality is checked on the fast path only
    assert settings.auto_precision(torch.device("cuda"), False) == "fp16"


@pytest.mark.gpu
def test_cuda_fp16_matches_cpu_fp32(net):
    src, bgr = frames(64, 96)
    cpu, gpu = make_engine(net), MattingEngine(model=copy.deepcopy(net), device="cuda", precision="fp16")
    for e in (cpu, gpu):
        e.set_background(bgr)
    assert next(gpu.model.parameters()).dtype == torch.float16
    assert np.abs(cpu.process(src).alpha - gpu.process(src).alpha).max() < 0.02


def test_threads_see_consistent_plates_and_settings(net):
    """Writers swap plates and settings while readers process: every frame must run with one plate
    and one set of settings from start to end, and give the answer that combination gives."""
    errors = []

    class Checked(MattingEngine):
        def _prepare_plate(self, bgr, settings):
            return (settings.backbone_scale, super()._prepare_plate(bgr, settings))

        def _infer(self, src, plate, settings):
            before = self._settings
            if settings is not before:
                errors.append("the frame was not given the engine's current settings")
            if plate[0] != settings.backbone_scale:
                errors.append(f"plate prepared for scale {plate[0]} used at scale {settings.backbone_scale}")
            time.sleep(0.002)                      # widen the window a missing lock would leave open
            out = super()._infer(src, plate[1], settings)
            if self._settings is not before:
                errors.append("settings changed during a frame")
            return out

    src, plate_a = frames(16, 16, seed=7)
    plate_b = frames(16, 16, seed=8)[1]
    eng = Checked(model=copy.deepcopy(net), device="cpu")
    expected = []
    for plate in (plate_a, plate_b):
        eng.set_background(plate)
        for scale in (0.25, 0.5):
            for mode in ("sampling", "full"):
                eng.configure(backbone_scale=scale, refine_mode=mode)
                expected.append(eng.process(src).alpha)
    assert len({a.tobytes() for a in expected}) >= 4           # the combinations give distinct answers
    stop = threading.Event()

    def plates():
        while not stop.is_set():
            for p in (plate_a, plate_b):
                eng.set_background(p)

    def settings():
        while not stop.is_set():
            for scale, mode in ((0.25, "full"), (0.5, "sampling"), (0.5, "full"), (0.25, "sampling")):
                eng.configure(backbone_scale=scale, refine_mode=mode)

    def reader():
        for _ in range(25):
            alpha = eng.process(src).alpha
            if not any(np.array_equal(alpha, e) for e in expected):
                errors.append("a result matches no (plate, settings) combination")

    writers = [threading.Thread(target=plates), threading.Thread(target=settings)]
    readers = [threading.Thread(target=reader) for _ in range(2)]
    for t in writers + readers:
        t.start()
    for t in readers:
        t.join()
    stop.set()
    for t in writers:
        t.join()
    assert errors == []
