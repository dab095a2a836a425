"""launch/matte.launch.py: statically everywhere; built with launch_ros where it can be imported
(it is not on PyPI, so on the pip path those tests skip)."""
import ast
import importlib
import importlib.util
import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCH = os.path.join(REPO, "launch", "matte.launch.py")
pytestmark = pytest.mark.ros


def _console_scripts():
    with open(os.path.join(REPO, "setup.py")) as f:
        text = f.read()
    return dict(re.findall(r'"(\w+) = ([\w.]+:\w+)"', text))


def _node_calls():
    """Keyword arguments (constants only) of every Node(...) call in the launch file."""
    with open(LAUNCH) as f:
        tree = ast.parse(f.read(), LAUNCH)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "Node"]
    return [{k.arg: k.value.value for k in c.keywords if isinstance(k.value, ast.Constant)} for c in calls]


def test_launch_file_starts_installed_console_scripts_of_this_package():
    pytest.importorskip("rclpy")
    scripts = _console_scripts()
    calls = _node_calls()
    assert [c["executable"] for c in calls] == ["matte_node", "fake_camera", "capture_once"]
    for c in calls:
        assert c["package"] == "matte_ros"
        module, func = scripts[c["executable"]].split(":")
        assert callable(getattr(importlib.import_module(module), func)), scripts[c["executable"]]


def test_launch_file_names_agree_with_the_node():
    pytest.importorskip("rclpy")
    from matte_ros.ros.node import NODE_NAME
    with open(LAUNCH) as f:
        text = f.read()
    assert _node_calls()[0]["name"] == NODE_NAME
    assert f'"/{NODE_NAME}/capture_background"' in text
    assert os.path.isfile(os.path.join(REPO, "config", "matte.yaml"))


@pytest.fixture
def launch_description(monkeypatch):
    pytest.importorskip("launch_ros", reason="launch_ros is not installed (not on PyPI; comes with ROS 2)")
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
    return mod.generate_launch_description(), recorded


def test_launch_description_arguments_and_nodes(launch_description):
    from launch.actions import DeclareLaunchArgument
    from launch.conditions import IfCondition

    ld, nodes = launch_description
    args = {a.name: a.default_value for a in ld.entities if isinstance(a, DeclareLaunchArgument)}
    assert set(args) == {"camera", "model", "device", "fake_camera"}
    assert [n["executable"] for n in nodes] == ["matte_node", "fake_camera", "capture_once"]
    matte, cam, capture = nodes
    assert "condition" not in matte
    assert isinstance(cam["condition"], IfCondition) and isinstance(capture["condition"], IfCondition)
    assert matte["remappings"][0][0] == "image" and cam["remappings"][0][0] == "image"
    assert set(matte["parameters"][1]) == {"model_path", "device"}
