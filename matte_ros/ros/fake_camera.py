"""A synthetic camera for demos and tests: the empty room first, then a person walking through it.

    fake_camera --ros-args -p width:=320 -p height:=240 -p rate:=15.0 -p empty_seconds:=2.0

Publishes ``image`` (sensor_msgs/Image, rgb8; remappable), ``camera_info`` (a pinhole model with a
60 degree horizontal field of view), optionally ``image/compressed``, and the ground-truth alpha on
``~/alpha_true`` (``/fake_camera/alpha_true``, 32FC1, while it has a subscriber), all with the
same header (stamp, frame_id) as the frame they belong to. The first ``empty_seconds * rate``
frames show the empty scene (fresh sensor noise each), so the matting node's plate can be
captured from them. Parameters: the fields of
:class:`~matte_ros.ros.camera_settings.CameraSettings`, all fixed at start-up.

With ``wait_for_plate:=true`` the empty scene lasts until the matting node has a plate (its latched
``matte/background`` topic, in this camera's namespace, carries one) and ``empty_seconds`` count
from then: however long the node takes to start, its plate is captured from the empty scene.
"""
import threading
from typing import Optional, Tuple

import cv2
import numpy as np
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from matte_ros.core.synthetic import SceneSequence
from matte_ros.core.synthetic.disturbances import DisturbedSequence

from .camera_settings import CAMERA_PARAMS, camera_settings_from
from .declared import descriptor
from .imaging import alpha_to_msg, rgb_to_msg
from .main import run_node
from .names import BACKGROUND, CAMERA_INFO, FAKE_CAMERA_NAME, IMAGE, TRUE_ALPHA

__all__ = ["scene_frame", "encode_compressed", "camera_info", "FakeCamera", "main"]


def scene_frame(scene, n: int, empty_frames: int) -> Tuple[np.ndarray, np.ndarray]:
    """Frame ``n`` of the camera showing ``scene`` (a SceneSequence or a DisturbedSequence): (src
    (H, W, 3) uint8 RGB, true alpha (H, W) float32).

    Frames 0 .. empty_frames-1 are the empty scene (alpha 0); then the subject walks, starting at
    the scene's frame 0.
    """
    if n < empty_frames:
        return scene.background(), np.zeros(scene.size, np.float32)
    return scene.frame(n - empty_frames)


def encode_compressed(rgb: np.ndarray, fmt: str) -> Tuple[bytes, str]:
    """rgb: (H, W, 3) uint8 -> (encoded bytes, CompressedImage.format) for fmt "png" or "jpeg"."""
    if fmt not in ("png", "jpeg"):
        raise ValueError(f"compressed format must be png or jpeg, got {fmt!r}")
    ok, buf = cv2.imencode(".png" if fmt == "png" else ".jpg", np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:
        raise ValueError(f"OpenCV could not encode a {rgb.shape} frame as {fmt}")
    return buf.tobytes(), f"rgb8; {fmt} compressed bgr8"


def camera_info(width: int, height: int, header: Header, hfov_deg: float = 60.0) -> CameraInfo:
    """A distortion-free pinhole CameraInfo of a ``width`` x ``height`` camera with ``hfov_deg``
    horizontal field of view, principal point at the image centre."""
    f = (width / 2.0) / np.tan(np.radians(hfov_deg) / 2.0)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    return CameraInfo(header=header, width=width, height=height, distortion_model="plumb_bob",
                      d=[0.0] * 5, k=[f, 0.0, cx, 0.0, f, cy, 0.0, 0.0, 1.0],
                      r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
                      p=[f, 0.0, cx, 0.0, 0.0, f, cy, 0.0, 0.0, 0.0, 1.0, 0.0])


class FakeCamera(Node):
    """Publishes the synthetic scene at ``rate`` Hz; ``count`` = frames published so far,
    ``subject_from`` = the frame number where the empty scene's countdown started (None while it
    waits for the node's plate)."""

    def __init__(self, **node_kwargs):
        super().__init__(FAKE_CAMERA_NAME, **node_kwargs)
        for spec in CAMERA_PARAMS:
            self.declare_parameter(spec.name, spec.default, descriptor(spec))
        self.settings = p = camera_settings_from({spec.name: self.get_parameter(spec.name).value
                                                  for spec in CAMERA_PARAMS})
        self.scene = SceneSequence(p.height, p.width, seed=p.seed, noise=p.noise)
        if p.disturbance != "none":
            self.scene = DisturbedSequence(self.scene, p.disturbance, seed=p.seed, start=p.disturbance_start,
                                           period=p.disturbance_period)
        self.empty_frames = int(round(p.empty_seconds * p.rate))
        self.count = 0
        self.subject_from = None if p.wait_for_plate else 0
        self._pub = self.create_publisher(Image, IMAGE, 5)
        self._pub_info = self.create_publisher(CameraInfo, CAMERA_INFO, 5)
        self._pub_alpha = self.create_publisher(Image, TRUE_ALPHA, 5)
        self._pub_c = self.create_publisher(CompressedImage, IMAGE + "/compressed", 5) if p.compressed else None
        if p.wait_for_plate:
            latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
            self._plate_sub = self.create_subscription(Image, BACKGROUND, self._on_plate, latched)
        self._timer = self.create_timer(1.0 / p.rate, self._tick)
        waits = f"until {self.resolve_topic_name(BACKGROUND)} has a plate, then " if p.wait_for_plate else ""
        self.get_logger().info(
            f"{p.width}x{p.height} at {p.rate:g} Hz on {self.resolve_topic_name(IMAGE)}; "
            f"empty scene {waits}for {self.empty_frames} frames")

    def _on_plate(self, msg: Image) -> None:
        if self.subject_from is None:
            self.subject_from = self.count
            self.get_logger().info(f"the node has a {msg.width}x{msg.height} plate: the subject enters in "
                                   f"{self.empty_frames} frames")

    def _tick(self) -> None:
        start = self.subject_from
        n = 0 if start is None else self.count - start
        src, pha = scene_frame(self.scene, n, self.empty_frames)
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id=self.settings.frame_id)
        if self._pub_c is not None:
            data, fmt = encode_compressed(src, self.settings.compressed)
            self._pub_c.publish(CompressedImage(header=header, format=fmt, data=data))
        self._pub.publish(rgb_to_msg(src, header, "rgb8"))
        self._pub_info.publish(camera_info(self.settings.width, self.settings.height, header))
        if self._pub_alpha.get_subscription_count():     # the truth only when asked: 3.7 MB a frame at 720p
            self._pub_alpha.publish(alpha_to_msg(pha, header, "32FC1"))
        if start is not None and n == self.empty_frames:
            self.get_logger().info(f"frame {self.count}: the subject enters")
        self.count += 1


def main(args=None, stop: Optional[threading.Event] = None) -> int:
    """The command (``entry.fake_camera``: the runner sets ``stop`` on SIGINT / SIGTERM)."""
    return run_node("fake_camera", FakeCamera, (ValueError,), args, stop)


if __name__ == "__main__":        # the interpreter's own exit; the console script ends at once (entry.py)
    from .entry import fake_camera
    fake_camera.run_as_main()
