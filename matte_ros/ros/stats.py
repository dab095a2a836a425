"""The node's counters: no rclpy node needed, tested on their own.

:class:`NodeStats` counts what happened to a camera's frames and turns it into a
``diagnostic_msgs/DiagnosticStatus``; ``work_state`` says what the status reports.
"""
import statistics
import threading
import time
from collections import deque
from typing import Dict, Optional, Tuple

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

__all__ = ["NodeStats", "work_state", "IDLE", "MATTING"]

MATTING = "matting"
IDLE = "idle: no output has a subscriber, frames are not matted"


def work_state(report: Dict[str, float], subscribed: bool, input_topic: str,
               problem: Optional[str] = None) -> Tuple[bytes, str]:
    """(level, message) of the node's status for ``report`` (NodeStats.report: rates since the last
    report), whether an output has a subscriber and the plate ``problem`` (None when the plate is fine):

    - a plate problem: WARN with it;
    - nobody subscribed: OK, idle (frames are left alone on purpose);
    - frames matted since the last report: OK, matting;
    - subscribed but no frame arrived: WARN, the camera is silent;
    - frames arrived but none was matted: WARN, what became of them.
    """
    if problem:
        return DiagnosticStatus.WARN, problem
    if not subscribed:
        return DiagnosticStatus.OK, IDLE
    if report["output_rate"] > 0:
        return DiagnosticStatus.OK, MATTING
    if report["input_rate"] <= 0:
        return DiagnosticStatus.WARN, f"no frames on {input_topic} since the last report: is the camera publishing?"
    return DiagnosticStatus.WARN, (f"frames arrive on {input_topic} but none was matted since the last report "
                                   "(see the refused, malformed and errors counts)")


class NodeStats:
    """Thread-safe counters of the node; ``report`` gives rates since the previous report.

    Counters: received (frames that arrived) and what became of each: dropped (replaced before
    inference), malformed (unreadable messages), refused (no plate, wrong size, too large), idle (left
    alone while no output had a subscriber), published (matted frames), errors (unexpected failures).
    Every received frame ends in exactly one of these OUTCOMES, so ``received - sum(outcomes)`` is the
    number still in flight (0 or 1 waiting, 0 or 1 being matted). Latency = publish time - header
    stamp, and engine = seconds in ``MattingEngine.process``, each the median of the last ``window``
    published frames.
    """

    OUTCOMES = ("dropped", "malformed", "refused", "idle", "published", "errors")
    COUNTERS = ("received",) + OUTCOMES

    def __init__(self, window: int = 100, clock=time.monotonic):
        self._lock = threading.Lock()
        self._clock = clock
        self.counts: Dict[str, int] = {k: 0 for k in self.COUNTERS}
        self._latency = deque(maxlen=window)
        self._engine = deque(maxlen=window)
        self._last_t = clock()
        self._last_counts = dict(self.counts)

    def add(self, counter: str, n: int = 1) -> None:
        if counter not in self.counts:
            raise ValueError(f"unknown counter {counter!r}; expected one of {', '.join(self.COUNTERS)}")
        with self._lock:
            self.counts[counter] += n

    def latency(self, seconds: float) -> None:
        with self._lock:
            self._latency.append(seconds)

    def engine(self, seconds: float) -> None:
        with self._lock:
            self._engine.append(seconds)

    def _in_flight(self) -> int:
        return self.counts["received"] - sum(self.counts[k] for k in self.OUTCOMES)

    def in_flight(self) -> int:
        """Received frames that have no outcome yet."""
        with self._lock:
            return self._in_flight()

    def report(self) -> Dict[str, float]:
        """Totals, ``in_flight`` (received frames without an outcome yet), ``input_rate`` /
        ``output_rate`` (Hz since the last report), ``latency_median`` and ``engine_median`` (s, nan if none)."""
        with self._lock:
            now = self._clock()
            dt = max(now - self._last_t, 1e-9)
            out: Dict[str, float] = dict(self.counts)
            out["in_flight"] = self._in_flight()
            out["input_rate"] = (self.counts["received"] - self._last_counts["received"]) / dt
            out["output_rate"] = (self.counts["published"] - self._last_counts["published"]) / dt
            for key, values in (("latency_median", self._latency), ("engine_median", self._engine)):
                out[key] = statistics.median(values) if values else float("nan")
            self._last_t, self._last_counts = now, dict(self.counts)
            return out

    @staticmethod
    def status(report: Dict[str, float], name: str, hardware_id: str, extra: Dict[str, str],
               state: Tuple[bytes, str] = (DiagnosticStatus.OK, MATTING)) -> DiagnosticStatus:
        """A DiagnosticStatus of ``report`` with ``state`` = (level, message), see work_state."""
        values = [("input_rate_hz", f"{report['input_rate']:.2f}"),
                  ("output_rate_hz", f"{report['output_rate']:.2f}")]
        for key in ("latency_median", "engine_median"):
            v = report[key]
            values.append((key + "_ms", "n/a" if v != v else f"{v * 1000.0:.1f}"))
        values += [(k, str(int(report[k]))) for k in NodeStats.COUNTERS + ("in_flight",)]
        values += list(extra.items())
        level, message = state
        return DiagnosticStatus(level=level, name=name, hardware_id=hardware_id, message=message,
                                values=[KeyValue(key=k, value=v) for k, v in values])
