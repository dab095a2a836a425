"""Soak benchmark: the fake camera and the matting node run for minutes; the node's memory and rates
are sampled over time.

    python -m matte_ros.tools.soak --minutes 30            # make soak
    python -m matte_ros.tools.soak --minutes 2 --width 320 --height 240

Both run in their own processes (:mod:`matte_ros.tools.launcher`, a private ROS domain, logs in
``--log-dir``). Every ``--every`` seconds it records the node's resident memory (``VmRSS`` of
``/proc/<pid>/status``) and the node's diagnostics counters. The verdict compares the memory at the
end with the memory after the first minute (``growth_after_warmup``), and checks the node's
counters: every received frame has an outcome, and frames not matted were only ``dropped``
(replaced by a newer one, the newest-frame policy), never refused, malformed or failed.
"""
import json
import os
import statistics
import threading
import time
from typing import Any, Dict, List, Optional

from matte_ros.core.cli import exit_on_interrupt, run_cli
from matte_ros.core.files import atomic_write

# Ctrl-C while torch and rclpy load: one line and exit 130 (run_cli in main takes over once it runs)
with exit_on_interrupt("python -m matte_ros.tools.soak", active=__name__ == "__main__"):
    from matte_ros.core.processes import resident_bytes

    from .launcher import Launch, camera_tool_parser, check_camera_arguments, launch_domain

__all__ = ["verdict", "run_soak", "main"]

WARMUP_S = 60.0        # memory settles (allocator pools, DDS buffers) during the first minute
FAILURES = ("refused", "malformed", "errors")


def verdict(samples: List[Dict[str, Any]], warmup_s: float = WARMUP_S) -> Dict[str, Any]:
    """Summary of ``samples`` (dicts with ``t`` in s, ``rss_mib`` and the node's counters, in time order,
    the first taken once the plate is captured): RSS after warm-up and at the end, their relative growth,
    the output rate after warm-up, and the failures counted since the first sample (frames refused
    before the plate existed do not count)."""
    if not samples:
        raise ValueError("no samples: the soak ended before the first one")
    warm = next((s for s in samples if s["t"] >= warmup_s), samples[-1])
    last = samples[-1]
    growth = (last["rss_mib"] - warm["rss_mib"]) / warm["rss_mib"]
    span = last["t"] - warm["t"]
    counts = last.get("counts", {})
    out_rate = ((counts.get("published", 0) - warm.get("counts", {}).get("published", 0)) / span) if span > 0 else 0.0
    first = samples[0].get("counts", {})
    failures = {k: counts.get(k, 0) - first.get(k, 0) for k in FAILURES if counts.get(k, 0) > first.get(k, 0)}
    return {"seconds": last["t"], "rss_warm_mib": warm["rss_mib"], "rss_end_mib": last["rss_mib"],
            "rss_max_mib": max(s["rss_mib"] for s in samples), "growth_after_warmup": growth,
            "output_rate_hz": out_rate, "counts": counts, "failures": failures,
            "memory_flat": growth < 0.01, "nothing_lost": not failures}


def run_soak(minutes: float, width: int, height: int, rate: float, every: float, weights: str,
             cpu_threads: int, domain_id: int, log_dir: str, log=print) -> Dict[str, Any]:
    """Run camera + node for ``minutes``; returns {"samples": [...], "verdict": {...}}."""
    from diagnostic_msgs.msg import DiagnosticArray

    from matte_ros.ros import names

    lock = threading.Lock()
    latest: Dict[str, int] = {}
    samples: List[Dict[str, Any]] = []
    os.makedirs(log_dir, exist_ok=True)
    with Launch(domain_id, log_dir, "matte_soak") as launch:
        def on_diag(msg: DiagnosticArray) -> None:
            for s in msg.status:
                if s.name.startswith(names.NODE_NAME):
                    values = {kv.key: kv.value for kv in s.values}
                    with lock:
                        latest.update({k: int(v) for k, v in values.items() if v.isdigit()})

        launch.node.create_subscription(DiagnosticArray, names.DIAGNOSTICS, on_diag, 10)
        # nobody else subscribes in this process: the soak holds one subscription so the node mattes
        from sensor_msgs.msg import Image
        launch.node.create_subscription(Image, names.resolve(names.ALPHA), lambda msg: None, 1)
        node = launch.start_node({"model_path": weights, "device": "cpu", "plate_frames": 3,
                                  "cpu_threads": cpu_threads}, timeout=120.0)
        launch.start_camera({"width": width, "height": height, "rate": float(rate), "wait_for_plate": True})
        log(f"soak: {width}x{height} at {rate:g} Hz for {minutes:g} min, node pid {node.pid}")
        launch.capture_plate(attempts=5, timeout=60.0)
        with lock:
            latest.clear()
        # the first sample holds the counters at the capture (frames before it are refused: no plate yet)
        launch.wait("the node's diagnostics", lambda: latest, 10.0)
        start = time.monotonic()
        end = start + minutes * 60.0
        while True:
            now = time.monotonic()
            for child in launch.children:
                child.check()
            with lock:
                counts = dict(latest)
            rss = round(resident_bytes(node.pid) / 2**20, 1)
            samples.append({"t": round(now - start, 1), "rss_mib": rss, "counts": counts})
            log(f"t={samples[-1]['t']:7.1f} s  rss {samples[-1]['rss_mib']:7.1f} MiB  "
                f"published {counts.get('published', 0)}  dropped {counts.get('dropped', 0)}")
            if now >= end:
                break
            time.sleep(min(every, max(0.0, end - now)))
        codes = launch.close()
    return {"samples": samples, "verdict": verdict(samples), "exit_codes": codes}


def _format(v: Dict[str, Any]) -> str:
    return (f"{v['seconds']:.0f} s: RSS {v['rss_warm_mib']:.1f} MiB after warm-up -> {v['rss_end_mib']:.1f} MiB "
            f"at the end ({v['growth_after_warmup'] * 100:+.2f} %, max {v['rss_max_mib']:.1f}); "
            f"output {v['output_rate_hz']:.2f} Hz; "
            f"counters {v['counts']}; memory flat (< 1 %): {v['memory_flat']}; no frame refused, malformed or "
            f"failed: {v['nothing_lost']}")


def main(argv: Optional[List[str]] = None) -> int:
    p = camera_tool_parser("matte_ros.tools.soak", __doc__, rate=10.0)
    p.add_argument("--minutes", type=float, default=30.0, help="length of the run (default 30)")
    p.add_argument("--every", type=float, default=10.0, help="seconds between samples (default 10)")
    args = p.parse_args(argv)
    for name in ("minutes", "rate", "every"):
        if getattr(args, name) <= 0:
            p.error(f"--{name} must be positive")
    check_camera_arguments(p, args)
    domain = launch_domain(args)

    def body() -> int:
        from matte_ros.core.host_memory import keep_freed_memory
        keep_freed_memory()
        result = run_soak(args.minutes, args.width, args.height, args.rate, args.every, args.weights,
                          args.cpu_threads, domain, args.log_dir)
        v = result["verdict"]
        rss = [s["rss_mib"] for s in result["samples"]]
        result["rss_median_mib"] = statistics.median(rss)
        path = os.path.join(args.log_dir, "soak.json")

        def write(tmp: str) -> None:
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(result, f, indent=1)

        atomic_write(path, write)
        print(_format(v))
        print(f"wrote {path}")
        return 0 if v["memory_flat"] and v["nothing_lost"] else 1

    return run_cli(p.prog, body)


if __name__ == "__main__":
    raise SystemExit(main())
