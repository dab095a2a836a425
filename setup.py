from glob import glob

from setuptools import find_packages, setup

package_name = "matte_ros"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(include=["matte_ros", "matte_ros.*", "training", "training.*"]),
    package_data={"matte_ros": ["weights/*.safetensors", "ros/fastdds.xml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/launch", glob("launch/*.py")),
        ("share/" + package_name + "/config", glob("config/*.yaml")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="matte_ros developers",
    maintainer_email="dev@matte-ros.invalid",
    description="Real-time high-resolution background matting (BGMv2) for ROS 2",
    license="MIT",
    entry_points={
        # each names a matte_ros.core.cli.Command: the one runner (test_runner.py checks every one)
        "console_scripts": [
            "matte_node = matte_ros.ros.entry:matte_node",
            "fake_camera = matte_ros.ros.entry:fake_camera",
            "capture_once = matte_ros.ros.entry:capture_once",
            "matte_demo = matte_ros.tools.demo:COMMAND",
            "matte_offline = matte_ros.tools.offline.cli:COMMAND",
        ],
    },
)
