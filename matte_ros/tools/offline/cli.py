"""matte_offline: matte an image folder, a video file or a rosbag2 recording with the engine's fast path.

    matte_offline frames/ --plate empty.png -o out/             # PNG sequences out/alpha/, out/foreground/
    matte_offline clip.mp4 --plate-frames 30 -o out/ --video-codec prores --output-types alpha,fgr,com
    matte_offline recording/ --topic /camera/image --plate-time 0:2 -o matted_bag   # a new rosbag2
    python -m matte_ros.tools.offline --help

Exit status: 0 done, every output complete and in place; 130 interrupted (Ctrl-C; the outputs of
the frames done are complete files under .partial names); 2 error (one line on stderr; nothing new
in place, and no input is ever written). The options are in options.py, the run in job.py.

This module imports only the standard library and core/cli.py, so that Ctrl-C while the rest loads
(torch, OpenCV, PyAV) already ends in one line and exit status 130; the package's runner (``COMMAND``,
the console script) prints errors and maps the exit codes.
"""
from typing import List, Optional

from matte_ros.core.cli import Command, exit_on_interrupt

__all__ = ["COMMAND", "PROG", "main", "offline"]

PROG = "matte_offline"


def offline(argv: Optional[List[str]] = None) -> int:
    """The command: parse ``argv`` and matte (errors raise; the run's own exit status otherwise)."""
    with exit_on_interrupt(PROG):            # Ctrl-C while torch loads: one line, 130
        from matte_ros.core.host_memory import keep_freed_memory
        keep_freed_memory()                  # before any thread starts (see host_memory.py)
        from .job import matte
        from .options import build_parser
        args = build_parser().parse_args(argv)
    return matte(args)


COMMAND = Command(PROG, "matte_ros.tools.offline.cli:offline", "matte a folder, a video or a rosbag2 recording")


def main(argv: Optional[List[str]] = None) -> int:
    """The exit code of matte_offline with ``argv`` (the process's command line when None)."""
    return COMMAND.run(argv)


if __name__ == "__main__":
    COMMAND()
