"""The benchmark's arithmetic: FLOP count, interleaving, the target verdicts; the CUDA loop on a GPU."""
import pytest
import torch

from matte_ros.core.model import MattingRefine
from matte_ros.core.model.fast import FastRefine
from matte_ros.tools.bench import CONFIGS, count_flops, interleaved, targets


def test_flops_count_the_refiner_convolutions_where_they_run():
    model = MattingRefine("mobilenetv2", backbone_scale=0.5, refine_sample_pixels=10_000,
                          refine_prevent_oversampling=False).eval()
    src = torch.rand(1, 3, 32, 32)
    model.refiner.mode = "full"
    full = count_flops(model, src, src)
    model.refiner.mode = "sampling"                   # all 8 x 8 = 64 patches, each on its own crop
    patches = count_flops(model, src, src)
    r = model.refiner
    # full: half-res 16 + 6 padding -> conv1 20 -> conv2 18; full-res 32 + 4 -> conv3 34 -> conv4 32.
    # patches: 8 -> 6 -> 4 at half resolution, 8 -> 6 -> 4 at full resolution, 64 times.
    want = 2 * (r.conv1.weight.numel() * (20 * 20 - 64 * 36) + r.conv2.weight.numel() * (18 * 18 - 64 * 16)
                + r.conv3.weight.numel() * (34 * 34 - 64 * 36) + r.conv4.weight.numel() * (32 * 32 - 64 * 16))
    assert full - patches == want


def test_interleaved_calls_in_turn_and_takes_medians():
    order = []
    fns = {"a": lambda: order.append("a"), "b": lambda: order.append("b")}
    times = interleaved(fns, 3, torch.device("cpu"), warmup=1)
    assert order == ["a", "b"] * 4 and set(times) == {"a", "b"} and all(t >= 0 for t in times.values())


def _row(config, fast, engine, flops=6e9):
    return {"backbone": "mobilenetv2", "config": config, "flops": flops, "fast_max_dpha": 0.0, "fast_max_dfgr": 0.0,
            "patches": 1, "times": {"fast": fast, "engine": engine, "reference": 1.0, "low": 1.0}}


def test_target_verdicts():
    peak = 100e9                       # F / (0.6 peak) = 6e9 / 60e9 = 100 ms
    lines = targets([_row("HD", 0.08, 0.085), _row("4K", 0.2, 0.3)], peak)
    assert lines[0].startswith("HD MobileNetV2 model time 80 ms <= F / (0.6 x peak) = 100 ms: holds")
    assert lines[1] == "4K MobileNetV2 200 ms <= 2 x HD = 160 ms: misses by 1.25x"
    assert lines[2].endswith("holds") and lines[3].endswith("misses by 1.36x")
    assert CONFIGS["hd"].pixels == 80_000 and CONFIGS["4k"].scale == 0.125


@pytest.mark.gpu
def test_cuda_loop_returns_what_fast_refine_computes():
    from matte_ros.tools.bench import CudaLoop
    model = MattingRefine("mobilenetv2", refine_sample_pixels=16 * 50).eval().cuda()
    fast = FastRefine(model, dtype=torch.float16)
    frame = torch.randint(0, 256, (64, 96, 3), dtype=torch.uint8)
    plate = fast.prepare_plate(torch.rand(1, 3, 64, 96, device="cuda"))
    loop = CudaLoop(fast, 64, 96)
    loop(frame.numpy(), plate)
    src = frame.cuda().permute(2, 0, 1)[None].half() / 255
    pha, _ = fast(src, plate)
    assert torch.allclose(loop.host_pha, pha.float().cpu(), atol=1e-3)
