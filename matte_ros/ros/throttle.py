"""Warnings throttled per reason, so that one reason's repeats never hide another reason.

rclpy's ``throttle_duration_sec`` keys its throttle by the call site: one ``warning(...)`` line that
reports every kind of malformed frame lets the first kind silence all others for the period. Here
the key is the message with its numbers taken out (``reason_key``): "rgb8 image 64x48: data has 10
bytes ..." repeats as one reason whatever the sizes, while "unsupported encoding 'rgb13'" is another.
"""
import re
import threading
import time
from typing import Callable, Dict

__all__ = ["reason_key", "ReasonThrottle"]

_NUMBER = re.compile(r"\d+(\.\d+)?")


def reason_key(message: str) -> str:
    """``message`` with every number replaced by ``#``: the same reason with other sizes gives the same key."""
    return _NUMBER.sub("#", message)


class ReasonThrottle:
    """``ready(message)`` is True for the first message of a reason and then at most once per
    ``period`` seconds for that reason; other reasons are not affected. Thread-safe."""

    def __init__(self, period: float, clock: Callable[[], float] = time.monotonic):
        self.period, self._clock = period, clock
        self._last: Dict[str, float] = {}
        self._lock = threading.Lock()

    def ready(self, message: str) -> bool:
        key, now = reason_key(message), self._clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.period:
                return False
            self._last[key] = now
            return True
