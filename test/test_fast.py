"""FastRefine computes what MattingRefine computes (within float32 rounding), for every refine
mode, both refiner kernel sizes, two backbones, odd sizes and batches, with the settings given
per call; its parts are checked against the full-frame operations they replace."""
import copy
import dataclasses
import functools
import gc
import weakref

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from matte_ros.core.model import MattingBase, MattingRefine
from matte_ros.core.model import fast as fast_module
from matte_ros.core.model.fast import FastRefine, RefineSettings, fold_batchnorm
from matte_ros.core.model.tiles import tile_sides
from matte_ros.core.model.windows import bilinear_windows, clamped_block, windows

TOL = 1e-4


def _model(backbone: str, kernel: int) -> MattingRefine:
    """Random weights, randomised BatchNorm statistics (so folding matters) and a positive error
    bias (so the refiner selects patches with distinct errors, not ties at zero)."""
    g = torch.Generator().manual_seed(1)
    model = MattingRefine(backbone, backbone_scale=0.25, refine_sample_pixels=16 * 60, refine_threshold=0.5,
                          refine_kernel_size=kernel).eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.4 - 0.2)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) * 0.4 - 0.2)
    model.decoder.conv4.bias.data[4] += 0.5
    return model


@pytest.fixture(scope="module", params=[("mobilenetv2", 3), ("mobilenetv2", 1), ("resnet50", 3)],
                ids=["mobilenetv2-k3", "mobilenetv2-k1", "resnet50-k3"])
def pair(request):
    model = _model(*request.param)
    return model, FastRefine(model)


def _compare(model, fast, src, bgr):
    """The fast path with the model's current settings, given per call, against the model."""
    with torch.no_grad():
        ref = model(src, bgr)
    settings = RefineSettings.of(model)
    pha, fgr = fast(src, fast.prepare_plate(bgr, settings), settings)
    assert pha.shape == ref.pha.shape and fgr.shape == ref.fgr.shape
    assert (pha - ref.pha).abs().max() < TOL
    assert (fgr - ref.fgr).abs().max() < TOL
    return ref


def _clear_selection(model, src, bgr):
    """src, bgr: (1, 3, H, W). Put the threshold and the sample count at the widest gap between the
    reference's quarter-res errors, so float32 rounding (~1e-7) cannot move a patch across the
    selection boundary (the errors of a random model cluster tightly)."""
    with torch.no_grad():
        err = model(src, bgr).err_sm
    err = F.interpolate(err, (-(-src.shape[2] // 4), -(-src.shape[3] // 4)), mode="bilinear", align_corners=False)
    e = err.flatten().sort(descending=True).values
    lo, hi = e.numel() // 5, 4 * e.numel() // 5
    gaps = e[lo:hi] - e[lo + 1:hi + 1]
    i = int(gaps.argmax()) + lo
    assert gaps.max() > 1e-5
    model.refiner.threshold = float(e[i] + e[i + 1]) / 2
    model.refiner.sample_pixels = 16 * (i + 1)


@pytest.mark.parametrize("mode", ["sampling", "thresholding", "full"])
@pytest.mark.parametrize("prevent", [True, False])
def test_equals_matting_refine(pair, mode, prevent):
    model, fast = pair
    model.refiner.mode, model.refiner.prevent_oversampling = mode, prevent
    h, w = (61, 87) if prevent else (48, 72)                   # odd size (padded), and a multiple of 4
    src, bgr = torch.rand(1, 3, h, w), torch.rand(1, 3, h, w)
    _clear_selection(model, src, bgr)
    ref = _compare(model, fast, src, bgr)
    n, total = ref.ref_sm.sum().item(), ref.ref_sm.numel()
    assert 0 < n <= total and (mode == "full" or n < total)      # patches were refined and pasted


@pytest.mark.parametrize("m", [2, 8])
@pytest.mark.parametrize("mode", ["sampling", "thresholding"])
def test_every_tile_size_gives_the_per_patch_answer(pair, m, mode, monkeypatch):
    """Tiles of m x m patches (odd size: tiles cross the padded border) equal per-patch refinement."""
    model, fast = pair
    model.refiner.mode, model.refiner.prevent_oversampling = mode, True
    src, bgr = torch.rand(2, 3, 61, 87), torch.rand(2, 3, 61, 87)
    _clear_selection(model, src[:1], bgr[:1])
    monkeypatch.setattr(fast_module, "tile_sides", lambda idx, shape, cost: torch.full_like(idx[0], m))
    ref = _compare(model, fast, src, bgr)
    assert 0 < ref.ref_sm.sum() < ref.ref_sm.numel()


def _patches(rows, cols):
    return torch.zeros(rows.numel(), dtype=torch.long), rows.reshape(-1), cols.reshape(-1)


def test_tile_sides_follow_how_the_patches_cluster():
    fast = FastRefine(_model("mobilenetv2", 3))
    cost = functools.partial(fast._tile_cost, ratio=0.5)
    rows, cols = torch.meshgrid(torch.arange(16, 48), torch.arange(40, 56), indexing="ij")   # one solid block
    assert tile_sides(_patches(rows, cols), (1, 1, 64, 96), cost).eq(8).all()
    spread = torch.arange(0, 64, 9)                                                          # isolated patches
    assert tile_sides(_patches(spread, spread), (1, 1, 64, 96), cost).eq(1).all()
    line = torch.arange(0, 64)                                                               # a thin outline
    sides = tile_sides(_patches(line, line.clone().fill_(50)), (1, 1, 64, 96), cost)
    assert sides.eq(sides[0]).all() and 1 < sides[0] < 8


def test_solid_blocks_and_scattered_patches_get_their_own_tile_sides():
    fast = FastRefine(_model("mobilenetv2", 3))
    cost = functools.partial(fast._tile_cost, ratio=0.5)
    rows, cols = torch.meshgrid(torch.arange(0, 16), torch.arange(8, 24), indexing="ij")
    spread = torch.arange(17, 31, 5)
    block, scattered = _patches(rows, cols), _patches(spread, spread)
    sides = tile_sides(tuple(torch.cat([p, q]) for p, q in zip(block, scattered)), (1, 1, 32, 36), cost)
    assert sides[:256].eq(8).all() and sides[256:].eq(1).all()


@pytest.mark.parametrize("mode", ["sampling", "thresholding"])
def test_mixed_tile_sides_give_the_per_patch_answer(pair, mode, monkeypatch):
    """Patches of one frame refined in tiles of every side at once (neighbours in different ones)."""
    model, fast = pair
    model.refiner.mode, model.refiner.prevent_oversampling = mode, True
    src, bgr = torch.rand(2, 3, 61, 87), torch.rand(2, 3, 61, 87)
    _clear_selection(model, src[:1], bgr[:1])
    sides = torch.tensor([1, 2, 4, 8])
    monkeypatch.setattr(fast_module, "tile_sides", lambda idx, shape, cost: sides[(idx[1] + 2 * idx[2]) % 4])
    ref = _compare(model, fast, src, bgr)
    assert ref.ref_sm.sum() > 8


def test_settings_given_per_call_apply_and_the_construction_settings_are_the_default():
    model = _model("mobilenetv2", 3)
    fast = FastRefine(model)
    src, bgr = torch.rand(1, 3, 64, 96), torch.rand(1, 3, 64, 96)
    plate = fast.prepare_plate(bgr)                                # at the model's scale, 0.25
    outputs = []
    for scale, mode in [(0.5, "sampling"), (0.125, "full"), (0.25, "sampling")]:
        settings = RefineSettings(scale, mode, 16 * 10_000, 0.5, prevent_oversampling=False)   # every patch
        ref_model = copy.deepcopy(model)
        ref_model.backbone_scale, ref_model.refiner.mode = scale, mode
        ref_model.refiner.sample_pixels, ref_model.refiner.prevent_oversampling = 16 * 10_000, False
        with torch.no_grad():
            ref = ref_model(src, bgr)
        pha, fgr = fast(src, plate, settings)                      # a plate prepared for another scale works
        assert (pha - ref.pha).abs().max() < TOL and (fgr - ref.fgr).abs().max() < TOL
        assert ref.ref_sm.all() and ref.pha_sm.shape[2] == int(64 * scale)
        outputs.append(pha)
    assert not torch.equal(outputs[0], outputs[1])                 # the settings changed the answer
    assert (model.backbone_scale, model.refiner.mode) == (0.25, "sampling")   # nothing written back
    assert fast.default_settings == RefineSettings.of(model)
    with torch.no_grad():
        want = model(src, bgr).pha
    assert (fast(src, plate)[0] - want).abs().max() < TOL
    with pytest.raises(ValueError, match="RefineSettings"):
        fast(src, plate, {"backbone_scale": 0.5})


def test_refine_settings_are_checked_and_frozen():
    s = RefineSettings(backbone_scale=np.float32(0.5), sample_pixels=np.int64(160), threshold=np.float64(0.2))
    assert (type(s.backbone_scale), type(s.sample_pixels), type(s.threshold)) == (float, int, float)
    assert RefineSettings(backbone_scale=0.0).scale_for(1080, 1920) == 0.25        # AUTO_SCALE: per frame size
    assert RefineSettings(backbone_scale=0.125).scale_for(1080, 1920) == 0.125
    bad = [("backbone_scale", 1e-9), ("backbone_scale", 0.0001), ("backbone_scale", 0.75), ("backbone_scale", "0.25"),
           ("mode", "dense"), ("sample_pixels", 15), ("sample_pixels", 100.0), ("sample_pixels", True),
           ("threshold", float("nan")), ("threshold", -0.1), ("prevent_oversampling", 1)]
    for field, value in bad:
        public = field if field == "backbone_scale" else "refine_" + field
        with pytest.raises(ValueError, match=public):
            s.replace(**{field: value})
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.mode = "full"


@pytest.mark.parametrize("h,w", [(40, 40), (48, 64), (5, 300)])
def test_the_smallest_scale_on_a_frame_too_small_for_it_runs_at_one_coarse_pixel(h, w):
    """At 1/64 a 40x40 frame's coarse pass would have no pixel: model and fast path both run it at
    the smallest scale that gives the short side one (1/40 here), the same answer as asking for it."""
    model = _model("mobilenetv2", 3)
    fast = FastRefine(model)
    src, bgr = torch.rand(1, 3, h, w), torch.rand(1, 3, h, w)
    model.backbone_scale = 1 / 64
    model.refiner.sample_pixels, model.refiner.prevent_oversampling = 16 * 10_000, False   # every patch: no ties
    out = _compare(model, fast, src, bgr)
    short = min(-(-h // 4) * 4, -(-w // 4) * 4)
    assert min(out.pha_sm.shape[2:]) == 1
    model.backbone_scale = FastRefine.coarse_scale(RefineSettings(1 / 64), h, w)
    assert model.backbone_scale * short >= 1 > (1 / 64) * short
    with torch.no_grad():
        assert torch.equal(model(src, bgr).pha, out.pha)


def test_built_from_the_fp32_model_folded_then_cast_without_keeping_it():
    model = _model("mobilenetv2", 3)
    fast = FastRefine(model, dtype=torch.bfloat16)
    want = fold_batchnorm(model).state_dict()                    # fp32 fold
    cast_first = fold_batchnorm(copy.deepcopy(model).to(torch.bfloat16)).state_dict()
    got = fast.net.state_dict()
    assert set(got) == set(want)
    assert all(torch.equal(got[k], want[k].to(torch.bfloat16)) for k in want if want[k].is_floating_point())
    assert any(not torch.equal(got[k], cast_first[k].to(torch.bfloat16)) for k in want)   # the order matters
    assert all(p.dtype == torch.float32 for p in model.parameters())          # the model is not changed ...
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None                                                        # ... nor kept


def test_one_plate_serves_a_batch():
    model = _model("mobilenetv2", 3)
    model.refiner.sample_pixels, model.refiner.prevent_oversampling = 16 * 10_000, False   # every patch
    fast = FastRefine(model)
    src, bgr = torch.rand(3, 3, 64, 76), torch.rand(1, 3, 64, 76)
    with torch.no_grad():
        ref = model(src, bgr.expand(3, -1, -1, -1))
    pha, fgr = fast(src, fast.prepare_plate(bgr))
    assert (pha - ref.pha).abs().max() < TOL and (fgr - ref.fgr).abs().max() < TOL


def test_sync_free_sampling_puts_back_the_coarse_values_of_zero_error_patches():
    model = _model("mobilenetv2", 3)
    model.decoder.conv4.bias.data[4] -= 0.4        # mostly zero errors: prevent_oversampling drops them
    model.refiner.sample_pixels = 16 * 300
    src, bgr = torch.rand(1, 3, 64, 96), torch.rand(1, 3, 64, 96)
    fast = FastRefine(model)
    fast.sync_free = True                          # what CUDA runs: refine all k, then put coarse values back
    ref = _compare(model, fast, src, bgr)
    assert 0 < ref.ref_sm.sum() < 300          # some of the top 300 per image had zero error


@pytest.mark.parametrize("h,w,oh,ow", [(7, 9, 20, 31), (12, 16, 24, 32), (5, 5, 20, 20)])
def test_bilinear_windows_are_crops_of_the_full_interpolation(h, w, oh, ow):
    x = torch.rand(2, 5, h, w)
    pad = 8
    full = F.pad(F.interpolate(x, (oh, ow), mode="bilinear", align_corners=False), (pad, pad, pad, pad))
    b = torch.tensor([0, 1, 1, 0, 1])
    y0 = torch.tensor([-3, 0, oh - 5, 4, oh - 1])
    x0 = torch.tensor([-3, ow - 5, 2, -1, ow - 2])
    got = bilinear_windows(x.contiguous(memory_format=torch.channels_last), (oh, ow), b, y0, x0, 8)
    for p in range(5):
        want = full[b[p], :, y0[p] + pad:y0[p] + pad + 8, x0[p] + pad:x0[p] + pad + 8].permute(1, 2, 0)
        assert torch.allclose(got[p], want, atol=1e-6)
    assert got[0, :3, :3].abs().max() == 0                                  # zero padding outside


class _GarbageBeyond:
    """A block source like CoarseWindows: rows and columns past the frame's end hold anything."""

    def __init__(self, x):
        self.x, self.shape, self.dtype, self.device = x, x.shape, x.dtype, x.device

    def block(self, b, oy, ox, kh, kw):
        got = clamped_block(self.x, b, oy, ox, kh, kw)
        rows = (oy[:, None] + torch.arange(kh)) >= self.shape[2]
        cols = (ox[:, None] + torch.arange(kw)) >= self.shape[3]
        return got.masked_fill((rows[:, :, None] | cols[:, None, :])[..., None], 1e6)


@pytest.mark.parametrize("h,w,oh,ow", [(12, 16, 24, 32), (5, 6, 20, 24), (7, 9, 20, 31)])
def test_bilinear_windows_never_read_a_block_past_the_frame(h, w, oh, ow):
    """Windows at every edge, from a source whose blocks hold garbage past the frame's end."""
    x = torch.rand(1, 5, h, w)
    full = F.pad(F.interpolate(x, (oh, ow), mode="bilinear", align_corners=False), (8, 8, 8, 8))
    y0, x0 = torch.meshgrid(torch.arange(-3, oh - 2, 3), torch.arange(-3, ow - 2, 3), indexing="ij")
    y0, x0 = y0.reshape(-1), x0.reshape(-1)
    b = torch.zeros_like(y0)
    got = bilinear_windows(_GarbageBeyond(x), (oh, ow), b, y0, x0, 6)
    for p in range(b.numel()):
        want = full[0, :, y0[p] + 8:y0[p] + 14, x0[p] + 8:x0[p] + 14].permute(1, 2, 0)
        assert torch.allclose(got[p], want, atol=1e-6), (int(y0[p]), int(x0[p]))


def test_windows_are_zero_padded_crops():
    x = torch.arange(2 * 3 * 6 * 7, dtype=torch.float32).view(2, 3, 6, 7)
    got = windows(x, torch.tensor([1, 0]), torch.tensor([-2, 3]), torch.tensor([4, -1]), 4)
    padded = F.pad(x, (2, 2, 2, 2))
    assert torch.equal(got[0], padded[1, :, 0:4, 6:10].permute(1, 2, 0))
    assert torch.equal(got[1], padded[0, :, 5:9, 1:5].permute(1, 2, 0))


def test_fold_batchnorm_removes_every_batchnorm_and_keeps_outputs():
    model = _model("mobilenetv2", 3)
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) > 30   # the original is untouched
    x = torch.rand(1, 6, 64, 64)
    with torch.no_grad():
        assert (folded.coarse(x[:, :3], x[:, 3:]) - model.coarse(x[:, :3], x[:, 3:])).abs().max() < TOL


def test_bfloat16_stays_close():
    model = _model("mobilenetv2", 3)
    src, bgr = torch.rand(1, 3, 64, 96), torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        ref = model(src, bgr)
    fast = FastRefine(model, dtype=torch.bfloat16)
    pha, fgr = fast(src, fast.prepare_plate(bgr))
    assert pha.dtype == torch.float32 and fast.net.decoder.conv1.weight.dtype == torch.bfloat16
    assert (pha - ref.pha).abs().mean() < 0.02 and (fgr - ref.fgr).abs().mean() < 0.02


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="MattingRefine"):
        FastRefine(MattingBase("mobilenetv2"))
    fast = FastRefine(_model("mobilenetv2", 3))
    plate = fast.prepare_plate(torch.rand(1, 3, 32, 48))
    with pytest.raises(ValueError, match="backbone_scale"):
        fast(torch.rand(1, 3, 32, 48), plate, RefineSettings(1e-9))
    with pytest.raises(ValueError, match="plate"):
        fast(torch.rand(1, 3, 32, 40), plate)
    with pytest.raises(ValueError, match="float"):
        fast(torch.zeros(1, 3, 32, 48, dtype=torch.uint8), plate)


@pytest.mark.gpu
def test_cuda_fp16_matches_cpu_without_host_sync():
    model = _model("mobilenetv2", 3)
    src, bgr = torch.rand(1, 3, 128, 192), torch.rand(1, 3, 128, 192)
    with torch.no_grad():
        ref = model(src, bgr)
    fast = FastRefine(model.to("cuda"), dtype=torch.float16)
    plate = fast.prepare_plate(bgr.cuda())
    src_cuda = src.cuda()
    fast(src_cuda, plate)                          # warm-up (allocations, kernel selection)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")        # any host synchronisation inside raises
    try:
        pha, fgr = fast(src_cuda, plate)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert (pha.float().cpu() - ref.pha).abs().mean() < 0.02
    assert (fgr.float().cpu() - ref.fgr).abs().mean() < 0.02


def test_engine_runs_the_fast_path_with_the_reference_numbers():
    from matte_ros.core.engine import MattingEngine
    model = _model("mobilenetv2", 3)
    g = torch.Generator().manual_seed(2)
    src_u8, bgr_u8 = (torch.randint(0, 256, (45, 62, 3), generator=g, dtype=torch.uint8) for _ in range(2))
    eng = MattingEngine(model=model, device="cpu", precision="fp32")
    eng.set_background(bgr_u8.numpy())
    res = eng.process(src_u8.numpy())
    with torch.no_grad():
        ref = model(*(x.permute(2, 0, 1)[None].float() / 255 for x in (src_u8, bgr_u8)))
    assert isinstance(eng._fast, FastRefine)
    assert abs(res.alpha - ref.pha[0, 0].numpy()).max() < TOL
    assert abs(res.foreground.astype(int) - (ref.fgr[0].permute(1, 2, 0) * 255).round().int().numpy()).max() <= 1


@pytest.mark.slow
@pytest.mark.parametrize("h, w, scale, pixels", [(1080, 1920, 0.25, 80_000), (1082, 1918, 0.25, 80_000)])
def test_default_model_at_the_papers_settings_equals_the_published_forward(h, w, scale, pixels):
    """A trained model, a frame with a subject touching the bottom edge, the paper's HD settings
    (and an odd size): every refined patch, the frame's edges included, as the published network."""
    from matte_ros.core.model import DEFAULT_WEIGHTS, load_checkpoint
    from matte_ros.core.synthetic import SceneSequence
    model = load_checkpoint(DEFAULT_WEIGHTS).eval()
    model.backbone_scale = scale
    model.refiner.mode, model.refiner.sample_pixels, model.refiner.prevent_oversampling = "sampling", pixels, False
    seq = SceneSequence(h, w, seed=0)
    bgr = torch.from_numpy(seq.background()).permute(2, 0, 1)[None].float() / 255
    for i in (10, 30, 50, 20, 40):          # a frame whose refined patches reach the last row (the weights decide)
        src = torch.from_numpy(seq.frame(i)[0]).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            if model(src, bgr).ref_sm[0, 0, -1].sum() > 0:
                break
    ref = _compare(model, FastRefine(model), src, bgr)
    assert ref.ref_sm[0, 0, -1].sum() > 0                     # patches on the last row were refined


@pytest.mark.parametrize("backbone", ["mobilenetv2", "resnet50"])
def test_the_traced_coarse_pass_is_bit_identical_to_the_eager_one_and_shares_its_weights(backbone, monkeypatch):
    fast = FastRefine(_model(backbone, 3))
    assert fast._coarse is not None                 # on the CPU the coarse pass is traced
    g = torch.Generator().manual_seed(5)
    for h, w in ((96, 128), (75, 101)):             # one trace per input shape
        bgr, src = torch.rand(1, 3, h, w, generator=g), torch.rand(2, 3, h, w, generator=g)
        plate = fast.prepare_plate(bgr)
        traced = fast(src, plate)
        coarse, fast._coarse = fast._coarse, None
        eager = fast(src, plate)
        fast._coarse = coarse
        assert all(torch.equal(a, b) for a, b in zip(traced, eager))
    traces = [t for t in coarse._traces.values() if t is not None]
    assert len(traces) == 2
    weights = {p.data_ptr() for p in fast.net.parameters()}
    assert all(p.data_ptr() in weights for t in traces for p in t.parameters())     # no second copy

    def untraceable(*args, **kwargs):
        raise RuntimeError("the tracer cannot follow this")
    monkeypatch.setattr(torch.jit, "trace", untraceable)
    bgr, src = torch.rand(1, 3, 64, 64, generator=g), torch.rand(1, 3, 64, 64, generator=g)
    plate = fast.prepare_plate(bgr)
    out = fast(src, plate)                          # that shape runs eagerly
    fast._coarse = None
    assert all(torch.equal(a, b) for a, b in zip(out, fast(src, plate)))
