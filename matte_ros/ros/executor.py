"""A multi-threaded executor whose shutdown answers what has arrived and waits for what it started.

rclpy 7 (ROS 2 Jazzy)'s ``MultiThreadedExecutor.shutdown`` returns while callbacks still run in its
thread pool (its wait is skipped: it tests the flag it has just set; later releases wait for the
pool, ros2/rclpy#1309). A service callback that returns during the shutdown (a capture the node's
``stop`` just ended) then sends its answer on a service that is being destroyed, and its caller
waits forever. :class:`WaitingExecutor` runs callbacks the same way, on a pool of threads, and its
``shutdown`` first runs the callbacks that are ready (requests that arrived before the stop are
answered too), then waits until every callback it started has returned and its answer is sent.
"""
import concurrent.futures
import threading
import time
from typing import List, Optional, Tuple

from rclpy.executors import Executor, ExternalShutdownException, ShutdownException, TimeoutException
from rclpy.task import Task

__all__ = ["WaitingExecutor", "DRAIN_SECONDS"]

DRAIN_SECONDS = 1.0     # at most this long, shutdown runs callbacks that are ready (then only waits)


class WaitingExecutor(Executor):
    """Callbacks on ``num_threads`` threads (callback groups decide which may run together), plus one
    for each service callback of its nodes that may wait long, all at once (a node's
    ``waiting_services``: the capture services of a node matting several cameras), so that those
    waiting never leave the subscriptions they wait for without a thread. The pool is made when the
    first callback runs, after the nodes were added."""

    def __init__(self, num_threads: int = 4, *, context=None):
        super().__init__(context=context)
        self._threads = num_threads
        self._pool: Optional[concurrent.futures.ThreadPoolExecutor] = None
        self._running: List[Tuple[Task, concurrent.futures.Future]] = []
        self._lock = threading.Lock()

    def spin_once(self, timeout_sec: Optional[float] = None) -> None:
        self.run_ready(timeout_sec)

    def run_ready(self, timeout_sec: Optional[float] = None) -> bool:
        """Start the next ready callback on the pool, waiting up to ``timeout_sec`` for one (None:
        forever); True if one was started. Raises what an earlier callback raised."""
        try:
            handler, _, _ = self.wait_for_ready_callbacks(timeout_sec=timeout_sec)
        except (TimeoutException, ShutdownException, ExternalShutdownException):
            return False
        if self._pool is None:
            waiting = sum(getattr(node, "waiting_services", 0) for node in self.get_nodes())
            self._pool = concurrent.futures.ThreadPoolExecutor(self._threads + waiting,
                                                               thread_name_prefix="ros_callback")
        future = self._pool.submit(handler)
        with self._lock:
            self._running.append((handler, future))
            finished = [t for t, f in self._running if t.done()]
            self._running = [(t, f) for t, f in self._running if not t.done()]
        for task in finished:
            task.result()           # raises the callback's exception
        return True

    def shutdown(self, timeout_sec: Optional[float] = None) -> bool:
        """Run the callbacks ready now (for at most DRAIN_SECONDS), wait up to ``timeout_sec``
        (None: forever) for every callback started to return (its service answer sent), then stop.
        Returns False when some were still running at the timeout."""
        end = time.monotonic() + DRAIN_SECONDS
        while time.monotonic() < end and self.run_ready(0):
            pass
        with self._lock:
            futures = [f for _, f in self._running]
            self._running = []
        _, late = concurrent.futures.wait(futures, timeout=timeout_sec)
        if self._pool is not None:
            self._pool.shutdown(wait=False)
        super().shutdown(timeout_sec=0)
        return not late
