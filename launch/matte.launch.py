"""Start the matting node with config/matte.yaml; optionally a fake camera and one plate capture.

    ros2 launch matte_ros matte.launch.py camera:=/camera/image_raw [model:=/path/weights.pth] [device:=cuda]
    ros2 launch matte_ros matte.launch.py fake_camera:=true     # synthetic scene, plate captured automatically
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    camera = LaunchConfiguration("camera")
    with_fake = IfCondition(LaunchConfiguration("fake_camera"))
    config = PathJoinSubstitution([FindPackageShare("matte_ros"), "config", "matte.yaml"])
    return LaunchDescription([
        DeclareLaunchArgument("camera", default_value="image", description="Camera image topic (remaps `image`)"),
        DeclareLaunchArgument("model", default_value="", description="Weight file; '' = the packaged default"),
        DeclareLaunchArgument("device", default_value="auto", description="auto, cpu, cuda or cuda:N"),
        DeclareLaunchArgument("fake_camera", default_value="false",
                              description="true: also start the synthetic camera and capture the plate from it"),
        Node(package="matte_ros", executable="matte_node", name="matte_node", output="screen",
             parameters=[config, {"model_path": ParameterValue(LaunchConfiguration("model"), value_type=str),
                                  "device": ParameterValue(LaunchConfiguration("device"), value_type=str)}],
             remappings=[("image", camera)]),
        Node(package="matte_ros", executable="fake_camera", name="fake_camera", output="screen",
             parameters=[{"empty_seconds": 5.0}], remappings=[("image", camera)], condition=with_fake),
        # waits for the node's service (model loading), then captures the fake camera's empty frames
        Node(package="matte_ros", executable="capture_once", name="capture_once", output="screen",
             arguments=["--service", "/matte_node/capture_background", "--delay", "1.0"], condition=with_fake),
    ])
