"""Every ROS name of the package, defined once.

Topics are relative, so they follow the node's namespace: with none, the node publishes
``/matte/alpha``; started with ``-r __ns:=/left`` (or the launch file's ``namespace:=left``) it
publishes ``/left/matte/alpha``, and two cameras (a stereo pair) work side by side. Services are
private (``~/``): ``/matte_node/capture_background``, or ``/left/matte_node/capture_background``.
One node matting several cameras (``-p cameras:=left,right``) gives each camera the names a node in
that camera's namespace would have (``in_camera``): ``/left/matte/alpha``,
``/left/matte_node/capture_background``, ``/right/image``, ...
"""
__all__ = ["NODE_NAME", "FAKE_CAMERA_NAME", "IMAGE", "CAMERA_INFO", "ALPHA", "FOREGROUND", "COMPOSITE",
           "ERROR_MAP", "REFINEMENT_MAP", "BACKGROUND", "MATTE_CAMERA_INFO", "DIAGNOSTICS", "TRUE_ALPHA",
           "CAPTURE_SERVICE", "CLEAR_SERVICE", "resolve", "service_of_node", "in_camera",
           "camera_namespaces"]

import re
from typing import Tuple

NODE_NAME = "matte_node"
FAKE_CAMERA_NAME = "fake_camera"

# inputs of the node (remap them to the camera's topics)
IMAGE = "image"                         # sensor_msgs/Image; <IMAGE>/compressed with compressed:=true
CAMERA_INFO = "camera_info"             # sensor_msgs/CameraInfo, optional

# outputs of the node, each with the header (stamp, frame_id) of the frame it belongs to
ALPHA = "matte/alpha"
FOREGROUND = "matte/foreground"
COMPOSITE = "matte/composite"
ERROR_MAP = "matte/error"                   # with publish_debug_maps: the coarse error map
REFINEMENT_MAP = "matte/refinement"         # with publish_debug_maps: the refined patches
MATTE_CAMERA_INFO = "matte/camera_info"     # the camera's CameraInfo, republished with the outputs' header
BACKGROUND = "matte/background"             # the plate, latched (transient local)
DIAGNOSTICS = "/diagnostics"                # absolute, as diagnostic_aggregator expects

TRUE_ALPHA = "~/alpha_true"                 # the fake camera's ground truth

# services of the node (std_srvs/Trigger)
CAPTURE_SERVICE = "~/capture_background"
CLEAR_SERVICE = "~/clear_background"


def resolve(name: str, namespace: str = "/", node_name: str = NODE_NAME) -> str:
    """The absolute name ``name`` has for a node ``node_name`` in ``namespace`` ('' or '/' = the
    root): ``resolve(ALPHA, "/left") == "/left/matte/alpha"``, ``resolve(CAPTURE_SERVICE) ==
    "/matte_node/capture_background"``. Remappings are not applied."""
    if name.startswith("/"):
        return name
    ns = "/" + namespace.strip("/") if namespace.strip("/") else ""
    if name.startswith("~"):
        return f"{ns}/{node_name}{name[1:]}"
    return f"{ns}/{name}"


def service_of_node(service: str, node_name: str = NODE_NAME) -> str:
    """The name a client in the node's namespace uses for one of its private services:
    ``service_of_node(CAPTURE_SERVICE) == "matte_node/capture_background"`` (relative, so it follows
    the client's namespace)."""
    if not service.startswith("~/"):
        raise ValueError(f"not a private service name: {service!r}")
    return node_name + service[1:]


def in_camera(name: str, camera: str, node_name: str = NODE_NAME) -> str:
    """The name, relative to the node's namespace, that ``name`` has for camera ``camera`` (a
    namespace such as ``left`` or ``robot/left``) of a node matting several: what a node named
    ``node_name`` in that namespace would use. ``in_camera(ALPHA, "left") == "left/matte/alpha"``,
    ``in_camera(CAPTURE_SERVICE, "left") == "left/matte_node/capture_background"``; absolute names
    (``/diagnostics``) stay as they are, and so does every name of the node's own camera ``""``."""
    ns = camera.strip("/")
    if name.startswith("/") or not ns:
        return name
    if name.startswith("~"):
        return f"{ns}/{node_name}{name[1:]}"
    return f"{ns}/{name}"


_NAMESPACE = re.compile(r"[A-Za-z][A-Za-z0-9_]*(/[A-Za-z][A-Za-z0-9_]*)*")


def camera_namespaces(text: str) -> Tuple[str, ...]:
    """The cameras of the ``cameras`` parameter: namespaces separated by commas or spaces, in
    optional brackets (``"left,right"``, ``"[left, right]"``, ``"/robot/left robot/right"``), each
    returned without its leading and trailing ``/``; ``""`` = none (one camera, the node's own
    names). ValueError on a name ROS refuses or a camera named twice."""
    body = text.strip()
    if body.startswith("[") and body.endswith("]"):
        body = body[1:-1]
    found = [part.strip().strip("'\"").strip("/") for part in re.split(r"[,\s]+", body) if part.strip()]
    bad = [n for n in found if not _NAMESPACE.fullmatch(n)]
    if bad:
        raise ValueError(f"cameras: {', '.join(repr(n) for n in bad)} is not a ROS namespace (letters, digits and "
                         "_ in parts separated by /, each part starting with a letter)")
    twice = sorted({n for n in found if found.count(n) > 1})
    if twice:
        raise ValueError(f"cameras: {', '.join(twice)} named more than once")
    return tuple(found)
