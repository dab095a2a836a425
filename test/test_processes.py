"""The tools' child-process helper: output in a log file (no pipe to fill up), exit codes, stopping,
resident memory."""
import os
import subprocess
import sys
import time

import pytest

from matte_ros.core.processes import Child, ChildExited, python_module, resident_bytes


def test_output_goes_to_the_log_and_a_dead_child_reports_its_tail(tmp_path):
    log = tmp_path / "child.log"
    # 200 kB on stdout and stderr: far beyond a pipe's 64 kB buffer, so a pipe nobody reads would block it
    script = "import sys\nfor i in range(2000):\n    print('x' * 99)\n    print('e' * 99, file=sys.stderr)\n" \
             "print('last words', file=sys.stderr)\nsys.exit(3)\n"
    child = Child("chatty", [sys.executable, "-c", script], str(log))
    assert child.proc.wait(timeout=60) == 3
    with pytest.raises(ChildExited) as e:
        child.check()
    assert str(e.value).startswith(f"chatty exited with code 3; the end of {log}:\n")
    assert str(e.value).endswith("last words\n")
    assert child.stop() == 3
    assert log.stat().st_size == 2 * 2000 * 100 + len("last words\n")


def test_stop_sends_sigint_then_kills(tmp_path):
    waits_for_ctrl_c = ("import sys, time\nprint('ready', flush=True)\ntry:\n    time.sleep(600)\n"
                        "except KeyboardInterrupt:\n    sys.exit(7)\n")
    child = Child("polite", [sys.executable, "-c", waits_for_ctrl_c], str(tmp_path / "a.log"))
    ignores = "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nprint('ready', flush=True)\n" \
              "time.sleep(600)\n"
    stubborn = Child("stubborn", [sys.executable, "-c", ignores], str(tmp_path / "b.log"))
    for c in (child, stubborn):
        while "ready" not in c.tail():
            c.check()
            time.sleep(0.01)
    child.check()                                      # alive: no error
    assert child.stop() == 7                           # its KeyboardInterrupt handler ran
    assert stubborn.stop(timeout=0.5) == -9            # SIGKILL after the timeout


def test_python_module_uses_this_interpreter():
    assert python_module("matte_ros.ros.node", "--ros-args") == [sys.executable, "-m", "matte_ros.ros.node",
                                                                 "--ros-args"]


def test_resident_memory_is_read_from_proc():
    with open(f"/proc/{os.getpid()}/statm") as f:
        pages = int(f.read().split()[1])
    got = resident_bytes(os.getpid())
    assert abs(got - pages * os.sysconf("SC_PAGE_SIZE")) < 50e6       # statm's resident pages, same process
    ended = subprocess.Popen([sys.executable, "-c", ""])
    ended.wait(timeout=60)
    with pytest.raises(OSError):            # reaped: no /proc entry left
        resident_bytes(ended.pid)
