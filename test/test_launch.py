"""launch/matte.launch.py: its Node actions for given arguments (needs launch_ros: not on PyPI,
installed from ../shared/ros by .ci/run; skipped where absent). The real launch, end to end, is in
test_launch_e2e.py."""
import ast
import importlib
import importlib.util
import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCH = os.path.join(REPO, "launch", "matte.launch.py")
CONFIG = "/share/matte_ros/config/matte.yaml"
pytestmark = pytest.mark.ros


def test_launch_file_starts_console_scripts_of_this_package():
    pytest.importorskip("rclpy")
    with open(os.path.join(REPO, "setup.py")) as f:
        scripts = dict(re.findall(r'"(\w+) = ([\w.]+:\w+)"', f.read()))
    with open(LAUNCH) as f:
        tree = ast.parse(f.read(), LAUNCH)
    executables = [n.value.value for n in ast.walk(tree) if isinstance(n, ast.keyword) and n.arg == "executable"]
    assert executables == ["matte_node", "fake_camera", "capture_once"]
    for name in executables:
        module, func = scripts[name].split(":")
        assert callable(getattr(importlib.import_module(module), func)), scripts[name]


@pytest.fixture
def launch_module(monkeypatch):
    """The launch file as a module, its Node replaced by one that records its keyword arguments."""
    pytest.importorskip("launch_ros", reason="launch_ros is not installed (not on PyPI; "
                        "../shared/ros/bin/install-launch installs it)")
    import launch_ros.actions

    recorded = []

    class RecordingNode(launch_ros.actions.Node):
        def __init__(self, **kwargs):
            recorded.append(kwargs)
            super().__init__(**kwargs)

    monkeypatch.setattr(launch_ros.actions, "Node", RecordingNode)
    spec = importlib.util.spec_from_file_location("matte_launch", LAUNCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.recorded = recorded
    return mod


def _nodes(mod, **given):
    args = {name: default for name, default, _ in mod.ARGUMENTS}
    args.update(given)
    mod.recorded.clear()
    mod.node_actions(args, CONFIG)
    return {kw["executable"]: kw for kw in mod.recorded}


def test_declared_arguments(launch_module):
    from launch.actions import DeclareLaunchArgument

    ld = launch_module.generate_launch_description()
    declared = {a.name for a in ld.entities if isinstance(a, DeclareLaunchArgument)}
    assert declared == {"camera", "camera_info", "namespace", "params_file", "model", "device", "compressed",
                        "fake_camera"}


def test_yaml_decides_unless_an_argument_is_given(launch_module):
    from matte_ros.ros.names import NODE_NAME

    nodes = _nodes(launch_module)
    assert list(nodes) == ["matte_node"]                     # no fake camera by default
    node = nodes["matte_node"]
    assert node["name"] == NODE_NAME and node["namespace"] == ""
    assert node["parameters"] == [CONFIG]                    # nothing overrides the YAML
    assert node["remappings"] == [("image", "image"), ("camera_info", "camera_info")]

    node = _nodes(launch_module, device="cpu", params_file="/home/me/mine.yaml")["matte_node"]
    assert node["parameters"] == [CONFIG, "/home/me/mine.yaml", {"device": "cpu"}]
    node = _nodes(launch_module, model="/w.safetensors", compressed="true", camera="/cam/image_raw")["matte_node"]
    assert node["parameters"] == [CONFIG, {"model_path": "/w.safetensors", "compressed": True}]
    assert node["remappings"][0] == ("image", "/cam/image_raw")
    assert _nodes(launch_module, compressed="false")["matte_node"]["parameters"][1] == {"compressed": False}
    with pytest.raises(ValueError, match="compressed:= must be true or false, got 'maybe'"):
        _nodes(launch_module, compressed="maybe")


def test_fake_camera_waits_for_the_plate_and_everything_shares_the_namespace(launch_module):
    nodes = _nodes(launch_module, fake_camera="true", namespace="left", compressed="true")
    assert list(nodes) == ["matte_node", "fake_camera", "capture_once"]
    assert {n["namespace"] for n in nodes.values()} == {"left"}
    camera = nodes["fake_camera"]["parameters"][0]
    assert camera["wait_for_plate"] is True and camera["compressed"] == "jpeg"
    assert nodes["fake_camera"]["remappings"] == nodes["matte_node"]["remappings"]
    # capture_once's default service is relative: <namespace>/matte_node/capture_background
    assert "--service" not in nodes["capture_once"]["arguments"]
