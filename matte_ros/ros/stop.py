"""SIGINT and SIGTERM as a request to stop, never as an exception (no ROS, no heavy imports).

A terminal's Ctrl-C under ``ros2 launch`` sends SIGINT to the whole process group and launch forwards
one more to each child; a service manager sends SIGTERM. Python's default turns SIGINT into a
``KeyboardInterrupt`` wherever the main thread happens to be (an import of torch, a worker join,
a half-destroyed node), so a second signal could break the shutdown itself. While a
:class:`StopSignals` is installed, every such signal only sets one process-wide event: the
program checks it and shuts down once, in order, and exits 0 however many signals arrive.
"""
import signal
import threading

__all__ = ["STOP_SIGNALS", "StopSignals"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """A context manager (main thread only): while installed, SIGINT and SIGTERM set ``event``;
    the previous handlers come back on exit. Nested installations share the event (the entry
    point's, installed before the heavy imports, and ``run_node``'s), which the outermost one
    clears on entry. ``received`` names the signals seen."""

    event = threading.Event()
    received = []
    _depth = 0

    def __init__(self):
        self._previous = {}

    @classmethod
    def _on_signal(cls, signum, frame) -> None:
        cls.received.append(signal.Signals(signum).name)
        cls.event.set()

    def __enter__(self) -> "StopSignals":
        if StopSignals._depth == 0:
            StopSignals.event.clear()
            StopSignals.received.clear()
        StopSignals._depth += 1
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, StopSignals._on_signal)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
        StopSignals._depth -= 1

    @property
    def stopped(self) -> bool:
        return self.event.is_set()
