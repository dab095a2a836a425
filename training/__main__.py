"""``python -m training <command> [options]``: one entry point, one module per command."""
import importlib
import sys

from matte_ros.core.cli import exit_on_interrupt, run_cli

COMMANDS = {
    "train": ("training.train_cli", "train a base, refine or gan model"),
    "eval": ("training.eval_cli", "evaluate a model or the difference-key baseline on a test set"),
    "export": ("training.export_cli", "export a checkpoint to TorchScript or ONNX"),
    "synth": ("training.synth_cli", "generate a synthetic matting dataset"),
}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        lines = [f"  {name:<8}{doc}" for name, (_, doc) in COMMANDS.items()]
        print("usage: python -m training <command> [options]\n\ncommands:\n" + "\n".join(lines))
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    prog = f"python -m training {argv[0]}"
    with exit_on_interrupt(prog):                  # Ctrl-C while torch loads exits as quietly as later on
        module = importlib.import_module(COMMANDS[argv[0]][0])
    return run_cli(prog, lambda: module.main(argv[1:]))


if __name__ == "__main__":
    sys.exit(main())
