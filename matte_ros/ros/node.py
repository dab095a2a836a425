"""The matting node: camera frames in, alpha matte and foreground out (console script ``matte_node``).

    matte_node --ros-args -r image:=/camera/image_raw --params-file config/matte.yaml
    ros2 service call /matte_node/capture_background std_srvs/srv/Trigger   # with the scene empty

Topic and service names are in ``names.py``, relative to the node's namespace (``-r __ns:=/left``
moves every one). Lazy: while no output has a subscriber, frames are neither converted nor matted
(diagnostics say ``idle``), except for a running plate capture.

A thin rclpy shell over :class:`matte_ros.core.engine.MattingEngine`: the subscription callback only
stores the newest message (``LatestFrame``); one worker thread converts it, feeds a running plate
capture and mattes it; the capture service waits for its plate in its own callback group, so
spinning goes on. Run it on a multi-threaded executor (``main`` uses ``executor.WaitingExecutor``,
whose shutdown lets every capture caller have its answer, "the node is shutting down", before the
node is destroyed).
"""
import copy
import dataclasses
import os
import threading
import time
from typing import Optional

import cv2
import numpy as np
import torch
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.exceptions import ParameterException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from std_srvs.srv import Trigger

from matte_ros.core.engine import MattingEngine, NoBackgroundError, SizeMismatchError
from matte_ros.core.host_memory import keep_freed_memory
from matte_ros.core.model import DEFAULT_WEIGHTS
from matte_ros.core.plate import PlateCapture, load_plates, remove_plates, save_plate

from . import names
from .cameras import CameraGroup
from .executor import WaitingExecutor
from .imaging import (
    FrameTooLargeError,
    ImageFormatError,
    alpha_to_msg,
    compressed_to_rgb,
    foreground_to_msg,
    image_to_rgb,
    rgb_to_msg,
)
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
from .stats import IDLE, MATTING, LatestFrame, NodeStats, work_state
from .throttle import ReasonThrottle

__all__ = ["MatteNode", "build_engine", "main"]

WARN_PERIOD = 5.0               # seconds between repeats of a warning for the same reason (throttle.py)
SHUTTING_DOWN = "the node is shutting down"     # a capture's answer once stop() has begun
# camera input: sensor-data QoS (best effort, volatile) keeping only the newest frame
INPUT_QOS = QoSProfile(depth=1, reliability=qos_profile_sensor_data.reliability,
                       durability=qos_profile_sensor_data.durability)


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
        self.stats = NodeStats()
        self.group: Optional[CameraGroup] = None      # with the cameras parameter: the node's cameras
        self.waiting_services = 0       # with cameras: their captures, which may all wait at once (executor.py)
        cameras = names.camera_namespaces(s.cameras)
        if cameras:
            self._start_cameras(cameras)
            return
        self._throttle = ReasonThrottle(WARN_PERIOD)     # repeated warnings, per reason
        self._latest = LatestFrame()
        self._capture: Optional[PlateCapture] = None
        self._capture_lock = threading.Lock()
        self._plate_lock = threading.Lock()     # installing vs clearing plates (service threads)
        self._composites = {}               # (H, W) -> composite image resized to that size
        self.plate_hint_given = False
        self.plate_health = None            # the last frame's PlateHealth while plate upkeep runs
        self._frame_id = ""                 # of the latest frame: the plate's header carries it
        self._stop = threading.Event()
        self._wake = threading.Event()      # set on a max_rate change and on stop: ends the worker's rate wait
        self._capture_sizes = set()         # (W, H) of the frames offered to the running capture
        self._camera_info: Optional[CameraInfo] = None     # the newest one, republished with the outputs

        out_qos = QoSProfile(depth=5)
        self._pub_alpha = self.create_publisher(Image, names.ALPHA, out_qos)
        self._pub_fgr = self.create_publisher(Image, names.FOREGROUND, out_qos) if s.publish_foreground else None
        self._pub_comp = self.create_publisher(Image, names.COMPOSITE, out_qos) if s.publish_composite else None
        self._pub_maps = ((self.create_publisher(Image, names.ERROR_MAP, out_qos),
                           self.create_publisher(Image, names.REFINEMENT_MAP, out_qos))
                          if s.publish_debug_maps else ())
        self._pub_info = self.create_publisher(CameraInfo, names.MATTE_CAMERA_INFO, out_qos)
        self._bg_qos = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self._pub_bg = self.create_publisher(Image, names.BACKGROUND, self._bg_qos)
        self._pub_diag = self.create_publisher(DiagnosticArray, names.DIAGNOSTICS, 10)

        self.capture_service = self.resolve_service_name(names.CAPTURE_SERVICE)
        self.input_topic = self.resolve_topic_name(names.IMAGE) + ("/compressed" if s.compressed else "")
        self.create_subscription(CompressedImage if s.compressed else Image, self.input_topic, self._on_image,
                                 INPUT_QOS, callback_group=MutuallyExclusiveCallbackGroup())
        self.create_subscription(CameraInfo, names.CAMERA_INFO, self._on_camera_info, INPUT_QOS)
        services = ReentrantCallbackGroup()
        self.create_service(Trigger, names.CAPTURE_SERVICE, self._on_capture, callback_group=services)
        self.create_service(Trigger, names.CLEAR_SERVICE, self._on_clear, callback_group=services)
        self.create_timer(1.0, self._publish_diagnostics)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        if s.plate_path:
            self._reload_plates(s.plate_path)
        self._worker = threading.Thread(target=self._work, name="matte_worker", daemon=True)
        self._worker.start()
        plates = ", ".join(f"{w}x{h}" for h, w in engine.plate_sizes())
        then = (f"using the {plates} plate(s) reloaded from {s.plate_path} (to replace them, call "
                f"{self.capture_service} with the scene empty)" if plates else
                f"with the scene empty, call {self.capture_service} (std_srvs/Trigger)")
        self.get_logger().info(f"matting {self.input_topic} on {engine.device} ({engine.precision}) to "
                               f"{self.resolve_topic_name(names.ALPHA)}; {then}")

    def _start_cameras(self, cameras) -> None:
        """Several cameras, one model: each with the names of a node in its namespace (cameras.py)."""
        self._composites = {}
        self._pub_diag = self.create_publisher(DiagnosticArray, names.DIAGNOSTICS, 10)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.group = CameraGroup(self, self.engine, cameras, self._composite_image)
        self.waiting_services = len(cameras)
        self.create_timer(1.0, self._publish_diagnostics)
        for camera in self.group.cameras.values():
            plates = ", ".join(f"{w}x{h}" for h, w in camera.engine.plate_sizes())
            then = f"reloaded plate(s) {plates}" if plates else f"with the scene empty, call {camera.capture_service}"
            self.get_logger().info(f"matting {camera.input_topic} on {self.engine.device} ({self.engine.precision}); "
                                   f"{then}")

    # ---- subscription: never blocks ------------------------------------------------------------
    def _on_image(self, msg) -> None:
        self.stats.add("received")
        if self._latest.put((msg, time.monotonic())):
            self.stats.add("dropped")

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._camera_info = msg

    @property
    def idle_frames(self) -> int:
        """Frames left alone while no output had a subscriber (the ``idle`` counter)."""
        return self.stats.counts["idle"]

    def outputs_subscribed(self) -> bool:
        """Whether any output (alpha, foreground, composite, camera_info) has a subscriber."""
        if self.group is not None:
            return self.group.outputs_subscribed()
        pubs = (self._pub_alpha, self._pub_fgr, self._pub_comp, self._pub_info) + self._pub_maps
        return any(p is not None and p.get_subscription_count() > 0 for p in pubs)

    # ---- worker thread ---------------------------------------------------------------------------
    def _work(self) -> None:
        last = None                     # time.monotonic() when the previous frame was taken
        while True:
            self._wake.clear()          # before reading the rate: a change from now on ends the wait below
            if self._stop.is_set():     # after the clear: stop() sets _stop, then _wake
                break
            rate = self.settings.max_rate
            if rate > 0 and last is not None and last + 1.0 / rate > time.monotonic():
                # max_rate: wait out the interval; a change of max_rate (or stop) wakes this to recompute it
                self._wake.wait(last + 1.0 / rate - time.monotonic())
                continue
            item = self._latest.take(0.5)
            if item is None:
                continue
            last = time.monotonic()
            try:
                self._handle(*item)
            except Exception as e:      # the node must survive anything a frame can cause
                if not self.context.ok():
                    break               # Ctrl-C / SIGTERM shut ROS down while this frame was in flight
                self.stats.add("errors")
                self._throttled(self.get_logger().error, f"frame dropped by an unexpected error: "
                                f"{type(e).__name__}: {e}")

    def _handle(self, msg, arrived: float) -> None:
        """Matte one message that arrived at ``arrived`` (time.monotonic())."""
        capture = self._capture
        capturing = capture is not None and not capture.done
        wanted = self.outputs_subscribed()
        if not (wanted or capturing):       # lazy: nobody listens, nothing to capture
            self.stats.add("idle")
            return
        limit = self.settings.max_frame_pixels
        try:
            rgb = compressed_to_rgb(msg, limit) if isinstance(msg, CompressedImage) else image_to_rgb(msg, limit)
        except FrameTooLargeError as e:
            self.stats.add("refused")
            self._throttled(self.get_logger().warning, f"frame on {self.input_topic} refused: {e}")
            return
        except ImageFormatError as e:
            self.stats.add("malformed")
            self._throttled(self.get_logger().warning, f"malformed image on {self.input_topic} dropped: {e}")
            return
        self._frame_id = msg.header.frame_id
        if capturing and arrived >= capture.started:
            self._capture_sizes.add((rgb.shape[1], rgb.shape[0]))
            capture.add(rgb)
        if not wanted:
            self.stats.add("idle")
            return
        h, w = rgb.shape[:2]
        try:
            t = time.perf_counter()
            maps = any(p.get_subscription_count() > 0 for p in self._pub_maps)
            res = self.engine.process(rgb, composite=self._composite_for(h, w), maps=maps)
            self.stats.engine(time.perf_counter() - t)
        except (NoBackgroundError, SizeMismatchError) as e:
            self.stats.add("refused")
            if not capturing:           # the user has already done what the warnings would ask
                self._warn_refused(e)
            return
        if res.plate_difference > self.settings.plate_warn_difference and not self.plate_hint_given:
            self.plate_hint_given = True
            self.get_logger().warning(
                f"the frame differs from the plate in {res.plate_difference:.0%} of its pixels (more than "
                f"plate_warn_difference {self.settings.plate_warn_difference:.0%}): the plate must be the empty "
                "scene seen by this same camera from the same position (not a new background); with the scene "
                f"empty, recapture it with {self.capture_service}")
        self.plate_health = res.plate_health
        if res.plate_health is not None and res.plate_health.stale:
            self._throttled(self.get_logger().warning, f"the plate looks stale: {res.plate_health.reason}; with the "
                            f"scene empty, recapture it with {self.capture_service}")
        self._publish(msg.header, res)

    def _throttled(self, log, message: str) -> None:
        """``log(message)`` unless the same reason was logged within WARN_PERIOD (other reasons pass)."""
        if self._throttle.ready(message):
            log(message)

    def _warn_refused(self, e: Exception) -> None:
        if isinstance(e, NoBackgroundError):
            self._throttled(self.get_logger().warning, f"no background plate yet, nothing is published: with the "
                            f"scene empty, call {self.capture_service} (std_srvs/srv/Trigger)")
        else:
            self._throttled(self.get_logger().warning, f"frame refused: {e} (call {self.capture_service} again)")

    def _composite_for(self, h: int, w: int):
        if self._pub_comp is None:
            return None
        return self._composite_image(h, w)

    def _composite_image(self, h: int, w: int):
        """What the foreground is put over in the composite of an (h, w) frame: the colour or the image."""
        if self._composite_src is None:
            return self.settings.composite_color
        img = self._composites.get((h, w))
        if img is None:
            img = self._composites[(h, w)] = cv2.resize(self._composite_src, (w, h), interpolation=cv2.INTER_AREA)
        return img

    def _publish(self, header: Header, res) -> None:
        s = self.settings
        self._pub_alpha.publish(alpha_to_msg(res.alpha, header, s.alpha_encoding))
        if self._pub_fgr is not None:
            self._pub_fgr.publish(foreground_to_msg(res.foreground, header, s.foreground_encoding, alpha=res.alpha))
        if self._pub_comp is not None:
            self._pub_comp.publish(rgb_to_msg(res.composite, header, "rgb8"))
        for pub, debug_map in zip(self._pub_maps, (res.error, res.refinement)):
            if debug_map is not None:         # None: not asked for this frame, or a model without refiner
                pub.publish(alpha_to_msg(debug_map, header, s.alpha_encoding))
        if self._camera_info is not None:         # the camera model, with the outputs' header
            info = copy.copy(self._camera_info)
            info.header = header
            self._pub_info.publish(info)
        self.stats.add("published")
        stamp = Time.from_msg(header.stamp)
        if stamp.nanoseconds > 0:
            self.stats.latency((self.get_clock().now() - stamp).nanoseconds * 1e-9)

    # ---- plates ----------------------------------------------------------------------------------
    def _install_plate(self, plate: np.ndarray) -> None:
        with self._plate_lock:
            self.engine.set_background(plate)
            self.plate_hint_given = False
            header = Header(stamp=self.get_clock().now().to_msg(), frame_id=self._frame_id)
            self._pub_bg.publish(rgb_to_msg(plate, header, "rgb8"))

    def _reload_plates(self, plate_dir: str) -> None:
        plates, problems = load_plates(plate_dir)
        for problem in problems:
            self.get_logger().warning(f"stored plate skipped: {problem}")
        for size, plate in sorted(plates.items()):
            self._install_plate(plate)
            self.get_logger().info(f"reloaded the {size[1]}x{size[0]} plate from {plate_dir}")

    def _on_capture(self, request, response):
        s = self.settings
        with self._capture_lock:            # stop() sets _stop under this lock: no capture starts after it
            if self._stop.is_set():
                response.success, response.message = False, SHUTTING_DOWN
                return response
            if self._capture is not None and not self._capture.done:
                response.success, response.message = False, "a capture is already running; wait for its answer"
                return response
            self._capture_sizes = set()
            self._capture = capture = PlateCapture(s.plate_frames, max_moving=s.plate_max_moving)
        self.get_logger().info(f"capturing a plate: averaging the next {s.plate_frames} frames")
        res = capture.wait(s.plate_timeout)
        if res is None:
            capture.cancel(self._timeout_message(capture, s.plate_timeout))
            res = capture.wait(0)
        response.success, response.message = res.ok, res.message
        if not res.ok:
            self.get_logger().warning("capture_background failed: " + res.message)
            return response
        try:
            self._install_plate(res.plate)
        except Exception as e:          # answer the caller whatever happens
            response.success, response.message = False, f"the plate could not be installed: {type(e).__name__}: {e}"
            self.get_logger().error("capture_background failed: " + response.message)
            return response
        if s.plate_path:
            try:
                response.message += ", saved to " + save_plate(s.plate_path, res.plate)
            except (OSError, ValueError) as e:
                response.message += f", NOT saved: {e}"
        self.get_logger().info("capture_background: " + response.message)
        return response

    def _timeout_message(self, capture: PlateCapture, timeout: float) -> str:
        sizes = sorted(self._capture_sizes)
        if len(sizes) > 1:
            return (f"timed out after {timeout:g} s: the frames on {self.input_topic} changed size "
                    f"{capture.restarts} times (seen: {', '.join(f'{w}x{h}' for w, h in sizes)}) and a plate "
                    f"needs {capture.frames} consecutive frames of one size")
        return (f"timed out after {timeout:g} s with {capture.count} of {capture.frames} frames received on "
                f"{self.input_topic}: is the camera publishing there?")

    def _on_clear(self, request, response):
        with self._plate_lock:
            n = self.engine.clear_background()
            # a new publisher drops the latched plate, so late subscribers do not get a stale one
            self.destroy_publisher(self._pub_bg)
            self._pub_bg = self.create_publisher(Image, names.BACKGROUND, self._bg_qos)
        response.success, response.message = True, f"cleared {n} plate(s)"
        try:
            removed = remove_plates(self.settings.plate_path) if self.settings.plate_path else []
            response.message += f", deleted {', '.join(removed)}" if removed else ""
        except OSError as e:
            response.success, response.message = False, response.message + f", but the stored plates remain: {e}"
        self.get_logger().info("clear_background: " + response.message)
        return response

    # ---- parameters, diagnostics, shutdown -------------------------------------------------------
    def _on_set_parameters(self, params) -> SetParametersResult:
        # only this node's own parameters: rclpy's (use_sim_time, start_type_description_service) are
        # checked and applied by rclpy's callbacks
        changes = {p.name: p.value for p in params if p.name in SPECS}
        if not changes:
            return SetParametersResult(successful=True)
        reason = check_changes(changes)
        if reason is None:
            try:
                self.engine.configure(**engine_config(dataclasses.replace(self.settings, **changes), changes))
            except ValueError as e:
                reason = str(e)
        if reason is not None:
            return SetParametersResult(successful=False, reason=reason)
        if self.group is not None:
            self.group.configure(engine_config(dataclasses.replace(self.settings, **changes), changes))
        self.settings = dataclasses.replace(self.settings, **changes)
        if "max_rate" in changes and self.group is not None:
            self.group.set_max_rate(self.settings.max_rate)
        elif "max_rate" in changes:
            self._wake.set()            # the worker may be waiting out the old rate's interval: recompute it
        self.get_logger().info("parameters changed: " + ", ".join(f"{k}={v!r}" for k, v in changes.items()))
        return SetParametersResult(successful=True)

    def _publish_diagnostics(self) -> None:
        if self.group is not None:      # one status per camera, named as its own node would be
            self._pub_diag.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()),
                                                   status=self.group.statuses()))
            return
        problem = None
        sizes = self.engine.plate_sizes()
        if not sizes:
            problem = f"no background plate: call {self.capture_service} with the scene empty"
        health = self.plate_health
        if problem is None and health is not None and health.stale:
            problem = f"plate stale ({health.reason}): with the scene empty, call {self.capture_service}"
        plates = ", ".join(f"{w}x{h}" for h, w in sizes) or "none"
        subscribed = self.outputs_subscribed()
        report = self.stats.report()
        # named by the node's full name: nodes in other namespaces report apart
        name, device = self.get_fully_qualified_name(), str(self.engine.device)
        status = NodeStats.status(report, f"{name}: matting", f"{device} ({name})",
                                  {"device": device, "precision": self.engine.precision,
                                   "input_topic": self.input_topic, "plates": plates,
                                   "work": MATTING if subscribed else IDLE,
                                   "plate_health": "off" if health is None else health.summary()},
                                  work_state(report, subscribed, self.input_topic, problem))
        self._pub_diag.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()), status=[status]))

    def stop(self) -> None:
        """Stop the worker (joined) and end a waiting capture, so that no callback is left waiting;
        the node stays valid until ``destroy_node``. Idempotent."""
        if self.group is not None:
            self.group.stop()
            return
        with self._capture_lock:
            self._stop.set()
            capture = self._capture
        self._wake.set()
        self._latest.close()
        if capture is not None:
            capture.cancel(SHUTTING_DOWN)
        self._worker.join(timeout=10.0)

    def destroy_node(self) -> None:
        """``stop``, then destroy the node."""
        self.stop()
        super().destroy_node()


def _configure_process(node: MatteNode) -> None:
    """Process-wide settings the node's parameters decide: torch's CPU threads."""
    torch.set_num_threads(cpu_threads_for(node.settings.cpu_threads, os.cpu_count()))
    node.get_logger().info(f"{torch.get_num_threads()} torch CPU threads")


def main(args=None, stop: Optional[threading.Event] = None) -> int:
    """The command (``entry.matte_node``: the runner sets ``stop`` on SIGINT / SIGTERM)."""
    keep_freed_memory()     # before any worker thread starts (matte_ros.core.host_memory)
    # bad parameters or a missing model stop the start with a clear message and exit code 1
    return run_node("matte_node", MatteNode, (ValueError, OSError, ParameterException), args, stop,
                    make_executor=lambda: WaitingExecutor(num_threads=4), on_started=_configure_process)


if __name__ == "__main__":        # the interpreter's own exit; the console script ends at once (entry.py)
    from .entry import matte_node
    raise SystemExit(matte_node.run())
