"""Fair turns for several cameras sharing matting workers: the newest frame of each, longest waiting first.

    turns = FairTurns(["left", "right"])
    turns.put("left", msg)                  # subscription callback: never blocks; True = an untaken frame dropped
    key, msg, arrived = turns.take(0.5)     # a worker: the camera waiting longest (msg arrived at arrived), or None
    turns.done(key)                         # the worker has finished that frame: the camera may go again
    turns.set_interval(1.0 / max_rate)      # at most one frame per camera per interval (0 = no limit)
    turns.close()                           # take() returns None from now on

Each camera holds one slot, its newest frame (a newer one replaces it: the old one is counted as
dropped). ``take`` hands out the slot that has been waiting longest (since the first frame that
filled it after the camera's last turn; replacing a waiting frame by a newer one keeps its place)
among the cameras that may go (their last turn is at least ``interval`` ago): a camera with a frame
waiting is served after at most one turn of each other camera, however fast or in whatever phase
they publish. A camera that stops publishing holds no slot and delays no one. A camera whose frame
is being matted (taken, not yet ``done``) is not handed out again, so several workers never matte
two frames of one camera at once (out of order) while another camera waits. Pure (threading and a
clock only), so it is tested without ROS.
"""
import threading
import time
from typing import Any, Callable, Dict, Hashable, Iterable, Optional, Set, Tuple

__all__ = ["FairTurns"]


class FairTurns:
    """The newest frame of each camera in ``keys``, the camera waiting longest first (see the module doc)."""

    def __init__(self, keys: Iterable[Hashable], clock: Callable[[], float] = time.monotonic):
        self._order = {k: i for i, k in enumerate(keys)}
        if not self._order:
            raise ValueError("FairTurns needs at least one camera")
        self._clock = clock
        self._cond = threading.Condition()
        self._slots: Dict[Hashable, Tuple[Any, float, float]] = {}  # key -> (newest frame, its arrival, waiting since)
        self._last: Dict[Hashable, float] = {}                  # key -> time of its last turn
        self._busy: Set[Hashable] = set()                       # keys taken and not yet done
        self._interval = 0.0
        self._closed = False

    def put(self, key: Hashable, item: Any) -> bool:
        """Keep ``item`` as ``key``'s newest frame; True when it replaced one not yet taken."""
        if key not in self._order:
            raise KeyError(f"unknown camera {key!r}")
        with self._cond:
            now = self._clock()
            old = self._slots.get(key)
            self._slots[key] = (item, now, now if old is None else old[2])
            self._cond.notify_all()
            return old is not None

    def set_interval(self, seconds: float) -> None:
        """The shortest time between two turns of one camera (0: no limit); a waiting take recomputes."""
        with self._cond:
            self._interval = max(0.0, float(seconds))
            self._cond.notify_all()

    def waiting(self) -> int:
        """How many cameras have a frame waiting."""
        with self._cond:
            return len(self._slots)

    def _ready(self, now: float) -> Tuple[Optional[Hashable], Optional[float]]:
        """(the key whose turn it is, or None; when the next held-back slot may go, or None)."""
        best, best_rank, next_at = None, None, None
        for key, (_, _, since) in self._slots.items():
            if key in self._busy:
                continue
            last = self._last.get(key)
            free_at = now if last is None else last + self._interval
            if free_at > now:
                next_at = free_at if next_at is None else min(next_at, free_at)
                continue
            rank = (since, self._order[key])
            if best_rank is None or rank < best_rank:
                best, best_rank = key, rank
        return best, next_at

    def take(self, timeout: float) -> Optional[Tuple[Hashable, Any, float]]:
        """(key, frame, arrival time) of the next turn, waiting up to ``timeout`` s; None when none
        came or after ``close``. The camera ``key`` is busy until ``done(key)``."""
        deadline = self._clock() + timeout
        with self._cond:
            while not self._closed:
                now = self._clock()
                key, next_at = self._ready(now)
                if key is not None:
                    item, arrived, _ = self._slots.pop(key)
                    self._last[key] = now
                    self._busy.add(key)
                    return key, item, arrived
                if now >= deadline:
                    return None
                wake = deadline if next_at is None else min(deadline, next_at)
                self._cond.wait(max(0.0, wake - now))
            return None

    def done(self, key: Hashable) -> None:
        """The frame ``key`` was last taken for is finished: that camera may have its next turn."""
        with self._cond:
            self._busy.discard(key)
            self._cond.notify_all()

    def close(self) -> None:
        """End every take (now and later): they return None."""
        with self._cond:
            self._closed = True
            self._slots.clear()
            self._cond.notify_all()
