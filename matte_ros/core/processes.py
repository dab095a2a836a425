"""Child processes of the tools: started with their output in a log file, stopped as Ctrl-C would.

Output goes to a file, never to a pipe that nobody reads: a chatty child would fill the pipe's
buffer and block on its next write.
"""
import signal
import subprocess
import sys
from typing import Dict, List, Optional, Sequence

from .cli import Failure

__all__ = ["ChildExited", "Child", "python_module", "resident_bytes"]


class ChildExited(Failure):
    """A child process ended while it was still needed; the message holds the end of its log (a
    :class:`Failure`: the command exits 1)."""


def python_module(module: str, *args: str) -> List[str]:
    """The command line of ``python -m module args...`` with this interpreter."""
    return [sys.executable, "-m", module, *args]


def resident_bytes(pid: int) -> int:
    """Resident memory of process ``pid`` in bytes (``VmRSS`` of /proc/<pid>/status); OSError when
    there is none (a process that has ended)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise OSError(f"/proc/{pid}/status has no VmRSS line")


class Child:
    """``argv`` running with stdout and stderr in the file ``log`` (truncated first), stdin closed."""

    def __init__(self, name: str, argv: Sequence[str], log: str, env: Optional[Dict[str, str]] = None):
        self.name, self.log = name, log
        self._file = open(log, "w")
        try:
            self.proc = subprocess.Popen(list(argv), env=env, stdout=self._file, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        except BaseException:
            self._file.close()
            raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    def tail(self, lines: int = 15) -> str:
        """The last ``lines`` lines of the log."""
        self._file.flush()
        with open(self.log, errors="replace") as f:
            return "".join(f.readlines()[-lines:])

    def check(self) -> None:
        """Raise :class:`ChildExited` (exit code and the end of the log) when the process has ended."""
        rc = self.proc.poll()
        if rc is not None:
            raise ChildExited(f"{self.name} exited with code {rc}; the end of {self.log}:\n{self.tail()}")

    def stop(self, timeout: float = 10.0) -> int:
        """SIGINT (what Ctrl-C sends), then SIGKILL after ``timeout`` s; returns the exit code."""
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGINT)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
            return self.proc.wait()
        finally:
            self._file.close()
