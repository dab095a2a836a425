"""``python -m training export``: write a checkpoint as TorchScript or ONNX and check it.

The export is written under a temporary name next to ``--output``, loaded back and run next to the
eager model on a random frame; the largest difference per output is printed, and only an export
within ``--tolerance`` is moved to ``--output`` (a failed check leaves ``--output`` as it was). An
``--fp16`` export is checked by the mean difference instead: float16 rounding can swap which
patches the refiner picks near the cut, which moves single pixels a lot and the mean little.
"""
import argparse
import os
import tempfile
from typing import Optional, Sequence

import torch

from matte_ros.core.cli import Failure, OneLineParser, number
from matte_ros.core.files import TEMP_PREFIX
from matte_ros.core.model import DEFAULT_WEIGHTS, REFINE_MODES, MattingRefine, load_checkpoint
from matte_ros.core.settings import MAX_BACKBONE_SCALE, MIN_BACKBONE_SCALE

from .export import (
    FORMATS,
    MAX_OPSET,
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
MAX_SIDE = 16384       # --static and --check-size sides


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m training export", description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=None, help=f"weight file (default: {DEFAULT_WEIGHTS})")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--output", required=True, help="file to write (.ts / .onnx)")
    p.add_argument("--backbone-scale", type=number(float, MIN_BACKBONE_SCALE, MAX_BACKBONE_SCALE), default=None,
                   help="coarse-pass scale (TorchScript: the initial value, settable later; ONNX: fixed)")
    p.add_argument("--refine-mode", choices=REFINE_MODES, default=None)
    p.add_argument("--refine-sample-pixels", type=number(int, 16), default=None)
    p.add_argument("--refine-threshold", type=number(float, 0, 1), default=None)
    p.add_argument("--opset", type=number(int, MIN_OPSET, MAX_OPSET), default=None,
                   help=f"ONNX opset ({MIN_OPSET}..{MAX_OPSET}, default {MIN_OPSET})")
    p.add_argument("--crop-method", choices=ONNX_CROP_METHODS, default=None, help="ONNX patch crop (default roi_align)")
    p.add_argument("--static", type=number(int, 1, MAX_SIDE), nargs=2, metavar=("H", "W"), default=None,
                   help="ONNX: a fixed (1, 3, H, W) input, shape arithmetic folded (default: dynamic)")
    p.add_argument("--fp16", action="store_true", help="ONNX: float16 weights and compute, float32 inputs/outputs")
    p.add_argument("--tensorrt", action="store_true",
                   help="ONNX: sampling mode without NonZero, sorted TopK under TensorRT's K limit")
    p.add_argument("--providers", nargs="+", default=None,
                   help="ONNX Runtime providers of the check (default CPUExecutionProvider; e.g. "
                        "CUDAExecutionProvider)")
    p.add_argument("--check-size", type=number(int, 1, MAX_SIDE), nargs=2, metavar=("H", "W"), default=None,
                   help="frame size of the check against the eager model (default: the --static or ONNX trace size)")
    p.add_argument("--tolerance", type=number(float, 0), default=None,
                   help="accepted difference (default: largest 1e-5 TorchScript, 1e-4 ONNX; mean 2e-3 ONNX --fp16)")
    p.add_argument("--no-check", action="store_true", help="skip the comparison with the eager model")
    return p


def _combination_problem(args: argparse.Namespace, checkpoint: str) -> Optional[str]:
    """Why the flags make no sense together, or name an output that cannot be written (before any
    model loads), or None."""
    onnx_only = [f for f, on in (("--static", args.static), ("--fp16", args.fp16), ("--tensorrt", args.tensorrt),
                                 ("--opset", args.opset is not None), ("--crop-method", args.crop_method),
                                 ("--providers", args.providers)) if on]
    if args.format == "torchscript" and onnx_only:
        return f"{', '.join(onnx_only)} apply to --format onnx only"
    checked = [f for f, on in (("--tolerance", args.tolerance is not None), ("--check-size", args.check_size),
                               ("--providers", args.providers)) if on]
    if args.no_check and checked:
        return f"{', '.join(checked)} apply to the check, which --no-check skips"
    if args.static and args.check_size and tuple(args.check_size) != tuple(args.static):
        return (f"--check-size {args.check_size[0]} {args.check_size[1]} differs from the --static size "
                f"{args.static[0]} {args.static[1]}")
    if os.path.isdir(args.output):
        return f"--output {args.output} is a directory; give a file name (.ts or .onnx)"
    if os.path.isfile(args.output) and os.path.isfile(checkpoint) and os.path.samefile(args.output, checkpoint):
        return f"--output {args.output} is the checkpoint being exported; give another file name"
    return None


def _temporary(path: str) -> str:
    """A new empty file beside ``path``, named ``.tmp-<random><name>`` (the export is written there)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=TEMP_PREFIX, suffix=os.path.basename(path))
    os.close(fd)
    return tmp


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    path = args.checkpoint or DEFAULT_WEIGHTS
    problem = _combination_problem(args, path)
    if problem is not None:
        raise ValueError(problem)
    overrides = {k: v for k, v in (("backbone_scale", args.backbone_scale), ("refine_mode", args.refine_mode),
                                   ("refine_sample_pixels", args.refine_sample_pixels),
                                   ("refine_threshold", args.refine_threshold)) if v is not None}
    try:
        model = load_checkpoint(path, **overrides)
    except TypeError as e:
        raise ValueError(str(e)) from e
    if overrides and not isinstance(model, MattingRefine):
        raise ValueError("--backbone-scale and --refine-* apply to MattingRefine checkpoints only")
    tmp = _temporary(args.output)
    try:
        _export_and_check(args, model, tmp)
        size = os.path.getsize(tmp)
        os.replace(tmp, args.output)
        print(f"wrote {args.output} ({size / 2 ** 20:.1f} MiB, {args.format}) from {path}")
        return 0
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _export_and_check(args: argparse.Namespace, model: torch.nn.Module, tmp: str) -> None:
    """Write the export to ``tmp`` and compare it with the eager model; returns when it may become
    ``--output``, raises :class:`Failure` when it differs too much (exit 1)."""
    if args.format == "torchscript":
        save_torchscript(model, tmp)
    else:
        save_onnx(model, tmp, opset=args.opset or MIN_OPSET, crop_method=args.crop_method or "roi_align",
                  static=args.static, fp16=args.fp16, tensorrt=args.tensorrt)
    if args.no_check:
        return
    h, w = args.check_size or args.static or onnx_example_size(model)
    gen = torch.Generator().manual_seed(1)
    src, bgr = torch.rand(1, 3, h, w, generator=gen), torch.rand(1, 3, h, w, generator=gen)
    with torch.no_grad():
        expected = tuple(model(src, bgr))
    if args.format == "torchscript":
        got = run_torchscript(load_torchscript(tmp), src, bgr)
    else:
        try:
            got = run_onnx(tmp, src, bgr, providers=args.providers or ["CPUExecutionProvider"])
        except ValueError as e:
            raise ValueError(f"{e}; {args.output} not written") from e
    kind, reduce = ("onnx-fp16", "mean") if args.fp16 else (args.format, "max")
    diffs = compare(expected, got, output_names(model), reduce)
    tolerance = TOLERANCE[kind] if args.tolerance is None else args.tolerance
    worst = max(diffs.values())
    print(f"check on a {h}x{w} frame, {reduce} |export - eager|: "
          + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items()))
    if not worst <= tolerance:
        raise Failure(f"the export differs from the eager model by {worst:.2e} > {tolerance:.0e}; "
                      f"{args.output} not written")
    print(f"ok (tolerance {tolerance:.0e})")
