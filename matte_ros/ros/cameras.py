"""The cameras of the matting node: one model, fair turns, one worker per core's share.

    group = CameraGroup(node, engine, ("left", "right"), composite_for, threads=2)  # () = the node's own camera
    group.threads_per_worker                # torch's CPU threads (process-wide) the node sets
    group.statuses()                        # one DiagnosticStatus per camera
    group.configure(engine_settings)        # a live parameter change, on every camera's engine
    group.set_max_rate(10.0)                # per camera
    group.stop()                            # worker joined, waiting captures answered

With ``cameras:=left,right`` every camera gets ``engine.with_own_plates()``: the network and its
device buffers are the node's one engine's, the plates are the camera's; without, the one camera
('', the node's own names) mattes with ``engine`` itself. Worker threads matte the cameras' frames
in the order ``FairTurns`` gives (the newest frame of each camera, the camera waiting longest goes
first; one frame of a camera at a time), so a camera that publishes fast, stalls or sends malformed
frames never holds the others back; a frame's error is counted in its own camera's diagnostics.

How many workers (``worker_plan``): one with one camera, or where the engine runs one frame at a
time (CUDA). On the CPU, several cameras get one worker per camera, at most one per torch thread the
node may use, and the threads are split between them: two cameras on 2 threads are two frames at
once on one thread each, as two single-camera processes would run them, which mattes more frames
than one frame at a time on both threads (a frame's convolutions do not scale to two threads).
"""
import threading
from typing import Callable, Dict, Iterable, List, Tuple

from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.callback_groups import ReentrantCallbackGroup

from matte_ros.core.engine import MattingEngine

from .camera import Camera
from .scheduler import FairTurns

__all__ = ["CameraGroup", "worker_plan"]


def worker_plan(threads: int, cameras: int, parallel: bool) -> Tuple[int, int]:
    """(worker threads, torch threads each) for ``cameras`` cameras sharing ``threads`` torch CPU
    threads; ``parallel``: whether the engine runs several cameras' frames at once (module doc)."""
    threads = max(1, threads)
    workers = min(cameras, threads) if parallel and cameras > 1 else 1
    return workers, max(1, threads // workers)


class CameraGroup:
    """The node's cameras (see the module doc); ``cameras``: their namespaces (names.camera_namespaces),
    none for the node's own camera ''."""

    def __init__(self, node, engine: MattingEngine, cameras: Iterable[str],
                 composite_for: Callable[[int, int], object], threads: int = 1):
        self.node, self.engine = node, engine
        names = tuple(cameras) or ("",)
        workers, self.threads_per_worker = worker_plan(threads, len(names), engine.parallel_frames)
        self.turns = FairTurns(names)
        services = ReentrantCallbackGroup()
        self.cameras: Dict[str, Camera] = {}
        for name in names:
            own = engine.with_own_plates() if name else engine
            self.cameras[name] = Camera(node, own, name, self.turns, composite_for, services)
        self.set_max_rate(node.settings.max_rate)
        self._stop = threading.Event()
        self.workers = [threading.Thread(target=self._work, name=f"matte_worker{i if i else ''}", daemon=True)
                        for i in range(workers)]
        for worker in self.workers:
            worker.start()

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
            finally:
                self.turns.done(name)

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
        """Stop the workers (joined) and answer every waiting capture. Idempotent."""
        self._stop.set()
        for camera in self.cameras.values():
            camera.stop()
        self.turns.close()
        for worker in self.workers:
            worker.join(timeout=10.0)
