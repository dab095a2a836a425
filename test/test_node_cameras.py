"""One node, three cameras (cameras:=left,right,broken): one model in memory, each camera's plate through its
own service, each camera's alpha against its own truth, a camera of malformed frames kept to its own
diagnostics status."""
import os
import sys
import threading

import cv2
import numpy as np
import pytest
import torch

rclpy = pytest.importorskip("rclpy")
pytestmark = pytest.mark.ros

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from node_harness import context_fixture, tiny_model, wait_for  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from matte_ros.core.engine import MattingEngine  # noqa: E402
from matte_ros.core.model import DEFAULT_WEIGHTS  # noqa: E402
from matte_ros.core.synthetic import SceneSequence  # noqa: E402
from matte_ros.ros.executor import WaitingExecutor  # noqa: E402
from matte_ros.ros.fake_camera import FakeCamera  # noqa: E402
from matte_ros.ros.imaging import msg_to_alpha, rgb_to_msg  # noqa: E402
from matte_ros.ros.node import MatteNode, configure_process  # noqa: E402

W, H = 320, 240
context = context_fixture()


def _stamp(msg):
    return msg.header.stamp.sec, msg.header.stamp.nanosec


def test_three_cameras_one_node(context):
    engine = MattingEngine(checkpoint=DEFAULT_WEIGHTS, device="cpu")
    node = MatteNode(engine=engine, context=context, parameter_overrides=[
        Parameter("cameras", value="left,right,broken"), Parameter("plate_frames", value=3),
        Parameter("cpu_threads", value=2)])
    assert len(node.group.workers) == 2 and node.group.threads_per_worker == 1  # on the CPU: frames of 2 at once
    saved = torch.get_num_threads(), cv2.getNumThreads(), sys.getswitchinterval()
    configure_process(node)             # as matte_node's main does: one torch and OpenCV thread per worker
    cams = [FakeCamera(context=context, namespace=ns, parameter_overrides=[
        Parameter("width", value=W), Parameter("height", value=H), Parameter("rate", value=8.0),
        Parameter("seed", value=seed), Parameter("noise", value=0.0), Parameter("wait_for_plate", value=True),
        Parameter("empty_seconds", value=0.5), Parameter("frame_id", value=ns)])
        for ns, seed in (("left", 1), ("right", 2))]
    peer = rclpy.create_node("cameras_test", context=context)
    got = {k: [] for k in ("left", "right", "broken", "left_true", "right_true", "diag")}
    for ns in ("left", "right", "broken"):
        peer.create_subscription(Image, f"/{ns}/matte/alpha", got[ns].append, 100)
    for ns in ("left", "right"):
        peer.create_subscription(Image, f"/{ns}/fake_camera/alpha_true", got[ns + "_true"].append, 200)
    peer.create_subscription(DiagnosticArray, "/diagnostics", got["diag"].append, 20)
    garbage = peer.create_publisher(Image, "/broken/image", 5)
    clients = {ns: peer.create_client(Trigger, f"/{ns}/matte_node/capture_background") for ns in ("left", "right")}
    # two threads for the subscriptions and timers, one more for each capture that waits (node.waiting_services)
    ex = WaitingExecutor(num_threads=2, context=context)
    for n in [node, peer] + cams:
        ex.add_node(n)
    spinner = threading.Thread(target=ex.spin, daemon=True)
    spinner.start()
    stop_garbage = threading.Event()

    def send_garbage():         # rgb8 that claims more rows than its data holds, 20 a second
        while not stop_garbage.wait(0.05):
            garbage.publish(Image(header=Header(frame_id="broken"), height=H, width=W, encoding="rgb8",
                                  step=W * 3, data=bytes(W * 3 * 5)))
    sender = threading.Thread(target=send_garbage, daemon=True)
    sender.start()
    try:
        assert wait_for(lambda: all(c.service_is_ready() for c in clients.values()), 10)
        assert node.get_fully_qualified_name() == "/matte_node"
        # each plate through its own service, both captures at once
        futures = {ns: c.call_async(Trigger.Request()) for ns, c in clients.items()}
        assert wait_for(lambda: all(f.done() for f in futures.values()), 30)
        for ns, f in futures.items():
            assert f.result().success, (ns, f.result().message)
        cameras = node.group.cameras
        left, right = cameras["left"].engine, cameras["right"].engine
        assert left.plate_sizes() == right.plate_sizes() == [(H, W)] and engine.plate_sizes() == []
        assert left.model is engine.model and right.model is engine.model        # one network in memory
        assert not np.array_equal(left.background((H, W)), right.background((H, W)))   # each its own scene

        def pairs(ns):
            truths = {_stamp(t): t for t in list(got[ns + "_true"])}
            return [(a, truths[_stamp(a)]) for a in list(got[ns])
                    if _stamp(a) in truths and msg_to_alpha(truths[_stamp(a)]).max() > 0.5]
        assert wait_for(lambda: len(pairs("left")) >= 3 and len(pairs("right")) >= 3, 60, 0.1)
        for ns in ("left", "right"):
            errors = [float(np.abs(msg_to_alpha(a) - msg_to_alpha(t)).mean()) for a, t in pairs(ns)]
            assert all(a.header.frame_id == ns for a, _ in pairs(ns))
            assert max(errors) < 0.08, (ns, errors)

        def statuses():
            found = {}
            for arr in list(got["diag"]):
                for st in arr.status:
                    found[st.name] = {v.key: v.value for v in st.values}
            return found if len(found) == 3 else None
        def settled():
            s = statuses()
            return s and int(s["/broken/matte_node: matting"]["malformed"]) > 0 and all(
                int(s[f"/{ns}/matte_node: matting"]["published"]) >= 3 for ns in ("left", "right"))
        assert wait_for(settled, 10)
        found = statuses()
        assert set(found) == {f"/{ns}/matte_node: matting" for ns in ("left", "right", "broken")}
        assert found["/broken/matte_node: matting"]["input_topic"] == "/broken/image"
        for ns in ("left", "right"):
            kv = found[f"/{ns}/matte_node: matting"]
            assert kv["malformed"] == "0" and kv["errors"] == "0" and kv["plates"] == f"{W}x{H}", (ns, kv)
            assert int(kv["published"]) >= 3
        assert got["broken"] == []
    finally:
        stop_garbage.set()
        sender.join(2)
        ex.shutdown()
        spinner.join(5)
        node.destroy_node()
        for n in [peer] + cams:
            n.destroy_node()
        torch.set_num_threads(saved[0])
        cv2.setNumThreads(saved[1])
        sys.setswitchinterval(saved[2])


def test_each_camera_keeps_persists_and_clears_its_own_plates_and_live_parameters_reach_all(context, tmp_path):
    h, w = 48, 64
    scenes = {"a": SceneSequence(h, w, seed=3, noise=0.0), "b": SceneSequence(h, w, seed=8, noise=0.0)}
    model = tiny_model()

    def start():
        return MatteNode(engine=MattingEngine(model=model, device="cpu"), context=context, parameter_overrides=[
            Parameter("cameras", value="a,b"), Parameter("plate_frames", value=2),
            Parameter("plate_path", value=str(tmp_path)), Parameter("cpu_threads", value=torch.get_num_threads())])
    node = start()
    peer = rclpy.create_node("cameras_plates_test", context=context)
    pubs = {ns: peer.create_publisher(Image, f"/{ns}/image", 5) for ns in scenes}
    capture = {ns: peer.create_client(Trigger, f"/{ns}/matte_node/capture_background") for ns in scenes}
    clear = peer.create_client(Trigger, "/a/matte_node/clear_background")
    ex = WaitingExecutor(num_threads=2, context=context)
    ex.add_node(node)
    ex.add_node(peer)
    spinner = threading.Thread(target=ex.spin, daemon=True)
    spinner.start()
    try:
        assert wait_for(lambda: all(c.service_is_ready() for c in capture.values()) and clear.service_is_ready(), 10)
        for ns, cli in capture.items():
            future = cli.call_async(Trigger.Request())
            assert wait_for(future.done, 20, 0.02, lambda ns=ns: pubs[ns].publish(
                rgb_to_msg(scenes[ns].background(), Header(frame_id=ns), "rgb8")))
            assert future.result().success and f"{tmp_path}/{ns}/plate_64x48.png" in future.result().message
        cams = node.group.cameras
        for ns in scenes:
            assert np.array_equal(cams[ns].engine.background((h, w)), scenes[ns].background())
        future = clear.call_async(Trigger.Request())
        assert wait_for(future.done, 10) and future.result().success
        assert cams["a"].engine.plate_sizes() == [] and cams["b"].engine.plate_sizes() == [(h, w)]
        assert sorted(os.listdir(tmp_path)) == ["a", "b"] and os.listdir(tmp_path / "a") == []
        assert node.set_parameters([Parameter("refine_mode", value="thresholding")])[0].successful
        assert [c.engine.settings()["refine_mode"] for c in cams.values()] == ["thresholding", "thresholding"]
    finally:
        ex.shutdown()
        spinner.join(5)
        node.destroy_node()
        peer.destroy_node()
    again = start()             # a restart reloads each camera's stored plates: b's only
    try:
        assert again.group.cameras["a"].engine.plate_sizes() == []
        assert np.array_equal(again.group.cameras["b"].engine.background((h, w)), scenes["b"].background())
    finally:
        again.destroy_node()
