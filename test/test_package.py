"""package.xml declares what the package imports, as rosdep keys that resolve; what no key covers
is pinned in requirements.txt. The offline rosdep check runs where ../shared/ros exists."""
import ast
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROSDEP_CHECK = os.path.join(os.path.dirname(REPO), "shared", "ros", "bin", "rosdep-check")
SOURCES = ("matte_ros", "training", "launch")
# import name -> rosdep key (ROS packages are their own key)
KEYS = {"numpy": "python3-numpy", "cv2": "python3-opencv", "yaml": "python3-yaml", "torch": "python3-torch",
        "torchvision": "python3-torchvision", "tqdm": "python3-tqdm", "rosbags": "python3-rosbags-pip",
        "PIL": "python3-pil", "kornia": "python3-kornia-pip", "onnxruntime": "python3-onnxruntime-pip",
        "torch.utils.tensorboard": "python3-tensorboard-pip"}
ROS_PACKAGES = {"rclpy", "rcl_interfaces", "std_msgs", "sensor_msgs", "std_srvs", "diagnostic_msgs", "cv_bridge",
                "launch", "launch_ros"}
PIP_ONLY = {"safetensors": "safetensors", "av": "av", "pymatting": "pymatting", "onnx": "onnx",
            "onnxscript": "onnxscript"}    # import -> requirements name
FIRST_PARTY = {"matte_ros", "training"}


def _imports():
    """Module names imported anywhere in the package's sources (each top-level name and each full
    dotted name) -> a file that imports it."""
    found = {}
    for top in SOURCES:
        for root, _, files in os.walk(os.path.join(REPO, top)):
            for name in files:
                if not name.endswith(".py"):
                    continue
                path = os.path.join(root, name)
                with open(path) as f:
                    tree = ast.parse(f.read(), path)
                for node in ast.walk(tree):
                    if isinstance(node, ast.Import):
                        mods = [a.name for a in node.names]
                    elif isinstance(node, ast.ImportFrom) and node.level == 0:
                        mods = [node.module]
                    else:
                        continue
                    for mod in mods:
                        found.setdefault(mod.split(".")[0], os.path.relpath(path, REPO))
                        found.setdefault(mod, os.path.relpath(path, REPO))
    return found


def _declared():
    root = ET.parse(os.path.join(REPO, "package.xml")).getroot()
    return {e.text for e in root if e.tag.endswith("depend")}


def test_every_import_is_declared_or_pinned():
    declared = _declared()
    with open(os.path.join(REPO, "requirements.txt")) as f:
        pinned = {m.group(1).lower() for m in re.finditer(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?==", f.read(), re.M)}
    missing = []
    for mod, where in sorted(_imports().items()):
        if "." in mod and mod not in KEYS:
            continue
        if mod.split(".")[0] in sys.stdlib_module_names or mod in FIRST_PARTY:
            continue
        if mod in ROS_PACKAGES or mod in KEYS:
            key = mod if mod in ROS_PACKAGES else KEYS[mod]
            if key not in declared:
                missing.append(f"{mod} (imported in {where}): <exec_depend>{key}</exec_depend> in package.xml")
        elif mod in PIP_ONLY:
            if PIP_ONLY[mod] not in pinned:
                missing.append(f"{mod} (imported in {where}): no rosdep key, pin it in requirements.txt")
        else:
            missing.append(f"{mod} (imported in {where}): unknown to this test; declare it and add it here")
    assert missing == []


def test_every_declared_key_is_used():
    used = set(_imports())
    keys_used = {m for m in used if m in ROS_PACKAGES} | {KEYS[m] for m in used if m in KEYS}
    assert _declared() - keys_used == {"python3-pytest"}


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isfile(ROSDEP_CHECK), reason=f"{ROSDEP_CHECK} is absent (offline rosdep rules)")
def test_rosdep_resolves_every_key():
    res = subprocess.run([ROSDEP_CHECK, REPO], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "apt-get install -y ros-jazzy-rclpy" in res.stdout
