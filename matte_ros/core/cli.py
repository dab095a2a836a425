"""How the package's command-line programs end: a wrong input is one line on stderr and exit code 2,
Ctrl-C (at any moment, imports included: :func:`exit_on_interrupt` while libraries load, then
:func:`run_cli`) a short note and 130. ``MATTE_DEBUG=1`` shows the traceback."""
import argparse
import contextlib
import math
import os
import signal
import sys
import threading
from typing import Any, Callable, Iterator, Optional, Tuple, Type

__all__ = ["DEBUG_ENV", "EXIT_USAGE", "EXIT_INTERRUPTED", "OneLineParser", "number", "debug_enabled",
           "describe_error", "exit_on_interrupt", "run_cli"]

DEBUG_ENV = "MATTE_DEBUG"
EXIT_USAGE = 2            # wrong input (as argparse exits)
EXIT_INTERRUPTED = 130    # 128 + SIGINT, what shells report for Ctrl-C


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line, ``<prog>: error: <what> (see --help)``, exit code 2
    (argparse's own prints the whole usage first, dozens of lines for a long option list)."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def number(kind: type = float, low: Optional[float] = None, high: Optional[float] = None,
           above: Optional[float] = None) -> Callable[[str], Any]:
    """An argparse ``type``: a finite ``kind`` (int or float) with ``low <= value <= high`` and
    ``value > above`` (each bound optional). Anything else is a usage error naming the flag, at parse
    time: ``argument --tolerance: must be at least 0, got -1``."""
    if above is not None:
        want = f"greater than {above:g}" + ("" if high is None else f" and at most {high:g}")
    elif low is not None and high is not None:
        want = f"in {low:g}..{high:g}"
    else:
        want = f"at least {low:g}" if low is not None else f"at most {high:g}" if high is not None else ""

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


def run_cli(prog: str, body: Callable[[], Optional[int]],
            errors: Tuple[Type[BaseException], ...] = (ValueError, OSError)) -> int:
    """Exit code of ``body()``; ``errors`` become ``<prog>: error: <one line>`` and 2, Ctrl-C 130."""
    try:
        return int(body() or 0)
    except KeyboardInterrupt:
        if debug_enabled():
            raise
        print(f"{prog}: interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except errors as e:
        if debug_enabled():
            raise
        print(f"{prog}: error: {describe_error(e)}", file=sys.stderr, flush=True)
        return EXIT_USAGE


@contextlib.contextmanager
def exit_on_interrupt(prog: str, active: bool = True) -> Iterator[None]:
    """While libraries load: Ctrl-C prints ``<prog>: interrupted`` and ends the process at once with 130.

    A ``KeyboardInterrupt`` raised inside a library's import can be swallowed by the library's own
    error handling (the program then goes on as if nothing happened); nothing needs cleaning up yet,
    so the handler exits instead of raising. Outside the main thread, or unless ``active``, this does
    nothing: a program run as ``python -m MODULE`` guards its own imports with
    ``active=__name__ == "__main__"``, so importing it elsewhere changes no signal handler."""
    if not active or threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if debug_enabled():
            raise KeyboardInterrupt
        os.write(2, f"{prog}: interrupted\n".encode())
        os._exit(EXIT_INTERRUPTED)
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
