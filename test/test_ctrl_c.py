"""Ctrl-C at any moment of a program run as ``python -m``: one line on stderr, exit 130, no traceback,
while torch loads as well as later. SIGINT goes to the program's process group (as a terminal's
Ctrl-C does) a chosen delay after the interpreter's own start-up is over (numpy's extension is mapped;
a Ctrl-C before that is Python's business, see conftest's ``interrupt``). The console scripts of the
ROS floor stop with exit 0 instead (``ros2 launch`` reports anything else as a crash): test_signals.py."""
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO, _has_mapped

LONG_SYNTH = ["--count", "400", "--size", "64", "64", "--test-count", "0", "--workers", "1"]
PROGRAMS = {   # each runs far longer than the largest delay
    "training synth": (["training", "synth", "--out", "{tmp}/s"] + LONG_SYNTH, "python -m training synth"),
    "training.bench_train": (["training.bench_train", "--steps", "50"], "python -m training.bench_train"),
    "bench": (["matte_ros.tools.bench", "--quick", "--no-engine"], "python -m matte_ros.tools.bench"),
    "bench_upkeep": (["matte_ros.tools.bench_upkeep"], "python -m matte_ros.tools.bench_upkeep"),
    "bench_node": (["matte_ros.tools.bench_node", "--seconds", "60"], "bench_node"),
    "soak": (["matte_ros.tools.soak", "--minutes", "5", "--log-dir", "{tmp}/soak"], "python -m matte_ros.tools.soak"),
}
DELAYS = (0.0, 0.05, 0.2, 0.5, 1.0, 1.5, 3.0)


def _ctrl_c(program: str, delay: float, tmp_path) -> tuple:
    """Run ``program``, SIGINT its group ``delay`` s after start-up; (exit code, stderr)."""
    args, _ = PROGRAMS[program]
    cmd = [sys.executable, "-m"] + [a.format(tmp=tmp_path) for a in args]
    env = dict(os.environ, ROS_DOMAIN_ID=str(90 + os.getpid() % 10), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=env)
    try:
        end = time.monotonic() + 120
        while proc.poll() is None and not _has_mapped(proc.pid, "_multiarray_umath"):
            assert time.monotonic() < end, "the program never imported numpy"
            time.sleep(0.002)
        time.sleep(delay)
        assert proc.poll() is None, f"{cmd} ended before the Ctrl-C: {proc.stderr.read()}"
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        return proc.returncode, err
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _assert_one_line_130(program: str, code: int, err: str) -> None:
    prog = PROGRAMS[program][1]
    assert "Traceback" not in err and code == 130, (code, err)
    assert err.count("\n") == 1 and err.startswith(f"{prog}: interrupted"), err


@pytest.mark.parametrize("program, delay", [("training.bench_train", 0.0), ("training.bench_train", 0.5),
                                            ("training synth", 0.05), ("training synth", 1.0)])
def test_ctrl_c_while_a_program_starts_is_one_line(program, delay, tmp_path):
    _assert_one_line_130(program, *_ctrl_c(program, delay, tmp_path))


@pytest.mark.slow
@pytest.mark.parametrize("delay", DELAYS)
@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_ctrl_c_at_any_moment_is_one_line(program, delay, tmp_path):
    if program in ("bench_node", "soak"):
        pytest.importorskip("rclpy")
    _assert_one_line_130(program, *_ctrl_c(program, delay, tmp_path))
