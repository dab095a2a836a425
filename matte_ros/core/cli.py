"""The one way the package's programs run and end (as ros2cli's dispatcher runs its verbs).

A command is a function ``main(argv)`` that returns its exit code (None: 0) or raises; it prints its
results, never its errors. A :class:`Command` registers one (setup.py's console scripts name
Commands, ``python -m training`` dispatches to them) and :func:`run_cli` is the only place that turns
what a command raised into one line on stderr and an exit code:

=========================================  ==========================================  ====
``ValueError``, ``OSError`` (wrong input)   ``<prog>: error: <what>``                    2
:class:`Failure` (the work did not succeed) ``<prog>: error: <what>``                    1
``KeyboardInterrupt`` (Ctrl-C)              ``<prog>: interrupted[; <detail>]``          130
:class:`Terminated` (``Command(sigterm=)``) ``<prog>: terminated (SIGTERM)[; <detail>]`` 143
=========================================  ==========================================  ====

Usage errors end the same way from :class:`OneLineParser` (argparse exits 2 itself). ``MATTE_DEBUG=1``
lets the exception through, with its traceback. Ctrl-C while the command's module loads (torch,
rclpy) ends the process at once with 130 (:func:`exit_on_interrupt`). A ROS executable
(``Command(ros=True)``) is the exception to the signal rows: ``ros2 launch`` reports any exit code but
0 as a crash, so SIGINT and SIGTERM only set the ``stop`` event the command is given; it shuts down in
order and returns 0 however many signals arrive.
"""
import argparse
import contextlib
import dataclasses
import importlib
import math
import os
import signal
import sys
import threading
from typing import Any, Callable, Dict, Iterator, List, NoReturn, Optional

__all__ = ["DEBUG_ENV", "EXIT_FAILURE", "EXIT_USAGE", "EXIT_INTERRUPTED", "EXIT_TERMINATED", "Command", "Failure",
           "OneLineParser", "Terminated", "number", "debug_enabled", "describe_error", "exit_on_interrupt",
           "run_cli"]

DEBUG_ENV = "MATTE_DEBUG"
EXIT_FAILURE = 1          # the command ran and its work did not succeed
EXIT_USAGE = 2            # wrong input (as argparse exits)
EXIT_INTERRUPTED = 130    # 128 + SIGINT, what shells report for Ctrl-C
EXIT_TERMINATED = 143     # 128 + SIGTERM


class Failure(Exception):
    """The command ran and its work did not succeed (a check failed, a service did not answer): exit 1.
    Wrong input is a ``ValueError`` (exit 2)."""


class Terminated(BaseException):
    """SIGTERM in a command registered with ``sigterm=True``: raised in the main thread, as Ctrl-C raises
    ``KeyboardInterrupt``, so its ``finally`` blocks run; exit 143. An optional message is the detail."""


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line, ``<prog>: error: <what> (see --help)``, exit code 2
    (argparse's own prints the whole usage first, dozens of lines for a long option list)."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def number(kind: type = float, low: Optional[float] = None, high: Optional[float] = None,
           above: Optional[float] = None, check: Optional[Callable[[Any], Optional[str]]] = None
           ) -> Callable[[str], Any]:
    """An argparse ``type``: a finite ``kind`` (int or float) with ``low <= value <= high`` and
    ``value > above`` (each bound optional), and no problem said by ``check(value)`` (a message, or
    None). Anything else is a usage error naming the flag, at parse time: ``argument --tolerance:
    must be at least 0, got -1``."""
    def show(v: float) -> str:
        return str(int(v)) if float(v).is_integer() else f"{v:g}"

    if above is not None:
        want = f"greater than {show(above)}" + ("" if high is None else f" and at most {show(high)}")
    elif low is not None and high is not None:
        want = f"in {show(low)}..{show(high)}"
    else:
        want = f"at least {show(low)}" if low is not None else f"at most {show(high)}" if high is not None else ""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {kind.__name__} value: {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        if ((low is not None and value < low) or (high is not None and value > high)
                or (above is not None and value <= above)):
            raise argparse.ArgumentTypeError(f"must be {want}, got {text}")
        problem = check(value) if check is not None else None
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value
    parse.__name__ = kind.__name__
    return parse


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")


def describe_error(err: BaseException) -> str:
    """One line for the user: the message (its first line), or for a file error its reason and path."""
    if isinstance(err, OSError) and err.strerror:
        return f"{err.strerror}: {err.filename}" if err.filename else err.strerror
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _detail(err: BaseException) -> str:
    text = str(err).strip()
    return f"; {text.splitlines()[0]}" if text else ""


def run_cli(prog: str, body: Callable[[], Optional[int]]) -> int:
    """Exit code of ``body()``, what it raised made one line on stderr and its code (the table above).
    ``SystemExit`` (argparse: ``--help``, a usage error) goes through."""
    try:
        return int(body() or 0)
    except (KeyboardInterrupt, Terminated, Failure, ValueError, OSError) as e:
        if debug_enabled():
            raise
        if isinstance(e, KeyboardInterrupt):
            line, code = f"interrupted{_detail(e)}", EXIT_INTERRUPTED
        elif isinstance(e, Terminated):
            line, code = f"terminated (SIGTERM){_detail(e)}", EXIT_TERMINATED
        else:
            line, code = f"error: {describe_error(e)}", EXIT_FAILURE if isinstance(e, Failure) else EXIT_USAGE
        print(f"{prog}: {line}", file=sys.stderr, flush=True)
        return code


@contextlib.contextmanager
def _handlers(handlers: Dict[int, Callable]) -> Iterator[None]:
    """``signal.signal`` for each entry while inside, the previous handlers back after; outside the main
    thread (where Python allows no handler) nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def exit_on_interrupt(prog: str, active: bool = True) -> Iterator[None]:
    """While libraries load: Ctrl-C prints ``<prog>: interrupted`` and ends the process at once with 130.

    A ``KeyboardInterrupt`` raised inside a library's import can be swallowed by the library's own
    error handling (the program then goes on as if nothing happened); nothing needs cleaning up yet,
    so the handler exits instead of raising. Outside the main thread, or unless ``active``, this does
    nothing: a program run as ``python -m MODULE`` guards its own imports with
    ``active=__name__ == "__main__"``, so importing it elsewhere changes no signal handler."""
    def handler(signum, frame):
        if debug_enabled():
            raise KeyboardInterrupt
        os.write(2, f"{prog}: interrupted\n".encode())
        os._exit(EXIT_INTERRUPTED)
    with _handlers({signal.SIGINT: handler} if active else {}):
        yield


@dataclasses.dataclass(frozen=True)
class Command:
    """A program: ``prog`` names it in its messages; ``target`` (``"module:function"``) is its
    ``main(argv)``, imported when it runs. ``ros``: a ROS executable, whose ``main(argv, stop=event)``
    is given the event that SIGINT and SIGTERM set (from before its module loads), and which exits 0
    when stopped. ``sigterm``: SIGTERM raises :class:`Terminated` in the main thread (exit 143).

    ``run(argv)`` returns the exit code (tests, dispatchers); calling the Command runs it as the
    process (a console script in setup.py, a ``python -m`` module's ``__main__`` block) and exits."""

    prog: str
    target: str
    summary: str = ""
    ros: bool = False
    sigterm: bool = False

    def __post_init__(self):
        if self.ros and self.sigterm:
            raise ValueError(f"{self.prog}: a ROS command stops on SIGTERM; it cannot also raise Terminated")
        if self.target.count(":") != 1:
            raise ValueError(f"{self.prog}: target must be 'module:function', got {self.target!r}")

    def run(self, argv: Optional[List[str]] = None) -> int:
        stop = threading.Event()

        def on_stop(signum, frame):
            stop.set()

        def on_sigterm(signum, frame):
            raise Terminated()
        handlers = ({signal.SIGINT: on_stop, signal.SIGTERM: on_stop} if self.ros
                    else {signal.SIGTERM: on_sigterm} if self.sigterm else {})

        def body() -> Optional[int]:
            with exit_on_interrupt(self.prog, active=not self.ros):     # ROS: a signal meanwhile is a stop
                main = _load(self.target)
            if not self.ros:
                return main(argv)
            return 0 if stop.is_set() else main(argv, stop=stop)       # stopped while loading: nothing to undo
        with _handlers(handlers):
            return run_cli(self.prog, body)

    def run_as_main(self) -> NoReturn:
        """Run as ``python -m`` runs a module: with the process's command line, ending through the
        interpreter's own exit. A stopped ROS executable ignores further SIGINT / SIGTERM from then on
        (a terminal's Ctrl-C reaches it twice through ``ros2 launch``): the interpreter restores the
        default dispositions while it shuts down, and a second signal then would kill it half-way."""
        code = self.run()
        if self.ros and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_IGN)
        raise SystemExit(code)

    def __call__(self) -> NoReturn:
        """Run with the process's command line and end the process with the exit code. A ROS
        executable ends at once (``os._exit``, output flushed) once its ``main`` has shut everything
        down: the interpreter's teardown of torch and the DDS libraries takes seconds on a loaded
        machine, more than the 5 s ``ros2 launch`` waits before escalating a Ctrl-C to SIGTERM."""
        code = self.run()
        if self.ros:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        sys.exit(code)


def _load(target: str) -> Callable[..., Optional[int]]:
    """The function ``module:function``; a module run as ``python -m module`` is already loaded as
    ``__main__`` and is not imported a second time."""
    name, function = target.split(":")
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    module = main if spec is not None and spec.name == name else importlib.import_module(name)
    return getattr(module, function)
