"""The shared start and stop of the package's ROS 2 executables.

rclpy's own signal handlers are off: the runner (``Command(ros=True)``, matte_ros.ros.entry) turns
SIGINT and SIGTERM into a stop request, the ``stop`` event; the spin loop sees it within ``POLL``
seconds, and the node is stopped, the executor shut down and the node destroyed once, in that order
(exit code 0).
"""
import sys
import threading
from typing import Callable, Optional, Tuple, Type

import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions

from matte_ros.core.cli import Failure

from .cli import command_line_problem, one_line
from .dds import use_fastdds_profile

__all__ = ["POLL", "init_ros", "run_node"]

POLL = 0.1      # seconds between checks of the stop request while spinning
STOP_WAIT = 10.0    # seconds the executor's shutdown waits for running callbacks (their answers sent)


def init_ros(args=None) -> None:
    """rclpy.init with the package's Fast DDS profile (unless the environment names one,
    ``matte_ros.ros.dds``) and without rclpy's signal handlers (the runner handles them)."""
    use_fastdds_profile()
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)


def run_node(name: str, make_node: Callable[[], "rclpy.node.Node"], start_errors: Tuple[Type[BaseException], ...],
             args=None, stop: Optional[threading.Event] = None, make_executor: Optional[Callable[[], Executor]] = None,
             on_started: Optional[Callable[["rclpy.node.Node"], None]] = None) -> int:
    """Check the command line (``cli.command_line_problem``: a problem raises ``ValueError("cannot
    start: ...")``, exit 2), build the node (a start error raises :class:`Failure`, exit 1), call
    ``on_started(node)`` (process-wide settings that depend on its parameters), spin until ``stop``
    is set (the runner sets it on SIGINT / SIGTERM), then stop the node (its ``stop()`` if it has one:
    ends waits inside callbacks), shut the executor down (waiting up to STOP_WAIT for running callbacks
    where the executor can, e.g. ``executor.WaitingExecutor``: their service answers are sent before
    the node goes), destroy the node and shut rclpy down; returns 0."""
    stop = threading.Event() if stop is None else stop
    problem = command_line_problem(sys.argv if args is None else args)
    if problem is None:
        try:
            init_ros(args)
        except RuntimeError as e:       # rcl refused the arguments (checks beyond command_line_problem's)
            problem = one_line(e)
    if problem is not None:
        raise ValueError(f"cannot start: {problem}")
    try:
        node = make_node()
    except start_errors + (ParameterException,) as e:      # ParameterException: a -p value rclpy refused
        rclpy.try_shutdown()
        raise Failure(f"cannot start: {one_line(e)}") from e
    if stop.is_set():           # stopped while the node was being built (model loading)
        node.destroy_node()
        rclpy.try_shutdown()
        return 0
    executor = make_executor() if make_executor is not None else SingleThreadedExecutor()
    try:
        if on_started is not None:
            on_started(node)
        executor.add_node(node)
        while not stop.is_set() and rclpy.ok():
            executor.spin_once(timeout_sec=POLL)
    except ExternalShutdownException:
        pass
    except Exception:
        if rclpy.ok():
            raise
        # else: a callback raced the shutdown (e.g. publishing on the closed context): a clean exit
    finally:
        stop_node = getattr(node, "stop", None)
        if stop_node is not None:
            stop_node()
        executor.shutdown(timeout_sec=STOP_WAIT)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
