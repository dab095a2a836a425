"""The cameras of the matting node: one model, one worker, fair turns.

    group = CameraGroup(node, engine, ("left", "right"), composite_for)     # () = the node's own camera only
    group.statuses()                        # one DiagnosticStatus per camera
    group.configure(engine_settings)        # a live parameter change, on every camera's engine
    group.set_max_rate(10.0)                # per camera
    group.stop()                            # worker joined, waiting captures answered

With ``cameras:=left,right`` every camera gets ``engine.with_own_plates()``: the network and its
device buffers are the node's one engine's, the plates are the camera's; without, the one camera
('', the node's own names) mattes with ``engine`` itself. One worker thread mattes the cameras'
frames in the order ``FairTurns`` gives (the newest frame of each camera, the camera waiting longest
goes first), so a camera that publishes fast, stalls or sends malformed frames never holds the
others back; a frame's error is counted in its own camera's diagnostics.
"""
import threading
from typing import Callable, Dict, Iterable, List

from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.callback_groups import ReentrantCallbackGroup

from matte_ros.core.engine import MattingEngine

from .camera import Camera
from .scheduler import FairTurns

__all__ = ["CameraGroup"]


class CameraGroup:
    """The node's cameras (see the module doc); ``cameras``: their namespaces (names.camera_namespaces),
    none for the node's own camera ''."""

    def __init__(self, node, engine: MattingEngine, cameras: Iterable[str],
                 composite_for: Callable[[int, int], object]):
        self.node, self.engine = node, engine
        names = tuple(cameras) or ("",)
        self.turns = FairTurns(names)
        services = ReentrantCallbackGroup()
        self.cameras: Dict[str, Camera] = {}
        for name in names:
            own = engine.with_own_plates() if name else engine
            self.cameras[name] = Camera(node, own, name, self.turns, composite_for, services)
        self.set_max_rate(node.settings.max_rate)
        self._stop = threading.Event()
        self.worker = threading.Thread(target=self._work, name="matte_worker", daemon=True)
        self.worker.start()

    def _work(self) -> None:
        while not self._stop.is_set():
            turn = self.turns.take(0.5)
            if turn is None:
                continue
            name, msg, arrived = turn
            camera = self.cameras[name]
            try:
                camera.handle(msg, arrived)
            except Exception as e:      # one camera's bad frame: counted and logged there, the others go on
                if not self.node.context.ok():
                    break
                camera.stats.add("errors")
                camera.throttled(self.node.get_logger().error,
                                 camera.say("frame_error", error=f"{type(e).__name__}: {e}"))

    def configure(self, config: dict) -> None:
        """``engine.configure(**config)`` on every camera's own engine (the caller checks it on, and
        applies it to, the node's ``engine`` first)."""
        for camera in self.cameras.values():
            if camera.engine is not self.engine:
                camera.engine.configure(**config)

    def set_max_rate(self, rate: float) -> None:
        """At most ``rate`` frames per second per camera (0: as fast as they come)."""
        self.turns.set_interval(1.0 / rate if rate > 0 else 0.0)

    def outputs_subscribed(self) -> bool:
        return any(c.outputs_subscribed() for c in self.cameras.values())

    def statuses(self) -> List[DiagnosticStatus]:
        return [c.status() for c in self.cameras.values()]

    def stop(self) -> None:
        """Stop the worker (joined) and answer every waiting capture. Idempotent."""
        self._stop.set()
        for camera in self.cameras.values():
            camera.stop()
        self.turns.close()
        self.worker.join(timeout=10.0)
