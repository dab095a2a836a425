"""The demo (``make demo``, console script ``matte_demo``): the fake camera and the matting node in
their own processes, the plate captured automatically, a fixed number of frames matted and scored.

    python -m matte_ros.tools.demo [--model PATH] [--width 640 --height 480] [--rate 10] [--frames 60]
                             [--out out/demo] [--domain-id N] [-p NAME:=VALUE ...]

Steps: start ``matte_node`` (the packaged default model unless ``--model``; ``-p`` passes node
parameters) and wait for its capture service; start ``fake_camera`` (empty scene for
``--empty-seconds``, then a person walking) and call ``~/capture_background`` on its empty frames;
then join ``/matte/alpha``, ``/matte/foreground`` and ``/matte/composite`` to the camera's frame and
true alpha by header stamp until ``--frames`` frames showing the person are collected. It writes
alpha, foreground (RGBA cut-out) and composite PNGs of ``--save`` frames, ``contact_sheet.png``
(input, predicted alpha, true alpha, composite per row), ``metrics.json``, and the children's logs
to ``--out``, and prints throughput, latency, drops and SAD / MSE / Grad / Conn against the truth.
Everything runs in a private ROS domain (``--domain-id``, default derived from the process id),
discovery limited to this host. Children are stopped on exit, error, Ctrl-C and SIGTERM; when one
dies, the demo stops with the tail of its log.
"""
import argparse
import glob
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List, Optional

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions
from rclpy.time import Time
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger

from .demo_report import (COLUMNS, StampMatcher, alpha_u8, contact_sheet, format_summary, pick_indices, run_summary,
                          write_json, write_png)
from matte_ros.ros.dds import use_fastdds_profile
from matte_ros.ros.imaging import image_to_rgb, msg_to_alpha
from matte_ros.core.metrics import mean_scores, quantize, score
from matte_ros.core.model import DEFAULT_WEIGHTS

__all__ = ["DemoError", "Child", "parse_args", "run", "main"]

STREAMS = ("src", "true", "alpha", "foreground", "composite")
TOPICS = {"src": "/image", "true": "/fake_camera/alpha_true", "alpha": "/matte/alpha",
          "foreground": "/matte/foreground", "composite": "/matte/composite"}
_OUTPUT_GLOBS = ("frame_*_alpha.png", "frame_*_foreground.png", "frame_*_composite.png", "contact_sheet.png",
                 "metrics.json")


class DemoError(RuntimeError):
    """The demo cannot go on; the message says why (and what to do)."""


class Child:
    """``python -m <module> --ros-args ...`` with stdout and stderr in ``log`` (no pipe to fill up)."""

    def __init__(self, name: str, module: str, ros_args: List[str], log: str, env: Dict[str, str]):
        self.name, self.log = name, log
        self._f = open(log, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", module, "--ros-args", *ros_args], env=env,
                                     stdout=self._f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def tail(self, lines: int = 15) -> str:
        with open(self.log, errors="replace") as f:
            return "".join(f.readlines()[-lines:])

    def check(self) -> None:
        """DemoError with the log tail when the process has exited."""
        rc = self.proc.poll()
        if rc is not None:
            raise DemoError(f"{self.name} exited with code {rc}; the end of {self.log}:\n{self.tail()}")

    def stop(self, timeout: float = 10.0) -> Optional[int]:
        """SIGINT (what Ctrl-C sends), then SIGKILL after ``timeout`` s; the exit code."""
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGINT)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
            return self.proc.wait()
        finally:
            self._f.close()


class Collector:
    """The demo's own ROS node: subscribes the camera, the truth, the node's outputs and /diagnostics,
    joins them by stamp and queues each complete set ``(stamp, {stream: (msg, receipt_ns)})``."""

    def __init__(self, context):
        self.node = rclpy.create_node("matte_demo", context=context)
        self.matcher = StampMatcher(STREAMS)
        self.done: "queue.Queue" = queue.Queue()
        self.collecting = False             # True once the plate exists: frames join the matcher
        self.camera_stamps: List[int] = []
        self.output_stamps: List[int] = []
        self.subject_seen_ns: Optional[int] = None     # receipt of the first true alpha with the person
        self.node_status: Dict[str, str] = {}
        self._lock = threading.Lock()
        for stream, topic in TOPICS.items():
            self.node.create_subscription(Image, topic, lambda msg, s=stream: self._on(s, msg), 50)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)
        self.capture = self.node.create_client(Trigger, "/matte_node/capture_background")
        self._executor = SingleThreadedExecutor(context=context)
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._executor.spin, name="demo_spin", daemon=True)
        self._thread.start()

    def now_ns(self) -> int:
        return self.node.get_clock().now().nanoseconds

    def _on(self, stream: str, msg) -> None:
        now = self.now_ns()
        stamp = Time.from_msg(msg.header.stamp).nanoseconds
        with self._lock:
            if stream == "true":
                self.camera_stamps.append(stamp)
                if self.subject_seen_ns is None and float(msg_to_alpha(msg).max()) > 0:
                    self.subject_seen_ns = now
            elif stream == "alpha":
                self.output_stamps.append(stamp)
            if self.collecting:
                joined = self.matcher.add(stream, stamp, (msg, now))
                if joined is not None:
                    self.done.put((stamp, joined))

    def _on_diag(self, msg) -> None:
        for status in msg.status:
            if status.name.startswith("matte_node"):
                self.node_status = {kv.key: kv.value for kv in status.values}

    def stamps(self):
        """(camera stamps, output stamps) seen so far, copied."""
        with self._lock:
            return list(self.camera_stamps), list(self.output_stamps)

    def close(self) -> None:
        self._executor.shutdown()
        self._thread.join(5.0)
        self.node.destroy_node()


CAPTURE_ATTEMPTS = 3      # capture calls while the scene is still empty
CAPTURE_TIMEOUT = 4.0     # s, the node's plate_timeout for each call

def _wait(what: str, pred, children: List[Child], timeout: float, step: float = 0.05):
    """Poll ``pred`` until truthy; DemoError when a child dies or ``timeout`` s pass."""
    end = time.monotonic() + timeout
    while True:
        for child in children:
            child.check()
        value = pred()
        if value:
            return value
        if time.monotonic() > end:
            raise DemoError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(step)


def _prepare_out(out: str) -> None:
    os.makedirs(out, exist_ok=True)
    for pattern in _OUTPUT_GLOBS:           # a previous run's files only, so nothing stale is left
        for path in glob.glob(os.path.join(out, pattern)):
            os.remove(path)


def _score_frame(joined: Dict[str, Any]) -> Dict[str, Any]:
    """Arrays of one joined set and its metrics against the truth (8-bit, as the evaluation does)."""
    src = image_to_rgb(joined["src"][0])
    pha, true = msg_to_alpha(joined["alpha"][0]), quantize(msg_to_alpha(joined["true"][0]))
    row = score(pha, None, true)
    return {"src": src, "pha": pha, "true": true, "fgr": image_to_rgb(joined["foreground"][0]),
            "comp": image_to_rgb(joined["composite"][0]), "row": row}


def _save_frame(out: str, i: int, f: Dict[str, Any]) -> None:
    a8 = alpha_u8(f["pha"])
    write_png(os.path.join(out, f"frame_{i:03d}_alpha.png"), a8)
    write_png(os.path.join(out, f"frame_{i:03d}_foreground.png"), np.dstack([f["fgr"], a8]))
    write_png(os.path.join(out, f"frame_{i:03d}_composite.png"), f["comp"])


def run(opts: argparse.Namespace) -> Dict[str, Any]:
    """The whole demo; returns the summary also written to ``<out>/metrics.json``."""
    model = os.path.abspath(opts.model or DEFAULT_WEIGHTS)
    if not os.path.isfile(model):
        raise DemoError(f"model file {model} not found" + (
            "" if opts.model else ": the packaged default model is missing (see matte_ros/weights/MODEL_CARD.md "
            "to train it); pass --model PATH to use another weight file"))

    _prepare_out(opts.out)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    use_fastdds_profile()     # here (the collector) and in the children
    env = dict(os.environ, ROS_DOMAIN_ID=str(opts.domain_id), PYTHONUNBUFFERED="1")
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=opts.domain_id, signal_handler_options=SignalHandlerOptions.NO)
    children: List[Child] = []
    collector = None
    try:
        collector = Collector(ctx)
        node_args = ["-p", f"model_path:={model}", "-p", "publish_composite:=true", "-p", f"device:={opts.device}",
                     "-p", f"plate_timeout:={CAPTURE_TIMEOUT!r}"]
        for p in opts.param:
            node_args += ["-p", p]
        print(f"starting matte_node (model {model}) in ROS domain {opts.domain_id}", flush=True)
        children.append(Child("matte_node", "matte_ros.ros.node", node_args, os.path.join(opts.out, "node.log"), env))
        _wait("the node's capture service (is the model loading?)", collector.capture.service_is_ready, children,
              opts.timeout)
        cam_args = ["-p", f"width:={opts.width}", "-p", f"height:={opts.height}", "-p", f"rate:={opts.rate!r}",
                    "-p", f"empty_seconds:={opts.empty_seconds!r}", "-p", f"seed:={opts.seed}"]
        print(f"starting fake_camera: {opts.width}x{opts.height} at {opts.rate:g} Hz, empty scene for "
              f"{opts.empty_seconds:g} s", flush=True)
        children.append(Child("fake_camera", "matte_ros.ros.fake_camera", cam_args,
                              os.path.join(opts.out, "camera.log"), env))
        _wait("the first camera frame", lambda: collector.camera_stamps, children, opts.timeout)
        for attempt in range(CAPTURE_ATTEMPTS):
            # A freshly started node can take a few seconds to receive large frames: ask again while empty.
            future = collector.capture.call_async(Trigger.Request())
            res = _wait("the capture_background answer", lambda: future.done() and future.result(), children, 60.0)
            if res.success or collector.subject_seen_ns is not None or attempt + 1 == CAPTURE_ATTEMPTS:
                break
            print(f"capture_background: {res.message}; asking again", flush=True)
        answered = collector.now_ns()
        if not res.success:
            raise DemoError(f"capture_background failed: {res.message}")
        if collector.subject_seen_ns is not None and collector.subject_seen_ns <= answered:
            raise DemoError("the person entered the scene before the plate was captured: "
                            "pass a longer --empty-seconds")
        print(f"capture_background: {res.message}", flush=True)
        collector.collecting = True

        keep = set(pick_indices(opts.frames, opts.save))
        stamps, received, rows, sheet = [], [], [], []
        end = time.monotonic() + opts.timeout
        while len(rows) < opts.frames:
            try:
                stamp, joined = collector.done.get(timeout=0.2)
            except queue.Empty:
                for child in children:
                    child.check()
                if time.monotonic() > end:
                    raise DemoError(f"timed out after {opts.timeout:g} s with {len(rows)} of {opts.frames} frames")
                continue
            f = _score_frame(joined)
            if f["true"].max() == 0:        # still the empty scene: nothing to score
                continue
            i = len(rows)
            stamps.append(stamp)
            received.append(joined["alpha"][1])
            rows.append(f["row"])
            if i in keep:
                _save_frame(opts.out, i, f)
                sheet.append((f["src"], f["pha"], f["true"], f["comp"]))
            if (i + 1) % 10 == 0 or i + 1 == opts.frames:
                print(f"collected {i + 1}/{opts.frames} frames", flush=True)
        node_status = dict(collector.node_status)
        camera_stamps, output_stamps = collector.stamps()
    finally:
        for child in reversed(children):        # the camera first (no new frames), then the node
            child.stop()
        if collector is not None:
            collector.close()
        rclpy.try_shutdown(context=ctx)

    summary = run_summary(stamps, received, camera_stamps, output_stamps, mean_scores(rows))
    summary.update(model=model, width=opts.width, height=opts.height, camera_rate=opts.rate,
                   device=node_status.get("device", "unknown"), precision=node_status.get("precision", "unknown"))
    write_png(os.path.join(opts.out, "contact_sheet.png"), contact_sheet(sheet, COLUMNS))
    write_json(os.path.join(opts.out, "metrics.json"), summary)
    print(f"\n{summary['frames']} frames of {opts.width}x{opts.height} matted by matte_node on "
          f"{summary['device']} ({summary['precision']}) with {model}")
    print(format_summary(summary))
    print(f"wrote {opts.out}/: contact_sheet.png ({len(sheet)} rows: {', '.join(COLUMNS)}), metrics.json, "
          f"alpha / foreground / composite PNGs of frames {', '.join(map(str, sorted(keep)))}, node.log, camera.log",
          flush=True)
    return summary


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="matte_demo", description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", default="", help="weight file; '' = the packaged default model")
    p.add_argument("--width", type=int, default=640, help="camera frame width")
    p.add_argument("--height", type=int, default=480, help="camera frame height")
    p.add_argument("--rate", type=float, default=10.0, help="camera frames per second")
    p.add_argument("--empty-seconds", type=float, default=15.0, help="seconds of empty scene (the plate)")
    p.add_argument("--seed", type=int, default=0, help="scene seed of the fake camera")
    p.add_argument("--frames", type=int, default=60, help="matted frames to collect and score (>= 2)")
    p.add_argument("--save", type=int, default=4, help="frames written as PNGs and shown in the contact sheet")
    p.add_argument("--out", default=os.path.join("out", "demo"), help="output folder")
    p.add_argument("--device", default="auto", help="node device: auto, cpu, cuda or cuda:N")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE",
                   help="extra matte_node parameter (repeatable), e.g. -p precision:=bf16")
    p.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID (default: 1 + pid %% 100)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds allowed for start-up and for collecting")
    opts = p.parse_args(argv)
    if opts.frames < 2:
        p.error(f"--frames must be >= 2, got {opts.frames}")
    if opts.save < 1 or opts.save > opts.frames:
        p.error(f"--save must be in 1..--frames, got {opts.save}")
    if opts.domain_id is None:
        opts.domain_id = 1 + os.getpid() % 100
    if not 0 <= opts.domain_id <= 101:
        p.error(f"--domain-id must be in 0..101, got {opts.domain_id}")
    for prm in opts.param:
        if ":=" not in prm:
            p.error(f"-p takes NAME:=VALUE, got {prm!r}")
    return opts


class _Terminated(BaseException):
    """Raised in the main thread by SIGTERM, so that ``run`` stops the children as on Ctrl-C."""


def _on_sigterm(signum, frame):
    raise _Terminated()


def main(argv: Optional[List[str]] = None) -> int:
    opts = parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        run(opts)
        return 0
    except DemoError as e:
        print(f"matte_demo: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("matte_demo: interrupted; the camera and the node were stopped", file=sys.stderr)
        return 130
    except _Terminated:
        print("matte_demo: terminated (SIGTERM); the camera and the node were stopped", file=sys.stderr)
        return 143
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
