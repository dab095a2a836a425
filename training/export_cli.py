"""``python -m training export``: write a checkpoint as TorchScript or ONNX and check it.

After writing, the export is loaded back and run next to the eager model on a random frame;
the largest difference per output is printed (and the command fails above ``--tolerance``). An
``--fp16`` export is checked by the mean difference instead: float16 rounding can swap which
patches the refiner picks near the cut, which moves single pixels a lot and the mean little.
"""
import argparse
import os
import sys
from typing import Optional, Sequence

import torch

from matte_ros.core.cli import OneLineParser
from matte_ros.core.model import DEFAULT_WEIGHTS, REFINE_MODES, MattingRefine, load_checkpoint

from .export import (
    FORMATS,
    MIN_OPSET,
    ONNX_CROP_METHODS,
    compare,
    load_torchscript,
    onnx_example_size,
    output_names,
    run_onnx,
    run_torchscript,
    save_onnx,
    save_torchscript,
)

__all__ = ["build_parser", "main"]

# largest |export - eager| (float32), mean |export - eager| (ONNX --fp16 against the float32 model)
TOLERANCE = {"torchscript": 1e-5, "onnx": 1e-4, "onnx-fp16": 2e-3}


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m training export", description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=None, help=f"weight file (default: {DEFAULT_WEIGHTS})")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--output", required=True, help="file to write (.ts / .onnx)")
    p.add_argument("--backbone-scale", type=float, default=None,
                   help="coarse-pass scale (TorchScript: the initial value, settable later; ONNX: fixed)")
    p.add_argument("--refine-mode", choices=REFINE_MODES, default=None)
    p.add_argument("--refine-sample-pixels", type=int, default=None)
    p.add_argument("--refine-threshold", type=float, default=None)
    p.add_argument("--opset", type=int, default=MIN_OPSET, help=f"ONNX opset (>= {MIN_OPSET})")
    p.add_argument("--crop-method", choices=ONNX_CROP_METHODS, default="roi_align", help="ONNX patch crop")
    p.add_argument("--static", type=int, nargs=2, metavar=("H", "W"), default=None,
                   help="ONNX: a fixed (1, 3, H, W) input, shape arithmetic folded (default: dynamic)")
    p.add_argument("--fp16", action="store_true", help="ONNX: float16 weights and compute, float32 inputs/outputs")
    p.add_argument("--tensorrt", action="store_true",
                   help="ONNX: sampling mode without NonZero, sorted TopK under TensorRT's K limit")
    p.add_argument("--providers", nargs="+", default=["CPUExecutionProvider"],
                   help="ONNX Runtime providers of the check (e.g. CUDAExecutionProvider)")
    p.add_argument("--check-size", type=int, nargs=2, metavar=("H", "W"), default=None,
                   help="frame size of the check against the eager model (default: the --static or ONNX trace size)")
    p.add_argument("--tolerance", type=float, default=None,
                   help="accepted difference (default: largest 1e-5 TorchScript, 1e-4 ONNX; mean 2e-3 ONNX --fp16)")
    p.add_argument("--no-check", action="store_true", help="skip the comparison with the eager model")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    path = args.checkpoint or DEFAULT_WEIGHTS
    overrides = {k: v for k, v in (("backbone_scale", args.backbone_scale), ("refine_mode", args.refine_mode),
                                   ("refine_sample_pixels", args.refine_sample_pixels),
                                   ("refine_threshold", args.refine_threshold)) if v is not None}
    try:
        model = load_checkpoint(path, **overrides)
    except (ValueError, TypeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if overrides and not isinstance(model, MattingRefine):
        print("error: --backbone-scale and --refine-* apply to MattingRefine checkpoints only", file=sys.stderr)
        return 2
    onnx_only = [f for f, on in (("--static", args.static), ("--fp16", args.fp16), ("--tensorrt", args.tensorrt)) if on]
    if args.format == "torchscript" and onnx_only:
        print(f"error: {', '.join(onnx_only)} apply to --format onnx only", file=sys.stderr)
        return 2
    if args.static and args.check_size and tuple(args.check_size) != tuple(args.static):
        print(f"error: --check-size {args.check_size[0]} {args.check_size[1]} differs from the --static size "
              f"{args.static[0]} {args.static[1]}", file=sys.stderr)
        return 2
    try:
        if args.format == "torchscript":
            save_torchscript(model, args.output)
        else:
            save_onnx(model, args.output, opset=args.opset, crop_method=args.crop_method, static=args.static,
                      fp16=args.fp16, tensorrt=args.tensorrt)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.output} ({os.path.getsize(args.output) / 2 ** 20:.1f} MiB, {args.format}) from {path}")
    if args.no_check:
        return 0
    h, w = args.check_size or args.static or onnx_example_size(model)
    gen = torch.Generator().manual_seed(1)
    src, bgr = torch.rand(1, 3, h, w, generator=gen), torch.rand(1, 3, h, w, generator=gen)
    with torch.no_grad():
        expected = tuple(model(src, bgr))
    if args.format == "torchscript":
        got = run_torchscript(load_torchscript(args.output), src, bgr)
    else:
        try:
            got = run_onnx(args.output, src, bgr, providers=args.providers)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    kind, reduce = ("onnx-fp16", "mean") if args.fp16 else (args.format, "max")
    diffs = compare(expected, got, output_names(model), reduce)
    tolerance = TOLERANCE[kind] if args.tolerance is None else args.tolerance
    worst = max(diffs.values())
    print(f"check on a {h}x{w} frame, {reduce} |export - eager|: "
          + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items()))
    if worst > tolerance:
        print(f"error: the export differs from the eager model by {worst:.2e} > {tolerance:.0e}", file=sys.stderr)
        return 1
    print(f"ok (tolerance {tolerance:.0e})")
    return 0
