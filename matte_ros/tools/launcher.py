"""The fake camera and the matting node in their own processes, a listener node in this one: the
set-up that the demo and ``bench_node`` share.

Everything runs in one ROS domain (discovery limited to this host unless the environment says
otherwise) with the package's Fast DDS profile. The children's output goes to log files in
``log_dir``; a child that dies ends every wait with the tail of its log (:class:`ChildExited`).
:meth:`Launch.close` (also on leaving a ``with`` block) stops the camera first, then the node, then
the listener.
"""
import os
import threading
import time
from typing import Any, Callable, Dict, List, Mapping, Optional

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions
from std_srvs.srv import Trigger

from matte_ros.core.cli import Failure, OneLineParser
from matte_ros.core.model import DEFAULT_WEIGHTS
from matte_ros.core.processes import Child, ChildExited, python_module
from matte_ros.ros.dds import use_fastdds_profile
from matte_ros.ros.names import CAPTURE_SERVICE, resolve

__all__ = ["LaunchError", "ChildExited", "ros_params", "add_launch_arguments", "camera_tool_parser",
           "check_camera_arguments", "launch_domain", "Launch"]

NODE_MODULE = "matte_ros.ros.node"
CAMERA_MODULE = "matte_ros.ros.fake_camera"


class LaunchError(Failure):
    """The set-up cannot go on (a timeout, a refused capture); the message says why (exit 1)."""


def ros_params(params: Mapping[str, Any]) -> List[str]:
    """``--ros-args -p name:=value ...`` of ``params`` (booleans as true/false, floats with a dot)."""
    args = ["--ros-args"]
    for name, value in params.items():
        text = ("true" if value else "false") if isinstance(value, bool) else repr(value) if isinstance(
            value, float) else str(value)
        args += ["-p", f"{name}:={text}"]
    return args


def add_launch_arguments(parser, log_dir: str) -> None:
    """The options every tool built on Launch takes: --cpu-threads (the node's), --domain-id, --log-dir."""
    parser.add_argument("--cpu-threads", type=int, default=0, help="the node's cpu_threads parameter (0 = auto)")
    parser.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID (default: 1 + pid %% 100)")
    parser.add_argument("--log-dir", default=log_dir, help=f"node.log, camera.log and results (default {log_dir})")


def camera_tool_parser(module: str, doc: str, rate: float) -> OneLineParser:
    """The parser of tool ``module`` (``python -m module``; described by the first paragraph of its
    ``doc``) that runs the fake camera at a size it is told: --width, --height, --rate (default
    ``rate`` Hz), the node's --weights (default: the packaged weights) and add_launch_arguments' with
    logs in out/<tool>; the tool adds its own options, then checks with check_camera_arguments."""
    parser = OneLineParser(prog=f"python -m {module}", description=doc.split("\n\n")[0])
    log_dir = os.path.join("out", module.rsplit(".", 1)[-1])
    parser.add_argument("--width", type=int, default=640, help="camera frame width (default 640)")
    parser.add_argument("--height", type=int, default=480, help="camera frame height (default 480)")
    parser.add_argument("--rate", type=float, default=rate, help=f"camera frames per second (default {rate:g})")
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS, help="weight file (default: the packaged one)")
    add_launch_arguments(parser, log_dir)
    return parser


def check_camera_arguments(parser, args) -> None:
    """One line and exit 2 (``parser.error``) unless the frame size is 32x32 .. 7680x4320 and the
    --weights file exists (the tool checks --rate against its own range)."""
    if not (32 <= args.width <= 7680 and 32 <= args.height <= 4320):
        parser.error("--width must be 32..7680 and --height 32..4320")
    if not os.path.isfile(args.weights):
        parser.error(f"--weights {args.weights} does not exist")


def launch_domain(args) -> int:
    """The ROS domain of parsed ``args`` (add_launch_arguments): --domain-id, else one from the pid."""
    return 1 + os.getpid() % 100 if args.domain_id is None else args.domain_id


class Launch:
    """A listener node ``listener_name`` spinning in a thread, with a client of the node's capture
    service, in ROS domain ``domain_id``; :meth:`start_node` and :meth:`start_camera` add the
    children, whose logs go to ``<log_dir>/node.log`` and ``<log_dir>/camera.log``."""

    def __init__(self, domain_id: int, log_dir: str, listener_name: str):
        os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        use_fastdds_profile()       # here (the listener) and in the children
        self.env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id), PYTHONUNBUFFERED="1")
        self.domain_id, self.log_dir = domain_id, log_dir
        self.children: List[Child] = []
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id, signal_handler_options=SignalHandlerOptions.NO)
        self._executor = None
        try:
            self.node = rclpy.create_node(listener_name, context=self.context)
            self.capture_client = self.node.create_client(Trigger, resolve(CAPTURE_SERVICE))
            self._executor = SingleThreadedExecutor(context=self.context)
            self._executor.add_node(self.node)
            self._thread = threading.Thread(target=self._executor.spin, name=f"{listener_name}_spin", daemon=True)
            self._thread.start()
        except BaseException:
            rclpy.try_shutdown(context=self.context)
            raise

    def __enter__(self) -> "Launch":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def now_ns(self) -> int:
        """The listener's clock (the time base of the messages' stamps), in nanoseconds."""
        return self.node.get_clock().now().nanoseconds

    def _start(self, name: str, module: str, params: Mapping[str, Any], log_name: str) -> Child:
        child = Child(name, python_module(module, *ros_params(params)), os.path.join(self.log_dir, log_name),
                      self.env)
        self.children.append(child)
        return child

    def start_node(self, params: Mapping[str, Any], timeout: float) -> Child:
        """Start ``matte_node`` and wait until its capture service answers (the model is loaded)."""
        child = self._start("matte_node", NODE_MODULE, params, "node.log")
        self.wait("the node's capture service (is the model loading?)", self.capture_client.service_is_ready,
                  timeout)
        return child

    def start_camera(self, params: Mapping[str, Any]) -> Child:
        """Start ``fake_camera`` (returns at once)."""
        return self._start("fake_camera", CAMERA_MODULE, params, "camera.log")

    def wait(self, what: str, pred: Callable[[], Any], timeout: float, step: float = 0.05) -> Any:
        """Poll ``pred`` until it returns something truthy and return that; :class:`ChildExited` when
        a child ends meanwhile, :class:`LaunchError` after ``timeout`` s."""
        end = time.monotonic() + timeout
        while True:
            for child in self.children:
                child.check()
            value = pred()
            if value:
                return value
            if time.monotonic() > end:
                raise LaunchError(f"timed out after {timeout:g} s waiting for {what}")
            time.sleep(step)

    def capture_plate(self, attempts: int = 1, ask_again: Callable[[], bool] = lambda: True,
                      timeout: float = 60.0, log: Callable[[str], None] = print) -> str:
        """Call the node's capture service; a refused call is repeated (up to ``attempts`` calls) while
        ``ask_again()`` holds (e.g. the scene is still empty). Returns the node's answer;
        :class:`LaunchError` when the last call fails."""
        for attempt in range(1, attempts + 1):
            future = self.capture_client.call_async(Trigger.Request())
            res = self.wait("the capture_background answer", lambda f=future: f.done() and f.result(), timeout)
            if res.success:
                return res.message
            if attempt == attempts or not ask_again():
                break
            log(f"capture_background: {res.message}; asking again")
        raise LaunchError(f"capture_background failed: {res.message}")

    def close(self) -> Dict[str, Optional[int]]:
        """Stop the children (the camera first: no new frames, then the node), then the listener.
        Returns each child's exit code by name."""
        codes: Dict[str, Optional[int]] = {}
        for child in reversed(self.children):
            codes[child.name] = child.stop()
        self.children.clear()
        if self._executor is not None:
            self._executor.shutdown()
            self._thread.join(5.0)
            self._executor = None
            self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        return codes
