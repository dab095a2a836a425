"""Call the matting node's capture service once and report the answer (console script ``capture_once``).

    capture_once [--service matte_node/capture_background] [--delay 0] [--wait 60]

Waits up to ``--wait`` seconds for the service to appear (the node may still be loading its
model), then ``--delay`` more seconds, calls it and exits 0 when the plate was captured, 1
otherwise. The default service name is relative: started in the node's namespace (as the launch
file does with ``fake_camera:=true``) it calls that node's service. SIGINT / SIGTERM end the wait
cleanly (exit 0: the user stopped it, nothing failed).
"""
import argparse
import sys
import time

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.utilities import remove_ros_args
from std_srvs.srv import Trigger

from .main import POLL, StopSignals, init_ros
from .names import CAPTURE_SERVICE, service_of_node

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="capture_once", description=__doc__.split("\n")[0])
    parser.add_argument("--service", default=service_of_node(CAPTURE_SERVICE),
                        help="Trigger service to call (relative names resolve in this node's namespace)")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds to wait after the service appears")
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the service to appear")
    return parser


def main(args=None) -> int:
    argv = sys.argv if args is None else args
    opts = _parser().parse_args(remove_ros_args(argv)[1:])
    with StopSignals() as signals:
        init_ros(argv)
        node = rclpy.create_node("capture_once")
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        try:
            return _call(node, executor, signals, opts)
        finally:
            executor.shutdown()
            node.destroy_node()
            rclpy.try_shutdown()


def _call(node, executor, signals: StopSignals, opts) -> int:
    client = node.create_client(Trigger, opts.service)
    service = client.srv_name
    deadline = time.monotonic() + opts.wait
    while not client.service_is_ready():
        if time.monotonic() >= deadline:
            print(f"capture_once: service {service} did not appear within {opts.wait:g} s", file=sys.stderr)
            return 1
        if signals.event.wait(POLL):
            return 0
    if signals.event.wait(opts.delay):
        return 0
    future = client.call_async(Trigger.Request())
    while not future.done():
        if signals.stopped:
            print(f"capture_once: stopped before {service} answered", file=sys.stderr)
            return 0
        executor.spin_once(timeout_sec=POLL)
    res = future.result()
    if res is None:
        print(f"capture_once: no answer from {service}", file=sys.stderr)
        return 1
    print(f"capture_once: {'ok' if res.success else 'FAILED'}: {res.message}", flush=True)
    return 0 if res.success else 1


if __name__ == "__main__":
    sys.exit(main())
