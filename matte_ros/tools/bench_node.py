"""The matting node end to end: ``fake_camera`` and ``matte_node`` as separate processes, a listener
here; latency (publish time - the camera's header stamp, as the node's diagnostics report it, and
receipt time - stamp as seen by a subscriber) and output rate, at 640x480 and 1280x720.

    python -m matte_ros.tools.bench_node [--seconds 20] [--rate 30] [--cpu-threads 0] [--log-dir out/bench_node]

Per size: the engine time per frame (here, with the node's torch thread count, node stopped; the
median over frames of the walk, timed before and after the node's runs); a
run with the camera at ``--rate`` (output rate: the node mattes the newest frame as fast as it
can, so a frame also waits up to one camera period for the worker; on a small machine the fake
camera's own rendering and publishing take cores from the node: 21 ms a frame at 720p); a run with
the camera at 1.5x the engine's rate, where a frame is always waiting when the worker is free, so
its output rate over the engine alone's is what the node's shell costs; and a run with the camera at
half the engine's rate, so the worker is idle when a frame arrives and stamp->publish minus the
engine time (as the node measures it, same frames) is the node's own cost (transport, conversion,
publishing), which the target bounds by 15 ms at 720p. Without default weights a random MobileNetV2
model is written to a temporary file (the timings do not depend on the weights with the node's
defaults, except for prevent_oversampling, which may refine fewer patches). Camera and node are
started by :mod:`matte_ros.tools.launcher` in a private ROS domain, their output in ``--log-dir``.
"""
import os
import statistics
import sys
import tempfile
import threading
import time
from typing import Dict, List, Optional, Tuple

from matte_ros.core.cli import OneLineParser, exit_on_interrupt, run_cli

# Ctrl-C while torch and rclpy load: one line and exit 130 (run_cli in main takes over once it runs)
with exit_on_interrupt("bench_node", active=__name__ == "__main__"):
    from matte_ros.core.host_memory import keep_freed_memory
    from matte_ros.core.model import DEFAULT_WEIGHTS, MattingRefine, save_safetensors
    from matte_ros.ros import names
    from matte_ros.ros.params import cpu_threads_for

    from .launcher import add_launch_arguments, launch_domain

__all__ = ["SIZES", "run_node_bench", "main"]

SIZES = ((480, 640), (720, 1280))
EMPTY_SECONDS = 6.0         # empty room after the camera starts: the plate is captured from it


def _listen(h: int, w: int, rate: float, seconds: float, weights: str, threads: int, domain_id: int,
            log_dir: str) -> Dict[str, float]:
    """One run at h x w: start node and camera (:class:`~matte_ros.tools.launcher.Launch`), capture
    the plate, wait for the subject, measure for ``seconds``, stop both."""
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import QoSProfile
    from rclpy.time import Time
    from sensor_msgs.msg import Image

    from .launcher import Launch, LaunchError

    lock = threading.Lock()
    arrivals: List[Tuple[float, float]] = []        # (receipt - stamp, receipt time)
    diag: List[Dict[str, str]] = []
    with Launch(domain_id, log_dir, "matte_bench_listener") as launch:
        def on_alpha(msg: Image) -> None:
            now = launch.node.get_clock().now()
            with lock:
                arrivals.append(((now - Time.from_msg(msg.header.stamp)).nanoseconds * 1e-9, time.monotonic()))

        def on_diag(msg: DiagnosticArray) -> None:
            with lock:
                diag.extend({kv.key: kv.value for kv in s.values} for s in msg.status if s.name.endswith("matting"))

        seen = {"frame": False, "subject": False}

        def on_truth(msg: Image) -> None:       # the camera's true alpha: is the scene still empty?
            seen["frame"] = True
            seen["subject"] = seen["subject"] or any(msg.data)

        launch.node.create_subscription(Image, names.resolve(names.ALPHA), on_alpha, QoSProfile(depth=5))
        launch.node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
        truth = launch.node.create_subscription(
            Image, names.resolve(names.TRUE_ALPHA, node_name=names.FAKE_CAMERA_NAME), on_truth, 2)
        launch.start_node({"model_path": weights, "device": "cpu", "plate_frames": 3, "publish_foreground": True,
                           "cpu_threads": threads}, timeout=120.0)
        launch.start_camera({"width": w, "height": h, "rate": float(rate), "empty_seconds": EMPTY_SECONDS})
        launch.wait("the first camera frame", lambda: seen["frame"], 60.0)
        launch.capture_plate(3, ask_again=lambda: not seen["subject"])
        launch.node.destroy_subscription(truth)          # no more copies of the truth during the measurement
        end = time.monotonic() + EMPTY_SECONDS           # warm-up until the subject walks in
        launch.wait("the warm-up", lambda: time.monotonic() > end, EMPTY_SECONDS + 10.0, step=0.1)
        with lock:
            arrivals.clear()
            diag.clear()
        end = time.monotonic() + seconds
        launch.wait("the measurement", lambda: time.monotonic() > end, seconds + 10.0, step=0.1)
        with lock:
            arrivals, diag = list(arrivals), list(diag)
    if len(arrivals) < 2:
        raise LaunchError(f"only {len(arrivals)} alpha messages arrived in {seconds} s at {w}x{h}")
    t = [a[1] for a in arrivals]

    def node_median(key: str) -> float:
        values = [float(d[key]) for d in diag if d.get(key, "n/a") != "n/a"]
        return statistics.median(values) if values else float("nan")
    return {"received": len(arrivals), "rate_hz": (len(t) - 1) / (t[-1] - t[0]),
            "latency_recv_ms": 1e3 * statistics.median(a[0] for a in arrivals),
            "latency_node_ms": node_median("latency_median_ms"), "engine_node_ms": node_median("engine_median_ms")}


WALK_FRAMES = range(0, 150, 10)     # frames of the fake camera's walk the engine alone is timed on


def engine_times(h: int, w: int, weights: str) -> List[float]:
    """Seconds of MattingEngine.process at h x w with the node's default settings, one per frame of
    WALK_FRAMES (the frames the node mattes: a frame's time depends on what it refines)."""
    from matte_ros.core.engine import MattingEngine
    from matte_ros.core.settings import AUTO_SCALE
    from matte_ros.core.synthetic import SceneSequence
    seq = SceneSequence(h, w)
    eng = MattingEngine(checkpoint=weights, device="cpu", backbone_scale=AUTO_SCALE, refine_mode="sampling",
                        refine_sample_pixels=80_000)
    eng.set_background(seq.background())
    frames = [seq.frame(n)[0] for n in WALK_FRAMES]
    eng.process(frames[0])
    times = []
    for frame in frames:
        t = time.perf_counter()
        eng.process(frame)
        times.append(time.perf_counter() - t)
    return times


NODE_OVERHEAD_TARGET_MS = 15.0      # node latency <= engine time + this, at 720p
RATE_TARGET = 0.9                   # node output >= this x the engine alone's rate, a frame always waiting


def run_node_bench(seconds: float = 20.0, rate: float = 30.0, weights: Optional[str] = None,
                   cpu_threads: int = 0, domain_id: int = 0, log_dir: str = os.path.join("out", "bench_node")
                   ) -> List[str]:
    """Measure and print one line per size; returns the lines. The children's logs go to ``log_dir``."""
    import cv2
    import torch
    threads = cpu_threads_for(cpu_threads, os.cpu_count())
    torch.set_num_threads(threads)                  # the engine time with the node's thread counts
    cv2.setNumThreads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        if weights is None:
            weights = DEFAULT_WEIGHTS if os.path.isfile(DEFAULT_WEIGHTS) else os.path.join(tmp, "random.safetensors")
            if not os.path.isfile(weights):
                save_safetensors(weights, MattingRefine("mobilenetv2").eval())
        lines = []
        for h, w in SIZES:
            before = engine_times(h, w, weights)
            first = statistics.median(before) * 1e3
            busy = _listen(h, w, rate, seconds, weights, threads, domain_id, log_dir)
            full_rate = round(1.5e3 / first, 2)       # 1.5x the engine's rate: a frame always waits for the worker
            full = _listen(h, w, full_rate, seconds, weights, threads, domain_id, log_dir)
            idle_rate = round(500.0 / first, 2)       # half the engine's rate: the worker waits for frames
            idle = _listen(h, w, idle_rate, seconds, weights, threads, domain_id, log_dir)
            eng = statistics.median(before + engine_times(h, w, weights)) * 1e3     # timed before and after
            extra = idle["latency_node_ms"] - idle["engine_node_ms"]
            verdict = "holds" if extra <= NODE_OVERHEAD_TARGET_MS else "misses"
            share = full["rate_hz"] * eng / 1e3
            line = (f"node {w}x{h}, {threads} CPU thread(s): engine alone {eng:.0f} ms ({1e3 / eng:.1f} Hz); "
                    f"camera {rate:g} Hz: output {busy['rate_hz']:.1f} Hz (x{busy['rate_hz'] * eng / 1e3:.2f} of the "
                    f"engine alone), stamp->publish {busy['latency_node_ms']:.0f} ms; camera {full_rate:g} Hz (a frame "
                    f"always waiting): output {full['rate_hz']:.1f} Hz (x{share:.2f} of the engine alone, target "
                    f"x{RATE_TARGET:g}: {'holds' if share >= RATE_TARGET else 'misses'}), engine in the node "
                    f"{full['engine_node_ms']:.0f} ms; camera {idle_rate:g} Hz "
                    f"(worker idle on arrival): stamp->publish {idle['latency_node_ms']:.0f} ms = engine in the node "
                    f"{idle['engine_node_ms']:.0f} ms {extra:+.0f} ms, stamp->receipt {idle['latency_recv_ms']:.0f} ms"
                    + (f" (target engine + {NODE_OVERHEAD_TARGET_MS:g} ms: {verdict})" if h == 720 else ""))
            print(line, flush=True)
            lines.append(line)
        return lines


def main(argv: Optional[List[str]] = None) -> int:
    p = OneLineParser(prog="python -m matte_ros.tools.bench_node", description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=20.0, help="measuring time per size")
    p.add_argument("--rate", type=float, default=30.0, help="fake camera frame rate (Hz)")
    p.add_argument("--weights", default=None, help="weight file (default: the packaged one, else random)")
    add_launch_arguments(p, os.path.join("out", "bench_node"))
    args = p.parse_args(argv)
    if args.seconds <= 0 or not 0.1 <= args.rate <= 240.0:
        p.error("--seconds must be > 0 and --rate in 0.1..240")
    domain = launch_domain(args)
    os.makedirs(args.log_dir, exist_ok=True)
    keep_freed_memory()         # the engine runs in this process too (engine_times): as the node's main() does

    def bench() -> None:        # a child that died, a timeout: LaunchError / ChildExited, Failures (exit 1)
        run_node_bench(args.seconds, args.rate, args.weights, args.cpu_threads, domain, args.log_dir)
    return run_cli("bench_node", bench)


if __name__ == "__main__":
    sys.exit(main())
