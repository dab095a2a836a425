"""DDS domains for the tests: one per test module, never shared with another test run on this machine.

Two test runs (or two modules) in one DDS domain see each other's topics and services: a node of one
answers the other's capture call, alphas arrive from the wrong node. An id is claimed by holding an
exclusive ``flock`` on ``<tmp>/matte_ros_test_domains/<id>.lock`` (released by the kernel when the
holder exits, even on SIGKILL), so two live claims never share an id; where the search starts
depends on the process id and on a per-process counter, so consecutive modules and parallel runs
start apart. Ids stay in 1..101: on Linux, higher ids map to ports inside the ephemeral range.

conftest.py's ``ros_domain`` fixture claims one for every test module and sets ``ROS_DOMAIN_ID`` and
``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` in ``os.environ`` while the module runs: ``rclpy.init``
in the test process and every child process started from it (``ros2``, ``launch``, the node) use them.
"""
import fcntl
import itertools
import os
import tempfile
from typing import Dict

__all__ = ["FIRST", "LAST", "LOCK_DIR", "Domain", "claim", "ros_env"]

FIRST, LAST = 1, 101
LOCK_DIR = os.path.join(tempfile.gettempdir(), "matte_ros_test_domains")
_claims = itertools.count()


class Domain:
    """A claimed DDS domain ``id``, held until ``release``."""

    def __init__(self, id_: int, fd: int):
        self.id, self._fd = id_, fd

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)          # drops the flock
            self._fd = -1


def claim(pid: int = 0) -> Domain:
    """A domain no other live claim on this machine holds: the first free id in 1..101 from a start
    point spread by ``pid`` (default: this process's) and by the number of claims this process made.
    Raises RuntimeError when all 101 are held."""
    os.makedirs(LOCK_DIR, exist_ok=True)
    n = LAST - FIRST + 1
    start = ((pid or os.getpid()) * 7 + next(_claims) * 13) % n
    for i in range(n):
        id_ = FIRST + (start + i) % n
        fd = os.open(os.path.join(LOCK_DIR, f"{id_}.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        return Domain(id_, fd)
    raise RuntimeError(f"every DDS domain {FIRST}..{LAST} is held by a test run ({LOCK_DIR})")


def ros_env(domain_id: int) -> Dict[str, str]:
    """The environment variables that put ROS 2 processes in ``domain_id`` with discovery kept on this host."""
    return {"ROS_DOMAIN_ID": str(domain_id), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
