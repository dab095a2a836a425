"""The matting node: camera frames in, alpha matte and foreground out (console script ``matte_node``).

    matte_node --ros-args -r image:=/camera/image_raw --params-file config/matte.yaml
    ros2 service call /matte_node/capture_background std_srvs/srv/Trigger   # with the scene empty

Topic and service names are in ``names.py``, relative to the node's namespace (``-r __ns:=/left``
moves every one). Lazy: while no output has a subscriber, frames are neither converted nor matted
(diagnostics say ``idle``), except for a running plate capture.

A thin rclpy shell over :class:`matte_ros.core.engine.MattingEngine`: the node's camera
(``camera.py``; one per camera with the ``cameras`` parameter, ``cameras.py``) has the topics,
services and plates; its subscription callback only stores the newest message (``FairTurns``); a
worker thread converts it, feeds a running plate capture and mattes it (one worker per camera on
the CPU with several cameras, ``cameras.worker_plan``); the capture service waits
for its plate in its own callback group, so spinning goes on. Run it on a multi-threaded executor
(``main`` uses ``executor.WaitingExecutor``, whose shutdown lets every capture caller have its
answer, "the node is shutting down", before the node is destroyed).
"""
import dataclasses
import os
import sys
import threading
from typing import Optional

import cv2
import numpy as np
import torch
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.exceptions import ParameterException
from rclpy.node import Node
from std_msgs.msg import Header

from matte_ros.core.engine import MattingEngine
from matte_ros.core.host_memory import keep_freed_memory
from matte_ros.core.model import DEFAULT_WEIGHTS

from . import names
from .camera import Camera
from .cameras import CameraGroup
from .executor import WaitingExecutor
from .main import run_node
from .params import (
    ENGINE_LIVE,
    PARAMS,
    SPECS,
    NodeSettings,
    check_changes,
    cpu_threads_for,
    descriptor,
    engine_config,
    settings_from,
)
from .stats import NodeStats

__all__ = ["MatteNode", "build_engine", "configure_process", "main"]

# Python's switch interval in the node's process: how long a thread running Python (the executor
# taking a camera frame) may keep the interpreter lock from a matting worker that waits for it
# between two of its operations (Python's default: 5 ms, at every one of them).
SWITCH_INTERVAL = 0.0005


def build_engine(s: NodeSettings) -> MattingEngine:
    """The engine the parameters describe ('' model_path = the packaged default weights); its
    refiner settings are applied by MatteNode."""
    if not s.model_path and not os.path.isfile(DEFAULT_WEIGHTS):
        raise FileNotFoundError(f"model_path is '' and the packaged default weights {DEFAULT_WEIGHTS} do not exist; "
                                "set model_path to a weight file (-p model_path:=/path/to/weights)")
    return MattingEngine(checkpoint=s.model_path or None, device=s.device, precision=s.precision)


def _load_rgb(path: str) -> np.ndarray:
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"composite_image {path!r} is not a readable image file")
    return np.ascontiguousarray(img[:, :, ::-1])


class MatteNode(Node):
    """Parameters: the fields of matte_ros.ros.params.NodeSettings. ``engine`` injects a ready engine
    (tests, custom models); otherwise one is built from the parameters. ``node_kwargs`` go to rclpy's
    Node (context, parameter_overrides, ...). Raises ValueError / FileNotFoundError on an unusable
    configuration."""

    def __init__(self, engine: Optional[MattingEngine] = None, **node_kwargs):
        super().__init__(names.NODE_NAME, **node_kwargs)
        try:
            self._setup(engine)
        except BaseException:
            super().destroy_node()
            raise

    def _setup(self, engine: Optional[MattingEngine]) -> None:
        for spec in PARAMS:
            self.declare_parameter(spec.name, spec.default, descriptor(spec))
        self.settings = s = settings_from({p.name: self.get_parameter(p.name).value for p in PARAMS})
        self._composite_src = _load_rgb(s.composite_image) if s.publish_composite and s.composite_image else None
        if engine is None:
            engine = build_engine(s)
        config = engine_config(s)
        if engine.settings():           # a refine model: the parameters drive it
            engine.configure(**config)
        else:
            engine.configure(upkeep=config["upkeep"])
            self.get_logger().info(f"{type(engine.model).__name__} has no refiner: "
                                   f"{', '.join(ENGINE_LIVE)} are not used")
        found = getattr(engine.model, "backbone_name", None)
        if s.backbone and found != s.backbone:
            raise ValueError(f"backbone parameter is {s.backbone!r} but the model's backbone is {found!r}; "
                             "set backbone:='' to accept the weight file's own")
        self.engine = engine
        self._composites = {}               # (H, W) -> composite image resized to that size
        self._pub_diag = self.create_publisher(DiagnosticArray, names.DIAGNOSTICS, 10)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        cameras = names.camera_namespaces(s.cameras)
        self.group = CameraGroup(self, engine, cameras, self._composite_image,
                                 threads=cpu_threads_for(s.cpu_threads, os.cpu_count()))
        self.waiting_services = len(cameras)    # with cameras: their captures, which may all wait at once (executor.py)
        self.create_timer(1.0, self._publish_diagnostics)
        self.camera: Optional[Camera] = self.group.cameras.get("")     # without cameras: the node's own names
        if self.camera is None:         # several cameras, one model: each with the names of a node in its namespace
            self.stats = NodeStats()
            for cam in self.group.cameras.values():
                plates = ", ".join(f"{w}x{h}" for h, w in cam.engine.plate_sizes())
                then = f"reloaded plate(s) {plates}" if plates else f"with the scene empty, call {cam.capture_service}"
                self.get_logger().info(f"matting {cam.input_topic} on {engine.device} ({engine.precision}); {then}")
            return
        camera = self.camera
        self.stats, self.input_topic, self.capture_service = camera.stats, camera.input_topic, camera.capture_service
        plates = ", ".join(f"{w}x{h}" for h, w in engine.plate_sizes())
        then = (f"using the {plates} plate(s) reloaded from {s.plate_path} (to replace them, call "
                f"{self.capture_service} with the scene empty)" if plates else
                f"with the scene empty, call {self.capture_service} (std_srvs/Trigger)")
        self.get_logger().info(f"matting {self.input_topic} on {engine.device} ({engine.precision}) to "
                               f"{self.resolve_topic_name(names.ALPHA)}; {then}")

    @property
    def idle_frames(self) -> int:
        """Frames left alone while no output had a subscriber (the ``idle`` counter)."""
        return self.stats.counts["idle"]

    def outputs_subscribed(self) -> bool:
        """Whether any output (alpha, foreground, composite, camera_info) has a subscriber."""
        return self.group.outputs_subscribed()

    def _composite_image(self, h: int, w: int):
        """What the foreground is put over in the composite of an (h, w) frame: the colour or the image."""
        if self._composite_src is None:
            return self.settings.composite_color
        img = self._composites.get((h, w))
        if img is None:
            img = self._composites[(h, w)] = cv2.resize(self._composite_src, (w, h), interpolation=cv2.INTER_AREA)
        return img

    # ---- parameters, diagnostics, shutdown -------------------------------------------------------
    def _on_set_parameters(self, params) -> SetParametersResult:
        # only this node's own parameters: rclpy's (use_sim_time, start_type_description_service) are
        # checked and applied by rclpy's callbacks
        changes = {p.name: p.value for p in params if p.name in SPECS}
        if not changes:
            return SetParametersResult(successful=True)
        reason = check_changes(changes)
        if reason is None:
            config = engine_config(dataclasses.replace(self.settings, **changes), changes)
            try:
                self.engine.configure(**config)
            except ValueError as e:
                reason = str(e)
        if reason is not None:
            return SetParametersResult(successful=False, reason=reason)
        self.group.configure(config)
        self.settings = dataclasses.replace(self.settings, **changes)
        if "max_rate" in changes:       # the worker may be waiting out the old rate's interval: recompute it
            self.group.set_max_rate(self.settings.max_rate)
        self.get_logger().info("parameters changed: " + ", ".join(f"{k}={v!r}" for k, v in changes.items()))
        return SetParametersResult(successful=True)

    def _publish_diagnostics(self) -> None:
        # one status per camera, named by the node's full name (or as the camera's own node would be):
        # nodes in other namespaces report apart
        self._pub_diag.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()),
                                               status=self.group.statuses()))

    def stop(self) -> None:
        """Stop the worker (joined) and end a waiting capture, so that no callback is left waiting;
        the node stays valid until ``destroy_node``. Idempotent."""
        self.group.stop()

    def destroy_node(self) -> None:
        """``stop``, then destroy the node."""
        self.stop()
        super().destroy_node()


def configure_process(node: MatteNode) -> None:
    """Process-wide settings the node's parameters decide: torch's and OpenCV's CPU threads (split
    between the matting workers of several cameras, cameras.worker_plan) and Python's switch
    interval. ``main`` calls it once the node is built; a program that builds a MatteNode itself
    calls it too (else two workers each run torch's and OpenCV's default thread pools on the same
    cores, many times slower). OpenCV's pool, left at one
    thread per core, is shared by every thread calling it: two workers' frame conversions wait for
    each other there (and its threads spin on the cores torch needs), 4x slower frames in all."""
    torch.set_num_threads(node.group.threads_per_worker)
    cv2.setNumThreads(node.group.threads_per_worker)
    sys.setswitchinterval(SWITCH_INTERVAL)
    workers = len(node.group.workers)
    node.get_logger().info(f"{torch.get_num_threads()} torch CPU threads" +
                           (f" in each of {workers} matting workers" if workers > 1 else ""))


def main(args=None, stop: Optional[threading.Event] = None) -> int:
    """The command (``entry.matte_node``: the runner sets ``stop`` on SIGINT / SIGTERM)."""
    keep_freed_memory()     # before any worker thread starts (matte_ros.core.host_memory)
    # bad parameters or a missing model stop the start with a clear message and exit code 1
    return run_node("matte_node", MatteNode, (ValueError, OSError, ParameterException), args, stop,
                    make_executor=lambda: WaitingExecutor(num_threads=4), on_started=configure_process)


if __name__ == "__main__":        # the interpreter's own exit; the console script ends at once (entry.py)
    from .entry import matte_node
    matte_node.run_as_main()
