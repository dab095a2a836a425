"""What ``matte_demo`` does once its command line is read (see :mod:`matte_ros.tools.demo`): start
the node and the camera (:class:`~matte_ros.tools.launcher.Launch`), capture the plate, join the
outputs to the camera's frames and true alpha by stamp, score, write and print the results."""
import argparse
import glob
import os
import queue
import threading
import time
from typing import Any, Dict, List, Optional

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.time import Time
from sensor_msgs.msg import Image

from matte_ros.core.cli import Failure
from matte_ros.core.metrics import hair_band_scores, quantize, score
from matte_ros.core.model import DEFAULT_WEIGHTS, read_checkpoint
from matte_ros.ros import names
from matte_ros.ros.imaging import image_to_rgb, msg_to_alpha

from .demo_report import (
    COLUMNS,
    StampMatcher,
    alpha_u8,
    contact_sheet,
    format_summary,
    mean_quality,
    pick_indices,
    run_summary,
    write_json,
    write_png,
)
from .launcher import Launch

__all__ = ["DemoError", "check_model", "Collector", "run"]

STREAMS = ("src", "true", "alpha", "foreground", "composite")
TOPICS = {"src": names.resolve(names.IMAGE), "true": names.resolve(names.TRUE_ALPHA, node_name=names.FAKE_CAMERA_NAME),
          "alpha": names.resolve(names.ALPHA), "foreground": names.resolve(names.FOREGROUND),
          "composite": names.resolve(names.COMPOSITE)}
_OUTPUT_GLOBS = ("frame_*_alpha.png", "frame_*_foreground.png", "frame_*_composite.png", "contact_sheet.png",
                 "metrics.json")
CAPTURE_ATTEMPTS = 3      # capture calls while the scene is still empty
CAPTURE_TIMEOUT = 4.0     # s, the node's plate_timeout for each call


class DemoError(Failure):
    """The demo cannot go on; the message says why (and what to do); exit 1."""


def check_model(path: str, packaged: bool) -> str:
    """The absolute path of a weight file that can be read (checked before any process starts), else
    :class:`DemoError` (a missing file) or :class:`~matte_ros.core.model.CheckpointError` (a broken one)."""
    model = os.path.abspath(path)
    if not os.path.isfile(model):
        raise DemoError(f"model file {model} not found" + (
            ": the packaged default model is missing (see matte_ros/weights/MODEL_CARD.md "
            "to train it); pass --model PATH to use another weight file" if packaged else ""))
    read_checkpoint(model)
    return model


def node_status(msg) -> Dict[str, str]:
    """The key/values of the matting node's status in a DiagnosticArray (named by the node's full
    name, ``/matte_node: matting`` or ``/left/matte_node: matting``); empty when it holds none."""
    for status in msg.status:
        if status.name.split(":")[0].rsplit("/", 1)[-1] == names.NODE_NAME:
            return {kv.key: kv.value for kv in status.values}
    return {}


class Collector:
    """Subscriptions of the demo's listener: the camera, the truth, the node's outputs and
    /diagnostics, joined by stamp; each complete set ``(stamp, {stream: (msg, receipt_ns)})`` is queued."""

    def __init__(self, launch: Launch):
        self.launch = launch
        self.matcher = StampMatcher(STREAMS)
        self.done: queue.Queue = queue.Queue()
        self.collecting = False             # True once the plate exists: frames join the matcher
        self.camera_stamps: List[int] = []
        self.output_stamps: List[int] = []
        self.subject_seen_ns: Optional[int] = None     # receipt of the first true alpha with the person
        self.node_status: Dict[str, str] = {}
        self._lock = threading.Lock()
        for stream, topic in TOPICS.items():
            launch.node.create_subscription(Image, topic, lambda msg, s=stream: self._on(s, msg), 50)
        launch.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)

    def _on(self, stream: str, msg) -> None:
        now = self.launch.now_ns()
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
        self.node_status.update(node_status(msg))

    def stamps(self):
        """(camera stamps, output stamps) seen so far, copied."""
        with self._lock:
            return list(self.camera_stamps), list(self.output_stamps)


def _prepare_out(out: str) -> None:
    os.makedirs(out, exist_ok=True)
    for pattern in _OUTPUT_GLOBS:           # a previous run's files only, so nothing stale is left
        for path in glob.glob(os.path.join(out, pattern)):
            os.remove(path)


def _score_frame(joined: Dict[str, Any]) -> Dict[str, Any]:
    """Arrays of one joined set and its metrics against the truth (8-bit, as the evaluation does)."""
    src = image_to_rgb(joined["src"][0])
    pha, true = msg_to_alpha(joined["alpha"][0]), quantize(msg_to_alpha(joined["true"][0]))
    row = {**score(pha, None, true), **hair_band_scores(pha, true)}
    return {"src": src, "pha": pha, "true": true, "fgr": image_to_rgb(joined["foreground"][0]),
            "comp": image_to_rgb(joined["composite"][0]), "row": row}


def _save_frame(out: str, i: int, f: Dict[str, Any]) -> None:
    a8 = alpha_u8(f["pha"])
    write_png(os.path.join(out, f"frame_{i:03d}_alpha.png"), a8)
    write_png(os.path.join(out, f"frame_{i:03d}_foreground.png"), np.dstack([f["fgr"], a8]))
    write_png(os.path.join(out, f"frame_{i:03d}_composite.png"), f["comp"])


def _collect(opts: argparse.Namespace, launch: Launch, collector: Collector) -> Dict[str, Any]:
    """Frames showing the person until ``opts.frames`` are scored; PNGs of the chosen ones."""
    keep = set(pick_indices(opts.frames, opts.save))
    got: Dict[str, Any] = {"stamps": [], "received": [], "rows": [], "sheet": [], "keep": keep}
    rows = got["rows"]
    end = time.monotonic() + opts.timeout
    while len(rows) < opts.frames:
        try:
            stamp, joined = collector.done.get(timeout=0.2)
        except queue.Empty:
            for child in launch.children:
                child.check()
            if time.monotonic() > end:
                raise DemoError(f"timed out after {opts.timeout:g} s with {len(rows)} of {opts.frames} "
                                "frames") from None
            continue
        f = _score_frame(joined)
        if f["true"].max() == 0:        # still the empty scene: nothing to score
            continue
        i = len(rows)
        got["stamps"].append(stamp)
        got["received"].append(joined["alpha"][1])
        rows.append(f["row"])
        if i in keep:
            _save_frame(opts.out, i, f)
            got["sheet"].append((f["src"], f["pha"], f["true"], f["comp"]))
        if (i + 1) % 10 == 0 or i + 1 == opts.frames:
            print(f"collected {i + 1}/{opts.frames} frames", flush=True)
    return got


def run(opts: argparse.Namespace) -> Dict[str, Any]:
    """The whole demo; returns the summary also written to ``<out>/metrics.json``."""
    model = check_model(opts.model or DEFAULT_WEIGHTS, packaged=not opts.model)
    _prepare_out(opts.out)
    with Launch(opts.domain_id, opts.out, "matte_demo") as launch:
        collector = Collector(launch)
        node_params = {"model_path": model, "publish_composite": True, "device": opts.device,
                       "plate_timeout": CAPTURE_TIMEOUT}
        node_params.update(p.split(":=", 1) for p in opts.param)
        print(f"starting matte_node (model {model}) in ROS domain {opts.domain_id}", flush=True)
        launch.start_node(node_params, opts.timeout)
        print(f"starting fake_camera: {opts.width}x{opts.height} at {opts.rate:g} Hz, empty scene for "
              f"{opts.empty_seconds:g} s", flush=True)
        launch.start_camera({"width": opts.width, "height": opts.height, "rate": float(opts.rate),
                             "empty_seconds": float(opts.empty_seconds), "seed": opts.seed})
        launch.wait("the first camera frame", lambda: collector.camera_stamps, opts.timeout)
        # A freshly started node can take a few seconds to receive large frames: ask again while empty.
        message = launch.capture_plate(CAPTURE_ATTEMPTS, lambda: collector.subject_seen_ns is None,
                                       log=lambda m: print(m, flush=True))
        answered = launch.now_ns()
        if collector.subject_seen_ns is not None and collector.subject_seen_ns <= answered:
            raise DemoError("the person entered the scene before the plate was captured: "
                            "pass a longer --empty-seconds")
        print(f"capture_background: {message}", flush=True)
        collector.collecting = True
        got = _collect(opts, launch, collector)
        node_status = dict(collector.node_status)
        camera_stamps, output_stamps = collector.stamps()

    summary = run_summary(got["stamps"], got["received"], camera_stamps, output_stamps, mean_quality(got["rows"]))
    summary.update(model=model, width=opts.width, height=opts.height, camera_rate=opts.rate,
                   device=node_status.get("device", "unknown"), precision=node_status.get("precision", "unknown"))
    write_png(os.path.join(opts.out, "contact_sheet.png"), contact_sheet(got["sheet"], COLUMNS))
    write_json(os.path.join(opts.out, "metrics.json"), summary)
    print(f"\n{summary['frames']} frames of {opts.width}x{opts.height} matted by matte_node on "
          f"{summary['device']} ({summary['precision']}) with {model}")
    print(format_summary(summary))
    print(f"wrote {opts.out}/: contact_sheet.png ({len(got['sheet'])} rows: {', '.join(COLUMNS)}), metrics.json, "
          f"alpha / foreground / composite PNGs of frames {', '.join(map(str, sorted(got['keep'])))}, node.log, "
          "camera.log", flush=True)
    return summary

