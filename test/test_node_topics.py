"""The node's names and topics: relative to its namespace (two cameras side by side), lazy work
while nobody subscribes, camera_info republished with the outputs' header, the capture's checks of
the plate; names.py on its own."""
import threading

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
pytestmark = pytest.mark.ros

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from node_harness import context_fixture, tiny_model, wait_for  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

import matte_ros.ros.camera as camera_module  # noqa: E402
from matte_ros.core.engine import MattingEngine  # noqa: E402
from matte_ros.core.synthetic import SceneSequence  # noqa: E402
from matte_ros.ros.imaging import msg_to_alpha, rgb_to_msg  # noqa: E402
from matte_ros.ros.names import ALPHA, CAPTURE_SERVICE, resolve, service_of_node  # noqa: E402
from matte_ros.ros.node import MatteNode  # noqa: E402


def test_names_resolve_in_a_namespace():
    assert resolve(ALPHA) == "/matte/alpha" and resolve(ALPHA, "") == "/matte/alpha"
    assert resolve(ALPHA, "/left") == resolve(ALPHA, "left/") == "/left/matte/alpha"
    assert resolve(CAPTURE_SERVICE) == "/matte_node/capture_background"
    assert resolve(CAPTURE_SERVICE, "/stereo/left") == "/stereo/left/matte_node/capture_background"
    assert resolve("/diagnostics", "/left") == "/diagnostics"
    assert service_of_node(CAPTURE_SERVICE) == "matte_node/capture_background"
    with pytest.raises(ValueError, match="not a private service name"):
        service_of_node("capture_background")


context = context_fixture()


class Rig:
    """Matting nodes in namespaces plus a client node, spun by one executor thread."""

    def __init__(self, context, namespaces, params=None):
        overrides = [Parameter(k, value=v) for k, v in {"plate_frames": 3, **(params or {})}.items()]
        self.engines = {ns: MattingEngine(model=tiny_model(), device="cpu") for ns in namespaces}
        self.nodes = {ns: MatteNode(engine=self.engines[ns], context=context, namespace=ns,
                                    parameter_overrides=overrides) for ns in namespaces}
        self.client = rclpy.create_node("topics_client", context=context)
        self.pubs = {ns: self.client.create_publisher(Image, resolve("image", ns), 10) for ns in namespaces}
        self.executor = MultiThreadedExecutor(num_threads=4, context=context)
        for n in (*self.nodes.values(), self.client):
            self.executor.add_node(n)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()
        self.n = 0
        assert wait_for(lambda: all(p.get_subscription_count() > 0 for p in self.pubs.values()), 10)

    def send(self, ns, rgb, frame_id):
        self.n += 1
        header = Header(stamp=rclpy.time.Time(seconds=100 + self.n).to_msg(), frame_id=frame_id)
        self.pubs[ns].publish(rgb_to_msg(rgb, header, "rgb8"))
        return header

    def capture(self, ns, rgb, frame_id="cam"):
        cli = self.client.create_client(Trigger, resolve(CAPTURE_SERVICE, ns))
        assert wait_for(cli.service_is_ready, 10)
        future = cli.call_async(Trigger.Request())
        assert wait_for(future.done, 20, 0.02, lambda: self.send(ns, rgb, frame_id))
        return future.result()

    def close(self):
        self.executor.shutdown()
        self._thread.join(5)
        for n in (*self.nodes.values(), self.client):
            n.destroy_node()


def test_two_namespaces_side_by_side(context):
    rig = Rig(context, ["/left", "/right"])
    try:
        scenes = {"/left": SceneSequence(48, 64, seed=1, noise=0.0), "/right": SceneSequence(48, 64, seed=2, noise=0.0)}
        got = {"/left": [], "/right": []}
        for ns in got:
            rig.client.create_subscription(Image, f"{ns}/matte/alpha", got[ns].append, 50)
        for ns, scene in scenes.items():
            assert rig.capture(ns, scene.background(), ns.strip("/")).success
        assert rig.engines["/left"].has_background((48, 64)) and rig.engines["/right"].has_background((48, 64))
        assert wait_for(lambda: all(got.values()), 20, 0.05,
                        lambda: [rig.send(ns, s.frame(3)[0], ns.strip("/")) for ns, s in scenes.items()])
        assert {m.header.frame_id for m in got["/left"]} == {"left"}
        assert {m.header.frame_id for m in got["/right"]} == {"right"}
        topics = dict(rig.client.get_topic_names_and_types())
        assert "/left/matte/alpha" in topics and "/right/matte/background" in topics
        assert "/matte/alpha" not in topics
    finally:
        rig.close()


def test_no_conversion_or_inference_without_a_subscriber(context, monkeypatch):
    converted, matted = [], []
    real_convert = camera_module.image_to_rgb
    monkeypatch.setattr(camera_module, "image_to_rgb", lambda *a: converted.append(1) or real_convert(*a))
    rig = Rig(context, ["/lazy"])
    node, engine = rig.nodes["/lazy"], rig.engines["/lazy"]
    real_process = engine.process
    monkeypatch.setattr(engine, "process", lambda *a, **k: matted.append(1) or real_process(*a, **k))
    diags = []
    rig.client.create_subscription(DiagnosticArray, "/diagnostics", diags.append, 10)
    scene = SceneSequence(48, 64, seed=3, noise=0.0)
    try:
        assert rig.capture("/lazy", scene.background()).success        # a capture converts frames even so
        n_capture = len(converted)
        assert n_capture >= 3 and matted == []
        assert wait_for(lambda: node.idle_frames >= 5, 20, 0.05, lambda: rig.send("/lazy", scene.frame(1)[0], "c"))
        assert len(converted) == n_capture and matted == [] and node.stats.counts["published"] == 0

        def work_value():
            values = {kv.key: kv.value for d in diags if d.status[0].name == "/lazy/matte_node: matting"
                      for kv in d.status[0].values}
            return values.get("work")
        assert wait_for(lambda: (work_value() or "").startswith("idle"), 5)
        alphas = []
        rig.client.create_subscription(Image, "/lazy/matte/alpha", alphas.append, 10)
        assert wait_for(lambda: alphas, 20, 0.05, lambda: rig.send("/lazy", scene.frame(1)[0], "c"))
        assert len(converted) > n_capture and matted and node.stats.counts["published"] >= 1
        diags.clear()
        assert wait_for(lambda: work_value() == "matting", 5)
    finally:
        rig.close()


def test_camera_info_is_republished_with_the_outputs_header(context):
    rig = Rig(context, ["/info"])
    scene = SceneSequence(48, 64, seed=5, noise=0.0)
    alphas, infos = [], []
    rig.client.create_subscription(Image, "/info/matte/alpha", alphas.append, 20)
    rig.client.create_subscription(CameraInfo, "/info/matte/camera_info", infos.append, 20)
    info_pub = rig.client.create_publisher(CameraInfo, "/info/camera_info", 5)
    k = [50.0, 0.0, 31.5, 0.0, 50.0, 23.5, 0.0, 0.0, 1.0]
    try:
        assert rig.capture("/info", scene.background()).success
        camera_header = Header(stamp=rclpy.time.Time(seconds=7).to_msg(), frame_id="info_cam")

        def tick():
            info_pub.publish(CameraInfo(header=camera_header, width=64, height=48, k=k))
            rig.send("/info", scene.frame(2)[0], "info_cam")

        def paired():
            stamps = {(a.header.stamp.sec, a.header.stamp.nanosec): a for a in list(alphas)
                      if a.header.frame_id == "info_cam"}
            return [(stamps[key], i) for i in list(infos)
                    if (key := (i.header.stamp.sec, i.header.stamp.nanosec)) in stamps]
        pairs = wait_for(paired, 20, 0.05, tick)
        assert pairs
        alpha, info = pairs[0]
        assert info.header == alpha.header and info.header.frame_id == "info_cam"
        assert info.header.stamp != camera_header.stamp         # the frame's stamp, not the info message's
        assert (info.width, info.height) == (64, 48) and np.allclose(info.k, k)
        assert msg_to_alpha(alpha).shape == (48, 64)
    finally:
        rig.close()


def test_capture_fails_when_someone_walks_through_and_a_foreign_plate_warns(context):
    rig = Rig(context, ["/plate"], {"plate_frames": 5})
    node = rig.nodes["/plate"]
    scene = SceneSequence(48, 64, seed=6, noise=0.01)
    alphas = []
    rig.client.create_subscription(Image, "/plate/matte/alpha", alphas.append, 20)
    try:
        cli = rig.client.create_client(Trigger, "/plate/matte_node/capture_background")
        assert wait_for(cli.service_is_ready, 10)
        future = cli.call_async(Trigger.Request())
        step = iter(range(0, 10 ** 6, 6))             # the subject walks while the frames are averaged
        assert wait_for(future.done, 20, 0.05, lambda: rig.send("/plate", scene.frame(next(step))[0], "walk"))
        res = future.result()
        assert not res.success and res.message.startswith("the scene was not still: ")
        assert not rig.engines["/plate"].has_background((48, 64))

        plate = scene.background()
        assert rig.capture("/plate", plate).success

        def matted(rgb, frame_id):
            return wait_for(lambda: any(a.header.frame_id == frame_id for a in alphas), 20, 0.05,
                            lambda: rig.send("/plate", rgb, frame_id))
        changed = plate.copy()
        changed[:, :16] = 255 - changed[:, :16]         # a quarter of the frame differs: a subject, no warning
        assert matted(changed, "quarter") and not node.camera.plate_hint_given
        changed[:, :40] = 255 - plate[:, :40]           # most of it: not this scene's plate
        assert matted(changed, "most") and node.camera.plate_hint_given
    finally:
        rig.close()
