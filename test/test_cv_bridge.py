"""The cv_bridge fallback of matte_ros.ros.imaging switches on with a bridge that behaves like ROS 2
Jazzy's cv_bridge (rows read as ``step // bytes per pixel`` whole pixels), so encodings the package
does not convert itself (Bayer here) reach it."""
import sys
import types

import cv2
import numpy as np
import pytest

pytest.importorskip("rclpy")
from sensor_msgs.msg import Image  # noqa: E402

from matte_ros.ros import imaging  # noqa: E402
from matte_ros.ros.imaging import image_to_rgb  # noqa: E402

_LAYOUT = {"rgb8": 3, "bgr8": 3, "bayer_rggb8": 1}
_TO_RGB = {"rgb8": None, "bgr8": cv2.COLOR_BGR2RGB, "bayer_rggb8": cv2.COLOR_BayerBG2RGB}


class Ros2LikeBridge:
    """Reads rows as ROS 2's cv_bridge does: ``step // (channels * itemsize)`` pixels a row, then
    the first ``width`` of them; then an OpenCV conversion to rgb8."""

    def imgmsg_to_cv2(self, msg, desired_encoding="passthrough"):
        assert desired_encoding == "rgb8"
        channels = _LAYOUT[msg.encoding]
        row_pixels = msg.step // channels
        buf = np.frombuffer(bytes(msg.data), np.uint8)[:msg.height * row_pixels * channels]
        im = buf.reshape(msg.height, row_pixels, channels)[:, :msg.width]
        im = np.ascontiguousarray(im[:, :, 0] if channels == 1 else im)
        code = _TO_RGB[msg.encoding]
        return im if code is None else cv2.cvtColor(im, code)


@pytest.fixture
def ros2_bridge(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv_bridge", types.SimpleNamespace(CvBridge=Ros2LikeBridge))
    imaging._bridge.cache_clear()
    yield
    imaging._bridge.cache_clear()


def test_the_model_of_ros2_cv_bridge_misreads_padding_of_part_of_a_pixel():
    # what ROS 2's cv_bridge returns for rgb8 2x2 with step 8: the second row is shifted by the padding
    data = np.zeros((2, 8), np.uint8)
    data[:, :6] = np.arange(12, dtype=np.uint8).reshape(2, 6)
    msg = Image(height=2, width=2, encoding="rgb8", step=8, data=data.tobytes())
    got = Ros2LikeBridge().imgmsg_to_cv2(msg, "rgb8").reshape(2, 6)
    np.testing.assert_array_equal(got, [[0, 1, 2, 3, 4, 5], [0, 0, 6, 7, 8, 9]])


def test_self_test_accepts_ros2_cv_bridge(ros2_bridge):
    assert imaging._bridge() is not None


def test_bayer_frames_are_converted_through_the_bridge(ros2_bridge):
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, (6, 8), dtype=np.uint8)
    padded = np.zeros((6, 12), np.uint8)
    padded[:, :8] = raw
    msg = Image(height=6, width=8, encoding="bayer_rggb8", step=12, data=padded.tobytes())
    rgb = image_to_rgb(msg)
    assert rgb.shape == (6, 8, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb, cv2.cvtColor(raw, cv2.COLOR_BayerBG2RGB))
