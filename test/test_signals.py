"""Every executable stops cleanly: one SIGINT, SIGINT to its process group followed by the one
``ros2 launch`` forwards, and SIGTERM each end it with exit code 0, no traceback, and (for the
node) a plate saved before the signal intact on disk. The signals come while the process works:
the node matting frames, the camera publishing, capture_once waiting for its service; and while
a console script is still starting (importing torch and rclpy)."""
import os
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
pytestmark = [pytest.mark.ros, pytest.mark.slow]

from node_harness import child_env, context_fixture, tiny_model, wait_for  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from matte_ros.core.model import save_safetensors  # noqa: E402
from matte_ros.core.plate import load_plates  # noqa: E402
from matte_ros.core.synthetic import SceneSequence  # noqa: E402
from matte_ros.ros.imaging import rgb_to_msg  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODES = ("sigint", "group_sigint_and_forwarded", "sigterm")


def _send(p: subprocess.Popen, mode: str) -> None:
    if mode == "sigint":
        p.send_signal(signal.SIGINT)
    elif mode == "sigterm":
        p.send_signal(signal.SIGTERM)
    else:                                   # a terminal's Ctrl-C under ros2 launch
        os.killpg(p.pid, signal.SIGINT)
        p.send_signal(signal.SIGINT)


context = context_fixture()


@pytest.fixture
def client(context):
    node = rclpy.create_node("signals_client", context=context)
    ex = SingleThreadedExecutor(context=context)
    ex.add_node(node)
    spinner = threading.Thread(target=ex.spin, daemon=True)
    spinner.start()
    yield node
    ex.shutdown()
    spinner.join(5)
    node.destroy_node()


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("model") / "tiny.safetensors")
    save_safetensors(path, tiny_model())
    return path


class Child:
    """``python -m module --ros-args -r __ns:=ns ...`` in its own process group, output in a file;
    ``script``: run the console script of that name instead (``matte_ros.ros.entry``)."""

    def __init__(self, tmp_path, module, ns, *ros_args, script=None):
        self.log = tmp_path / f"{module}.log"
        run = ["-m", module] if script is None else \
            ["-c", f"import sys; from matte_ros.ros.entry import {script}; sys.exit({script}())"]
        with open(self.log, "w") as out:
            self.p = subprocess.Popen([sys.executable, *run, "--ros-args", "-r", f"__ns:={ns}", *ros_args],
                                      cwd=REPO, env=child_env(), stdout=out, stderr=subprocess.STDOUT,
                                      start_new_session=True)

    def catches_sigterm(self) -> bool:
        """Whether the process has its own SIGTERM handler yet (Python installs none by default)."""
        with open(f"/proc/{self.p.pid}/status") as f:
            caught = next(int(line.split()[1], 16) for line in f if line.startswith("SigCgt:"))
        return bool(caught & (1 << (signal.SIGTERM - 1)))

    def stop(self, mode: str) -> int:
        try:
            _send(self.p, mode)
            return self.p.wait(30)
        finally:
            if self.p.poll() is None:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()

    def output(self) -> str:
        return self.log.read_text()


def _assert_clean(child: Child, rc: int) -> None:
    out = child.output()
    assert rc == 0, out
    assert "Traceback" not in out and "terminate called" not in out and "[ERROR]" not in out, out


@pytest.mark.parametrize("mode", MODES)
def test_node_stops_cleanly_while_matting_and_keeps_its_plate(mode, client, model_file, tmp_path):
    ns = f"/sig_node_{mode}"
    plates = tmp_path / "plates"
    child = Child(tmp_path, "matte_ros.ros.node", ns, "-p", f"model_path:={model_file}", "-p", "device:=cpu",
                  "-p", "plate_frames:=3", "-p", f"plate_path:={plates}", "-p", "backbone_scale:=0.5",
                  "-p", "refine_sample_pixels:=512")
    scene = SceneSequence(48, 64, seed=4, noise=0.0)
    pub = client.create_publisher(Image, f"{ns}/image", 5)
    alphas = []
    client.create_subscription(Image, f"{ns}/matte/alpha", alphas.append, 10)
    n = [0]

    def send():
        n[0] += 1
        header = Header(stamp=rclpy.time.Time(seconds=n[0]).to_msg(), frame_id="cam")
        pub.publish(rgb_to_msg(scene.background(), header, "rgb8"))
    timer = client.create_timer(0.05, send)
    try:
        cli = client.create_client(Trigger, f"{ns}/matte_node/capture_background")
        assert wait_for(cli.service_is_ready, 60, 0.1), child.output()
        future = cli.call_async(Trigger.Request())
        assert wait_for(future.done, 30, 0.05) and future.result().success, child.output()
        assert wait_for(lambda: len(alphas) >= 3, 30), child.output()     # matting when the signal comes
        rc = child.stop(mode)
    finally:
        client.destroy_timer(timer)
        if child.p.poll() is None:
            child.stop("sigterm")
    _assert_clean(child, rc)
    saved, problems = load_plates(str(plates))
    assert problems == [] and list(saved) == [(48, 64)]
    np.testing.assert_array_equal(saved[(48, 64)], scene.background())


@pytest.mark.parametrize("mode", MODES)
def test_fake_camera_stops_cleanly_while_publishing(mode, client, tmp_path):
    ns = f"/sig_cam_{mode}"
    frames = []
    client.create_subscription(Image, f"{ns}/image", frames.append, 10)
    child = Child(tmp_path, "matte_ros.ros.fake_camera", ns, "-p", "width:=64", "-p", "height:=48",
                  "-p", "rate:=30.0")
    try:
        assert wait_for(lambda: len(frames) >= 3, 60, 0.05), child.output()
        rc = child.stop(mode)
    finally:
        if child.p.poll() is None:
            child.stop("sigterm")
    _assert_clean(child, rc)


@pytest.mark.parametrize("mode", MODES)
def test_capture_once_stops_cleanly_while_waiting_for_the_service(mode, client, tmp_path):
    ns = f"/sig_capture_{mode}"
    child = Child(tmp_path, "matte_ros.ros.capture_once", ns)
    try:
        # its node is in the graph: signals are handled; no node offers the service it waits for
        assert wait_for(lambda: ("capture_once", ns) in client.get_node_names_and_namespaces(), 60, 0.05), \
            child.output()
        rc = child.stop(mode)
    finally:
        if child.p.poll() is None:
            child.stop("sigterm")
    _assert_clean(child, rc)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads signal dispositions from /proc")
@pytest.mark.parametrize("script", ["matte_node", "fake_camera", "capture_once"])
def test_console_scripts_stop_cleanly_while_starting(script, model_file, tmp_path):
    ros_args = ("-p", f"model_path:={model_file}") if script == "matte_node" else ()
    child = Child(tmp_path, f"matte_ros.ros.{script}", f"/sig_start_{script}", *ros_args, script=script)
    try:
        # the entry point's handlers are in place: from here on a signal is a clean stop, whatever
        # the script is doing (most likely still importing torch or rclpy)
        assert wait_for(lambda: child.p.poll() is not None or child.catches_sigterm(), 30, 0.001), child.output()
        rc = child.stop("group_sigint_and_forwarded")
    finally:
        if child.p.poll() is None:
            child.stop("sigterm")
    _assert_clean(child, rc)
