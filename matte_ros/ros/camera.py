"""One camera of the matting node: its input, plates, services, outputs and diagnostics status.

    camera = Camera(node, engine, "left", turns, composite_for, services)
    camera.handle(msg, arrived)             # the worker, on the camera's turn (cameras.CameraGroup)
    camera.status()                         # its DiagnosticStatus, named /left/matte_node: matting

A node without the ``cameras`` parameter has one camera, named '': the node's own names
(``image``, ``~/capture_background``), engine, plate_path and log lines. A node matting several
(``cameras:=left,right``) has one per camera, each under the camera's namespace
(``names.in_camera``) with an engine that shares the node's network and holds this camera's plates
only, so two cameras of the same size keep their own empty scenes; its plates persist under
``<plate_path>/<camera>`` (``/`` in the namespace written as ``_``) and its log lines name it
(``LINES``). Frames go to the node's shared ``FairTurns``; the counters (received, dropped,
malformed, errors, ...) are the camera's own, so a camera sending malformed frames shows it in its
own status and nowhere else.
"""
import copy
import os
import threading
import time
from typing import Callable, Optional

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from std_srvs.srv import Trigger

from matte_ros.core.engine import MattingEngine, NoBackgroundError, SizeMismatchError
from matte_ros.core.plate import PlateCapture, load_plates, remove_plates, save_plate

from . import names
from .imaging import (
    FrameTooLargeError,
    ImageFormatError,
    alpha_to_msg,
    compressed_to_rgb,
    foreground_to_msg,
    image_to_rgb,
    rgb_to_msg,
)
from .scheduler import FairTurns
from .stats import IDLE, MATTING, NodeStats, work_state
from .throttle import ReasonThrottle

__all__ = ["Camera", "LINES", "plate_dir_of"]

WARN_PERIOD = 5.0
SHUTTING_DOWN = "the node is shutting down"
INPUT_QOS = QoSProfile(depth=1, reliability=qos_profile_sensor_data.reliability,
                       durability=qos_profile_sensor_data.durability)
OUT_QOS = QoSProfile(depth=5)
LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def plate_dir_of(plate_path: str, camera: str) -> str:
    """Where camera ``camera``'s plates persist ('' when plate_path is '': not at all; plate_path
    itself for the node's own camera '')."""
    return os.path.join(plate_path, camera.replace("/", "_")) if plate_path and camera else plate_path


# A camera's log lines, line -> (the node's own camera '': as a node with one camera says it, one
# camera of several: naming it): str.format templates over ``topic`` (its input topic), ``service``
# (its capture service), ``camera`` (the full node name it stands for) and the line's own values.
LINES = {
    "no_plate": ("no background plate yet, nothing is published: with the scene empty, call {service} "
                 "(std_srvs/srv/Trigger)",
                 "{topic}: no background plate yet, nothing is published: with the scene empty, call {service}"),
    "size_refused": ("frame refused: {error} (call {service} again)",
                     "{topic}: frame refused: {error}; call {service}"),
    "plate_differs": ("the frame differs from the plate in {difference:.0%} of its pixels (more than "
                      "plate_warn_difference {limit:.0%}): the plate must be the empty scene seen by this same "
                      "camera from the same position (not a new background); with the scene empty, recapture it "
                      "with {service}",
                      "a frame on {topic} differs from its plate in {difference:.0%} of its pixels (more than "
                      "plate_warn_difference {limit:.0%}): the plate must be the empty scene seen by this same "
                      "camera; with the scene empty, recapture it with {service}"),
    "stale": ("the plate looks stale: {reason}; with the scene empty, recapture it with {service}",
              "the plate of {topic} looks stale: {reason}; with the scene empty, call {service}"),
    "plate_skipped": ("stored plate skipped: {problem}", "stored plate of {camera} skipped: {problem}"),
    "plate_reloaded": ("reloaded the {size} plate from {folder}", "{camera}: reloaded the {size} plate from {folder}"),
    "capturing": ("capturing a plate: averaging the next {frames} frames",
                  "{camera}: capturing a plate: averaging the next {frames} frames"),
    "capture_failed": ("capture_background failed: {message}", "{service} failed: {message}"),
    "captured": ("capture_background: {message}", "{service}: {message}"),
    "cleared": ("clear_background: {message}", "{camera}/clear_background: {message}"),
    "frame_error": ("frame dropped by an unexpected error: {error}",
                    "frame on {topic} dropped by an unexpected error: {error}"),
}


class Camera:
    """One camera's state (see the module doc); ``name``: its namespace, '' for the node's own.
    ``node``: the MatteNode (its live ``settings``, logger, clock; publishers and services are
    created on it)."""

    def __init__(self, node, engine: MattingEngine, name: str, turns: FairTurns,
                 composite_for: Callable[[int, int], object], services: ReentrantCallbackGroup):
        self.node, self.engine, self.name, self._turns = node, engine, name, turns
        self._composite_for = composite_for
        self._column = 1 if name else 0      # of LINES
        s = node.settings

        def named(n: str) -> str:
            return names.in_camera(n, name, node.get_name())

        self.full_name = (node.resolve_topic_name(named(names.CAPTURE_SERVICE)).rsplit("/", 1)[0] if name
                          else node.get_fully_qualified_name())
        self.stats = NodeStats()
        self._throttle = ReasonThrottle(WARN_PERIOD)
        self._capture: Optional[PlateCapture] = None
        self._capture_lock = threading.Lock()
        self._plate_lock = threading.Lock()
        self._capture_sizes = set()
        self._stopped = False
        self.plate_hint_given = False
        self.plate_health = None
        self._frame_id = ""
        self._camera_info: Optional[CameraInfo] = None
        self.plate_dir = plate_dir_of(s.plate_path, name)

        self._pub_alpha = node.create_publisher(Image, named(names.ALPHA), OUT_QOS)
        self._pub_fgr = node.create_publisher(Image, named(names.FOREGROUND), OUT_QOS) if s.publish_foreground else None
        self._pub_comp = node.create_publisher(Image, named(names.COMPOSITE), OUT_QOS) if s.publish_composite else None
        self._pub_maps = ((node.create_publisher(Image, named(names.ERROR_MAP), OUT_QOS),
                           node.create_publisher(Image, named(names.REFINEMENT_MAP), OUT_QOS))
                          if s.publish_debug_maps else ())
        self._pub_info = node.create_publisher(CameraInfo, named(names.MATTE_CAMERA_INFO), OUT_QOS)
        self._bg_name = named(names.BACKGROUND)
        self._pub_bg = node.create_publisher(Image, self._bg_name, LATCHED)
        self.capture_service = node.resolve_service_name(named(names.CAPTURE_SERVICE))
        self.input_topic = node.resolve_topic_name(named(names.IMAGE)) + ("/compressed" if s.compressed else "")
        node.create_subscription(CompressedImage if s.compressed else Image, self.input_topic, self._on_image,
                                 INPUT_QOS, callback_group=MutuallyExclusiveCallbackGroup())
        node.create_subscription(CameraInfo, named(names.CAMERA_INFO), self._on_camera_info, INPUT_QOS)
        node.create_service(Trigger, named(names.CAPTURE_SERVICE), self._on_capture, callback_group=services)
        node.create_service(Trigger, named(names.CLEAR_SERVICE), self._on_clear, callback_group=services)
        if self.plate_dir:
            self._reload_plates()

    @property
    def log(self):
        return self.node.get_logger()

    def throttled(self, log, message: str) -> None:
        """``log(message)`` unless the same reason was logged within WARN_PERIOD (other reasons pass)."""
        if self._throttle.ready(message):
            log(message)

    def say(self, line: str, **values) -> str:
        """Log line ``line`` (of LINES) as this camera says it, with ``values``."""
        return LINES[line][self._column].format(topic=self.input_topic, service=self.capture_service,
                                                camera=self.full_name, **values)

    # ---- input ---------------------------------------------------------------------------------
    def _on_image(self, msg) -> None:
        self.stats.add("received")
        if self._turns.put(self.name, msg):
            self.stats.add("dropped")

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._camera_info = msg

    def outputs_subscribed(self) -> bool:
        pubs = (self._pub_alpha, self._pub_fgr, self._pub_comp, self._pub_info) + self._pub_maps
        return any(p is not None and p.get_subscription_count() > 0 for p in pubs)

    def handle(self, msg, arrived: float) -> None:
        """Matte one message of this camera that arrived at ``arrived`` (time.monotonic())."""
        capture = self._capture
        capturing = capture is not None and not capture.done
        wanted = self.outputs_subscribed()
        if not (wanted or capturing):
            self.stats.add("idle")
            return
        limit = self.node.settings.max_frame_pixels
        try:
            rgb = compressed_to_rgb(msg, limit) if isinstance(msg, CompressedImage) else image_to_rgb(msg, limit)
        except FrameTooLargeError as e:
            self.stats.add("refused")
            self.throttled(self.log.warning, f"frame on {self.input_topic} refused: {e}")
            return
        except ImageFormatError as e:
            self.stats.add("malformed")
            self.throttled(self.log.warning, f"malformed image on {self.input_topic} dropped: {e}")
            return
        self._frame_id = msg.header.frame_id
        if capturing and arrived >= capture.started:
            self._capture_sizes.add((rgb.shape[1], rgb.shape[0]))
            capture.add(rgb)
        if not wanted:
            self.stats.add("idle")
            return
        h, w = rgb.shape[:2]
        s = self.node.settings
        try:
            t = time.perf_counter()
            maps = any(p.get_subscription_count() > 0 for p in self._pub_maps)
            composite = None if self._pub_comp is None else self._composite_for(h, w)
            res = self.engine.process(rgb, composite=composite, maps=maps)
            self.stats.engine(time.perf_counter() - t)
        except (NoBackgroundError, SizeMismatchError) as e:
            self.stats.add("refused")
            if not capturing:           # the user has already done what the warnings would ask
                self.throttled(self.log.warning, self.say("no_plate") if isinstance(e, NoBackgroundError)
                               else self.say("size_refused", error=e))
            return
        if res.plate_difference > s.plate_warn_difference and not self.plate_hint_given:
            self.plate_hint_given = True
            self.log.warning(self.say("plate_differs", difference=res.plate_difference,
                                      limit=s.plate_warn_difference))
        self.plate_health = res.plate_health
        if res.plate_health is not None and res.plate_health.stale:
            self.throttled(self.log.warning, self.say("stale", reason=res.plate_health.reason))
        self._publish(msg.header, res)

    def _publish(self, header: Header, res) -> None:
        s = self.node.settings
        self._pub_alpha.publish(alpha_to_msg(res.alpha, header, s.alpha_encoding))
        if self._pub_fgr is not None:
            self._pub_fgr.publish(foreground_to_msg(res.foreground, header, s.foreground_encoding, alpha=res.alpha))
        if self._pub_comp is not None:
            self._pub_comp.publish(rgb_to_msg(res.composite, header, "rgb8"))
        for pub, debug_map in zip(self._pub_maps, (res.error, res.refinement)):
            if debug_map is not None:
                pub.publish(alpha_to_msg(debug_map, header, s.alpha_encoding))
        if self._camera_info is not None:
            info = copy.copy(self._camera_info)
            info.header = header
            self._pub_info.publish(info)
        self.stats.add("published")
        stamp = Time.from_msg(header.stamp)
        if stamp.nanoseconds > 0:
            self.stats.latency((self.node.get_clock().now() - stamp).nanoseconds * 1e-9)

    # ---- plates ----------------------------------------------------------------------------------
    def _install_plate(self, plate: np.ndarray) -> None:
        with self._plate_lock:
            self.engine.set_background(plate)
            self.plate_hint_given = False
            header = Header(stamp=self.node.get_clock().now().to_msg(), frame_id=self._frame_id)
            self._pub_bg.publish(rgb_to_msg(plate, header, "rgb8"))

    def _reload_plates(self) -> None:
        plates, problems = load_plates(self.plate_dir)
        for problem in problems:
            self.log.warning(self.say("plate_skipped", problem=problem))
        for size, plate in sorted(plates.items()):
            self._install_plate(plate)
            self.log.info(self.say("plate_reloaded", size=f"{size[1]}x{size[0]}", folder=self.plate_dir))

    def _on_capture(self, request, response):
        s = self.node.settings
        with self._capture_lock:            # stop() sets _stopped under this lock: no capture starts after it
            if self._stopped:
                response.success, response.message = False, SHUTTING_DOWN
                return response
            if self._capture is not None and not self._capture.done:
                response.success, response.message = False, "a capture is already running; wait for its answer"
                return response
            self._capture_sizes = set()
            self._capture = capture = PlateCapture(s.plate_frames, max_moving=s.plate_max_moving)
        self.log.info(self.say("capturing", frames=s.plate_frames))
        res = capture.wait(s.plate_timeout)
        if res is None:
            capture.cancel(self._timeout_message(capture, s.plate_timeout))
            res = capture.wait(0)
        response.success, response.message = res.ok, res.message
        if not res.ok:
            self.log.warning(self.say("capture_failed", message=res.message))
            return response
        try:
            self._install_plate(res.plate)
        except Exception as e:          # answer the caller whatever happens
            response.success, response.message = False, f"the plate could not be installed: {type(e).__name__}: {e}"
            self.log.error(self.say("capture_failed", message=response.message))
            return response
        if self.plate_dir:
            try:
                response.message += ", saved to " + save_plate(self.plate_dir, res.plate)
            except (OSError, ValueError) as e:
                response.message += f", NOT saved: {e}"
        self.log.info(self.say("captured", message=response.message))
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
            self.node.destroy_publisher(self._pub_bg)       # drops the latched plate for late subscribers
            self._pub_bg = self.node.create_publisher(Image, self._bg_name, LATCHED)
        response.success, response.message = True, f"cleared {n} plate(s)"
        try:
            removed = remove_plates(self.plate_dir) if self.plate_dir else []
            response.message += f", deleted {', '.join(removed)}" if removed else ""
        except OSError as e:
            response.success, response.message = False, response.message + f", but the stored plates remain: {e}"
        self.log.info(self.say("cleared", message=response.message))
        return response

    # ---- diagnostics, shutdown -------------------------------------------------------------------
    def status(self) -> DiagnosticStatus:
        """The camera's diagnostics status, named by the node name it stands for (/left/matte_node)."""
        problem = None
        sizes = self.engine.plate_sizes()
        if not sizes:
            problem = f"no background plate: call {self.capture_service} with the scene empty"
        health = self.plate_health
        if problem is None and health is not None and health.stale:
            problem = f"plate stale ({health.reason}): with the scene empty, call {self.capture_service}"
        subscribed = self.outputs_subscribed()
        report = self.stats.report()
        device = str(self.engine.device)
        return NodeStats.status(report, f"{self.full_name}: matting", f"{device} ({self.full_name})",
                                {"device": device, "precision": self.engine.precision,
                                 "input_topic": self.input_topic,
                                 "plates": ", ".join(f"{w}x{h}" for h, w in sizes) or "none",
                                 "work": MATTING if subscribed else IDLE,
                                 "plate_health": "off" if health is None else health.summary()},
                                work_state(report, subscribed, self.input_topic, problem))

    def stop(self) -> None:
        """No capture starts from now on; a waiting one is answered SHUTTING_DOWN."""
        with self._capture_lock:
            self._stopped = True
            capture = self._capture
        if capture is not None:
            capture.cancel(SHUTTING_DOWN)
