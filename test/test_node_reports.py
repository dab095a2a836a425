"""What the node tells its user, in one process: diagnostics named by the node's full name with a
level and message that follow the work state, warnings throttled per reason, the start-up log after
plates were reloaded, and rclpy's own parameters (use_sim_time) settable at run time."""
import array
import os
import re
import threading

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
pytestmark = pytest.mark.ros

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from node_harness import node_fixtures, tiny_model, wait_for  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from matte_ros.core.engine import MattingEngine  # noqa: E402
from matte_ros.core.plate import save_plate  # noqa: E402
from matte_ros.ros.imaging import rgb_to_msg  # noqa: E402
from matte_ros.ros.node import MatteNode  # noqa: E402
from matte_ros.ros.params import PARAMS  # noqa: E402
from matte_ros.ros.stats import IDLE, MATTING  # noqa: E402

H, W = 48, 64
NODE_MD = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "node.md")

context, model, scene, harness = node_fixtures((H, W))


class Pair:
    """Matting nodes in /left and /right reloading the plate in ``plate_dir``, a client node
    listening to /diagnostics, all spun by one executor thread."""

    def __init__(self, context, plate_dir):
        overrides = [Parameter("plate_path", value=plate_dir), Parameter("plate_frames", value=3)]
        self.nodes = {ns: MatteNode(engine=MattingEngine(model=tiny_model(), device="cpu"), context=context,
                                    namespace=ns, parameter_overrides=overrides) for ns in ("/left", "/right")}
        self.client = rclpy.create_node("reports_client", context=context)
        self.diags = []
        self.client.create_subscription(DiagnosticArray, "/diagnostics", self.diags.append, 50)
        self.executor = MultiThreadedExecutor(num_threads=4, context=context)
        for n in (*self.nodes.values(), self.client):
            self.executor.add_node(n)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def status(self, name, since=0):
        """The newest status named ``name`` received after the first ``since`` messages."""
        found = [s for m in self.diags[since:] for s in m.status if s.name == name]
        return found[-1] if found else None

    def close(self):
        self.executor.shutdown()
        self._thread.join(5)
        for n in (*self.nodes.values(), self.client):
            n.destroy_node()


def test_diagnostics_name_each_node_and_follow_its_work(context, scene, tmp_path, capfd):
    save_plate(str(tmp_path), scene.background())
    pair = Pair(context, str(tmp_path))
    try:
        left, right = "/left/matte_node: matting", "/right/matte_node: matting"
        assert wait_for(lambda: pair.status(left) and pair.status(right), 10)
        sl, sr = pair.status(left), pair.status(right)
        assert (sl.hardware_id, sr.hardware_id) == ("cpu (/left/matte_node)", "cpu (/right/matte_node)")
        documented = _diagnostics_keys_in_docs()
        assert [v.key for v in sl.values if v.key not in documented] == []
        # a plate, nobody subscribed: idle, which is fine, and said so
        assert (sl.level, sl.message) == (DiagnosticStatus.OK, IDLE) == (sr.level, sr.message)
        # subscribed, but the camera is silent: a warning naming the input topic
        alphas = []
        pair.client.create_subscription(Image, "/left/matte/alpha", alphas.append, 10)
        n = len(pair.diags)
        st = wait_for(lambda: (s := pair.status(left, n)) and s.level == DiagnosticStatus.WARN and s, 10)
        assert st and st.message == "no frames on /left/image since the last report: is the camera publishing?"
        assert wait_for(lambda: pair.status(right, n), 10).message == IDLE
        # frames matted: OK, matting
        pub = pair.client.create_publisher(Image, "/left/image", 10)
        frame = rgb_to_msg(scene.frame(2)[0], Header(frame_id="left"), "rgb8")
        n = len(pair.diags)
        st = wait_for(lambda: (s := pair.status(left, n)) and s.level == DiagnosticStatus.OK and s, 20, 0.05,
                      lambda: pub.publish(frame))
        assert st and st.message == MATTING and alphas
    finally:
        pair.close()
    log = capfd.readouterr().err
    assert log.count(f"using the 64x48 plate(s) reloaded from {tmp_path} (to replace them, call ") == 2, log
    assert "with the scene empty, call" not in log


def _diagnostics_keys_in_docs() -> set:
    """The value keys the Diagnostics section of docs/node.md documents (backticked, first column)."""
    text = open(NODE_MD).read()
    section = text[text.index("## Diagnostics"):text.index("\n## ", text.index("## Diagnostics") + 1)]
    return {key for row in section.splitlines() if row.startswith("| `")
            for key in re.findall(r"`([a-z_]+)`", row.split("|")[1])}


def test_the_stereo_example_remaps_camera_info_with_each_camera():
    launches = [line for line in open(NODE_MD).read().splitlines() if "matte.launch.py namespace:=" in line]
    assert len(launches) >= 2
    for line in launches:
        args = dict(a.split(":=", 1) for a in line.split() if ":=" in a)
        assert args.get("camera_info") == args["camera"].rsplit("/", 1)[0] + "/camera_info", line


def _bad_message(harness, **change):
    msg = rgb_to_msg(np.zeros((H, W, 3), np.uint8), harness.header(), "rgb8")
    for k, v in change.items():
        setattr(msg, k, v)
    return msg


def test_warnings_are_throttled_per_reason(harness, scene, capfd):
    harness.capture(scene.background())
    capfd.readouterr()
    bad = [_bad_message(harness, encoding="rgb13"),                        # reason 1
           _bad_message(harness, data=array.array("B", bytes(10))),       # reason 2
           _bad_message(harness, encoding="rgb13"),                        # reason 1 again, within 5 s
           _bad_message(harness, data=array.array("B", bytes(20)))]       # reason 2 with another size
    for n, msg in enumerate(bad, start=1):
        harness.pub.publish(msg)
        assert wait_for(lambda n=n: harness.node.stats.counts["malformed"] >= n, 10)
    lines = [line for line in capfd.readouterr().err.splitlines() if "malformed image on /image dropped" in line]
    assert len(lines) == 2, lines
    assert "unsupported encoding 'rgb13'" in lines[0] and "data has 10 bytes" in lines[1]


def test_use_sim_time_and_every_parameter_can_be_set_back_at_run_time(harness):
    node = harness.node
    res = node.set_parameters([Parameter("use_sim_time", value=True)])[0]
    assert res.successful, res.reason
    assert node.get_clock().ros_time_is_active
    assert node.set_parameters([Parameter("use_sim_time", value=False)])[0].successful
    # what `ros2 param load` of a `ros2 param dump` does: set every parameter to its value, one by one
    names = node._parameters.keys()
    results = {name: node.set_parameters([node.get_parameter(name)])[0] for name in names}
    refused = {name: r.reason for name, r in results.items() if not r.successful}
    read_only = {name for name in names if node.describe_parameter(name).read_only}
    assert set(refused) == read_only and read_only >= {p.name for p in PARAMS if not p.live}
    assert all(reason == f"Trying to set a read-only parameter: {name}." for name, reason in refused.items())
    assert results["use_sim_time"].successful and not node.get_clock().ros_time_is_active
