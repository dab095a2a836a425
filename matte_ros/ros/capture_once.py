"""Call the matting node's capture service once and report the answer (console script ``capture_once``).

    capture_once [--service /matte_node/capture_background] [--delay 1.0] [--wait 60]

Waits up to ``--wait`` seconds for the service to appear (the node may still be loading its
model), then ``--delay`` more seconds (so the camera's empty frames are flowing), calls it and
exits 0 when the plate was captured, 1 otherwise. The launch file uses it with ``fake_camera:=true``.
"""
import argparse
import sys
import time

import rclpy
from rclpy.utilities import remove_ros_args
from std_srvs.srv import Trigger

from .dds import use_fastdds_profile

__all__ = ["main"]


def main(args=None) -> int:
    argv = remove_ros_args(sys.argv if args is None else args)[1:]
    parser = argparse.ArgumentParser(prog="capture_once", description=__doc__.split("\n")[0])
    parser.add_argument("--service", default="/matte_node/capture_background", help="Trigger service to call")
    parser.add_argument("--delay", type=float, default=1.0, help="seconds to wait after the service appears")
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the service to appear")
    opts = parser.parse_args(argv)
    use_fastdds_profile()
    rclpy.init(args=sys.argv if args is None else args)
    node = rclpy.create_node("capture_once")
    try:
        client = node.create_client(Trigger, opts.service)
        if not client.wait_for_service(timeout_sec=opts.wait):
            print(f"capture_once: service {opts.service} did not appear within {opts.wait:g} s", file=sys.stderr)
            return 1
        time.sleep(opts.delay)
        future = client.call_async(Trigger.Request())
        rclpy.spin_until_future_complete(node, future)
        res = future.result()
        if res is None:
            print(f"capture_once: no answer from {opts.service}", file=sys.stderr)
            return 1
        print(f"capture_once: {'ok' if res.success else 'FAILED'}: {res.message}")
        return 0 if res.success else 1
    except KeyboardInterrupt:
        return 1
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
