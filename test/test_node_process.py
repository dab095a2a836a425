"""The node across processes, as users run it: `python -m matte_ros.ros.node --ros-args ...` with
config/matte.yaml, the fake camera and capture_once in their own processes; clean shutdown on signals."""
import os
import signal
import subprocess
import sys
import threading

import pytest
import torch

rclpy = pytest.importorskip("rclpy")
pytestmark = pytest.mark.ros

from node_harness import child_env, context_fixture, tiny_model, wait_for  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import QoSProfile, qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from matte_ros.core.model import save_safetensors  # noqa: E402
from matte_ros.core.settings import auto_precision  # noqa: E402
from matte_ros.ros.imaging import msg_to_alpha  # noqa: E402
from matte_ros.ros.params import cpu_threads_for  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CPU_PRECISION = auto_precision(torch.device("cpu"), fast_path=True)     # the node's default on this CPU
CONFIG = os.path.join(REPO, "config", "matte.yaml")


class Proc:
    """A child process whose output goes to a file (no pipe to fill up)."""

    def __init__(self, tmp_path, name, args):
        self.log = tmp_path / f"{name}.log"
        self._f = open(self.log, "w")
        self.p = subprocess.Popen([sys.executable, "-m", *args], cwd=REPO, env=child_env(), stdout=self._f,
                                  stderr=subprocess.STDOUT)

    def stop(self, sig, timeout=20.0) -> int:
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            return self.p.wait(timeout)
        finally:
            self.kill()

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        self._f.close()

    def output(self) -> str:
        return self.log.read_text()


def _node_args(model_path, *extra):
    return ["matte_ros.ros.node", "--ros-args", "--params-file", CONFIG, "-p", f"model_path:={model_path}",
            "-p", "device:=cpu", "-p", "plate_frames:=3", "-p", "backbone_scale:=0.5",
            "-p", "refine_sample_pixels:=512", *extra]


def _capture_once(*extra):
    return subprocess.run([sys.executable, "-m", "matte_ros.ros.capture_once", *extra], cwd=REPO, env=child_env(),
                          capture_output=True, text=True, timeout=90)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("model") / "tiny.safetensors")
    save_safetensors(path, tiny_model())
    return path


context = context_fixture()


def _spin(context, node):
    ex = SingleThreadedExecutor(context=context)
    ex.add_node(node)
    spinner = threading.Thread(target=ex.spin, daemon=True)
    spinner.start()
    return ex, spinner


def test_vga_frames_reach_a_best_effort_subscriber_in_another_process(tmp_path, context):
    # A 640x480 rgb8 frame (921,600 bytes) does not fit Fast DDS's default shared-memory segment and
    # over fragmented UDP a best-effort (sensor-data) subscriber like the node's lost most of them;
    # the package's profile (matte_ros.ros.dds), applied by every executable, keeps them in shared memory.
    # The camera's camera_info (small, reliable) marks every frame it published: of the frames marked
    # after the first image arrived, nearly all must arrive, however fast or slow the machine runs.
    listener = rclpy.create_node("vga_listener", context=context)
    images, infos = set(), []
    best_effort = QoSProfile(depth=50, reliability=qos_profile_sensor_data.reliability,
                             durability=qos_profile_sensor_data.durability)
    listener.create_subscription(Image, "/vga/image", lambda m: images.add(_stamp(m)), best_effort)
    listener.create_subscription(CameraInfo, "/vga/camera_info", lambda m: infos.append(_stamp(m)), 100)
    ex, spinner = _spin(context, listener)
    cam = Proc(tmp_path, "camera", ["matte_ros.ros.fake_camera", "--ros-args", "-p", "width:=640", "-p", "height:=480",
                                    "-p", "rate:=20.0", "-r", "__ns:=/vga"])
    try:
        assert wait_for(lambda: images and infos, 60), "no frame arrived\n" + cam.output()
        first = min(images)
        assert wait_for(lambda: len([s for s in infos if s > first]) >= 40, 120), cam.output()
        marked = [s for s in infos if s > first][:40]
        wait_for(lambda: marked[-1] in images, 5)       # the last frame's image may trail its camera_info
        got = sum(s in images for s in marked)
        assert got >= 36, f"{got} of 40 published frames received"
    finally:
        cam.kill()
        ex.shutdown()
        spinner.join(5)
        listener.destroy_node()


def _stamp(msg):
    return msg.header.stamp.sec, msg.header.stamp.nanosec


@pytest.mark.slow
def test_fake_camera_node_and_capture_once_across_processes(tmp_path, model_file, context):
    listener = rclpy.create_node("listener", context=context)
    alphas, truths = [], []
    listener.create_subscription(Image, "/matte/alpha", alphas.append, 50)
    listener.create_subscription(Image, "/fake_camera/alpha_true", truths.append, 200)
    ex, spinner = _spin(context, listener)
    cam = Proc(tmp_path, "camera", ["matte_ros.ros.fake_camera", "--ros-args", "-p", "width:=64", "-p", "height:=48",
                                    "-p", "rate:=20.0", "-p", "wait_for_plate:=true", "-r", "image:=/xproc/image"])
    # plate_timeout 5 s: the camera, the node and the test share the cores, and on a busy 2-core
    # machine 1 s may not hold 3 frames at 20 Hz
    node = Proc(tmp_path, "node", _node_args(model_file, "-p", "plate_timeout:=5.0", "-r", "image:=/xproc/image"))
    try:
        # The camera and the node start side by side; capture once the camera publishes (the service
        # alone says only that the node is up).
        assert wait_for(lambda: truths, 60), "the camera published nothing\n" + cam.output()
        cap = _capture_once("--delay", "0.3", "--wait", "60")
        assert cap.returncode == 0, cap.stdout + cap.stderr + node.output()
        assert cap.stdout.strip() == "capture_once: ok: plate 64x48 averaged from 3 frames"

        def matched():
            stamps = {(t.header.stamp.sec, t.header.stamp.nanosec): t for t in list(truths)}
            return [(a, stamps[k]) for a in list(alphas)
                    if (k := (a.header.stamp.sec, a.header.stamp.nanosec)) in stamps]
        pairs = wait_for(lambda: len(matched()) >= 3 and matched(), 20)
        assert pairs, "no alpha matched a camera frame's stamp\n" + node.output()
        for alpha, truth in pairs:
            assert alpha.header.frame_id == truth.header.frame_id == "fake_camera"
            assert (alpha.width, alpha.height, alpha.encoding) == (64, 48, "mono8")
            assert msg_to_alpha(alpha).shape == (48, 64)
        # camera gone (SIGTERM): the next capture fails with a reason, the node keeps running
        assert cam.stop(signal.SIGTERM) == 0, cam.output()
        cap = _capture_once("--delay", "0", "--wait", "10")
        assert cap.returncode == 1
        assert cap.stderr.strip() == ("capture_once: error: capture failed: timed out after 5 s with 0 of 3 frames "
                                      "received on /xproc/image: is the camera publishing there?")
        assert node.stop(signal.SIGINT) == 0, node.output()      # Ctrl-C: worker joined, clean exit
        out = node.output()
        threads = cpu_threads_for(0, os.cpu_count())          # cpu_threads 0 = auto, set process-wide
        assert f"matting /xproc/image on cpu ({CPU_PRECISION}) to /matte/alpha" in out
        assert f"{threads} torch CPU threads" in out
        assert "Traceback" not in out and "[ERROR]" not in out, out
    finally:
        node.kill()
        cam.kill()
        ex.shutdown()
        spinner.join(5)
        listener.destroy_node()
