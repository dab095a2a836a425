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
    """The matte_node's keyword arguments for the given argument values (the others at their defaults)."""
    args = {name: default for name, default, *_ in mod.ARGUMENTS}
    args.update(given)
    mod.recorded.clear()
    mod.matte_node(args, CONFIG)
    (node,) = mod.recorded
    return node


def _context(mod, **given):
    from launch import LaunchContext

    context = LaunchContext()
    for name, default, *_ in mod.ARGUMENTS:
        context.launch_configurations[name] = given.get(name, default)
    return context


def test_declared_arguments_and_their_choices(launch_module):
    from launch.actions import DeclareLaunchArgument

    ld = launch_module.generate_launch_description()
    declared = {a.name: a for a in ld.entities if isinstance(a, DeclareLaunchArgument)}
    assert set(declared) == {"camera", "camera_info", "namespace", "params_file", "model", "device", "compressed",
                             "fake_camera", "cameras"}
    assert declared["fake_camera"].choices == ["true", "false"]
    assert declared["compressed"].choices == ["", "true", "false"]
    assert declared["camera"].choices is None


def test_a_value_outside_the_choices_stops_the_launch(launch_module):
    from launch.actions import DeclareLaunchArgument

    ld = launch_module.generate_launch_description()
    (fake,) = [a for a in ld.entities if isinstance(a, DeclareLaunchArgument) and a.name == "fake_camera"]
    with pytest.raises(Exception, match="fake_camera.*maybe|maybe.*fake_camera"):
        fake.visit(_context(launch_module, fake_camera="maybe"))


def test_yaml_decides_unless_an_argument_is_given(launch_module, tmp_path):
    from matte_ros.ros.names import NODE_NAME

    node = _nodes(launch_module)
    assert node["name"] == NODE_NAME and node["namespace"] == ""
    assert node["parameters"] == [CONFIG]                    # nothing overrides the YAML
    mine = tmp_path / "mine.yaml"
    mine.write_text("matte_node:\n  ros__parameters: {}\n")
    node = _nodes(launch_module, device="cpu", params_file=str(mine))
    assert node["parameters"] == [CONFIG, str(mine), {"device": "cpu"}]
    node = _nodes(launch_module, model="/w.safetensors", compressed="true")
    assert node["parameters"] == [CONFIG, {"model_path": "/w.safetensors", "compressed": True}]
    assert _nodes(launch_module, compressed="false")["parameters"][1] == {"compressed": False}


def test_a_missing_params_file_stops_the_launch(launch_module, tmp_path):
    with pytest.raises(FileNotFoundError, match="params_file:=.*nowhere.yaml does not exist"):
        _nodes(launch_module, params_file=str(tmp_path / "nowhere.yaml"))


def test_topics_are_remapped_to_the_camera_arguments(launch_module):
    from launch.utilities import perform_substitutions

    node = _nodes(launch_module)
    context = _context(launch_module, camera="/cam/image_raw", camera_info="/cam/info")
    remaps = [(src, perform_substitutions(context, [dst])) for src, dst in node["remappings"]]
    assert remaps == [("image", "/cam/image_raw"), ("camera_info", "/cam/info")]


@pytest.mark.parametrize("fake,compressed,jpeg", [("true", "true", "jpeg"), ("true", "", ""), ("false", "", None)])
def test_fake_camera_only_when_asked_waits_for_the_plate_and_shares_the_namespace(launch_module, fake, compressed,
                                                                                  jpeg):
    from launch.utilities import perform_substitutions

    launch_module.recorded.clear()
    launch_module.fake_camera_nodes()
    camera, capture = launch_module.recorded
    context = _context(launch_module, fake_camera=fake, compressed=compressed, namespace="left")
    started = [kw["condition"].evaluate(context) for kw in (camera, capture)]
    assert started == [fake == "true"] * 2
    if not started[0]:
        return
    params = camera["parameters"][0]
    assert params["wait_for_plate"] is True
    assert perform_substitutions(context, params["compressed"].value) == jpeg
    assert {perform_substitutions(context, [kw["namespace"]]) for kw in (camera, capture)} == {"left"}
    remaps = [(src, perform_substitutions(context, [dst])) for src, dst in camera["remappings"]]
    assert remaps == [("image", "image"), ("camera_info", "camera_info")]     # the same topics as the node's
    # capture_once's default service is relative: <namespace>/matte_node/capture_background
    assert "--service" not in capture["arguments"]


def test_a_cameras_list_goes_to_the_one_node_and_a_bad_one_stops_the_launch(launch_module):
    assert _nodes(launch_module, cameras="[left,right]")["parameters"] == [CONFIG, {"cameras": "left,right"}]
    assert _nodes(launch_module, cameras="", device="cpu")["parameters"] == [CONFIG, {"device": "cpu"}]
    with pytest.raises(ValueError, match="named more than once"):
        _nodes(launch_module, cameras="[left,left]")


def test_fake_cameras_one_per_listed_camera_each_with_its_own_seed(launch_module):
    from launch.utilities import perform_substitutions

    args = {name: default for name, default, *_ in launch_module.ARGUMENTS}
    launch_module.recorded.clear()
    assert launch_module.listed_fake_cameras(dict(args, cameras="[left,right]")) == []     # fake_camera false
    launch_module.recorded.clear()
    launch_module.listed_fake_cameras(dict(args, cameras="[left,right]", fake_camera="true", namespace="robot"))
    context = _context(launch_module, cameras="[left,right]", fake_camera="true")
    cams = [kw for kw in launch_module.recorded if kw["executable"] == "fake_camera"]
    captures = [kw for kw in launch_module.recorded if kw["executable"] == "capture_once"]
    assert [kw["namespace"] for kw in cams] == [kw["namespace"] for kw in captures] == ["robot/left", "robot/right"]
    assert [kw["parameters"][0]["seed"] for kw in cams] == [0, 1]
    assert all(kw["condition"] is None for kw in cams + captures)
    # the single fake camera stays off while a list is given
    launch_module.recorded.clear()
    launch_module.fake_camera_nodes()
    assert [kw["condition"].evaluate(context) for kw in launch_module.recorded] == [False, False]
    assert perform_substitutions(context, [launch_module.recorded[0]["namespace"]]) == ""
