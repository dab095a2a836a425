"""The shared ``main`` of the package's ROS 2 executables: start, spin, shut down cleanly."""
import sys
from typing import Callable, Optional, Tuple, Type

import rclpy
from rclpy.executors import Executor, ExternalShutdownException

from .dds import use_fastdds_profile

__all__ = ["run_node"]


def run_node(name: str, make_node: Callable[[], "rclpy.node.Node"], start_errors: Tuple[Type[BaseException], ...],
             args=None, make_executor: Optional[Callable[[], Executor]] = None) -> int:
    """Build the node (a start error prints ``name: cannot start: ...`` and returns 1), spin it until
    Ctrl-C / SIGTERM, then destroy it and shut rclpy down; returns the process exit code. The
    package's Fast DDS profile applies unless the environment names one (``matte_ros.ros.dds``)."""
    use_fastdds_profile()
    rclpy.init(args=args)
    try:
        node = make_node()
    except start_errors as e:
        print(f"{name}: cannot start: {e}", file=sys.stderr)
        rclpy.try_shutdown()
        return 1
    executor = make_executor() if make_executor is not None else None
    try:
        if executor is None:
            rclpy.spin(node)
        else:
            executor.add_node(node)
            executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        if rclpy.ok():
            raise
        # else: a callback raced Ctrl-C / SIGTERM (e.g. publishing on the closed context): a clean exit
    finally:
        if executor is not None:
            executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
