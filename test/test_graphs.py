"""GraphedRefine: captured calls give the numbers of eager ones, with fresh inputs and plates on
every replay, results that later replays leave alone, one capture per key and eager fallbacks.
On the CPU the capture is a stand-in that replays by running the captured call again into the same
output tensors (as a CUDA graph writes them); on the meta device the CUDA branches of the fast path
are run without data, which no data-dependent operation survives; the real CUDA graphs are checked
by the gpu tests."""
import copy

import numpy as np
import pytest
import torch

from matte_ros.core.model import DEFAULT_WEIGHTS, MattingRefine, load_checkpoint
from matte_ros.core.model.fast import FastRefine, RefineSettings
from matte_ros.core.model.graphs import GraphedRefine

H, W = 64, 96
SAMPLING = RefineSettings(0.25, "sampling", 16 * 40)


class RerunCapture:
    """A capture that replays by calling ``run`` again and copying into the first call's outputs."""

    def __init__(self, fail: bool = False):
        self.calls, self.fail = 0, fail

    def __call__(self, run):
        self.calls += 1
        if self.fail:
            raise RuntimeError("operation not permitted when stream is capturing")
        outputs = run()

        def replay():
            for out, new in zip(outputs, run()):
                out.copy_(new)
        return replay, outputs


@pytest.fixture(scope="module")
def fast():
    model = MattingRefine("mobilenetv2", backbone_scale=0.25, refine_sample_pixels=16 * 40).eval()
    f = FastRefine(model)
    f.sync_free = True                  # as on CUDA: static shapes in sampling mode
    return f


def _frames(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(1, 3, H, W, generator=g) for _ in range(n)]


def _same(got, want):
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


def test_replays_match_eager_calls_with_new_frames_and_plates(fast):
    src, bgr = _frames(3), _frames(2, seed=1)
    plates = [fast.prepare_plate(b, SAMPLING) for b in bgr]
    capture = RerunCapture()
    graphed = GraphedRefine(fast, capture=capture)
    first = graphed(src[0], plates[0], SAMPLING)
    kept = (first[0].clone(), first[1].clone())
    for s in src:
        _same(graphed(s, plates[0], SAMPLING), fast(s, plates[0], SAMPLING))
    _same(first, kept)                                   # results are copies: later replays leave them alone
    for s in src:                                        # another plate of the same size: copied in, no capture
        _same(graphed(s, plates[1], SAMPLING), fast(s, plates[1], SAMPLING))
    _same(graphed(src[0], plates[0], SAMPLING), fast(src[0], plates[0], SAMPLING))
    assert capture.calls == 1 and graphed.captured == 1


def test_one_capture_per_frame_size_and_settings_least_recent_dropped(fast):
    capture = RerunCapture()
    graphed = GraphedRefine(fast, capture=capture, max_graphs=2)
    src = _frames(1)[0]
    plate = fast.prepare_plate(_frames(1, seed=1)[0], SAMPLING)
    more = SAMPLING.replace(sample_pixels=16 * 80)
    full = SAMPLING.replace(mode="full")
    for s in (SAMPLING, more, full):
        _same(graphed(src, plate, s), fast(src, plate, s))
    assert capture.calls == 3 and graphed.captured == 2                       # SAMPLING was dropped
    graphed(src, plate, more)
    assert capture.calls == 3
    small, small_plate = src[:, :, :32, :48], fast.prepare_plate(_frames(1, seed=2)[0][:, :, :32, :48], SAMPLING)
    _same(graphed(small, small_plate, SAMPLING), fast(small, small_plate, SAMPLING))
    assert capture.calls == 4


def test_thresholding_and_host_selection_run_eagerly(fast):
    capture = RerunCapture()
    graphed = GraphedRefine(fast, capture=capture)
    src, plate = _frames(1)[0], fast.prepare_plate(_frames(1, seed=1)[0], SAMPLING)
    thresholding = SAMPLING.replace(mode="thresholding", threshold=0.01)
    _same(graphed(src, plate, thresholding), fast(src, plate, thresholding))
    host = copy.copy(fast)
    host.sync_free = False                               # the patch count is known only on the host
    _same(GraphedRefine(host, capture=capture)(src, plate, SAMPLING), host(src, plate, SAMPLING))
    assert capture.calls == 0


def test_a_failed_capture_warns_once_and_runs_eagerly(fast):
    capture = RerunCapture(fail=True)
    graphed = GraphedRefine(fast, capture=capture)
    src, plate = _frames(2), fast.prepare_plate(_frames(1, seed=1)[0], SAMPLING)
    with pytest.warns(RuntimeWarning, match="not captured as a CUDA graph.*runs eagerly"):
        _same(graphed(src[0], plate, SAMPLING), fast(src[0], plate, SAMPLING))
    _same(graphed(src[1], plate, SAMPLING), fast(src[1], plate, SAMPLING))
    assert capture.calls == 1 and graphed.captured == 0


def test_wrong_inputs_raise_before_any_capture(fast):
    capture = RerunCapture()
    graphed = GraphedRefine(fast, capture=capture)
    plate = fast.prepare_plate(_frames(1)[0], SAMPLING)
    with pytest.raises(ValueError, match="plate"):
        graphed(torch.rand(1, 3, H, W - 4), plate, SAMPLING)
    with pytest.raises(ValueError, match="float"):
        graphed(torch.zeros(1, 3, H, W, dtype=torch.uint8), plate, SAMPLING)
    assert capture.calls == 0


def test_plate_copy_needs_a_plate_of_the_same_shape(fast):
    a = fast.prepare_plate(_frames(1)[0], SAMPLING)
    b = fast.prepare_plate(_frames(1)[0][:, :, :32], SAMPLING)
    c = a.clone()
    assert c.bgr.data_ptr() != a.bgr.data_ptr() and torch.equal(c.phases, a.phases)
    with pytest.raises(ValueError, match="cannot copy"):
        c.copy_(b)


@pytest.mark.parametrize("backbone, kernel", [("mobilenetv2", 3), ("mobilenetv2", 1), ("resnet50", 3)])
@pytest.mark.parametrize("h, w", [(64, 96), (62, 90)])
def test_static_shape_modes_run_on_the_device_branches_without_data(backbone, kernel, h, w):
    # On the meta device (shapes, no data) the fast path takes its non-CPU branches, as on CUDA, and
    # any operation whose output depends on data (nonzero, item, a tensor's truth value) raises:
    # what a CUDA graph cannot capture. Thresholding needs nonzero; the modes graphs capture do not.
    model = MattingRefine(backbone, backbone_scale=0.25, refine_sample_pixels=16 * 40,
                          refine_kernel_size=kernel).eval()
    fast = FastRefine(model, dtype=torch.float16, device=torch.device("meta"))
    fast.sync_free = True
    src = torch.empty(1, 3, h, w, device="meta")
    plate = fast.prepare_plate(torch.empty(1, 3, h, w, device="meta"), SAMPLING)
    for s in (SAMPLING, SAMPLING.replace(prevent_oversampling=False), SAMPLING.replace(mode="full")):
        assert fast.static_shapes(s)
        pha, fgr = fast(src, plate, s)
        assert pha.shape == (1, 1, h, w) and fgr.shape == (1, 3, h, w)
    thresholding = SAMPLING.replace(mode="thresholding")
    assert not fast.static_shapes(thresholding)
    with pytest.raises((NotImplementedError, RuntimeError)):
        fast(src, plate, thresholding)


@pytest.mark.gpu
@pytest.mark.parametrize("mode", ["sampling", "full"])
def test_cuda_graphs_replay_the_engine_exactly(mode):
    from matte_ros.core.engine import MattingEngine
    from matte_ros.core.synthetic import SceneSequence
    weights = load_checkpoint(DEFAULT_WEIGHTS).eval()
    seq = SceneSequence(288, 512, seed=0)
    engines = [MattingEngine(model=copy.deepcopy(weights), device="cuda", precision="fp16", refine_mode=mode,
                             cuda_graphs=graphs) for graphs in (False, True)]
    for e in engines:
        e.set_background(seq.background())
    for i in (5, 10, 15):
        frame = seq.frame(i)[0]
        eager, graphed = (e.process(frame) for e in engines)
        # the same kernels on the same numbers; float atomics (scatter_add) may add in another order
        assert np.abs(eager.alpha - graphed.alpha).max() < 1e-3
        assert np.abs(eager.foreground.astype(int) - graphed.foreground).max() <= 1
    assert engines[1]._run.captured == 1
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")             # a replay needs no host synchronisation
    try:
        src = torch.rand(1, 3, 288, 512, device="cuda")
        engines[1]._run(src, engines[1]._plates[(288, 512)].prepared, engines[1].refine_settings)
    finally:
        torch.cuda.set_sync_debug_mode("default")
