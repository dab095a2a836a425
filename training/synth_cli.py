"""``python -m training synth --out DIR --seed N --count K``: write the synthetic matting dataset.

Numbers are checked before anything is written. ``--count 0`` with ``--test-count N`` writes a
test-only dataset (no training or validation images); ``--count 0`` alone, or with training or
validation counts, is refused, as are training data without validation images or backgrounds. A
run that fails (exit 1) or is stopped (Ctrl-C, 130) leaves ``DIR/PARTIAL.txt`` and no ``dataset.yaml``,
and says so; refused settings are ``ValueError`` / ``FileExistsError`` before anything is written (2).
"""
import argparse
import os
from typing import List, Optional

from matte_ros.core.cli import OneLineParser, number

from .photos import SPLITS, find_photos, split_photos
from .synth import PARTIAL_MARKER, SynthSpec, describe, write_dataset

__all__ = ["build_parser", "main"]

MAX_COUNT = 99999       # files are named NNNNN.png
MAX_SIDE = 8192


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m training synth",
                      description="Write a deterministic synthetic matting dataset (no downloads): RGBA "
                                  "foregrounds and RGB backgrounds (train/valid), a held-out test set with "
                                  "ground truth (src, bgr, pha, fgr) and dataset.yaml.")
    count = number(int, 0, MAX_COUNT)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=number(int, 0), default=0, help="same seed, byte-identical files (default 0)")
    p.add_argument("--count", type=count, default=300,
                   help="training foregrounds (default 300; 0 with --test-count: a test-only dataset)")
    p.add_argument("--valid-count", type=count, default=None, help="validation foregrounds (default count/10, >= 1)")
    p.add_argument("--test-count", type=count, default=None, help="held-out test images (default 50)")
    p.add_argument("--backgrounds", type=count, default=None, help="training backgrounds (default = count)")
    p.add_argument("--valid-backgrounds", type=count, default=None,
                   help="validation backgrounds (default backgrounds/10, >= 1)")
    p.add_argument("--size", type=number(int, 32, MAX_SIDE), nargs=2, default=(512, 512), metavar=("H", "W"),
                   help="foreground size; backgrounds are 1.25x larger (default 512 512)")
    p.add_argument("--test-size", type=number(int, 32, MAX_SIDE), nargs=2, default=(384, 512), metavar=("H", "W"),
                   help="test image size (default 384 512)")
    p.add_argument("--workers", type=number(int, 1, 256), default=min(os.cpu_count() or 1, 8),
                   help="worker processes; the files do not depend on it (default: CPU count, at most 8)")
    p.add_argument("--photos", nargs="+", default=(), metavar="DIR",
                   help="folders of JPEG/PNG photographs (searched recursively) for backgrounds and subject "
                        "surfaces; split by picture into train/valid/test (lists in <out>/photos/); the test set "
                        "becomes photographic (default: procedural textures only)")
    p.add_argument("--photo-share", type=number(float, 0, 1), default=None,
                   help="with --photos: share of backgrounds and surfaces cut from photos; procedural for the "
                        "rest (default 0.8)")
    p.add_argument("--overwrite", action="store_true", help="delete PNGs in DIR that this dataset would not write")
    return p


def _spec(args: argparse.Namespace) -> SynthSpec:
    """The counts of the flags, defaults filled; ValueError for a dataset that cannot be used."""
    others = {"--valid-count": args.valid_count, "--backgrounds": args.backgrounds,
              "--valid-backgrounds": args.valid_backgrounds}
    if args.count == 0:
        if args.test_count is None or args.test_count == 0:
            raise ValueError("--count 0 writes no training data: give --count N for a training dataset, or "
                             "--count 0 with --test-count N for a test-only dataset")
        given = [f for f, v in others.items() if v]
        if given:
            raise ValueError(f"--count 0 makes a test-only dataset: {', '.join(given)} must be 0 or left out")
        return SynthSpec(seed=args.seed, count=0, valid_count=0, test_count=args.test_count, backgrounds=0,
                         valid_backgrounds=0, size=tuple(args.size), test_size=tuple(args.test_size))
    zero = [f for f, v in others.items() if v == 0]
    if zero:
        raise ValueError(f"{', '.join(zero)} 0 leaves the training data without validation images or backgrounds "
                         "(use --count 0 --test-count N for a test-only dataset)")
    backgrounds = args.count if args.backgrounds is None else args.backgrounds
    return SynthSpec(seed=args.seed, count=args.count,
                     valid_count=max(args.count // 10, 1) if args.valid_count is None else args.valid_count,
                     test_count=50 if args.test_count is None else args.test_count, backgrounds=backgrounds,
                     valid_backgrounds=(max(backgrounds // 10, 1) if args.valid_backgrounds is None
                                        else args.valid_backgrounds),
                     size=tuple(args.size), test_size=tuple(args.test_size))


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _with_photos(spec: SynthSpec, args: argparse.Namespace) -> SynthSpec:
    """``spec`` with the photographs of ``--photos``; ValueError for a folder without any, or one that
    overlaps ``--out``."""
    if not args.photos:
        if args.photo_share is not None:
            raise ValueError("--photo-share applies with --photos only")
        return spec
    for root in args.photos:
        if _inside(root, args.out) or _inside(args.out, root):
            raise ValueError(f"--out {args.out} and --photos {root} overlap: the dataset would be written among "
                             "the photographs it reads")
        if os.path.exists(root) and not find_photos([root]):
            raise ValueError(f"--photos {root}: no JPEG or PNG photographs found there")
    split = split_photos(find_photos(args.photos))
    print("photos: " + ", ".join(f"{k} {len(split[k])}" for k in SPLITS))
    share = 0.8 if args.photo_share is None else args.photo_share
    return spec._replace(photos=tuple(tuple(split[k]) for k in SPLITS), photo_share=share,
                         photo_roots=tuple(args.photos)).check()


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise ValueError(f"--out {args.out} is a file, not a folder")
    spec = _with_photos(_spec(args).check(), args)
    print(f"{describe(spec)} --out {args.out} ({args.workers} worker(s))")
    try:
        result = write_dataset(args.out, spec, workers=args.workers, overwrite=args.overwrite)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"{args.out} is partial (see {os.path.join(args.out, PARTIAL_MARKER)}; "
                                "no dataset.yaml)") from None
    print(f"wrote {result['files']} files to {args.out} in {result['seconds']:.1f} s; "
          f"dataset config: {os.path.join(args.out, 'dataset.yaml')}")
    return 0
