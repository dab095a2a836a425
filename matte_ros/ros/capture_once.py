"""Call the matting node's capture service once and report the answer (console script ``capture_once``).

    capture_once [--service matte_node/capture_background] [--delay 0] [--wait 60]

Waits up to ``--wait`` seconds for the service to appear (the node may still be loading its
model), then ``--delay`` more seconds, calls it and exits 0 when the plate was captured, 1
otherwise (``capture_once: error: ...``). The default service name is relative: started in the node's
namespace (as the launch file does with ``fake_camera:=true``) it calls that node's service. SIGINT /
SIGTERM end the wait cleanly (exit 0: the user stopped it, nothing failed; ``entry.capture_once``).
"""
import argparse
import sys
import threading
import time
from typing import Optional

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.utilities import remove_ros_args
from std_srvs.srv import Trigger

from matte_ros.core.cli import Failure, OneLineParser, number

from .main import POLL, init_ros
from .names import CAPTURE_SERVICE, service_of_node

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="capture_once", description=__doc__.split("\n")[0])
    parser.add_argument("--service", default=service_of_node(CAPTURE_SERVICE),
                        help="Trigger service to call (relative names resolve in this node's namespace)")
    parser.add_argument("--delay", type=number(float, 0), default=0.0, help="seconds to wait after the service appears")
    parser.add_argument("--wait", type=number(float, 0), default=60.0,
                        help="seconds to wait for the service to appear")
    return parser


def main(args=None, stop: Optional[threading.Event] = None) -> int:
    """The command (run by ``entry.capture_once``, which sets ``stop`` on SIGINT / SIGTERM)."""
    stop = threading.Event() if stop is None else stop
    argv = sys.argv if args is None else args
    opts = _parser().parse_args(remove_ros_args(argv)[1:])
    init_ros(argv)
    node = rclpy.create_node("capture_once")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        return _call(node, executor, stop, opts)
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()


def _call(node, executor, stop: threading.Event, opts) -> int:
    client = node.create_client(Trigger, opts.service)
    service = client.srv_name
    deadline = time.monotonic() + opts.wait
    while not client.service_is_ready():
        if time.monotonic() >= deadline:
            raise Failure(f"service {service} did not appear within {opts.wait:g} s")
        if stop.wait(POLL):
            return 0
    if stop.wait(opts.delay):
        return 0
    future = client.call_async(Trigger.Request())
    while not future.done():
        if stop.is_set():
            print(f"capture_once: stopped before {service} answered", file=sys.stderr)
            return 0
        executor.spin_once(timeout_sec=POLL)
    res = future.result()
    if res is None:
        raise Failure(f"no answer from {service}")
    if not res.success:
        raise Failure(f"capture failed: {res.message}")
    print(f"capture_once: ok: {res.message}", flush=True)
    return 0


if __name__ == "__main__":        # the interpreter's own exit; the console script ends at once (entry.py)
    from .entry import capture_once
    capture_once.run_as_main()
