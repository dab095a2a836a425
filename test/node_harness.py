"""In-process harness for the matting node tests: a private ROS context, the node under test and a
client node (camera publisher, output subscribers, service clients) spun by one executor thread."""
import functools
import os
import struct
import threading
import time
import zlib

import numpy as np
import pytest
import rclpy
import torch
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import MultiThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header
from std_srvs.srv import Trigger

from matte_ros.core.engine import MattingEngine
from matte_ros.core.model import MattingRefine
from matte_ros.core.synthetic import SceneSequence
from matte_ros.ros import names
from matte_ros.ros.imaging import rgb_to_msg
from matte_ros.ros.node import MatteNode


def child_env(**extra: str) -> dict:
    """The environment of a child process of a ROS test: os.environ (the module's DDS domain and
    local discovery, set by conftest's ``ros_domain``), unbuffered Python output, ``extra``."""
    return dict(os.environ, PYTHONUNBUFFERED="1", **extra)


def context_fixture():
    """A module-scoped fixture: a private rclpy context in the module's DDS domain (conftest's ``ros_domain``)."""
    @pytest.fixture(scope="module")
    def context(ros_domain):
        ctx = rclpy.Context()
        rclpy.init(context=ctx, domain_id=ros_domain)
        yield ctx
        rclpy.shutdown(context=ctx)
    return context


def node_fixtures(size):
    """The fixtures of an in-process node test module: ``context`` (see context_fixture), ``model``
    (tiny_model, once per module), ``scene`` (a noise-free SceneSequence of ``size`` = (H, W)) and
    ``harness`` (a Harness per test; indirect parametrisation passes its keyword arguments)."""
    h, w = size

    @pytest.fixture(scope="module")
    def model():
        return tiny_model()

    @pytest.fixture(scope="module")
    def scene():
        return SceneSequence(h, w, seed=3, noise=0.0)

    @pytest.fixture
    def harness(context, model, request):
        rig = Harness(context, model, **getattr(request, "param", {}))
        yield rig
        rig.close()

    return context_fixture(), model, scene, harness


def tiny_model() -> MattingRefine:
    """A random-weight refine network, small and fast on 64x48 frames."""
    return MattingRefine("mobilenetv2", backbone_scale=0.5, refine_sample_pixels=512)


def wait_for(pred, timeout: float = 10.0, step: float = 0.01, tick=None):
    """Poll ``pred`` (calling ``tick`` each round, e.g. to publish a frame) until it is truthy or timeout."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if tick is not None:
            tick()
        value = pred()
        if value:
            return value
        time.sleep(step)
    return pred()


class Harness:
    """node: the MatteNode; pub / pub_c: raw and compressed camera publishers; alphas, fgrs, comps,
    bgs, diags: lists of received messages."""

    def __init__(self, context, model, params=None, engine=None):
        # cpu_threads: keep this test process's torch threads (the node would set them process-wide)
        defaults = {"plate_frames": 3, "cpu_threads": torch.get_num_threads()}
        overrides = [Parameter(k, value=v) for k, v in {**defaults, **(params or {})}.items()]
        self.engine = engine or MattingEngine(model=model, device="cpu")
        self.node = MatteNode(engine=self.engine, context=context, parameter_overrides=overrides)
        self.client = rclpy.create_node("test_client", context=context)
        c = self.client
        self.pub = c.create_publisher(Image, "image", 10)
        self.pub_c = c.create_publisher(CompressedImage, "image/compressed", 10)
        self.alphas, self.fgrs, self.comps, self.bgs, self.diags = [], [], [], [], []
        c.create_subscription(Image, names.resolve(names.ALPHA), self.alphas.append, 50)
        c.create_subscription(Image, names.resolve(names.FOREGROUND), self.fgrs.append, 50)
        c.create_subscription(Image, names.resolve(names.COMPOSITE), self.comps.append, 50)
        c.create_subscription(Image, names.resolve(names.BACKGROUND), self.bgs.append,
                              QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
        c.create_subscription(DiagnosticArray, "/diagnostics", self.diags.append, 10)
        self.capture_cli = c.create_client(Trigger, names.resolve(names.CAPTURE_SERVICE))
        self.clear_cli = c.create_client(Trigger, names.resolve(names.CLEAR_SERVICE))
        self.executor = MultiThreadedExecutor(num_threads=4, context=context)
        self.executor.add_node(self.node)
        self.executor.add_node(c)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()
        self.n = 0
        self._stamp_ns = 0
        pub = self.pub_c if self.node.settings.compressed else self.pub
        if not wait_for(lambda: pub.get_subscription_count() > 0 and self.capture_cli.service_is_ready()
                        and self.node.outputs_subscribed(), 10):
            raise RuntimeError("the node's subscription, services and output subscribers did not match within 10 s")

    def header(self, frame_id: str = "cam") -> Header:
        """A header stamped now (so latency = publish time - stamp is real), unique and increasing."""
        self.n += 1
        self._stamp_ns = max(self.client.get_clock().now().nanoseconds, self._stamp_ns + 1)
        return Header(stamp=rclpy.time.Time(nanoseconds=self._stamp_ns).to_msg(), frame_id=frame_id)

    def send(self, rgb: np.ndarray, frame_id: str = "cam") -> Header:
        header = self.header(frame_id)
        self.pub.publish(rgb_to_msg(rgb, header, "rgb8"))
        return header

    def call(self, cli, while_waiting=None, timeout: float = 20.0) -> Trigger.Response:
        """Call a Trigger service; ``while_waiting()`` runs every 20 ms until the answer comes."""
        future = cli.call_async(Trigger.Request())
        if not wait_for(future.done, timeout, 0.02, while_waiting):
            raise TimeoutError(f"no answer from {cli.srv_name} within {timeout} s")
        return future.result()

    def capture(self, rgb: np.ndarray) -> Trigger.Response:
        return self.call(self.capture_cli, lambda: self.send(rgb))

    def alpha_for(self, header: Header, timeout: float = 10.0, resend=None):
        """The /matte/alpha message stamped like ``header`` (None when it does not come)."""
        def find():
            return next((m for m in self.alphas if m.header.stamp == header.stamp), None)
        return wait_for(find, timeout, 0.02, resend)

    def settled(self, timeout: float = 10.0) -> bool:
        """Wait until every frame the node received has an outcome (stats in_flight == 0)."""
        return bool(wait_for(lambda: self.node.stats.in_flight() == 0, timeout))

    def close(self) -> None:
        self.executor.shutdown()
        self._thread.join(5.0)
        self.node.destroy_node()
        self.client.destroy_node()


@functools.lru_cache(maxsize=4)
def zero_png(width: int, height: int) -> bytes:
    """A valid greyscale PNG of zeros, built row by row without the full image in memory: 16000 x
    16000 compresses to about 250 kB and decodes to 256 MB (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    packer = zlib.compressobj(9)
    rows = b"\x00" * (1 + width) * max(1, min(height, 2 ** 24 // (1 + width)))   # filter byte + pixels per row
    n_rows = len(rows) // (1 + width)
    parts = [packer.compress(rows) for _ in range(height // n_rows)]
    parts += [packer.compress(rows[:(height % n_rows) * (1 + width)]), packer.flush()]
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)       # 8-bit greyscale, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")
