"""The one command runner (matte_ros.core.cli): what a command raises becomes one line on stderr and an
exit code, signals become exit codes (or, for a ROS executable, a stop and exit 0), ``MATTE_DEBUG=1``
shows the traceback; and every console script and ``python -m training`` command is run by it."""
import ast
import importlib
import os
import re
import signal
import subprocess
import sys
import time

import pytest

import training.__main__ as training_main
from matte_ros.core.cli import Command, Failure, Terminated, run_cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch):
    monkeypatch.delenv("MATTE_DEBUG", raising=False)


def _raising(err):
    def body():
        raise err
    return body


@pytest.mark.parametrize("err, code, line", [
    (ValueError("--size must be positive\nsecond line"), 2, "prog: error: --size must be positive"),
    (FileNotFoundError(2, "No such file or directory", "/x/y.pth"), 2,
     "prog: error: No such file or directory: /x/y.pth"),
    (Failure("the export differs"), 1, "prog: error: the export differs"),
    (KeyboardInterrupt(), 130, "prog: interrupted"),
    (KeyboardInterrupt("out/ is partial"), 130, "prog: interrupted; out/ is partial"),
    (Terminated("the children were stopped"), 143, "prog: terminated (SIGTERM); the children were stopped"),
])
def test_what_a_command_raises_is_one_line_and_a_code(err, code, line, capsys):
    assert run_cli("prog", _raising(err)) == code
    out, got = capsys.readouterr()
    assert (out, got) == ("", line + "\n")


def test_a_command_returns_its_code_and_other_exceptions_go_through(capsys):
    assert run_cli("prog", lambda: None) == 0 and run_cli("prog", lambda: 3) == 3
    with pytest.raises(ZeroDivisionError):           # a bug: its traceback, not a polite line
        run_cli("prog", lambda: 1 / 0)
    with pytest.raises(SystemExit):                  # argparse's --help and usage errors
        run_cli("prog", _raising(SystemExit(2)))
    assert capsys.readouterr().err == ""


def test_matte_debug_lets_the_exception_through(monkeypatch, capsys):
    monkeypatch.setenv("MATTE_DEBUG", "1")
    for err in (ValueError("bad"), Failure("failed"), KeyboardInterrupt()):
        with pytest.raises(type(err)):
            run_cli("prog", _raising(err))
    assert capsys.readouterr().err == ""


def test_a_command_is_loaded_by_name_and_given_its_arguments(monkeypatch, capsys):
    import training.synth_cli
    seen = []
    monkeypatch.setattr(training.synth_cli, "main", lambda argv: seen.append(argv) or 4)
    assert Command("p", "training.synth_cli:main").run(["--x"]) == 4 and seen == [["--x"]]
    with pytest.raises(ValueError, match="module:function"):
        Command("p", "training.synth_cli.main")
    with pytest.raises(ValueError, match="cannot also"):
        Command("p", "a:b", ros=True, sigterm=True)


def test_the_previous_signal_handlers_come_back(monkeypatch):
    import training.synth_cli
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    during = {}

    def look(argv, stop=None):
        during.update({s: signal.getsignal(s) for s in before})
        return 0
    monkeypatch.setattr(training.synth_cli, "main", look)
    for kind in ({"ros": True}, {"sigterm": True}):
        assert Command("p", "training.synth_cli:main", **kind).run([]) == 0
        assert during[signal.SIGTERM] is not before[signal.SIGTERM]
        assert {s: signal.getsignal(s) for s in before} == before


COMMANDS = '''
import os, sys, time
from matte_ros.core.cli import Command, Failure
if os.environ.get("SLOW_IMPORT"):
    print("importing", flush=True)
    time.sleep(float(os.environ["SLOW_IMPORT"]))

def work(argv, stop=None):
    print("ready", flush=True)
    if stop is not None:
        stop.wait(30)
        print("stopped cleanly", flush=True)
        return 0
    try:
        time.sleep(30)
    finally:
        print("cleaned up", flush=True)
    return 0

def fail(argv):
    raise Failure("the work did not succeed")
'''


def _child(tmp_path, kind: str, target: str = "work", env=None):
    (tmp_path / "cmds.py").write_text(COMMANDS)
    code = f"from matte_ros.core.cli import Command; Command('prog', 'cmds:{target}', {kind})()"
    return subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, PYTHONPATH=f"{tmp_path}:{REPO}", **(env or {})))


def _signal_when(p, word: str, sig) -> tuple:
    assert p.stdout.readline().strip() == word
    time.sleep(0.1)
    p.send_signal(sig)
    out, err = p.communicate(timeout=30)
    return p.returncode, out, err


@pytest.mark.parametrize("kind, sig, code, out, err", [
    ("", signal.SIGINT, 130, "cleaned up\n", "prog: interrupted\n"),
    ("sigterm=True", signal.SIGTERM, 143, "cleaned up\n", "prog: terminated (SIGTERM)\n"),
    ("ros=True", signal.SIGINT, 0, "stopped cleanly\n", ""),         # ros2 launch: anything else is a crash
    ("ros=True", signal.SIGTERM, 0, "stopped cleanly\n", ""),
])
def test_signals_become_exit_codes_or_a_clean_stop(tmp_path, kind, sig, code, out, err):
    assert _signal_when(_child(tmp_path, kind), "ready", sig) == (code, out, err)


def test_ctrl_c_while_the_command_loads_ends_at_once(tmp_path):
    p = _child(tmp_path, "", env={"SLOW_IMPORT": "30"})
    start = time.monotonic()
    assert _signal_when(p, "importing", signal.SIGINT) == (130, "", "prog: interrupted\n")
    assert time.monotonic() - start < 10                              # at once, not after the 30 s import


def test_a_ros_command_stopped_while_it_loads_exits_0_without_starting(tmp_path):
    p = _child(tmp_path, "ros=True", env={"SLOW_IMPORT": "1"})
    assert _signal_when(p, "importing", signal.SIGINT) == (0, "", "")      # its main never ran


def test_a_failure_is_exit_1_and_debug_shows_the_traceback(tmp_path):
    p = _child(tmp_path, "", "fail")
    assert (p.communicate(timeout=30)[1], p.returncode) == ("prog: error: the work did not succeed\n", 1)
    p = _child(tmp_path, "", "fail", env={"MATTE_DEBUG": "1"})
    err = p.communicate(timeout=30)[1]
    assert p.returncode == 1 and err.startswith("Traceback") and "Failure: the work did not succeed" in err


def _console_scripts():
    tree = ast.parse(open(os.path.join(REPO, "setup.py")).read())
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "setup")
    entry = next(k.value for k in call.keywords if k.arg == "entry_points")
    scripts = ast.literal_eval(entry)["console_scripts"]
    return dict(re.fullmatch(r"(\S+) = (\S+)", s).groups() for s in scripts)


def _resolve(target: str):
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def test_every_console_script_is_a_command_of_the_runner():
    scripts = _console_scripts()
    assert set(scripts) >= {"matte_node", "fake_camera", "capture_once", "matte_demo", "matte_offline"}
    for name, target in scripts.items():
        command = _resolve(target)
        assert isinstance(command, Command) and command.prog == name, name
        assert callable(_resolve(command.target)), name
        # the ROS executables stop with exit 0 (ros2 launch calls anything else a crash)
        assert command.ros == (target.startswith("matte_ros.ros.")), name


def test_every_training_command_is_a_command_of_the_runner(capsys):
    for name, command in training_main.COMMANDS.items():
        assert isinstance(command, Command) and command.prog == f"python -m training {name}"
        assert callable(_resolve(command.target)) and command.summary
    modules = [f[:-3] for f in os.listdir(os.path.join(REPO, "training")) if f.endswith(".py")]
    run_as_main = [m for m in modules
                   if 'if __name__ == "__main__":' in open(os.path.join(REPO, "training", m + ".py")).read()]
    assert "average" in run_as_main and "fine_crops" in run_as_main
    for m in run_as_main:
        if m == "__main__":
            continue
        command = importlib.import_module(f"training.{m}").COMMAND          # python -m training.<m>
        assert isinstance(command, Command) and command.target == f"training.{m}:main", m
    assert training_main.main(["nonsense"]) == 2
    assert capsys.readouterr().err == ("python -m training: error: unknown command 'nonsense'; the commands: "
                                       "train, eval, export, synth (see --help)\n")


def test_no_program_prints_its_own_errors_or_ends_the_process_itself():
    """Only core/cli.py prints the error line, ends the process (os._exit) or handles SIGTERM."""
    offenders = []
    pattern = re.compile(r"""print\(f?["']error:|os\._exit\(|signal\.signal\(signal\.SIGTERM""")
    for top in ("matte_ros", "training"):
        for folder, _, files in os.walk(os.path.join(REPO, top)):
            for f in files:
                path = os.path.join(folder, f)
                if f.endswith(".py") and os.path.relpath(path, REPO) != os.path.join("matte_ros", "core", "cli.py"):
                    offenders += [f"{path}: {line.strip()}" for line in open(path) if pattern.search(line)]
    assert offenders == []
