"""``python -m training <command> [options]``: one entry point, one module per command, each run by
the package's one runner (:class:`matte_ros.core.cli.Command`: errors one line, Ctrl-C 130)."""
import sys
from typing import List

from matte_ros.core.cli import EXIT_USAGE, Command, run_cli

__all__ = ["COMMANDS", "PROG", "main"]

PROG = "python -m training"
COMMANDS = {name: Command(f"{PROG} {name}", target, summary) for name, target, summary in (
    ("train", "training.train_cli:main", "train a base, refine or gan model"),
    ("eval", "training.eval_cli:main", "evaluate a model or the difference-key baseline on a test set"),
    ("export", "training.export_cli:main", "export a checkpoint to TorchScript or ONNX"),
    ("synth", "training.synth_cli:main", "generate a synthetic matting dataset"),
)}


def _usage(argv: List[str]) -> int:
    """The list of commands: for ``-h`` (exit 0) or no command (exit 2); an unknown command is an error."""
    if argv and argv[0] not in ("-h", "--help"):
        raise ValueError(f"unknown command {argv[0]!r}; the commands: {', '.join(COMMANDS)} (see --help)")
    lines = [f"  {name:<8}{command.summary}" for name, command in COMMANDS.items()]
    print(f"usage: {PROG} <command> [options]\n\ncommands:\n" + "\n".join(lines))
    return 0 if argv else EXIT_USAGE


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in COMMANDS:
        return COMMANDS[argv[0]].run(argv[1:])
    return run_cli(PROG, lambda: _usage(argv))


if __name__ == "__main__":
    sys.exit(main())
