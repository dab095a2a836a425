"""Several cameras: one matting node for all of them (``cameras`` parameter) against one node per camera.

    python -m matte_ros.tools.bench_cameras --cameras 2 --width 640 --height 480 --rate 10 --cpu-threads 2

N fake cameras (namespaces cam0, cam1, ...; scene seed = index) at ``--rate`` each, matted (1) by one
``matte_node`` with ``cameras:=cam0,cam1,...`` and ``--cpu-threads`` torch threads, (2) by N
``matte_node`` processes, one per camera namespace, with ``--cpu-threads / N`` threads each (at least
one): the same torch threads in total. Per set-up, after the plates are captured and a warm-up, for
``--seconds``: the nodes' resident memory (VmRSS from /proc, summed over the node processes; the
cameras are not counted), the total matted rate (alpha messages received per second, all cameras)
and each camera's median latency (receipt - the camera's header stamp) and engine time per frame
(``engine_median_ms`` of its diagnostics status). Cameras and nodes run in
their own processes in a private ROS domain (:mod:`matte_ros.tools.launcher`), their logs in
``--log-dir``.
"""
import os
import statistics
import sys
import threading
import time
from typing import Dict, List, Optional, Sequence

from matte_ros.core.cli import exit_on_interrupt, run_cli

with exit_on_interrupt("bench_cameras", active=__name__ == "__main__"):
    from matte_ros.core.processes import Child, python_module, resident_bytes
    from matte_ros.ros import names
    from matte_ros.ros.params import cpu_threads_for

    from .launcher import (
        CAMERA_MODULE,
        NODE_MODULE,
        camera_tool_parser,
        check_camera_arguments,
        launch_domain,
        ros_params,
    )

__all__ = ["run_setup", "main"]

EMPTY_SECONDS = 2.0         # empty scene once the plate is captured, then the subject walks in
WARM_UP = 4.0               # seconds matted before the measurement starts


def run_setup(one_process: bool, cameras: Sequence[str], width: int, height: int, rate: float, seconds: float,
              threads: int, weights: str, domain_id: int, log_dir: str) -> Dict[str, object]:
    """One set-up (see the module doc): {"rss_mb", "rate_hz", "latency_ms": {camera: ms}, "frames": {camera: n},
    "engine_ms": {camera: the node's median engine time per frame, from its diagnostics}}."""
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import QoSProfile
    from rclpy.time import Time
    from sensor_msgs.msg import Image
    from std_srvs.srv import Trigger

    from .launcher import Launch, LaunchError

    tag = "one" if one_process else "each"
    lock = threading.Lock()
    arrivals: Dict[str, List[float]] = {c: [] for c in cameras}       # receipt - stamp, s
    with Launch(domain_id, log_dir, f"bench_cameras_{tag}") as launch:
        env, node = launch.env, launch.node
        base = {"model_path": weights, "device": "cpu", "plate_frames": 3}
        nodes: List[Child] = []
        if one_process:
            params = dict(base, cpu_threads=threads, cameras=",".join(cameras))
            nodes.append(Child("matte_node", python_module(NODE_MODULE, *ros_params(params)),
                               os.path.join(log_dir, f"{tag}_node.log"), env))
        else:
            params = dict(base, cpu_threads=max(1, threads // len(cameras)))
            nodes += [Child(f"matte_node_{c}", python_module(NODE_MODULE, *ros_params(params), "-r", f"__ns:=/{c}"),
                            os.path.join(log_dir, f"{tag}_node_{c}.log"), env) for c in cameras]
        launch.children.extend(nodes)
        for seed, c in enumerate(cameras):
            cam = {"width": width, "height": height, "rate": float(rate), "seed": seed, "wait_for_plate": True,
                   "empty_seconds": EMPTY_SECONDS}
            launch.children.append(Child(f"camera_{c}", python_module(CAMERA_MODULE, *ros_params(cam), "-r",
                                                                      f"__ns:=/{c}"),
                                         os.path.join(log_dir, f"{tag}_camera_{c}.log"), env))

        def on_alpha(camera: str, msg: Image) -> None:
            late = (node.get_clock().now() - Time.from_msg(msg.header.stamp)).nanoseconds * 1e-9
            with lock:
                arrivals[camera].append(late)
        for c in cameras:
            node.create_subscription(Image, f"/{c}/{names.ALPHA}", lambda m, c=c: on_alpha(c, m), QoSProfile(depth=5))
        engine: Dict[str, List[float]] = {c: [] for c in cameras}        # the nodes' engine_median_ms

        def on_diag(msg: DiagnosticArray) -> None:
            for st in msg.status:
                c = st.name.lstrip("/").split("/", 1)[0]
                ms = {kv.key: kv.value for kv in st.values}.get("engine_median_ms", "n/a")
                if c in engine and ms != "n/a":
                    with lock:
                        engine[c].append(float(ms))
        node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 20)
        seen = set()
        truths = [node.create_subscription(Image, names.resolve(names.TRUE_ALPHA, c, names.FAKE_CAMERA_NAME),
                                           lambda m, c=c: seen.add(c), 2) for c in cameras]
        clients = [node.create_client(Trigger, names.resolve(names.CAPTURE_SERVICE, c)) for c in cameras]
        launch.wait("every camera's capture service (is the model loading?)",
                    lambda: all(cl.service_is_ready() for cl in clients), 300.0)
        launch.wait("a frame of every camera", lambda: len(seen) == len(cameras), 120.0)
        for sub in truths:
            node.destroy_subscription(sub)
        futures = [cl.call_async(Trigger.Request()) for cl in clients]
        launch.wait("the plates", lambda: all(f.done() for f in futures), 120.0)
        failed = [f.result().message for f in futures if not f.result().success]
        if failed:
            raise LaunchError(f"capture_background failed: {failed[0]}")
        end = time.monotonic() + EMPTY_SECONDS + WARM_UP
        launch.wait("the warm-up", lambda: time.monotonic() > end, EMPTY_SECONDS + WARM_UP + 10.0, step=0.1)
        with lock:
            for values in list(arrivals.values()) + list(engine.values()):
                values.clear()
        start = time.monotonic()
        launch.wait("the measurement", lambda: time.monotonic() > start + seconds, seconds + 10.0, step=0.1)
        rss = sum(resident_bytes(child.proc.pid) for child in nodes) / 1e6
        with lock:
            got = {c: list(v) for c, v in arrivals.items()}
            engine_ms = {c: statistics.median(v) if v else float("nan") for c, v in engine.items()}
            elapsed = time.monotonic() - start
    return {"rss_mb": rss, "rate_hz": sum(len(v) for v in got.values()) / elapsed,
            "latency_ms": {c: 1e3 * statistics.median(v) if v else float("nan") for c, v in got.items()},
            "frames": {c: len(v) for c, v in got.items()}, "engine_ms": engine_ms}


def compare(n: int, width: int, height: int, rate: float, seconds: float, threads: int, weights: str,
            domain_id: int, log_dir: str) -> List[str]:
    """Both set-ups; prints and returns one line each and the ratio line."""
    cameras = [f"cam{i}" for i in range(n)]
    lines, results = [], {}
    for one in (True, False):
        r = results[one] = run_setup(one, cameras, width, height, rate, seconds, threads, weights, domain_id, log_dir)
        what = (f"1 process, {threads} thread(s)" if one else
                f"{n} processes, {max(1, threads // n)} thread(s) each")
        lat = ", ".join(f"{c} {r['latency_ms'][c]:.0f} ms ({r['frames'][c]} frames, engine {r['engine_ms'][c]:.0f} ms)"
                        for c in cameras)
        lines.append(f"{n} cameras {width}x{height} at {rate:g} Hz, {what}: resident {r['rss_mb']:.0f} MB, "
                     f"matted {r['rate_hz']:.2f} frames/s in total; latency {lat}")
        print(lines[-1], flush=True)
    mem = results[True]["rss_mb"] / results[False]["rss_mb"]
    fps = results[True]["rate_hz"] / max(results[False]["rate_hz"], 1e-9)
    lines.append(f"one process / {n} processes: memory x{mem:.2f}, matted rate x{fps:.2f}")
    print(lines[-1], flush=True)
    return lines


def main(argv: Optional[List[str]] = None) -> int:
    p = camera_tool_parser("matte_ros.tools.bench_cameras", __doc__, rate=10.0)
    p.add_argument("--cameras", type=int, default=2, help="number of fake cameras (2 .. 16)")
    p.add_argument("--seconds", type=float, default=20.0, help="measuring time per set-up")
    args = p.parse_args(argv)
    if not 2 <= args.cameras <= 16 or args.seconds <= 0 or not 0.1 <= args.rate <= 240.0:
        p.error("--cameras must be 2..16, --seconds > 0 and --rate in 0.1..240")
    check_camera_arguments(p, args)
    threads = cpu_threads_for(args.cpu_threads, os.cpu_count())
    domain = launch_domain(args)
    os.makedirs(args.log_dir, exist_ok=True)

    def bench() -> None:        # a set-up that cannot go on (LaunchError, ChildExited) is a Failure: exit 1
        compare(args.cameras, args.width, args.height, args.rate, args.seconds, threads, args.weights, domain,
                args.log_dir)
    return run_cli("bench_cameras", bench)


if __name__ == "__main__":
    sys.exit(main())
