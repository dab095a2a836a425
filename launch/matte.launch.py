"""Start the matting node with config/matte.yaml; optionally a fake camera and one plate capture.

    ros2 launch matte_ros matte.launch.py camera:=/camera/image_raw camera_info:=/camera/camera_info
    ros2 launch matte_ros matte.launch.py params_file:=my.yaml namespace:=left device:=cuda
    ros2 launch matte_ros matte.launch.py fake_camera:=true     # synthetic scene, plate captured automatically

Parameters come from the package's config/matte.yaml, then ``params_file`` (the user's own YAML,
which only needs the parameters it changes), then the arguments ``model``, ``device`` and
``compressed``, each only when given. With ``fake_camera:=true`` the camera keeps its scene empty
until the node has a plate (``wait_for_plate``) and ``capture_once`` asks for that plate as soon as
the node's service exists, so the plate is the empty scene however long the node takes to start.
"""
import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from matte_ros.ros.names import CAMERA_INFO, FAKE_CAMERA_NAME, IMAGE, NODE_NAME

PACKAGE = "matte_ros"
ARGUMENTS = (
    ("camera", IMAGE, f"Camera image topic (remaps `{IMAGE}`)"),
    ("camera_info", CAMERA_INFO, f"Camera info topic (remaps `{CAMERA_INFO}`; republished on matte/camera_info)"),
    ("namespace", "", "Namespace of every node (e.g. left): topics become /<namespace>/matte/alpha, ..."),
    ("params_file", "", "Your own parameters YAML, applied over config/matte.yaml; '' = none"),
    ("model", "", "Weight file (model_path); '' = as the YAML says"),
    ("device", "", "auto, cpu, cuda or cuda:N; '' = as the YAML says"),
    ("compressed", "", "true: subscribe to <camera>/compressed; '' = as the YAML says"),
    ("fake_camera", "false", "true: also start the synthetic camera and capture the plate from it"),
)
_TRUE = ("true", "1", "yes", "on")


def _bool(text: str, name: str) -> bool:
    value = text.strip().lower()
    if value not in _TRUE + ("false", "0", "no", "off"):
        raise ValueError(f"{name}:= must be true or false, got {text!r}")
    return value in _TRUE


def node_actions(args: dict, config: str) -> list:
    """The Node actions for launch argument values ``args`` (name -> text); ``config``: the
    package's config/matte.yaml."""
    overrides = {}
    if args["model"]:
        overrides["model_path"] = args["model"]
    if args["device"]:
        overrides["device"] = args["device"]
    compressed = bool(args["compressed"]) and _bool(args["compressed"], "compressed")
    if args["compressed"]:
        overrides["compressed"] = compressed
    parameters = [config] + ([args["params_file"]] if args["params_file"] else []) + ([overrides] if overrides else [])
    ns = args["namespace"]
    remaps = [(IMAGE, args["camera"]), (CAMERA_INFO, args["camera_info"])]
    actions = [Node(package=PACKAGE, executable="matte_node", name=NODE_NAME, namespace=ns, output="screen",
                    parameters=parameters, remappings=remaps)]
    if _bool(args["fake_camera"], "fake_camera"):
        camera = {"empty_seconds": 1.0, "wait_for_plate": True, "compressed": "jpeg" if compressed else ""}
        actions += [
            Node(package=PACKAGE, executable="fake_camera", name=FAKE_CAMERA_NAME, namespace=ns, output="screen",
                 parameters=[camera], remappings=remaps),
            # calls <namespace>/matte_node/capture_background as soon as the node offers it
            Node(package=PACKAGE, executable="capture_once", name="capture_once", namespace=ns, output="screen",
                 arguments=["--wait", "300"]),
        ]
    return actions


def _setup(context):
    args = {name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGUMENTS}
    return node_actions(args, os.path.join(FindPackageShare(PACKAGE).perform(context), "config", "matte.yaml"))


def generate_launch_description():
    return LaunchDescription([DeclareLaunchArgument(name, default_value=default, description=text)
                              for name, default, text in ARGUMENTS] + [OpaqueFunction(function=_setup)])
