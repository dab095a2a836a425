"""The package through ROS 2 Jazzy's real launch system: colcon build in a temporary workspace,
``ros2-launch matte_ros matte.launch.py fake_camera:=true device:=cpu`` (../shared/ros), alphas
received, then a terminal's Ctrl-C (SIGINT to the process group, plus the one launch forwards):
every process exits 0 without a traceback. Skipped where ../shared/ros or the launch system is absent."""
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
pytestmark = [pytest.mark.ros, pytest.mark.slow]

from node_harness import child_env, context_fixture, wait_for  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from matte_ros.ros.imaging import msg_to_alpha  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_ROS = os.path.join(os.path.dirname(REPO), "shared", "ros")
BIN = os.path.dirname(sys.executable)


def _skip_reason():
    if not os.path.isdir(SHARED_ROS):
        return f"{SHARED_ROS} is absent (ROS 2 launch system for machines without a ROS install)"
    if shutil.which("colcon", path=BIN) is None:
        return f"colcon is not installed in {BIN} (.ci/run installs it)"
    try:
        import launch_ros  # noqa: F401
        import ros2launch  # noqa: F401
    except ImportError:
        return f"the launch system is not installed: {SHARED_ROS}/bin/install-launch {sys.executable}"
    return None


@pytest.fixture(scope="module")
def install(tmp_path_factory):
    """A colcon workspace with this package built; its install prefix."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    ws = tmp_path_factory.mktemp("ws")
    (ws / "src").mkdir()
    os.symlink(REPO, ws / "src" / "matte_ros")
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""))
    build = subprocess.run([os.path.join(BIN, "colcon"), "build", "--packages-select", "matte_ros"], cwd=ws, env=env,
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    return ws / "install" / "matte_ros"


context = context_fixture()


def _launch_env(prefix):
    site = prefix / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    return child_env(AMENT_PREFIX_PATH=str(prefix),
                     PYTHONPATH=os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p))


@contextlib.contextmanager
def _launched(install, context, tmp_path, listener, *arguments):
    """Spin ``listener`` and run ``ros2 launch matte_ros matte.launch.py *arguments fake_camera:=true
    device:=cpu`` in its own process group, its output in tmp_path/launch.log; yields (the process,
    the log's path). At the end the launch is killed if it still runs and the listener destroyed."""
    ex = SingleThreadedExecutor(context=context)
    ex.add_node(listener)
    spinner = threading.Thread(target=ex.spin, daemon=True)
    spinner.start()
    log = tmp_path / "launch.log"
    with open(log, "w") as out:
        launch = subprocess.Popen(
            [sys.executable, os.path.join(SHARED_ROS, "bin", "ros2-launch"), "matte_ros", "matte.launch.py",
             *arguments, "fake_camera:=true", "device:=cpu"],
            cwd=tmp_path, env=_launch_env(install), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield launch, log
    finally:
        if launch.poll() is None:
            os.killpg(launch.pid, signal.SIGKILL)
            launch.wait()
        ex.shutdown()
        spinner.join(5)
        listener.destroy_node()


def test_ros2_launch_with_fake_camera_mattes_and_stops_cleanly_on_ctrl_c(install, context, tmp_path):
    listener = rclpy.create_node("e2e_listener", context=context)
    alphas, truths, infos = [], [], []
    listener.create_subscription(Image, "/matte/alpha", alphas.append, 50)
    listener.create_subscription(Image, "/fake_camera/alpha_true", truths.append, 200)
    listener.create_subscription(CameraInfo, "/matte/camera_info", infos.append, 50)
    with _launched(install, context, tmp_path, listener) as (launch, log):
        def matched():
            by_stamp = {(t.header.stamp.sec, t.header.stamp.nanosec): t for t in list(truths)}
            return [(a, by_stamp[k]) for a in list(alphas)
                    if (k := (a.header.stamp.sec, a.header.stamp.nanosec)) in by_stamp]
        def with_subject():
            return [(a, t) for a, t in matched() if msg_to_alpha(t).max() > 0.5]
        pairs = wait_for(lambda: len(with_subject()) >= 3 and with_subject(), 240, 0.2)
        assert pairs, "no alpha of the subject matched a camera frame\n" + log.read_text()
        # the plate was the empty scene: the mattes agree with the camera's true alpha
        errors = [np.abs(msg_to_alpha(a) - msg_to_alpha(t)).mean() for a, t in pairs]
        assert max(errors) < 0.08, (errors, log.read_text())
        stamps = {(a.header.stamp.sec, a.header.stamp.nanosec) for a, _ in pairs}
        info = wait_for(lambda: [i for i in list(infos) if (i.header.stamp.sec, i.header.stamp.nanosec) in stamps], 10)
        assert info and (info[0].width, info[0].height, info[0].header.frame_id) == (320, 240, "fake_camera")
        # a terminal's Ctrl-C: SIGINT to the process group; launch forwards one more to each child
        os.killpg(launch.pid, signal.SIGINT)
        rc = launch.wait(60)
    text = log.read_text()
    assert rc == 0, text
    for name in ("matte_node-1", "fake_camera-2", "capture_once-3"):
        assert f"[INFO] [{name}]: process has finished cleanly" in text, text
    assert "capture_once: ok: plate 320x240 averaged from 10 frames" in text
    for bad in ("Traceback", "terminate called", "has died", "[ERROR]"):
        assert bad not in text, text


def test_show_args_lists_the_choices(install, tmp_path):
    shown = subprocess.run([sys.executable, os.path.join(SHARED_ROS, "bin", "ros2-launch"), "matte_ros",
                            "matte.launch.py", "--show-args"], cwd=tmp_path, env=_launch_env(install),
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    text = shown.stdout.replace("\n", " ")
    assert re.search(r"'fake_camera':.*Valid choices are: \['true', 'false'\]", text), shown.stdout


@pytest.mark.parametrize("given,expected", [("params_file:=/nowhere/mine.yaml", "params_file:=/nowhere/mine.yaml does "
                                                                                 "not exist"),
                                            ("fake_camera:=maybe", "fake_camera"),
                                            ("cameras:=[left,left]", "left named more than once")])
def test_a_bad_argument_stops_the_launch_in_one_line(install, tmp_path, given, expected):
    run = subprocess.run([sys.executable, os.path.join(SHARED_ROS, "bin", "ros2-launch"), "matte_ros",
                          "matte.launch.py", given], cwd=tmp_path, env=_launch_env(install),
                         capture_output=True, text=True, timeout=120)
    text = run.stdout + run.stderr
    assert run.returncode != 0, text
    assert expected in text and "Traceback" not in text, text
    assert "process started" not in text, text                   # nothing was started


def test_one_node_for_a_stereo_pair_of_fake_cameras(install, context, tmp_path):
    listener = rclpy.create_node("e2e_stereo_listener", context=context)
    got = {k: [] for k in ("left", "right", "left_true", "right_true")}
    for ns in ("left", "right"):
        listener.create_subscription(Image, f"/{ns}/matte/alpha", got[ns].append, 50)
        listener.create_subscription(Image, f"/{ns}/fake_camera/alpha_true", got[ns + "_true"].append, 200)
    with _launched(install, context, tmp_path, listener, "cameras:=[left,right]") as (launch, log):
        def with_subject(ns):
            truths = {(t.header.stamp.sec, t.header.stamp.nanosec): t for t in list(got[ns + "_true"])}
            return [(a, truths[k]) for a in list(got[ns]) if (k := (a.header.stamp.sec, a.header.stamp.nanosec))
                    in truths and msg_to_alpha(truths[k]).max() > 0.5]
        assert wait_for(lambda: len(with_subject("left")) >= 3 and len(with_subject("right")) >= 3, 240, 0.2), \
            log.read_text()
        for ns in ("left", "right"):      # each camera's matte against its own camera's truth
            errors = [np.abs(msg_to_alpha(a) - msg_to_alpha(t)).mean() for a, t in with_subject(ns)]
            assert max(errors) < 0.08, (ns, errors, log.read_text())
        os.killpg(launch.pid, signal.SIGINT)
        rc = launch.wait(60)
    text = log.read_text()
    assert rc == 0, text
    assert text.count("process has finished cleanly") == 5, text        # one node, two cameras, two captures
    assert text.count("capture_once: ok: plate 320x240") == 2, text
    for bad in ("Traceback", "has died", "[ERROR]"):
        assert bad not in text, text
