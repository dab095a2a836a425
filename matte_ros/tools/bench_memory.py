"""What the matting node's process holds: the import footprint of each dependency, then the engine and
its buffers per camera.

    python -m matte_ros.tools.bench_memory [--width 640 --height 480] [--cameras 2] [--threads 1]

Each step runs in a fresh ``python`` that imports the modules of the steps before it too, and prints
its resident memory (VmRSS) at the end: the difference to the step before is that module's share.
Then, in one process: the engine loaded from the packaged weights (``MattingEngine``, CPU), the first
camera's plate and three frames matted at the given size, and each further camera's (an engine of its
own plates, ``with_own_plates``, as the node's ``cameras`` parameter makes).
"""
import json
import os
import subprocess
import sys
from typing import List, Optional, Tuple

from matte_ros.core.cli import OneLineParser, run_cli

__all__ = ["IMPORTS", "import_footprint", "engine_footprint", "main"]

# (label, import statement), cumulative: what the node imports, in the order it loads it
IMPORTS = (("python", "pass"), ("numpy", "import numpy"), ("cv2", "import cv2"), ("torch", "import torch"),
           ("rclpy + messages", "import rclpy, sensor_msgs.msg, diagnostic_msgs.msg, std_srvs.srv"),
           ("matte_ros.core.engine", "import matte_ros.core.engine"),
           ("matte_ros.ros.node", "import matte_ros.ros.node"))

_RSS = ("def rss():\n    for line in open('/proc/self/status'):\n        if line.startswith('VmRSS:'):\n"
        "            return int(line.split()[1]) / 1024\n")

_ENGINE = _RSS + """
import json, sys, torch
torch.set_num_threads({threads})
from matte_ros.core.engine import MattingEngine
from matte_ros.core.synthetic import SceneSequence
steps = [("imports", rss())]
engine = MattingEngine(device="cpu")
steps.append(("engine loaded (packaged weights)", rss()))
for i in range({cameras}):
    scene = SceneSequence({height}, {width}, seed=i)
    cam = engine.with_own_plates()
    cam.set_background(scene.background())
    for n in range(3):
        cam.process(scene.frame(n)[0])
    steps.append((f"camera {{i + 1}}: plate and 3 frames at {width}x{height}", rss()))
print(json.dumps(steps))
"""


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise OSError(f"the measuring process failed: {out.stderr.strip().splitlines()[-1:]}")
    return out.stdout


def import_footprint() -> List[Tuple[str, float]]:
    """(label, resident MiB after importing it and every module before it) per IMPORTS step."""
    rows = []
    for i, (label, _) in enumerate(IMPORTS):
        code = "\n".join(stmt for _, stmt in IMPORTS[:i + 1]) + "\n" + _RSS + "print(rss())\n"
        rows.append((label, float(_run(code).strip().splitlines()[-1])))
    return rows


def engine_footprint(width: int, height: int, cameras: int, threads: int) -> List[Tuple[str, float]]:
    """(step, resident MiB) for the engine and each camera's plate and first frames (see the module doc)."""
    out = _run(_ENGINE.format(width=width, height=height, cameras=cameras, threads=threads))
    return [(label, float(mib)) for label, mib in json.loads(out.strip().splitlines()[-1])]


def table(rows: List[Tuple[str, float]]) -> List[str]:
    lines, before = ["| step | resident MiB | added MiB |", "|---|---|---|"], None
    for label, mib in rows:
        lines.append(f"| {label} | {mib:.0f} | {'' if before is None else f'{mib - before:+.0f}'} |")
        before = mib
    return lines


def main(argv: Optional[List[str]] = None) -> int:
    p = OneLineParser(prog="python -m matte_ros.tools.bench_memory", description=__doc__.split("\n\n")[0])
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--cameras", type=int, default=2, help="cameras whose plates and buffers are added (1 .. 16)")
    p.add_argument("--threads", type=int, default=1, help="torch threads of the engine's process")
    args = p.parse_args(argv)
    if not (32 <= args.width <= 7680 and 32 <= args.height <= 4320 and 1 <= args.cameras <= 16
            and 1 <= args.threads <= 1024):
        p.error("--width must be 32..7680, --height 32..4320, --cameras 1..16 and --threads >= 1")

    def bench() -> int:
        os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
        print("\n".join(table(import_footprint())), flush=True)
        print()
        print("\n".join(table(engine_footprint(args.width, args.height, args.cameras, args.threads))), flush=True)
        return 0
    return run_cli("bench_memory", bench)


if __name__ == "__main__":
    sys.exit(main())
