"""The ROS 2 executables of the package (setup.py's console scripts), as commands of the one runner
(:class:`matte_ros.core.cli.Command`). Registered with ``ros=True``: SIGINT and SIGTERM are a request
to stop from before torch and rclpy load (a Ctrl-C meanwhile is a clean stop, not a traceback); the
node shuts down in order and the process exits 0, the code ``ros2 launch`` expects of a stopped node.
Each module's ``main(args, stop)`` is the command; ``python -m matte_ros.ros.node`` runs the same one
(``Command.run``) but leaves through the interpreter's own exit: slower, and time for the last
messages, such as a service answer sent during the shutdown, to reach their readers.
"""
from matte_ros.core.cli import Command

__all__ = ["matte_node", "fake_camera", "capture_once"]

matte_node = Command("matte_node", "matte_ros.ros.node:main", "the matting node", ros=True)
fake_camera = Command("fake_camera", "matte_ros.ros.fake_camera:main", "a synthetic camera", ros=True)
capture_once = Command("capture_once", "matte_ros.ros.capture_once:main", "call the capture service once",
                       ros=True)
