"""A rosbag2 recorded from the running fake camera (rclpy subscriptions, written with rosbags), matted
by matte_offline into every output type: values against the engine, header stamps against the input's."""
import threading
import time

import numpy as np
import pytest
import torch

rclpy = pytest.importorskip("rclpy")
pytestmark = [pytest.mark.ros, pytest.mark.slow]

from node_harness import wait_for  # noqa: E402
from offline_inputs import read_bag, save_model  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from matte_ros.core.engine import MattingEngine  # noqa: E402
from matte_ros.core.plate import average_frames  # noqa: E402
from matte_ros.ros.fake_camera import FakeCamera  # noqa: E402
from matte_ros.tools.offline.bags import image_to_rgb, typestore  # noqa: E402
from matte_ros.tools.offline.cli import main  # noqa: E402

TOPICS = {"/image": "sensor_msgs/msg/Image", "/camera_info": "sensor_msgs/msg/CameraInfo",
          "/fake_camera/alpha_true": "sensor_msgs/msg/Image"}
ALL = ("alpha", "foreground", "composite", "error", "refinement")


def record(path, frames=30):
    """Run the fake camera (96x64, 50 Hz, 0.4 s of empty scene) and record TOPICS into a rosbag2."""
    from rosbags.rosbag2 import Writer
    ctx = rclpy.Context()
    rclpy.init(context=ctx)      # in the module's domain (conftest's ros_domain)
    got = []
    lock = threading.Lock()
    try:
        cam = FakeCamera(context=ctx, parameter_overrides=[
            Parameter("width", value=96), Parameter("height", value=64), Parameter("rate", value=50.0),
            Parameter("empty_seconds", value=0.4), Parameter("frame_id", value="cam")])
        rec = rclpy.create_node("offline_recorder", context=ctx)
        for topic, kind in TOPICS.items():
            cls = CameraInfo if kind.endswith("CameraInfo") else Image

            def keep(data, topic=topic):
                with lock:
                    got.append((topic, time.time_ns(), bytes(data)))
            rec.create_subscription(cls, topic, keep, 100, raw=True)
        ex = SingleThreadedExecutor(context=ctx)
        ex.add_node(cam)
        ex.add_node(rec)
        t = threading.Thread(target=ex.spin, daemon=True)
        t.start()
        try:
            assert wait_for(lambda: sum(1 for m in list(got) if m[0] == "/image") >= frames, 20)
        finally:
            ex.shutdown()
            t.join(5)
            cam.destroy_node()
            rec.destroy_node()
    finally:
        rclpy.shutdown(context=ctx)
    ts = typestore()
    with Writer(path, version=9) as w:
        conns = {topic: w.add_connection(topic, kind, typestore=ts) for topic, kind in TOPICS.items()}
        for topic, stamp, data in got:
            w.write(conns[topic], stamp, data)


def test_fake_camera_recording_to_every_output_type(tmp_path):
    torch.set_num_threads(1)
    model = save_model(str(tmp_path / "tiny.safetensors"))
    record(str(tmp_path / "rec"))
    assert main([str(tmp_path / "rec"), "-o", str(tmp_path / "out"), "--topic", "/image", "--plate-frames", "3",
                 "--output-types", ",".join(ALL), "--checkpoint", model, "--device", "cpu", "--quiet"]) == 0
    given, got = read_bag(str(tmp_path / "rec")), read_bag(str(tmp_path / "out"))
    assert set(got) == set(TOPICS) | {f"/matte/{t}" for t in ALL}
    assert {t: len(v) for t, v in got.items() if t in TOPICS} == {t: len(v) for t, v in given.items()}
    images = given["/image"]
    for t in ALL:
        assert [(ts, m.header.stamp.sec, m.header.stamp.nanosec, m.header.frame_id) for ts, m in got[f"/matte/{t}"]] \
            == [(ts, m.header.stamp.sec, m.header.stamp.nanosec, m.header.frame_id) for ts, m in images]
    frames = [image_to_rgb(m) for _, m in images]
    plate = average_frames(frames[:3]).plate
    engine = MattingEngine(checkpoint=model, device="cpu")
    engine.set_background(plate)
    for i, f in enumerate(frames):
        r = engine.process(f, composite=(0, 255, 0), maps=True)
        err, ref = r.error, r.refinement
        want = {"alpha": np.rint(r.alpha * 255), "foreground": r.foreground, "composite": r.composite,
                "error": np.rint(err * 255), "refinement": ref * 255}
        for t in ALL:
            m = got[f"/matte/{t}"][i][1]
            value = m.data.reshape(want[t].shape).astype(np.int32)
            assert np.abs(value - want[t]).max() <= 1, (t, i)
