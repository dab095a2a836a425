"""Wrong command lines, parameter values and model files: the executables say ``<name>: error: cannot
start: <reason>`` on one line and exit non-zero (2 for a command-line error), with no traceback."""
import os
import subprocess
import sys

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
pytestmark = pytest.mark.ros

from matte_ros.ros.cli import command_line_problem, one_line  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(REPO, "config", "matte.yaml")


@pytest.fixture
def node_main(monkeypatch):
    import matte_ros.ros.node as node_mod
    from matte_ros.ros.entry import matte_node
    monkeypatch.setattr(node_mod, "keep_freed_memory", lambda: None)    # process-wide: not in the test process
    return matte_node.run


def test_command_line_problem(tmp_path):
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("/**: {ros__parameters: [unclosed\n")
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    cases = {
        ("--ros-args", "-p", "device:=cpu", "--params-file", CONFIG, "-r", "image:=/cam", "--log-level", "warn",
         "--disable-stdout-logs"): None,
        ("--ros-args", "-p", "a:=1", "--", "--ros-args", "-r", "b:=c"): None,
        ("--foo",): "unknown argument --foo; this program takes only ROS arguments, e.g. --ros-args -p "
                    "name:=value --params-file FILE -r image:=/camera/image_raw",
        ("x", "--ros-args", "-p", "a:=1", "--", "y"): "unknown arguments x y; this program takes only ROS "
                                                      "arguments, e.g. --ros-args -p name:=value --params-file "
                                                      "FILE -r image:=/camera/image_raw",
        ("--ros-args", "--params-file", "/nonexistent.yaml"): "params file /nonexistent.yaml does not exist",
        ("--ros-args", "--params-file", str(tmp_path)): f"params file {tmp_path} cannot be read: Is a directory",
        ("--ros-args", "--params-file", str(scalar)): f"params file {scalar} must hold a mapping of node "
                                                      "names to ros__parameters, found int",
        ("--ros-args", "--bogus"): "unknown ROS argument '--bogus' after --ros-args",
        ("--ros-args", "-p"): "ROS argument -p needs a value",
        ("--ros-args", "-p", "device"): "ROS argument -p expects NAME:=VALUE, got 'device'",
    }
    for args, expected in cases.items():
        assert command_line_problem(["prog", *args]) == expected, args
    assert command_line_problem(["prog", "--ros-args", "--params-file", str(bad_yaml)]).startswith(
        f"params file {bad_yaml} is not valid YAML: ")
    assert one_line("a\n  b\tc\n") == "a b c"


def _one_line_error(err: str, name: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{name}: error: cannot start: "), err
    return lines[0]


@pytest.mark.parametrize("args,code,says", [
    (["--ros-args", "--params-file", "/nonexistent.yaml"], 2, "params file /nonexistent.yaml does not exist"),
    (["--ros-args", "--enclave"], 2, "ROS argument --enclave needs a value"),
    (["--ros-args", "-p", "device:=cpu", "-p", "model_path:=/nonexistent/missing.pth"], 1,
     "/nonexistent/missing.pth"),
    (["--ros-args", "-p", "device:=cpu", "-p", "plate_frames:=0"], 1, "plate_frames out of range. Min: 1, Max: 1000"),
    (["--ros-args", "-p", "device:=cpu", "-p", "plate_timeout:=5"], 1, "expecting type 'DOUBLE'"),
    (["--ros-args", "-p", "device:=cpu", "-p", "precision:=fp8"], 1,
     "precision must be one of 'auto', 'fp32', 'fp16', 'bf16', got 'fp8'"),
    (["--ros-args", "-p", "device:=cpu", "-p", "plate_timeout:=abc"], 1,
     "Trying to set parameter 'plate_timeout' to 'abc' of type 'STRING', expecting type 'DOUBLE'"),
    (["--ros-args", "-p", "device:=gpu"], 1, "unknown device 'gpu'; expected auto, cpu, cuda or cuda:N"),
    (["--ros-args", "-p", "device:=cpu", "-p", "backbone_scale:=0.0001"], 1, "backbone_scale must be a number in"),
    (["--ros-args", "-p", "device:=cpu", "-p", "max_frame_pixels:=0"], 1, "max_frame_pixels out of range"),
])
def test_matte_node_bad_command_lines(node_main, capfd, args, code, says):
    assert node_main(["matte_node", *args]) == code
    assert says in _one_line_error(capfd.readouterr().err, "matte_node")


def _bad_model_files(tmp_path):
    from matte_ros.core.model import DEFAULT_WEIGHTS
    with open(DEFAULT_WEIGHTS, "rb") as f:
        head = f.read(4096)
    noise = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    files = {"empty.safetensors": b"", "truncated.safetensors": head, "random.safetensors": noise,
             "empty.pth": b"", "random.pth": noise}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return [str(tmp_path / name) for name in files]


def test_matte_node_unloadable_model_files(node_main, capfd, tmp_path):
    for path in _bad_model_files(tmp_path):
        assert node_main(["matte_node", "--ros-args", "-p", "device:=cpu", "-p", f"model_path:={path}"]) == 1, path
        line = _one_line_error(capfd.readouterr().err, "matte_node")
        assert path in line, line


@pytest.mark.parametrize("args,code,says", [
    (["--ros-args", "-p", "width:=10"], 1, "Parameter width out of range. Min: 32"),
    (["--ros-args", "-p", "rate:=abc"], 1, "Trying to set parameter 'rate' to 'abc' of type 'STRING'"),
])
def test_fake_camera_bad_command_lines(capfd, args, code, says):
    from matte_ros.ros.entry import fake_camera
    assert fake_camera.run(["fake_camera", *args]) == code
    assert says in _one_line_error(capfd.readouterr().err, "fake_camera")


@pytest.mark.parametrize("module,name", [("matte_ros.ros.node", "matte_node"), ("matte_ros.ros.fake_camera",
                                                                                  "fake_camera")])
def test_an_unknown_argument_is_an_error_not_ignored(module, name):
    # in a child process: a program that ignored it would run until the timeout
    out = subprocess.run([sys.executable, "-m", module, "--foo", "--ros-args", "-p", "device:=cpu"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stdout == ""
    assert _one_line_error(out.stderr, name).startswith(f"{name}: error: cannot start: unknown argument --foo;")
