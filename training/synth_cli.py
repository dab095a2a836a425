"""``python -m training synth --out DIR --seed N --count K``: write the synthetic matting dataset."""
import argparse
import os
import sys
from typing import List, Optional

from matte_ros.core.cli import OneLineParser

from .heldout import check_training_photos
from .photos import SPLITS, find_photos, split_photos
from .synth import SynthSpec, describe, write_dataset

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m training synth",
                      description="Write a deterministic synthetic matting dataset (no downloads): RGBA "
                                  "foregrounds and RGB backgrounds (train/valid), a held-out test set with "
                                  "ground truth (src, bgr, pha, fgr) and dataset.yaml.")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=int, default=0, help="same seed, byte-identical files (default 0)")
    p.add_argument("--count", type=int, default=300, help="training foregrounds (default 300)")
    p.add_argument("--valid-count", type=int, default=None, help="validation foregrounds (default count/10, >= 1)")
    p.add_argument("--test-count", type=int, default=50, help="held-out test images (default 50)")
    p.add_argument("--backgrounds", type=int, default=None, help="training backgrounds (default = count)")
    p.add_argument("--valid-backgrounds", type=int, default=None,
                   help="validation backgrounds (default backgrounds/10, >= 1)")
    p.add_argument("--size", type=int, nargs=2, default=(512, 512), metavar=("H", "W"),
                   help="foreground size; backgrounds are 1.25x larger (default 512 512)")
    p.add_argument("--test-size", type=int, nargs=2, default=(384, 512), metavar=("H", "W"),
                   help="test image size (default 384 512)")
    p.add_argument("--workers", type=int, default=min(os.cpu_count() or 1, 8),
                   help="worker processes; the files do not depend on it (default: CPU count, at most 8)")
    p.add_argument("--photos", nargs="+", default=(), metavar="DIR",
                   help="folders of JPEG/PNG photographs (searched recursively) for backgrounds and subject "
                        "surfaces; split by picture into train/valid/test (lists in <out>/photos/); the test set "
                        "becomes photographic (default: procedural textures only)")
    p.add_argument("--photo-share", type=float, default=0.8,
                   help="share of backgrounds and surfaces cut from photos; procedural for the rest (default 0.8)")
    p.add_argument("--overwrite", action="store_true", help="delete PNGs in DIR that this dataset would not write")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    backgrounds = args.count if args.backgrounds is None else args.backgrounds
    spec = SynthSpec(seed=args.seed, count=args.count,
                     valid_count=max(args.count // 10, 1) if args.valid_count is None else args.valid_count,
                     test_count=args.test_count, backgrounds=backgrounds,
                     valid_backgrounds=(max(backgrounds // 10, 1) if args.valid_backgrounds is None
                                        else args.valid_backgrounds),
                     size=tuple(args.size), test_size=tuple(args.test_size))
    if args.photos:
        try:
            found = find_photos(args.photos)
            check_training_photos(found)
            split = split_photos(found)
        except (OSError, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        spec = spec._replace(photos=tuple(tuple(split[k]) for k in SPLITS), photo_share=args.photo_share,
                             photo_roots=tuple(args.photos))
        print("photos: " + ", ".join(f"{k} {len(split[k])}" for k in SPLITS))
    if args.workers < 1:
        print("error: --workers must be >= 1", file=sys.stderr)
        return 2
    try:
        spec.check()
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{describe(spec)} --out {args.out} ({args.workers} worker(s))")
    try:
        result = write_dataset(args.out, spec, workers=args.workers, overwrite=args.overwrite)
    except FileExistsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {result['files']} files to {args.out} in {result['seconds']:.1f} s; "
          f"dataset config: {os.path.join(args.out, 'dataset.yaml')}")
    return 0
