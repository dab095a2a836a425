"""The packages a GPU machine lacks, one ``name==version`` a line, for ``pip download`` (.ci/gpu-wheels).

    .venv/bin/python .ci/gpu_wheel_list.py requirements.txt .ci/gpu-machine.txt [--python-version 3.12] [--all]
        [--only NAME...]

The packages of requirements.txt and everything they depend on, less what the machine holds (the
packages of gpu-machine.txt and everything they depend on), the development tools and, unless
``--all``, the packages that no GPU run uses (``NOT_ON_GPU``: they would not fit); with ``--only``,
just the named packages of requirements.txt and their dependencies (``--only kornia``: what the GPU
training recipe needs, without the ROS wheels, to leave room for its photographs). Dependencies
are read from this environment's installed metadata (``make venv``), their markers evaluated for the
machine's Python; each is pinned to the version requirements.txt names, else to the version
installed here. A dependency this Python's markers left out (so not installed here) keeps its
requirement's specifier (pip picks the newest version that meets it) and is named on stderr.
"""
import argparse
import sys
from importlib import metadata
from typing import Dict, Iterable, List, Set, Tuple

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

DEV_ONLY = {"ruff"}         # the linter: CI runs it, the GPU machine does not
# Video and rosbag2 files of the offline tools (PyAV 35 MB, rosbags) and the closed-form matting
# baseline of the evaluation (PyMatting, with numba and llvmlite 62 MB): neither gpu-check nor the GPU
# training recipe runs them, and with them the wheels alone are over the 64 MiB that may travel.
NOT_ON_GPU = {"av", "pymatting", "rosbags"}


def read_requirements(path: str) -> List[Requirement]:
    with open(path) as f:
        return [Requirement(line.split("#")[0].strip()) for line in f if line.split("#")[0].strip()]


def closure(roots: Iterable[Requirement], python: str) -> Tuple[Dict[str, str], Dict[str, Requirement]]:
    """(name -> installed version, name -> requirement of those not installed here) for ``roots``
    and their dependencies, markers evaluated for Python ``python`` on x86-64 Linux."""
    env = {"python_version": python, "python_full_version": f"{python}.0", "sys_platform": "linux",
           "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
           "implementation_name": "cpython", "platform_python_implementation": "CPython"}
    found: Dict[str, str] = {}
    absent: Dict[str, Requirement] = {}
    todo = list(roots)
    seen: Set[Tuple[str, frozenset]] = set()
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        key = (name, frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            absent.setdefault(name, req)
            continue
        found[name] = dist.version
        for line in dist.requires or []:
            dep = Requirement(line)
            wanted = dep.marker is None or any(dep.marker.evaluate(dict(env, extra=e)) for e in req.extras | {""})
            if wanted:
                todo.append(dep)
    return found, absent


def wheel_list(requirements: List[Requirement], machine: List[Requirement], python: str,
               leave_out: Set[str] = DEV_ONLY | NOT_ON_GPU) -> List[str]:
    """``name==version`` (or ``name<specifier>``) of every package to bring, sorted by name: those of
    ``requirements`` (less ``leave_out``) and their dependencies that ``machine`` does not hold."""
    have, _ = closure(machine, python)
    pinned = {canonicalize_name(r.name): str(r.specifier) for r in requirements}
    roots = [r for r in requirements if canonicalize_name(r.name) not in set(have) | leave_out]
    need, absent = closure(roots, python)
    lines = [f"{n}{pinned.get(n) or '==' + v}" for n, v in need.items() if n not in have]
    for name, req in absent.items():
        if name not in have:
            print(f"gpu_wheel_list: {name} is not installed here (its marker is false for this Python): "
                  f"{name}{req.specifier}", file=sys.stderr)
            lines.append(f"{name}{req.specifier}")
    return sorted(lines)


def main(argv: List[str] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("requirements")
    p.add_argument("machine", help="the packages the machine holds, one a line")
    p.add_argument("--python-version", default="3.12", help="the machine's Python (default 3.12)")
    p.add_argument("--all", action="store_true", help=f"also {', '.join(sorted(NOT_ON_GPU))} (too large to travel)")
    p.add_argument("--only", nargs="+", metavar="NAME", default=None,
                   help="only these packages of the requirements and their dependencies (the GPU training "
                        "recipe: --only kornia)")
    args = p.parse_args(argv)
    requirements = read_requirements(args.requirements)
    if args.only is not None:
        wanted = {canonicalize_name(n) for n in args.only}
        unknown = wanted - {canonicalize_name(r.name) for r in requirements}
        if unknown:
            p.error(f"--only: not in {args.requirements}: {', '.join(sorted(unknown))}")
        requirements = [r for r in requirements if canonicalize_name(r.name) in wanted]
    for line in wheel_list(requirements, read_requirements(args.machine),
                           args.python_version, DEV_ONLY if args.all else DEV_ONLY | NOT_ON_GPU):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
