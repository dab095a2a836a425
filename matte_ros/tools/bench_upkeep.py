"""Plate upkeep measured: matte error under camera disturbances with upkeep off and on, and the
time each upkeep feature costs per frame.

    python -m matte_ros.tools.bench_upkeep                   # 640x480, 60 frames per run, timing at 640x480 and 1080p
    python -m matte_ros.tools.bench_upkeep --frames 20 --timing-sizes 320x240     # a quick look

Quality: for each disturbance of :mod:`matte_ros.core.synthetic.disturbances` on the fake
camera's scene (SceneSequence; plate captured before the disturbance starts), the packaged default
model mattes every frame with upkeep off (health only, to count stale frames), on (exposure
"frame", translation, health) and on with the refresh (time constant 30 frames). SAD (sum
|a - truth| / 1000), MSE and the background part of SAD (alpha where the truth is 0: what a wrong
plate causes) are averaged over the second half of the run, and
compared with the undisturbed scene's SAD on the same frames and with the "ideal plate" run: the
disturbed frames matted against the empty scene under the same disturbance, captured anew for
every frame (the best any upkeep could do). Light and exposure act on the
subject too, so its colours and the network's errors on it change with them; the background SAD
isolates the plate's share. Timing: medians of the upkeep's own work per frame (before and after
the network, plus preparing the compensated plate) for each feature alone and all together; the
network's time is not included (see ``python -m matte_ros.tools.bench``). Prints Markdown tables.
"""
import argparse
import platform
import statistics
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

from matte_ros.core.cli import exit_on_interrupt, run_cli

# Ctrl-C while torch loads: one line and exit 130 (run_cli below takes over once main runs)
with exit_on_interrupt("python -m matte_ros.tools.bench_upkeep", active=__name__ == "__main__"):
    import numpy as np
    import torch

    from matte_ros.core.engine import MattingEngine, _regain_, _to_float
    from matte_ros.core.metrics import mse, sad
    from matte_ros.core.plate.upkeep import PlateUpkeep, UpkeepSettings
    from matte_ros.core.synthetic import SceneSequence
    from matte_ros.core.synthetic.disturbances import DISTURBANCES, DisturbedSequence

__all__ = ["UPKEEP_ON", "UPKEEP_REFRESH", "TIMED", "SCENE_LIGHT", "quality_run", "time_feature", "time_prepare",
           "main"]

UPKEEP_ON = UpkeepSettings(exposure="frame", motion="translation", health=True)
UPKEEP_REFRESH = UPKEEP_ON.replace(refresh_frames=30)
TIMED: Dict[str, UpkeepSettings] = {
    "exposure frame": UpkeepSettings(exposure="frame"),
    "exposure plate": UpkeepSettings(exposure="plate"),
    "refresh": UpkeepSettings(refresh_frames=30),
    "motion translation": UpkeepSettings(motion="translation"),
    "motion homography": UpkeepSettings(motion="homography"),
    "health": UpkeepSettings(health=True),
    "all (exposure frame, refresh, translation, health)": UPKEEP_REFRESH,
}
# Disturbances measured on a differently lit room (SceneSequence light), with their own undisturbed run: the
# white balance change on a warm, bright room, where it saturates the red channel in much of the frame.
SCENE_LIGHT: Dict[str, Tuple[float, float, float]] = {"white_balance": (1.35, 1.15, 0.9)}


def _machine() -> str:
    """The CPU's model name and core count (Linux), else the platform's processor."""
    try:
        with open("/proc/cpuinfo") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        return f"{names[0]}, {len(names)} logical cores"
    except (OSError, IndexError):
        return platform.processor() or platform.machine()


def _size(text: str) -> Tuple[int, int]:
    """'WxH' -> (h, w)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WxH like 640x480, got {text!r}") from None
    if w < 32 or h < 32:
        raise argparse.ArgumentTypeError(f"size must be at least 32x32, got {text!r}")
    return h, w


def quality_run(engine: MattingEngine, seq: DisturbedSequence, upkeep: Optional[UpkeepSettings], frames: int
                ) -> Dict[str, float]:
    """Matte frames 0..frames-1 in order (plate captured first); means over the second half.
    upkeep None: no upkeep, and each frame gets the ideal plate (the empty scene under the same
    disturbance), the best any upkeep could give the network."""
    engine.configure(upkeep=upkeep or UpkeepSettings())
    engine.set_background(seq.background())
    rows: List[Tuple[float, float, float]] = []
    stale = 0
    for i in range(frames):
        src, pha = seq.frame(i)
        if upkeep is None:
            engine.set_background(seq.background_at(i))
        res = engine.process(src)
        if res.plate_health is not None and res.plate_health.stale:
            stale += 1
        if i >= frames // 2:
            rows.append((sad(res.alpha, pha), mse(res.alpha, pha), float(res.alpha[pha == 0].sum()) / 1000))
    out = {k: float(np.mean([r[j] for r in rows])) for j, k in enumerate(("sad", "mse", "bg_sad"))}
    out["stale"] = stale / frames
    return out


def time_feature(upkeep: UpkeepSettings, h: int, w: int, engine: MattingEngine, repeats: int
                 ) -> Tuple[float, float]:
    """Median and mean ms per frame of one plate's upkeep (compensate, prepare the plate the network gets,
    observe) on a panning (h x w) scene with its true alpha as the matte."""
    seq = DisturbedSequence(SceneSequence(h, w, seed=0), "pan", seed=1, start=0, period=repeats + 2)
    up = PlateUpkeep(seq.background())
    times, prepared_for = [], None
    for i in range(repeats + 2):
        src, pha = seq.frame(i)
        src_t = _to_float(torch.from_numpy(src).to(engine.device), engine.dtype)
        fgr_t = src_t.clone()
        t = time.perf_counter()
        step = up.compensate(src, upkeep)
        with torch.inference_mode():
            if step.plate is not None and step.plate is not prepared_for:    # a changed plate, as the engine
                engine._prepare_upkept(step.plate)
                prepared_for = step.plate
            if step.normalise:              # the frame in the plate's exposure, and the foreground back
                _regain_(src_t, *step.to_plate)
                _regain_(fgr_t, *step.to_camera)
        up.observe(src, pha, step, upkeep)
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times[2:]), 1000 * statistics.mean(times[2:])


def time_prepare(h: int, w: int, engine: MattingEngine, repeats: int) -> float:
    """Median ms of preparing an (h x w) plate for the network (what each changed plate costs)."""
    plate = SceneSequence(h, w, seed=0).background()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        with torch.inference_mode():
            engine._prepare_upkept(plate)
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def main(argv: Sequence[str] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m matte_ros.tools.bench_upkeep", description=__doc__.split("\n")[0])
    p.add_argument("--size", type=_size, default=(480, 640), help="quality run frame size WxH (default 640x480)")
    p.add_argument("--frames", type=int, default=60, help="frames per quality run (default 60)")
    p.add_argument("--start", type=int, default=5, help="first disturbed frame (default 5)")
    p.add_argument("--period", type=int, default=40, help="frames of a drift cycle, light fade or pan (default 40)")
    p.add_argument("--seed", type=int, default=1, help="scene and disturbance seed (default 1)")
    p.add_argument("--kinds", default=",".join(DISTURBANCES), help="disturbances, comma separated (default all)")
    p.add_argument("--timing-sizes", type=lambda t: [_size(s) for s in t.split(",")],
                   default=[(480, 640), (1080, 1920)], help="sizes WxH,WxH for the timing (default 640x480,1920x1080)")
    p.add_argument("--repeats", type=int, default=15, help="timed frames per feature and size (default 15)")
    p.add_argument("--threads", type=int, default=0, help="torch and OpenCV threads (default: torch's)")
    p.add_argument("--skip-quality", action="store_true", help="timing only")
    a = p.parse_args(argv)
    kinds = [k.strip() for k in a.kinds.split(",") if k.strip()]
    bad = [k for k in kinds if k not in DISTURBANCES]
    if bad or a.frames < 4 or a.repeats < 1:
        raise ValueError(f"unknown disturbance(s) {', '.join(bad)} (choose from {', '.join(DISTURBANCES)})" if bad
                         else "--frames must be at least 4 and --repeats at least 1")
    if a.threads > 0:
        import cv2
        torch.set_num_threads(a.threads)
        cv2.setNumThreads(a.threads)
    engine = MattingEngine(device="cpu")
    print(f"machine: {_machine()}, {torch.get_num_threads()} torch thread(s); "
          f"command: python -m matte_ros.tools.bench_upkeep {' '.join(argv if argv is not None else sys.argv[1:])}")
    if not a.skip_quality:
        h, w = a.size
        scene = SceneSequence(h, w, seed=a.seed)
        print(f"\nQuality at {w}x{h}, default model, {a.frames} frames per run (means over frames "
              f"{a.frames // 2}..{a.frames - 1}); disturbance from frame {a.start}, period {a.period}\n")
        print("| disturbance | plate | SAD | MSE | background SAD | SAD / undisturbed | SAD / ideal plate "
              "| frames stale |")
        print("|---|---|---|---|---|---|---|---|")
        base = None
        for kind in kinds:
            light = SCENE_LIGHT.get(kind)
            room = scene if light is None else SceneSequence(h, w, seed=a.seed, light=light)
            seq = DisturbedSequence(room, kind, seed=a.seed, start=a.start, period=a.period)
            runs = [("upkeep off", seq, UpkeepSettings(health=True)), ("upkeep on", seq, UPKEEP_ON),
                    ("on + refresh", seq, UPKEEP_REFRESH)]
            ideal, undisturbed = None, base
            if kind != "none":
                runs.insert(0, ("ideal", seq, None))
            if light is not None:           # its own room's SAD without the disturbance comes first
                runs.insert(0, (f"undisturbed (light {'/'.join(f'{v:g}' for v in light)})",
                                DisturbedSequence(room, "none"), UpkeepSettings(health=True)))
            for name, run_seq, up in runs:
                r = quality_run(engine, run_seq, up, a.frames)
                if run_seq is not seq or (kind == "none" and undisturbed is None):
                    undisturbed = r["sad"]
                if up is None:
                    ideal = r["sad"]
                ratio = "" if undisturbed is None else f"{r['sad'] / undisturbed:.2f}"
                to_ideal = "" if ideal is None else f"{r['sad'] / ideal:.2f}"
                stale = "" if up is None else f"{r['stale']:.0%}"
                print(f"| {kind} | {name} | {r['sad']:.3f} | {r['mse'] * 1e3:.2f}e-3 | {r['bg_sad']:.3f} | {ratio} | "
                      f"{to_ideal} | {stale} |", flush=True)
            if kind == "none" and light is None and base is None:
                base = undisturbed
    print("\nUpkeep cost per frame, ms, median / mean (the network's own time excluded)\n")
    sizes = [f"{w}x{h}" for h, w in a.timing_sizes]
    print("| feature | " + " | ".join(sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for name, up in TIMED.items():
        ms = [time_feature(up, h, w, engine, a.repeats) for h, w in a.timing_sizes]
        print(f"| {name} | " + " | ".join(f"{m:.1f} / {n:.1f}" for m, n in ms) + " |", flush=True)
    ms = [time_prepare(h, w, engine, a.repeats) for h, w in a.timing_sizes]
    print("| (in the above: preparing a changed plate for the network) | " + " | ".join(f"{m:.1f}" for m in ms)
          + " |")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli("python -m matte_ros.tools.bench_upkeep", main))
