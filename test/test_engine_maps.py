"""The error and refinement maps come from the frame's own coarse pass: FastRefine.forward(maps=True)
gives MattingRefine's err_sm and ref_sm, the engine returns them at the frame's size only when asked,
and asking runs the coarse network once per frame."""
import copy

import numpy as np
import pytest
import torch
from offline_inputs import tiny_model
from torch.nn import functional as F

from matte_ros.core.engine import MattingEngine
from matte_ros.core.model import MattingBase
from matte_ros.core.model.fast import FastRefine, RefineSettings

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def inputs(h, w, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(2)]


def tensor(x):
    return torch.from_numpy(x).permute(2, 0, 1)[None].float() / 255


def reference_maps(model, frame, plate, settings):
    """MattingRefine's own err_sm and ref_sm for these settings, upsampled to the frame and cropped
    as the published programs write them."""
    model = copy.deepcopy(model)
    model.backbone_scale = settings.backbone_scale
    r = model.refiner
    r.mode, r.sample_pixels, r.threshold = settings.mode, settings.sample_pixels, settings.threshold
    h, w = frame.shape[:2]
    h4, w4 = -(-h // 4) * 4, -(-w // 4) * 4
    with torch.no_grad():
        out = model(tensor(frame), tensor(plate))
    err = F.interpolate(out.err_sm, (h4, w4), mode="bilinear", align_corners=False)[0, 0, :h, :w].numpy()
    ref = F.interpolate(out.ref_sm, (h4, w4), mode="nearest")[0, 0, :h, :w].numpy()
    return err, ref


@pytest.mark.parametrize("mode", ["sampling", "thresholding", "full"])
@pytest.mark.parametrize("sync_free", [False, True])
def test_fast_path_maps_are_the_models(model, mode, sync_free):
    fast = FastRefine(model)
    fast.sync_free = sync_free
    s = RefineSettings.of(model).replace(mode=mode, threshold=0.36)     # about the median error
    for h, w in ((64, 96), (62, 90)):
        frame, plate = inputs(h, w)
        with torch.no_grad():
            ref_out = model.__class__.forward(_with(model, s), tensor(frame), tensor(plate))
        out = fast.forward(tensor(frame), fast.prepare_plate(tensor(plate), s), s, maps=True)
        assert (out.err_sm - ref_out.err_sm).abs().max() < 1e-4
        assert torch.equal(out.ref_sm, ref_out.ref_sm)
        assert 0 < out.ref_sm.sum() < out.ref_sm.numel() or mode == "full"
        plain = fast.forward(tensor(frame), fast.prepare_plate(tensor(plate), s), s)
        assert plain.err_sm is None and plain.ref_sm is None and torch.equal(plain.pha, out.pha)


def _with(model, s):
    m = copy.deepcopy(model)
    m.backbone_scale = s.backbone_scale
    m.refiner.mode, m.refiner.sample_pixels, m.refiner.threshold = s.mode, s.sample_pixels, s.threshold
    return m


def counting(engine):
    """Wrap the engine's coarse network so that each run of it is counted (on the CPU the fast path
    runs it as a trace, which does not call the backbone's Python forward)."""
    calls = []
    fast = getattr(engine, "_fast", None)
    owner, name = (fast, "_coarse") if fast is not None and fast._coarse is not None else (engine.model.backbone,
                                                                                             "forward")
    run = getattr(owner, name)

    def counted(*args, **kwargs):
        calls.append(1)
        return run(*args, **kwargs)

    setattr(owner, name, counted)
    return calls


def test_engine_returns_the_maps_only_when_asked_from_one_coarse_pass(model):
    eng = MattingEngine(model=copy.deepcopy(model), device="cpu", precision="fp32", backbone_scale=0.5)
    calls = counting(eng)
    for h, w in ((64, 96), (62, 90)):
        frame, plate = inputs(h, w, seed=h)
        eng.set_background(plate)
        plain = eng.process(frame)
        assert plain.error is None and plain.refinement is None
        res = eng.process(frame, maps=True)
        err, ref = reference_maps(model, frame, plate, eng.refine_settings)
        assert res.error.shape == res.refinement.shape == (h, w) and res.error.dtype == np.float32
        assert np.abs(res.error - err).max() < 1e-4
        assert np.array_equal(res.refinement, ref) and 0 < ref.sum() < ref.size
        assert np.array_equal(res.alpha, plain.alpha)
    assert len(calls) == 4                     # one coarse pass per processed frame, maps or not


def test_a_base_model_gives_its_error_and_no_refinement():
    torch.manual_seed(0)
    eng = MattingEngine(model=MattingBase("mobilenetv2").eval(), device="cpu", precision="fp32")
    frame, plate = inputs(32, 48)
    eng.set_background(plate)
    res = eng.process(frame, maps=True)
    with torch.no_grad():
        want = eng.model(tensor(frame), tensor(plate)).err[0, 0].numpy()
    assert res.refinement is None and np.abs(res.error - want).max() < 1e-5
