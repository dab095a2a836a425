"""The console scripts of the package (``setup.py``).

Each catches SIGINT / SIGTERM before it imports its module (only the standard library is loaded
by then), so a Ctrl-C while torch and rclpy load is a clean stop (exit 0), not a
``KeyboardInterrupt`` traceback. Once ``main`` has shut everything down (node destroyed, rclpy
shut down, files written and closed), the process ends at once with ``os._exit``: the
interpreter's own teardown of torch and the DDS libraries takes seconds on a loaded machine, more
than the 5 s ``ros2 launch`` waits before escalating a Ctrl-C to SIGTERM. So never call these
functions in a process that should go on (tests call each module's ``main`` instead).
"""
import importlib
import os
import sys
from typing import NoReturn

from .stop import StopSignals

__all__ = ["matte_node", "fake_camera", "capture_once"]


def _run(module: str) -> NoReturn:
    with StopSignals() as signals:
        main = importlib.import_module(module).main
        code = 0 if signals.stopped else main()      # stopped during the imports: nothing to shut down
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def matte_node() -> NoReturn:
    return _run("matte_ros.ros.node")


def fake_camera() -> NoReturn:
    return _run("matte_ros.ros.fake_camera")


def capture_once() -> NoReturn:
    return _run("matte_ros.ros.capture_once")
