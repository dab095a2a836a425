"""Start the matting node with config/matte.yaml; optionally a fake camera and one plate capture.

    ros2 launch matte_ros matte.launch.py camera:=/camera/image_raw camera_info:=/camera/camera_info
    ros2 launch matte_ros matte.launch.py params_file:=my.yaml namespace:=left device:=cuda
    ros2 launch matte_ros matte.launch.py fake_camera:=true     # synthetic scene, plate captured automatically
    ros2 launch matte_ros matte.launch.py cameras:=[left,right]  # one node, one model, a stereo pair
    ros2 launch matte_ros matte.launch.py cameras:=[left,right] fake_camera:=true   # a fake camera each
    ros2 launch matte_ros matte.launch.py --show-args           # every argument, its choices and default

Parameters come from the package's config/matte.yaml, then ``params_file`` (the user's own YAML,
which only needs the parameters it changes; a file that does not exist stops the launch), then the
arguments ``model``, ``device`` and ``compressed``, each only when given. Arguments with a fixed set
of values declare it (``choices``): launch refuses any other value before starting anything. With
``fake_camera:=true`` the camera keeps its scene empty until the node has a plate
(``wait_for_plate``) and ``capture_once`` asks for that plate as soon as the node's service exists,
so the plate is the empty scene however long the node takes to start.

``cameras`` (``[left,right]`` or ``left,right``) makes the one node matte every camera listed, each
under its namespace (``/left/image`` in, ``/left/matte/alpha`` out, ``/left/matte_node/capture_background``;
the ``camera`` and ``camera_info`` remaps do not apply); with ``fake_camera:=true`` each gets its own
fake camera (scene seed 0, 1, 2, ... in the order listed) and its own plate capture.
"""
import os
from typing import Optional

from launch import Condition, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

from matte_ros.ros.names import CAMERA_INFO, FAKE_CAMERA_NAME, IMAGE, NODE_NAME, camera_namespaces

PACKAGE = "matte_ros"
BOOL = ("true", "false")
ARGUMENTS = (  # name, default, description, choices (None: any text)
    ("camera", IMAGE, f"Camera image topic (remaps `{IMAGE}`)", None),
    ("camera_info", CAMERA_INFO, f"Camera info topic (remaps `{CAMERA_INFO}`; republished on matte/camera_info)",
     None),
    ("namespace", "", "Namespace of every node (e.g. left): topics become /<namespace>/matte/alpha, ...", None),
    ("params_file", "", "Your own parameters YAML, applied over config/matte.yaml; '' = none", None),
    ("model", "", "Weight file (model_path); '' = as the YAML says", None),
    ("device", "", "auto, cpu, cuda or cuda:N; '' = as the YAML says", None),
    ("compressed", "", "true: subscribe to <camera>/compressed; '' = as the YAML says", ("",) + BOOL),
    ("fake_camera", "false", "true: also start the synthetic camera and capture the plate from it (one per "
     "entry of cameras)", BOOL),
    ("cameras", "", "Cameras of the one node, e.g. [left,right]: each under its namespace (/left/image in, "
     "/left/matte/alpha out); '' = one camera (the camera and camera_info arguments)", None),
)


def matte_node(args: dict, config: str) -> Node:
    """The matting node for launch argument values ``args`` (name -> text, already checked against
    their choices); ``config``: the package's config/matte.yaml."""
    if args["params_file"] and not os.path.isfile(args["params_file"]):
        raise FileNotFoundError(f"params_file:={args['params_file']} does not exist")
    overrides = {key: value for key, value in (("model_path", args["model"]), ("device", args["device"])) if value}
    if args["compressed"]:
        overrides["compressed"] = args["compressed"] == "true"
    cameras = camera_namespaces(args["cameras"])        # ValueError: a bad list stops the launch
    if cameras:
        overrides["cameras"] = ",".join(cameras)
    parameters = [config] + ([args["params_file"]] if args["params_file"] else []) + ([overrides] if overrides else [])
    return Node(package=PACKAGE, executable="matte_node", name=NODE_NAME, namespace=args["namespace"],
                output="screen", parameters=parameters, remappings=_remaps())


def _remaps() -> list:
    return [(IMAGE, LaunchConfiguration("camera")), (CAMERA_INFO, LaunchConfiguration("camera_info"))]


def _one_fake_camera(context) -> bool:
    return (LaunchConfiguration("fake_camera").perform(context) == "true"
            and not LaunchConfiguration("cameras").perform(context).strip())


def fake_camera_nodes(namespace: Optional[str] = None, seed: int = 0) -> list:
    """The synthetic camera (JPEG when ``compressed:=true``) and the one-shot plate capture. Without
    ``namespace``: in the namespace argument's, started only with ``fake_camera:=true`` and no
    ``cameras`` list; with it (``_setup``, one pair per listed camera): there, with scene ``seed``."""
    fake = Condition(predicate=_one_fake_camera) if namespace is None else None
    jpeg = ParameterValue(PythonExpression(["'jpeg' if '", LaunchConfiguration("compressed"), "' == 'true' else ''"]),
                          value_type=str)
    camera = {"empty_seconds": 1.0, "wait_for_plate": True, "compressed": jpeg, "seed": seed}
    ns = LaunchConfiguration("namespace") if namespace is None else namespace
    return [
        Node(package=PACKAGE, executable="fake_camera", name=FAKE_CAMERA_NAME, namespace=ns, output="screen",
             parameters=[camera], remappings=_remaps(), condition=fake),
        # calls <namespace>/matte_node/capture_background as soon as the node offers it
        Node(package=PACKAGE, executable="capture_once", name="capture_once", namespace=ns, output="screen",
             arguments=["--wait", "300"], condition=fake),
    ]


def _setup(context):
    args = {name: LaunchConfiguration(name).perform(context) for name, *_ in ARGUMENTS}
    config = os.path.join(FindPackageShare(PACKAGE).perform(context), "config", "matte.yaml")
    return [matte_node(args, config)] + listed_fake_cameras(args)


def listed_fake_cameras(args: dict) -> list:
    """With ``fake_camera:=true`` and a ``cameras`` list: a fake camera and a plate capture in each
    listed camera's namespace (under the namespace argument), scene seeds 0, 1, 2, ..."""
    if args["fake_camera"] != "true":
        return []
    actions = []
    for seed, camera in enumerate(camera_namespaces(args["cameras"])):
        actions += fake_camera_nodes("/".join(p for p in (args["namespace"].strip("/"), camera) if p), seed)
    return actions


def generate_launch_description():
    declared = [DeclareLaunchArgument(name, default_value=default, description=text,
                                      **({"choices": list(choices)} if choices else {}))
                for name, default, text, choices in ARGUMENTS]
    return LaunchDescription(declared + [OpaqueFunction(function=_setup)] + fake_camera_nodes())
