"""matte_offline: matte an image folder, a video file or a rosbag2 recording with the engine's fast path.

    matte_offline frames/ --plate empty.png -o out/             # PNG sequences out/alpha/, out/foreground/
    matte_offline clip.mp4 --plate-frames 30 -o out/ --video-codec prores --output-types alpha,fgr,com
    matte_offline recording/ --topic /camera/image --plate-time 0:2 -o matted_bag   # a new rosbag2
    python -m matte_ros.tools.offline --help

Exit status: 0 done, 130 interrupted (Ctrl-C; the outputs written so far are complete files), 2 error
(one line on stderr).
"""
import argparse
import itertools
import sys
from typing import List, Optional

from matte_ros.core.settings import PRECISION_NAMES

from .frames import OUTPUT_TYPES, TYPE_ALIASES, Frame, OfflineError, parse_output_types
from .plate import ALIGN_METHODS, AlignedPlates, FixedPlate, FolderPlates, average_frames, frames_in_range
from .readers import is_bag_path, open_input, read_image
from .writers import FORMATS, VIDEO_CODECS, clear_targets, existing_targets, open_writer, output_targets

__all__ = ["build_parser", "main"]

_DEFAULT_FORMAT = {"images": "png", "video": "video", "bag": "bag"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="matte_offline", description=__doc__.split("\n\n")[0])
    p.add_argument("input", help="an image folder, a quoted glob ('shots/*.jpg'), a video file, or a rosbag2 "
                                 "(directory with metadata.yaml, or a .db3 / .mcap file)")
    p.add_argument("-o", "--output", required=True, help="output folder (png, video) or the new rosbag2's path (bag)")
    p.add_argument("--format", choices=FORMATS, help="output format (default: bag for a bag input, video for a "
                                                      "video, png for images)")
    p.add_argument("--output-types", default="alpha,foreground",
                   help=f"comma-separated: {', '.join(OUTPUT_TYPES)} (or {', '.join(TYPE_ALIASES)}); "
                        "default alpha,foreground")
    p.add_argument("--topic", help="the bag's image topic (needed when it has several)")
    plate = p.add_mutually_exclusive_group(required=True)
    plate.add_argument("--plate", metavar="IMAGE", help="background plate image (the empty scene)")
    plate.add_argument("--plate-frames", type=int, metavar="N", help="average the input's first N frames")
    plate.add_argument("--plate-time", metavar="START:END",
                       help="average the frames between START and END seconds from the input's start (bag, video)")
    plate.add_argument("--plate-folder", metavar="DIR",
                       help="per-frame backgrounds: the i-th image (by name) for frame i")
    p.add_argument("--align", nargs="?", const="orb", choices=ALIGN_METHODS,
                   help="warp the plate onto each frame with a feature homography (orb when no method is given)")
    p.add_argument("--composite-bg", default="0,255,0", metavar="R,G,B|IMAGE",
                   help="what the composite puts the foreground over: a colour (default green 0,255,0) or an "
                        "image of the frame size")
    p.add_argument("--alpha-bits", type=int, choices=(8, 16), default=8, help="alpha PNG / bag depth (default 8)")
    p.add_argument("--video-codec", choices=tuple(VIDEO_CODECS), default="h264",
                   help="default h264; png, prores (4444) and vp9 keep the foreground's alpha")
    p.add_argument("--fps", type=float, help="video frame rate (default: the input's, else 30)")
    p.add_argument("--bag-storage", choices=("sqlite3", "mcap"), help="output bag storage (default: the input's)")
    e = p.add_argument_group("engine")
    e.add_argument("--checkpoint", help="weight file (default: the packaged model)")
    e.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    e.add_argument("--precision", default="auto", choices=PRECISION_NAMES,
                   help="auto (default): fp16 on CUDA, bf16 on CPUs with native bf16, else fp32")
    e.add_argument("--backbone-scale", type=float, default=0.0, help="0 = auto (default: a 480-pixel coarse pass)")
    e.add_argument("--refine-mode", choices=("full", "sampling", "thresholding"), help="default: the model's")
    e.add_argument("--refine-sample-pixels", type=int, help="default: the model's")
    e.add_argument("--refine-threshold", type=float, help="default: the model's")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--bench", type=int, metavar="N", help="matte only the first N frames and report offline "
                                                            "frames/s against the engine alone on them")
    return p


def _plate_time(text: str):
    try:
        start, end = (float(v) for v in text.split(":"))
    except ValueError:
        raise OfflineError(f"--plate-time must be START:END in seconds, e.g. 0:2.5, got {text!r}") from None
    if end < start:
        raise OfflineError(f"--plate-time end {end} is before its start {start}")
    return start, end


def _make_plates(args, source):
    """A function returning a fresh plate source (the benchmark needs one per pass)."""
    if args.plate_folder:
        first = FolderPlates(args.plate_folder, source.count).folder
        _check_size(read_image(first.paths[0]), f"background {first.paths[0]}", args.input, source.size)
        base = lambda: FolderPlates(args.plate_folder, source.count)   # noqa: E731
    else:
        if args.plate:
            rgb, what = read_image(args.plate), f"plate {args.plate}"
        elif args.plate_frames is not None:
            if args.plate_frames < 1:
                raise OfflineError(f"--plate-frames must be at least 1, got {args.plate_frames}")
            frames = (f.rgb for f in source.frames() if isinstance(f, Frame))
            rgb, _ = average_frames(itertools.islice(frames, args.plate_frames))
            what = f"the average of the first {args.plate_frames} frames"
        else:
            start, end = _plate_time(args.plate_time)
            rgb, n = _average_in_range(source, start, end)
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


def _average_in_range(source, start: float, end: float):
    try:
        return average_frames(frames_in_range(source.frames(), start, end))
    except OfflineError as e:
        if str(e).startswith("no frames"):
            raise OfflineError(f"no frames of the input lie between {start} and {end} s") from None
        raise


def _composite(spec: str, size):
    parts = spec.split(",")
    if len(parts) == 3 and all(s.strip().isdigit() for s in parts):
        rgb = tuple(int(s) for s in parts)
        if max(rgb) > 255:
            raise OfflineError(f"--composite-bg colour values must be 0..255, got {spec}")
        return rgb
    img = read_image(spec)
    if img.shape[:2] != tuple(size):
        raise OfflineError(f"--composite-bg image {spec} is {img.shape[1]}x{img.shape[0]} but the frames are "
                           f"{size[1]}x{size[0]}")
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


def run_cli(args) -> int:
    from .pipeline import bench_offline, run
    types = parse_output_types(args.output_types)
    fmt = args.format or ("bag" if is_bag_path(args.input) else None)
    source = open_input(args.input, args.topic, passthrough=fmt == "bag")
    fmt = fmt or _DEFAULT_FORMAT[source.kind]
    if fmt == "bag" and source.kind != "bag":
        raise OfflineError("--format bag needs a rosbag2 input (it copies the input's topics)")
    targets = output_targets(fmt, args.output, types, args.video_codec)
    existing = existing_targets(targets)
    if existing and not args.overwrite:
        raise OfflineError(f"output {existing[0]} exists; pass --overwrite to replace it")
    make_plates = _make_plates(args, source)
    composite = _composite(args.composite_bg, source.size) if "composite" in types else None
    engine = _engine(args, types)
    clear_targets(fmt, targets, args.overwrite)            # only now that everything else is known to work

    def make_writer():
        return open_writer(fmt, args.output, types, source, args.alpha_bits, args.video_codec, args.fps,
                           args.bag_storage)
    if args.bench:
        r = bench_offline(source, engine, make_plates, make_writer, types, args.bench, composite)
        h, w = source.size
        print(f"{w}x{h}, {r['frames']} frames, {','.join(types)} as {fmt}: offline {r['offline_fps']:.2f} frames/s, "
              f"engine alone {r['engine_fps']:.2f} frames/s, ratio {r['ratio']:.2f}")
        return 0
    plates = make_plates()
    stats = run(source, engine, plates, make_writer(), types, composite, progress=not args.quiet)
    unaligned = getattr(plates, "unaligned", 0)
    if unaligned:
        print(f"matte_offline: the plate could not be aligned to {unaligned} frame(s); they used it unaligned",
              file=sys.stderr)
    if stats.interrupted:
        print(f"matte_offline: interrupted after {stats.frames} frames; {', '.join(targets)} hold them as complete "
              "files", file=sys.stderr)
        return 130
    if not args.quiet:
        print(f"matte_offline: {stats.frames} frames in {stats.seconds:.1f} s ({stats.fps:.2f} frames/s) -> "
              f"{', '.join(targets)}", file=sys.stderr)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    from matte_ros.core.host_memory import keep_freed_memory
    keep_freed_memory()                 # before any thread starts (see host_memory.py)
    args = build_parser().parse_args(argv)
    try:
        return run_cli(args)
    except KeyboardInterrupt:           # before the run started: nothing half-written
        print("matte_offline: interrupted", file=sys.stderr)
        return 130
    except (OfflineError, ValueError, OSError) as e:
        print(f"matte_offline: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
