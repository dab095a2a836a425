"""The package driven as a ROS 2 user drives it, with the real ``ros2`` command line (../shared/ros,
installed into the venv by its bin/install-launch): ``ros2 launch matte_ros matte.launch.py
fake_camera:=true device:=cpu``, ``ros2 service call`` of the capture, ``ros2 topic echo --once`` and
``ros2 topic hz`` of matte/alpha, ``ros2 param set`` of a live, a read-only and a standard parameter,
``ros2 param dump`` loaded back with ``ros2 param load``, and a terminal's Ctrl-C of the launch.
The package is built with colcon in a temporary workspace (test_launch_e2e's ``install`` fixture).
Skipped where ../shared/ros, colcon or the ``ros2`` command are absent."""
import os
import signal
import subprocess
import sys

import pytest

rclpy = pytest.importorskip("rclpy")
pytestmark = [pytest.mark.ros, pytest.mark.slow]

import test_launch_e2e as e2e  # noqa: E402

from matte_ros.ros.params import PARAMS  # noqa: E402

BIN = e2e.BIN
ROS2 = os.path.join(BIN, "ros2")
install = e2e.install           # the colcon workspace with this package built (a module fixture)
NODE = "/matte_node"


@pytest.fixture(scope="module")
def env(install):
    if not os.path.isfile(ROS2):
        pytest.skip(f"the ros2 command is not installed in {BIN} (../shared/ros/bin/install-launch {sys.executable})")
    return dict(e2e._launch_env(install), PATH=BIN + os.pathsep + os.environ.get("PATH", ""))


def ros2(env, *args, timeout=60.0):
    """``ros2 ARGS`` -> CompletedProcess (text)."""
    return subprocess.run([ROS2, *args], env=env, capture_output=True, text=True, timeout=timeout)


def _until_line(proc, text, log):
    """Read ``proc``'s stdout until a line contains ``text``; the lines read."""
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"no line with {text!r}:\n{''.join(lines)}\n{log.read_text()}")


def test_a_users_session_with_the_ros2_command_line(env, tmp_path):
    log = tmp_path / "launch.log"
    with open(log, "w") as out:
        launch = subprocess.Popen([ROS2, "launch", "matte_ros", "matte.launch.py", "fake_camera:=true", "device:=cpu"],
                                  cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        # the launch's capture_once takes the first plate; matte/alpha flows once it has
        echo = ros2(env, "topic", "echo", "--once", "/matte/alpha", "sensor_msgs/msg/Image", timeout=240)
        assert echo.returncode == 0, echo.stderr + log.read_text()
        assert "height: 240" in echo.stdout and "width: 320" in echo.stdout and "encoding: mono8" in echo.stdout
        hz = subprocess.Popen([ROS2, "topic", "hz", "/matte/alpha"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            rate = _until_line(hz, "average rate:", log)[-1]
            assert float(rate.split(":")[1]) > 0
        finally:
            os.killpg(hz.pid, signal.SIGINT)
            hz.communicate(timeout=30)
        call = ros2(env, "service", "call", f"{NODE}/capture_background", "std_srvs/srv/Trigger")
        assert call.returncode == 0 and "std_srvs.srv.Trigger_Response(success=" in call.stdout, call.stdout

        live = ros2(env, "param", "set", NODE, "refine_mode", "thresholding")
        assert live.stdout.strip() == "Set parameter successful", live.stdout + live.stderr
        assert ros2(env, "param", "get", NODE, "refine_mode").stdout.strip() == "String value is: thresholding"
        fixed = ros2(env, "param", "set", NODE, "device", "cuda")
        assert "Setting parameter failed: Trying to set a read-only parameter: device." in fixed.stdout + fixed.stderr
        for value in ("true", "false"):         # a standard parameter, declared by rclpy
            sim = ros2(env, "param", "set", NODE, "use_sim_time", value)
            assert sim.stdout.strip() == "Set parameter successful", sim.stdout + sim.stderr

        dump = ros2(env, "param", "dump", NODE)
        assert dump.returncode == 0 and "refine_mode: thresholding" in dump.stdout, dump.stdout + dump.stderr
        saved = tmp_path / "matte_node.yaml"
        saved.write_text(dump.stdout)
        load = ros2(env, "param", "load", NODE, str(saved))
        assert load.returncode == 0, load.stdout + load.stderr
        loaded = {line.split()[2] for line in load.stdout.splitlines() if line.endswith(" successful")}
        refused = {line.split()[2]: line for line in load.stderr.strip().splitlines()}
        assert {p.name for p in PARAMS if p.live} | {"use_sim_time"} <= loaded, load.stdout + load.stderr
        # only what ROS keeps read-only is refused, each saying so
        assert refused and all(line.endswith(f"failed: Trying to set a read-only parameter: {name}.")
                               for name, line in refused.items()), load.stderr

        # a terminal's Ctrl-C: SIGINT to the process group
        os.killpg(launch.pid, signal.SIGINT)
        rc = launch.wait(60)
    finally:
        if launch.poll() is None:
            os.killpg(launch.pid, signal.SIGKILL)
            launch.wait()
        ros2(env, "daemon", "stop")
    text = log.read_text()
    assert rc == 0, text
    for name in ("matte_node-1", "fake_camera-2", "capture_once-3"):
        assert f"[INFO] [{name}]: process has finished cleanly" in text, text
    assert "parameters changed: refine_mode='thresholding'" in text
    for bad in ("Traceback", "has died", "[ERROR]"):
        assert bad not in text, text
