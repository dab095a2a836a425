"""One run of matte_offline, in the order that keeps inputs safe and outputs honest:

1. open the input and check everything the options name (combinations, paths apart from the
   inputs, what is in the output's way, the plate) - before any model loads or any file is touched;
2. load the engine, write every output under its .partial name (staging.py);
3. success: move the outputs into place (exit 0); a failure: remove them (one line naming why,
   exit 2); Ctrl-C: keep them, named partial, as complete files of the frames done (exit 130).
"""
import sys
from typing import Callable, Iterable, Optional, Tuple

import numpy as np

from matte_ros.core.cli import EXIT_INTERRUPTED, debug_enabled, describe_error
from matte_ros.core.plate import average_frames

from .frames import Frame, OfflineError
from .options import DEFAULT_CODEC, DEFAULT_COMPOSITE, check_combinations, parse_colour
from .pipeline import bench_offline, no_interrupts, run
from .plate import AlignedPlates, FixedPlate, FolderPlates, frames_in_range
from .readers import is_bag_path, open_input, read_image
from .safety import check_apart, input_paths
from .staging import Staging
from .writers import check_video_size, open_writer

__all__ = ["matte"]

PROG = "matte_offline"
_DEFAULT_FORMAT = {"images": "png", "video": "video", "bag": "bag"}


def _make_plates(args, source) -> Callable[[], object]:
    """A function returning a fresh plate source (the benchmark needs one per pass)."""
    limit = args.max_frame_pixels
    if args.plate_folder:
        first = FolderPlates(args.plate_folder, source.count, limit).folder
        _check_size(first.read(0), f"background {first.paths[0]}", args.input, source.size)
        base = lambda: FolderPlates(args.plate_folder, source.count, limit)   # noqa: E731
    else:
        if args.plate:
            rgb, what = read_image(args.plate, limit), f"plate {args.plate}"
        elif args.plate_frames is not None:
            n = args.plate_frames
            if source.count is not None and n > source.count:
                raise OfflineError(f"--plate-frames {n} is more than the {source.count} frames of {args.input}")
            frames = (f.rgb for f in source.frames() if isinstance(f, Frame))
            rgb, got = _average(frames, n, args.plate_max_moving, "--plate-frames")
            if got < n:
                raise OfflineError(f"--plate-frames {n} is more than the {got} frames of {args.input}")
            what = f"the average of the first {n} frames"
        else:
            start, end = args.plate_time
            rgb, n = _average_in_range(source, start, end, args.plate_max_moving)
            what = f"the average of {n} frames between {start} and {end} s"
        _check_size(rgb, what, args.input, source.size)
        base = lambda: FixedPlate(rgb, what)                             # noqa: E731
    if args.align:
        return lambda: AlignedPlates(base(), args.align)
    return base


def _check_size(plate, what: str, input_path: str, size) -> None:
    if plate.shape[:2] != tuple(size):
        raise OfflineError(f"{what} is {plate.shape[1]}x{plate.shape[0]} but the frames of {input_path} are "
                           f"{size[1]}x{size[0]} (width x height); the plate must be the same scene at the same size")


def _average(frames: Iterable[np.ndarray], limit: Optional[int], max_moving: float,
             flag: str) -> Tuple[np.ndarray, int]:
    """The plate of ``frames`` (the first ``limit``) -> (plate, frames averaged); OfflineError when the
    frames were not still (as the node's capture: more than max_moving of the picture changed)."""
    try:
        res = average_frames(frames, limit, max_moving=max_moving)
    except ValueError as e:
        raise OfflineError(str(e)) from None
    if not res.ok:
        raise OfflineError(f"{flag}: {res.message.split('; ')[0]}; choose frames of the empty, still scene, "
                           "or raise --plate-max-moving (1: no check)")
    return res.plate, res.frames


def _average_in_range(source, start: float, end: float, max_moving: float) -> Tuple[np.ndarray, int]:
    try:
        return _average(frames_in_range(source.frames(), start, end), None, max_moving, "--plate-time")
    except OfflineError as e:
        if str(e).startswith("no frames"):
            raise OfflineError(f"no frames of the input lie between {start} and {end} s") from None
        raise


def _composite(args, size):
    if args.composite_bg is None:
        return DEFAULT_COMPOSITE
    rgb = parse_colour(args.composite_bg)
    if rgb is not None:
        return rgb
    img = read_image(args.composite_bg, args.max_frame_pixels)
    if img.shape[:2] != tuple(size):
        raise OfflineError(f"--composite-bg image {args.composite_bg} is {img.shape[1]}x{img.shape[0]} but the "
                           f"frames are {size[1]}x{size[0]}")
    return img


def _engine(args, types):
    from matte_ros.core.engine import MattingEngine
    from matte_ros.core.model import MattingRefine
    engine = MattingEngine(checkpoint=args.checkpoint, device=args.device, precision=args.precision,
                           backbone_scale=args.backbone_scale, refine_mode=args.refine_mode,
                           refine_sample_pixels=args.refine_sample_pixels, refine_threshold=args.refine_threshold)
    if ("error" in types or "refinement" in types) and not isinstance(engine.model, MattingRefine):
        raise OfflineError("the error and refinement maps need a refining model (MattingRefine)")
    return engine


def matte(args) -> int:
    """The run of parsed options ``args``; its exit status (errors raise OfflineError)."""
    types = args.output_types
    codec = args.video_codec or DEFAULT_CODEC
    fmt = args.format or ("bag" if is_bag_path(args.input) else None)
    source = open_input(args.input, args.topic, passthrough=fmt == "bag", max_pixels=args.max_frame_pixels,
                        allow_truncated=args.allow_truncated)
    fmt = fmt or _DEFAULT_FORMAT[source.kind]
    if fmt == "bag" and source.kind != "bag":
        raise OfflineError("--format bag needs a rosbag2 input (it copies the input's topics)")
    check_combinations(args, fmt)
    if fmt == "video":
        check_video_size(codec, source.size)
    staging = Staging(fmt, args.output, types, codec)
    check_apart(staging.written, staging.roots, input_paths(args))
    staging.check(args.overwrite)
    make_plates = _make_plates(args, source)
    composite = _composite(args, source.size) if "composite" in types else None
    engine = _engine(args, types)

    target, suffix = staging.begin()
    done = [0]

    def count(_result) -> None:
        done[0] += 1

    def make_writer():
        return open_writer(fmt, target, types, source, args.alpha_bits, codec, args.fps, args.bag_storage, suffix)
    try:
        if args.bench:
            report = bench_offline(source, engine, make_plates, make_writer, types, args.bench, composite)
            frames, interrupted = report["frames"], report["interrupted"]
        else:
            plates = make_plates()
            stats = run(source, engine, plates, make_writer(), types, composite, progress=not args.quiet,
                        on_result=count)
            frames, interrupted = stats.frames, stats.interrupted
    except KeyboardInterrupt:                # outside the run's own handling (opening the writer)
        frames, interrupted = done[0], True
    except BaseException as e:
        staging.discard()
        if debug_enabled() or not isinstance(e, Exception):
            raise
        raise OfflineError(f"{describe_error(e)}; the run stopped after {done[0]} frame(s) and its outputs were "
                           "removed (nothing new is in place)") from None
    with no_interrupts():                    # the outputs are listed or moved into place in one piece
        if interrupted:
            kept = staging.keep_partial()
        else:
            finals = staging.commit()
    if interrupted:
        where = (f"partial outputs (complete files of those frames, not moved into place): {', '.join(kept)}"
                 if kept else "no output was written")
        print(f"{PROG}: interrupted after {frames} frames; {where}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if source.shortfall:
        print(f"{PROG}: warning: {source.shortfall}; matted the {frames} frames it holds (--allow-truncated)",
              file=sys.stderr)
    if args.bench:
        h, w = source.size
        print(f"{w}x{h}, {frames} frames, {','.join(types)} as {fmt}: offline {report['offline_fps']:.2f} frames/s, "
              f"engine alone {report['engine_fps']:.2f} frames/s, ratio {report['ratio']:.2f}")
        return 0
    unaligned = getattr(plates, "unaligned", 0)
    if unaligned:
        print(f"{PROG}: the plate could not be aligned to {unaligned} frame(s); they used it unaligned",
              file=sys.stderr)
    if not args.quiet:
        print(f"{PROG}: {frames} frames in {stats.seconds:.1f} s ({stats.fps:.2f} frames/s) -> {', '.join(finals)}",
              file=sys.stderr)
    return 0
