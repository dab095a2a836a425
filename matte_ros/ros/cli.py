"""Command-line checks shared by the package's ROS 2 executables, made before rclpy starts.

rclpy ignores arguments it does not know outside ``--ros-args`` and reports a missing params file
or an unknown ROS flag as a multi-line RCL error with source locations. :func:`command_line_problem`
finds those mistakes first and says what is wrong in one sentence; ``main.run_node`` raises it, and
the runner prints ``<name>: error: cannot start: <reason>`` and exits 2, the usual code of a
command-line error.
"""
from typing import List, Optional, Sequence

from matte_ros.core.files import read_yaml_mapping

__all__ = ["command_line_problem", "one_line"]

# rcl's ROS arguments (ros2/rcl arguments.h): flags that take a value, flags that stand alone
_WITH_VALUE = ("-r", "--remap", "-p", "--param", "--params-file", "-e", "--enclave", "--log-level",
               "--log-config-file", "--log-file-name")
_ALONE = tuple(f"--{onoff}-{what}-logs" for onoff in ("enable", "disable") for what in ("rosout", "stdout",
                                                                                          "external-lib"))


def one_line(text: object) -> str:
    """``text`` with every run of whitespace (newlines included) made one space."""
    return " ".join(str(text).split())


def _params_file_problem(path: str) -> Optional[str]:
    try:
        read_yaml_mapping(path, "params file", "a mapping of node names to ros__parameters")
    except ValueError as e:
        return str(e)
    return None


def _ros_args_problem(tokens: Sequence[str]) -> Optional[str]:
    """Problems in the tokens of one ``--ros-args`` section."""
    i = 0
    while i < len(tokens):
        flag = tokens[i]
        if flag in _ALONE:
            i += 1
            continue
        if flag not in _WITH_VALUE:
            return f"unknown ROS argument {flag!r} after --ros-args"
        if i + 1 >= len(tokens) or tokens[i + 1] == "--":
            return f"ROS argument {flag} needs a value"
        value = tokens[i + 1]
        if flag in ("-p", "--param", "-r", "--remap") and ":=" not in value:
            return f"ROS argument {flag} expects NAME:=VALUE, got {value!r}"
        if flag == "--params-file":
            problem = _params_file_problem(value)
            if problem is not None:
                return problem
        i += 2
    return None


def command_line_problem(argv: Sequence[str]) -> Optional[str]:
    """Why ``argv`` (program name first, as sys.argv) is not a valid command line of an executable
    that takes only ROS arguments, or None. Checks: no arguments outside ``--ros-args`` sections,
    known ROS flags with their values, params files that exist and hold YAML mappings."""
    args = list(argv[1:])
    stray: List[str] = []
    i = 0
    while i < len(args):
        if args[i] != "--ros-args":
            stray.append(args[i])
            i += 1
            continue
        end = args.index("--", i + 1) if "--" in args[i + 1:] else len(args)
        problem = _ros_args_problem(args[i + 1:end])
        if problem is not None:
            return problem
        i = end + 1
    if stray:
        return (f"unknown argument{'s' if len(stray) > 1 else ''} {' '.join(stray)}; this program takes only ROS "
                "arguments, e.g. --ros-args -p name:=value --params-file FILE -r image:=/camera/image_raw")
    return None
