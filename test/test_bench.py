"""The benchmark's arithmetic: FLOP count, interleaving, the target verdicts; the CUDA loop on a GPU."""
import torch

from matte_ros.core.model import MattingRefine
from matte_ros.tools.bench import CONFIGS, count_flops, interleaved, table, targets


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


def _row(config, reference, engine, engine_low, rvm, backbone="mobilenetv2"):
    return {"backbone": backbone, "config": config, "flops": 20e9, "fast_max_dpha": 0.0, "fast_max_dfgr": 0.0,
            "patches": 1, "low_dtype": "bf16", "low_max_dpha": 0.5, "low_mean_dpha": 1e-4,
            "times": {"reference": reference, "fast": engine, "low": engine_low, "engine": engine,
                      "engine_low": engine_low, "rvm": rvm}}


def test_target_verdicts():
    rows = [_row("HD", 0.34, 0.16, 0.11, 0.12), _row("4K", 1.0, 0.4, 0.3, 0.18),
            _row("HD", 1.0, 0.6, 0.4, 0.12, backbone="resnet50")]
    lines = targets(rows)
    assert lines[0] == ("mobilenetv2 HD: engine fp32 160 ms, 2.12x the published forward 340 ms (at least 2.0x): "
                        "holds")
    assert lines[1] == "mobilenetv2 HD: engine bf16 110 ms < RVM ONNX Runtime 120 ms: holds"
    assert lines[2] == "mobilenetv2 4K: engine bf16 300 ms <= 1.5 x RVM ONNX Runtime 180 ms = 270 ms: misses by 1.11x"
    assert all(line.startswith("fast vs published") for line in lines[3:]) and len(lines) == 6   # no ResNet target
    cuda = _row("4K", 0.1, 0.05, 0.04, None, backbone="resnet50")
    cuda["times"]["graphed"], cuda["low_dtype"] = 0.025, "fp16"
    assert targets([cuda])[0] == ("resnet50 4K: fast fp16 40 ms eager, 25 ms replayed as a CUDA graph (1.60x); "
                                  "engine fp16 25 fps (the paper, ResNet-50 on an RTX 2080 Ti: 30 fps)")
    assert CONFIGS["hd"].pixels == 80_000 and CONFIGS["4k"].scale == 0.125


def test_table_rows_and_ratios():
    text = table([_row("HD", 0.34, 0.16, 0.11, 0.12)], {"fp32": 100e9, "bf16": 200e9})
    head, _, row = text.splitlines()
    assert head.count("|") == row.count("|")
    cells = [c.strip() for c in row.strip("|").split("|")]
    # GFLOP, published, fast fp32, fast bf16, engine fp32, engine bf16, speed-up, % of peak, accuracy, RVM, ratio
    assert cells[2:] == ["20.0", "340", "160", "110", "160", "110", "2.12x", "125 / 91 %", "0.500 / 0.00010",
                         "120", "0.92"]
