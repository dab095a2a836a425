"""``python -m training eval``: score a model or the difference-key baseline on a test set.

Writes one CSV row per image and prints (and writes next to the CSV) a summary table of the
mean SAD, MSE, Grad, Conn and foreground MSE. Wrong input raises ``ValueError`` / ``OSError`` (the
runner, ``python -m training``, makes it one line and exit 2).
"""
import argparse
import math
import os
import sys
import time
from typing import Optional, Sequence

from matte_ros.core.cli import OneLineParser, number
from matte_ros.core.metrics import mean_scores
from matte_ros.core.model import DEFAULT_WEIGHTS, REFINE_MODES, MattingRefine, load_checkpoint
from matte_ros.core.settings import DEVICES_HELP, MAX_BACKBONE_SCALE, MIN_BACKBONE_SCALE, resolve_device

from .evaluate import (
    OUTPUTS,
    closed_form_predictor,
    difference_key_predictor,
    evaluate,
    format_table,
    list_test_set,
    load_test_set,
    model_predictor,
    write_results,
)
from .synth import PARTIAL_MARKER

__all__ = ["METHODS", "build_parser", "main"]

METHODS = ("model", "difference-key", "closed-form")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m training eval", description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=None, help=f"weight file (default: {DEFAULT_WEIGHTS})")
    p.add_argument("--data", required=True, help="test set: DIR with src/ bgr/ pha/ [fgr/ trimap/] (or DIR/test/), "
                                                 "or DIR with fgr/ pha/ plus --backgrounds")
    p.add_argument("--suite", choices=("stress",), default=None,
                   help="run a built-in benchmark instead of --data: stress (categorised scenes from held-out "
                        "photographs and subject families; options: python -m training eval --suite stress -h)")
    p.add_argument("--backgrounds", default=None, help="backgrounds for a fgr/pha test set (default DIR/backgrounds)")
    p.add_argument("--seed", type=number(int, 0), default=0, help="background assignment of a fgr/pha test set")
    p.add_argument("--method", choices=METHODS, default="model",
                   help="model; difference-key; closed-form (PyMatting on a trimap from the plate difference)")
    p.add_argument("--output", choices=OUTPUTS, default="refine",
                   help="refine: full-resolution output; coarse: MattingRefine's coarse output upsampled "
                        "bilinearly (a MattingBase checkpoint has only its full-size output)")
    p.add_argument("--backbone-scale", type=number(float, MIN_BACKBONE_SCALE, MAX_BACKBONE_SCALE), default=None)
    p.add_argument("--refine-mode", choices=REFINE_MODES, default=None)
    p.add_argument("--refine-sample-pixels", type=number(int, 16), default=None)
    p.add_argument("--refine-threshold", type=number(float, 0, 1), default=None)
    p.add_argument("--device", default="auto", help=DEVICES_HELP)
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default=None,
                   help="run the refine output on the engine's fast path in this precision (default: the "
                        "published forward in fp32)")
    p.add_argument("--limit", type=number(int, 1), default=None, help="evaluate only the first N images")
    p.add_argument("--no-quantize", action="store_true",
                   help="score the float predictions instead of their 8-bit rounding")
    p.add_argument("--out", default="eval.csv", help="per-image CSV (the summary goes to <out>.summary.txt); "
                                                    "both are written only when every image was scored")
    return p


def _combination_problem(args: argparse.Namespace) -> Optional[str]:
    """Why the flags make no sense together (before anything is loaded), or None."""
    if args.method != "model":
        given = [f for f, v in (("--backbone-scale", args.backbone_scale), ("--refine-mode", args.refine_mode),
                                ("--refine-sample-pixels", args.refine_sample_pixels),
                                ("--refine-threshold", args.refine_threshold), ("--precision", args.precision))
                 if v is not None]
        if given:
            return f"{', '.join(given)} apply to --method model only"
    if args.precision is not None and args.output == "coarse":
        return "--precision runs the refine output on the fast path; it does not apply to --output coarse"
    for path in (args.out, args.out + ".summary.txt"):
        if os.path.isdir(path):
            return f"--out {args.out}: {path} is a directory"
    return None


def _partial_dataset(data: str) -> Optional[str]:
    """The folder of ``data`` (it, or the parent of a ``test`` folder) that an unfinished synth run left, or None."""
    data = os.path.normpath(data)
    folders = [data] + ([os.path.dirname(data) or "."] if os.path.basename(data) == "test" else [])
    return next((f for f in folders if os.path.isfile(os.path.join(f, PARTIAL_MARKER))), None)


def _overwrites_input(out: str, inputs: Sequence[Optional[str]]) -> Optional[str]:
    """The input file that the CSV or its summary would replace, or None."""
    targets = {os.path.realpath(p) for p in (out, out + ".summary.txt")}
    return next((p for p in inputs if p and os.path.realpath(p) in targets), None)


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a == "--suite" or a.startswith("--suite=") for a in argv):   # training/stress_cli.py
        from .stress_cli import main as suite_main
        return suite_main(argv)
    args = build_parser().parse_args(argv)
    problem = _combination_problem(args)
    if problem is not None:
        raise ValueError(problem)
    partial = _partial_dataset(args.data)
    if partial is not None:
        raise ValueError(f"{partial} is a partial synthetic dataset (a synth run did not finish; "
                         f"{os.path.join(partial, PARTIAL_MARKER)} names the command that completes it)")
    entries = list_test_set(args.data, args.backgrounds, args.seed)
    count = len(entries[:args.limit])
    clash = _overwrites_input(args.out, [e[k] for e in entries for k in ("src", "bgr", "pha", "fgr", "trimap")]
                              + [args.checkpoint or DEFAULT_WEIGHTS])
    if clash is not None:
        raise ValueError(f"--out {args.out} would overwrite the input {clash}")
    if args.method in ("difference-key", "closed-form"):
        predict, label = {"difference-key": difference_key_predictor,
                          "closed-form": closed_form_predictor}[args.method](), args.method
        if args.checkpoint:
            print(f"note: --method {args.method} uses no checkpoint", file=sys.stderr)
    else:
        path = args.checkpoint or DEFAULT_WEIGHTS
        overrides = {k: v for k, v in (("backbone_scale", args.backbone_scale),
                                       ("refine_mode", args.refine_mode),
                                       ("refine_sample_pixels", args.refine_sample_pixels),
                                       ("refine_threshold", args.refine_threshold)) if v is not None}
        model = load_checkpoint(path, **overrides)
        if overrides and not isinstance(model, MattingRefine):
            raise ValueError("--backbone-scale and --refine-* apply to MattingRefine checkpoints only")
        predict = model_predictor(model, args.output, str(resolve_device(args.device)), args.precision)
        label = f"{os.path.basename(path)} ({args.output}{', fast ' + args.precision if args.precision else ''})"

    start = time.perf_counter()

    def progress(i: int, name: str) -> None:
        if i == count or i % max(1, count // 10) == 0:
            print(f"  {i}/{count} {name}", file=sys.stderr)

    try:
        rows = evaluate(load_test_set(args.data, args.backgrounds, args.seed, args.limit), predict,
                        quantized=not args.no_quantize, progress=progress)
    except ValueError as e:
        raise ValueError(f"{e}; {args.out} not written") from e
    seconds = time.perf_counter() - start
    table = format_table({label: mean_scores(rows)}, len(rows))
    summary_path = write_results(args.out, rows, table + "\n")
    print(table)
    print(f"{len(rows)} image(s) in {seconds:.1f} s; per-image rows: {args.out}; summary: {summary_path}")
    if any(math.isnan(r["fgr_mse"]) for r in rows):
        print("note: fgr MSE is averaged over the images that have a true foreground", file=sys.stderr)
    return 0
