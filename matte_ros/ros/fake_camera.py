"""A synthetic camera for demos and tests: the empty room first, then a person walking through it.

    fake_camera --ros-args -p width:=320 -p height:=240 -p rate:=15.0 -p empty_seconds:=2.0

Publishes ``image`` (sensor_msgs/Image, rgb8; remappable), optionally ``image/compressed``, and
the ground-truth alpha on ``~/alpha_true`` (``/fake_camera/alpha_true``) with the same header
(stamp, frame_id) as the frame it belongs to. The first ``empty_seconds * rate`` frames show the
empty scene (fresh sensor noise each), so the matting node's plate can be captured from them.
"""
import sys
from typing import Tuple

import cv2
import numpy as np
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from .imaging import alpha_to_msg, rgb_to_msg
from .main import run_node
from matte_ros.core.synthetic import SceneSequence

__all__ = ["scene_frame", "encode_compressed", "FakeCamera", "main"]


def scene_frame(scene: SceneSequence, n: int, empty_frames: int) -> Tuple[np.ndarray, np.ndarray]:
    """Frame ``n`` of the camera: (src (H, W, 3) uint8 RGB, true alpha (H, W) float32).

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


def _desc(text: str, lo=None, hi=None) -> ParameterDescriptor:
    d = ParameterDescriptor(description=text)
    if isinstance(lo, int):
        d.integer_range = [IntegerRange(from_value=lo, to_value=hi, step=1)]
    elif lo is not None:
        d.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)]
    return d


class FakeCamera(Node):
    """Publishes the synthetic scene at ``rate`` Hz; ``count`` = frames published so far."""

    def __init__(self, **node_kwargs):
        super().__init__("fake_camera", **node_kwargs)
        declare = {
            "width": (320, _desc("Frame width", 32, 7680)),
            "height": (240, _desc("Frame height", 32, 4320)),
            "rate": (15.0, _desc("Frames per second", 0.1, 240.0)),
            "empty_seconds": (2.0, _desc("Seconds of empty scene before the subject enters", 0.0, 3600.0)),
            "seed": (0, _desc("Scene seed (room and subject)", 0, 2 ** 31 - 1)),
            "noise": (0.01, _desc("Sensor noise sigma (0..1 units)", 0.0, 0.2)),
            "frame_id": ("fake_camera", _desc("frame_id of every header")),
            "compressed": ("", _desc("Also publish image/compressed: '' (no), png or jpeg")),
        }
        p = {name: self.declare_parameter(name, default, d).value for name, (default, d) in declare.items()}
        if p["compressed"] not in ("", "png", "jpeg"):
            raise ValueError(f"compressed must be '', png or jpeg, got {p['compressed']!r}")
        self.params = p
        self.scene = SceneSequence(p["height"], p["width"], seed=p["seed"], noise=p["noise"])
        self.empty_frames = int(round(p["empty_seconds"] * p["rate"]))
        self.count = 0
        self._pub = self.create_publisher(Image, "image", 5)
        self._pub_alpha = self.create_publisher(Image, "~/alpha_true", 5)
        self._pub_c = self.create_publisher(CompressedImage, "image/compressed", 5) if p["compressed"] else None
        self._timer = self.create_timer(1.0 / p["rate"], self._tick)
        self.get_logger().info(
            f"{p['width']}x{p['height']} at {p['rate']:g} Hz on {self.resolve_topic_name('image')}; "
            f"empty scene for the first {self.empty_frames} frames")

    def _tick(self) -> None:
        src, pha = scene_frame(self.scene, self.count, self.empty_frames)
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id=self.params["frame_id"])
        if self._pub_c is not None:
            data, fmt = encode_compressed(src, self.params["compressed"])
            self._pub_c.publish(CompressedImage(header=header, format=fmt, data=data))
        self._pub.publish(rgb_to_msg(src, header, "rgb8"))
        self._pub_alpha.publish(alpha_to_msg(pha, header, "32FC1"))
        if self.count == self.empty_frames:
            self.get_logger().info(f"frame {self.count}: the subject enters")
        self.count += 1


def main(args=None) -> int:
    return run_node("fake_camera", FakeCamera, (ValueError,), args)


if __name__ == "__main__":
    sys.exit(main())
