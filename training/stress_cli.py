"""``python -m training eval --suite stress``: the stress suite (training/stress.py) for a model, the
difference key, closed-form matting, or all three in one table.

The suite is generated on first use into ``--data`` (default datasets/stress) from the held-out
photographs (training/heldout.py) and reused while its manifest matches. The model runs at the
node's defaults: backbone scale auto (0.5 up to 960 px), sampling, 80000 refined pixels.
"""
import argparse
import os
import sys
import time
from typing import Dict, List, Optional, Sequence

from matte_ros.core.cli import OneLineParser, number
from matte_ros.core.model import DEFAULT_WEIGHTS, MattingRefine, load_checkpoint
from matte_ros.core.settings import DEVICES_HELP, auto_backbone_scale, resolve_device

from .evaluate import closed_form_predictor, difference_key_predictor, model_predictor
from .heldout import stress_photos
from .stress import DEFAULT_ROOT, SuiteSpec, ensure_suite, format_markdown, score_suite, summarise, write_rows
from .stress_scenes import CATEGORIES

__all__ = ["SUITES", "STRESS_METHODS", "build_parser", "main"]

SUITES = ("stress",)
STRESS_METHODS = ("model", "difference-key", "closed-form")
NODE_DEFAULTS = {"refine_mode": "sampling", "refine_sample_pixels": 80000}   # config/matte.yaml


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m training eval --suite stress", description=__doc__.splitlines()[0])
    p.add_argument("--suite", choices=SUITES, required=True, help="the benchmark to run")
    p.add_argument("--data", default=DEFAULT_ROOT, help=f"the suite's cache folder (default {DEFAULT_ROOT})")
    p.add_argument("--method", choices=STRESS_METHODS + ("all",), default="model",
                   help="model (at the node's defaults), difference-key, closed-form, or all three in one table")
    p.add_argument("--checkpoint", default=None, help=f"weight file of --method model (default: {DEFAULT_WEIGHTS})")
    p.add_argument("--seed", type=number(int, 0), default=0, help="the suite's seed (default 0)")
    p.add_argument("--count", type=number(int, 1, 99999), default=24, help="images per category (default 24)")
    p.add_argument("--size", type=number(int, 32, 4096), nargs=2, default=(320, 448), metavar=("H", "W"),
                   help="image size (default 320 448)")
    p.add_argument("--categories", nargs="+", choices=tuple(CATEGORIES), default=None,
                   help="score only these categories (default: all)")
    p.add_argument("--device", default="auto", help=DEVICES_HELP)
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default=None,
                   help="run the model on the engine's fast path in this precision (default: the published "
                        "forward in fp32)")
    p.add_argument("--photos", default=None, metavar="DIR",
                   help="a folder holding copies of the held-out photographs (only those, checked by SHA-256; "
                        "the same suite), e.g. .photos/stress on a GPU machine (default: where their packages "
                        "install them)")
    p.add_argument("--regenerate", action="store_true", help="generate the suite anew even if the cache matches")
    p.add_argument("--out", default="stress.csv",
                   help="per-image CSV; the markdown table goes next to it (<out without .csv>.md)")
    return p


def _predictor(method: str, args: argparse.Namespace, size):
    if method == "difference-key":
        return difference_key_predictor()
    if method == "closed-form":
        return closed_form_predictor()
    path = args.checkpoint or DEFAULT_WEIGHTS
    model = load_checkpoint(path)
    if isinstance(model, MattingRefine):
        model = load_checkpoint(path, backbone_scale=auto_backbone_scale(*size), **NODE_DEFAULTS)
    return model_predictor(model, "refine", str(resolve_device(args.device)), args.precision)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.checkpoint and args.method not in ("model", "all"):
        parser.error(f"--checkpoint applies to --method model or all, not {args.method}")
    if os.path.isdir(args.out):
        parser.error(f"--out {args.out} is a directory")
    spec = SuiteSpec(seed=args.seed, count=args.count, size=tuple(args.size),
                     categories=tuple(args.categories or CATEGORIES))
    methods = STRESS_METHODS if args.method == "all" else (args.method,)
    root = ensure_suite(args.data, spec, stress_photos(args.photos), regenerate=args.regenerate,
                        log=lambda m: print(m, file=sys.stderr))
    predictors = {m: _predictor(m, args, spec.size) for m in methods}
    rows: List[Dict] = []
    results, seconds = {}, {}
    for method, predict in predictors.items():
        start = time.perf_counter()
        mine = score_suite(root, spec, predict, method,
                           progress=lambda c, n, m=method: print(f"  {m}: {c} ({n} images)", file=sys.stderr))
        seconds[method] = time.perf_counter() - start
        label = method if method != "model" else f"model ({os.path.basename(args.checkpoint or DEFAULT_WEIGHTS)})"
        results[label] = summarise(mine)
        rows += mine
    table = format_markdown(results, spec.count)
    table += "\n\n" + "; ".join(f"{m}: {s:.0f} s" for m, s in seconds.items())
    table += (f"\n\nCommand: python -m training eval --suite stress --method {args.method} --seed {spec.seed} "
              f"--count {spec.count} --size {spec.size[0]} {spec.size[1]}\n")
    md = os.path.splitext(args.out)[0] + ".md"
    write_rows(args.out, rows)
    with open(md, "w") as f:
        f.write(table)
    print(table, end="")
    print(f"per-image rows: {args.out}; table: {md}")
    return 0
