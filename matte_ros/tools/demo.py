"""The demo (``make demo``, console script ``matte_demo``): the fake camera and the matting node in
their own processes, the plate captured automatically, a fixed number of frames matted and scored.

    python -m matte_ros.tools.demo [--model PATH] [--width 640 --height 480] [--rate 10] [--frames 60]
                             [--out out/demo] [--domain-id N] [-p NAME:=VALUE ...]

Steps: start ``matte_node`` (the packaged default model unless ``--model``; ``-p`` passes node
parameters) and wait for its capture service; start ``fake_camera`` (empty scene for
``--empty-seconds``, then a person walking) and call ``~/capture_background`` on its empty frames;
then join ``/matte/alpha``, ``/matte/foreground`` and ``/matte/composite`` to the camera's frame and
true alpha by header stamp until ``--frames`` frames showing the person are collected. It writes
alpha, foreground (RGBA cut-out) and composite PNGs of ``--save`` frames, ``contact_sheet.png``
(input, predicted alpha, true alpha, composite per row), ``metrics.json``, and the children's logs
to ``--out``, and prints throughput, latency, drops and SAD / MSE / Grad / Conn against the truth.
Everything runs in a private ROS domain (``--domain-id``, default derived from the process id),
discovery limited to this host. Children are stopped on exit, error, Ctrl-C and SIGTERM; when one
dies, the demo stops with the tail of its log. A weight file that cannot be read stops the demo before
anything starts (exit code 2).

This module reads the command line and imports nothing heavy, so that Ctrl-C at any moment exits
quietly (code 130); the work is in :mod:`matte_ros.tools.demo_run`. Exit codes (the package's runner,
``COMMAND``): 0 done, 1 the run failed (a child died, a timeout), 2 wrong input (options, a weight
file that cannot be read), 130 Ctrl-C, 143 SIGTERM.
"""
import argparse
import os
from typing import Dict, List, Optional, Tuple

from matte_ros.core.cli import Command, OneLineParser, Terminated, exit_on_interrupt

__all__ = ["CAMERA_OPTIONS", "COMMAND", "camera_ranges", "parse_args", "demo", "main"]

# The options passed on to the fake camera's parameters of the same names, checked before anything starts.
CAMERA_OPTIONS = ("width", "height", "rate", "empty_seconds")


def camera_ranges() -> Dict[str, Tuple[float, float]]:
    """The ranges of CAMERA_OPTIONS as the fake camera declares them (matte_ros.ros.camera_settings)."""
    with exit_on_interrupt("matte_demo"):          # it loads OpenCV: Ctrl-C meanwhile exits at once
        from matte_ros.ros.camera_settings import CAMERA_SPECS
    return {name: CAMERA_SPECS[name].range for name in CAMERA_OPTIONS}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = OneLineParser(prog="matte_demo", description=" ".join(__doc__.split("\n\n")[0].split()),   # first paragraph
                      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", default="", help="weight file; '' = the packaged default model")
    p.add_argument("--width", type=int, default=640, help="camera frame width")
    p.add_argument("--height", type=int, default=480, help="camera frame height")
    p.add_argument("--rate", type=float, default=10.0, help="camera frames per second")
    p.add_argument("--empty-seconds", type=float, default=15.0, help="seconds of empty scene (the plate)")
    p.add_argument("--seed", type=int, default=0, help="scene seed of the fake camera")
    p.add_argument("--frames", type=int, default=60, help="matted frames to collect and score (>= 2)")
    p.add_argument("--save", type=int, default=4, help="frames written as PNGs and shown in the contact sheet")
    p.add_argument("--out", default=os.path.join("out", "demo"), help="output folder")
    p.add_argument("--device", default="auto", help="node device: auto, cpu, cuda or cuda:N")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE",
                   help="extra matte_node parameter (repeatable), e.g. -p precision:=bf16")
    p.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID (default: 1 + pid %% 100)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds allowed for start-up and for collecting")
    opts = p.parse_args(argv)
    for name, (lo, hi) in camera_ranges().items():
        value = getattr(opts, name)
        if not lo <= value <= hi:
            p.error(f"--{name.replace('_', '-')} must be in {lo:g}..{hi:g}, got {value:g}")
    if opts.timeout <= 0:
        p.error(f"--timeout must be > 0, got {opts.timeout:g}")
    if opts.frames < 2:
        p.error(f"--frames must be >= 2, got {opts.frames}")
    if opts.save < 1 or opts.save > opts.frames:
        p.error(f"--save must be in 1..--frames, got {opts.save}")
    if opts.domain_id is None:
        opts.domain_id = 1 + os.getpid() % 100
    if not 0 <= opts.domain_id <= 101:
        p.error(f"--domain-id must be in 0..101, got {opts.domain_id}")
    for prm in opts.param:
        if ":=" not in prm:
            p.error(f"-p takes NAME:=VALUE, got {prm!r}")
    return opts


def demo(argv: Optional[List[str]] = None) -> int:
    """The command: read the options, run the demo (children stopped on any exit, SIGTERM included)."""
    opts = parse_args(argv)
    with exit_on_interrupt("matte_demo"):       # rclpy, torch: Ctrl-C while they load exits at once
        from .demo_run import run
    try:
        run(opts)                               # a child that died, a timeout: a Failure (exit 1)
    except Terminated:
        raise Terminated("the camera and the node were stopped") from None
    return 0


COMMAND = Command("matte_demo", "matte_ros.tools.demo:demo", "the fake camera and the node, matted and scored",
                  sigterm=True)


def main(argv: Optional[List[str]] = None) -> int:
    """The exit code of the demo with ``argv`` (the process's command line when None)."""
    return COMMAND.run(argv)


if __name__ == "__main__":
    COMMAND()
