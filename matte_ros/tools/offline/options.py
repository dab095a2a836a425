"""matte_offline's options: every flag declared once, every number checked as it is parsed (finite,
in range, the flag's name in the one-line error), and the combinations that make no sense refused
once the output format is known (before any model loads)."""
import argparse
import math
from typing import Optional, Tuple

from matte_ros.core.cli import OneLineParser, number
from matte_ros.core.plate import ALIGN_METHODS, DEFAULT_METHOD, MAX_MOVING
from matte_ros.core.settings import PRECISION_NAMES, backbone_scale_problem, device_problem

from .frames import OUTPUT_TYPES, TYPE_ALIASES, OfflineError, parse_output_types
from .writers import FORMATS, VIDEO_CODECS

__all__ = ["DEFAULT_MAX_FRAME_PIXELS", "MAX_FPS", "DEFAULT_COMPOSITE", "DEFAULT_CODEC", "build_parser",
           "parse_colour", "check_combinations"]

DEFAULT_MAX_FRAME_PIXELS = 100_000_000     # 100 MP: beyond 12K x 8K; a frame of that size is 300 MB as RGB
MAX_FRAME_PIXELS_LIMIT = 1 << 40
MAX_FPS = 1000.0
DEFAULT_COMPOSITE = (0, 255, 0)
DEFAULT_CODEC = "h264"
REFINE_MODES = ("full", "sampling", "thresholding")
MAX_SAMPLE_PIXELS = 100_000_000


def _fps(v: float) -> Optional[str]:
    return None if 0 < v <= MAX_FPS else f"must be more than 0 and at most {MAX_FPS:g} frames/s, got {v:g}"


def _threshold(v: float) -> Optional[str]:
    return None if 0 <= v <= 1 else f"must be in [0, 1] (the error map's range), got {v:g}"


def _fraction(v: float) -> Optional[str]:
    return None if 0 <= v <= 1 else f"must be a fraction in [0, 1], got {v:g}"


def _backbone_scale(v: float) -> Optional[str]:
    problem = backbone_scale_problem(v)
    return problem.replace("backbone_scale must be", "must be") if problem else None


def _plate_time(text: str) -> Tuple[float, float]:
    try:
        start, end = (float(v) for v in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be START:END in seconds, e.g. 0:2.5, got {text!r}") from None
    if not (math.isfinite(start) and math.isfinite(end)) or start < 0:
        raise argparse.ArgumentTypeError(f"START and END must be finite seconds, START at least 0, got {text!r}")
    if end < start:
        raise argparse.ArgumentTypeError(f"end {end:g} is before its start {start:g}")
    return start, end


def _device(text: str) -> str:
    problem = device_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def _types(text: str) -> tuple:
    try:
        return parse_output_types(text)
    except OfflineError as e:
        raise argparse.ArgumentTypeError(str(e).replace("--output-types is empty", "is empty")) from None


def parse_colour(text: str) -> Optional[Tuple[int, int, int]]:
    """"R,G,B" -> (r, g, b) 0..255; None when ``text`` is no colour (then it names an image);
    OfflineError for a colour out of range."""
    parts = text.split(",")
    if len(parts) != 3 or not all(s.strip().lstrip("-").isdigit() for s in parts):
        return None
    rgb = tuple(int(s) for s in parts)
    if not all(0 <= c <= 255 for c in rgb):
        raise OfflineError(f"--composite-bg colour values must be 0..255, got {text}")
    return rgb


def _composite(text: str) -> str:
    try:
        parse_colour(text)
    except OfflineError as e:
        raise argparse.ArgumentTypeError(str(e).replace("--composite-bg colour", "colour")) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="matte_offline", description="matte an image folder, a video file or a rosbag2 "
                                                        "recording with the engine's fast path")
    p.add_argument("input", help="an image folder, a quoted glob ('shots/*.jpg'), a video file, or a rosbag2 "
                                 "(directory with metadata.yaml, or a .db3 / .mcap file)")
    p.add_argument("-o", "--output", required=True, help="output folder (png, video) or the new rosbag2's path (bag); "
                                                          "never an input or a folder inside or around one")
    p.add_argument("--format", choices=FORMATS, help="output format (default: bag for a bag input, video for a "
                                                      "video, png for images)")
    p.add_argument("--output-types", type=_types, default=("alpha", "foreground"),
                   help=f"comma-separated: {', '.join(OUTPUT_TYPES)} (or {', '.join(TYPE_ALIASES)}); "
                        "default alpha,foreground")
    p.add_argument("--topic", help="the bag's image topic (needed when it has several)")
    plate = p.add_mutually_exclusive_group(required=True)
    plate.add_argument("--plate", metavar="IMAGE", help="background plate image (the empty scene)")
    plate.add_argument("--plate-frames", type=number(int, 1), metavar="N",
                       help="average the input's first N frames (at most as many as it has)")
    plate.add_argument("--plate-time", type=_plate_time, metavar="START:END",
                       help="average the frames between START and END seconds from the input's start (bag, video)")
    plate.add_argument("--plate-folder", metavar="DIR",
                       help="per-frame backgrounds: the i-th image (by name) for frame i")
    p.add_argument("--plate-max-moving", type=number(check=_fraction), default=MAX_MOVING, metavar="F",
                   help="fraction of the picture that may change while --plate-frames / --plate-time frames are "
                        f"averaged; more fails the run, as the node's capture (default {MAX_MOVING:g}; 1 = no check)")
    p.add_argument("--align", nargs="?", const=DEFAULT_METHOD, choices=ALIGN_METHODS,
                   help="warp the plate onto each frame with a homography estimated by the plate's aligner: "
                        f"{', '.join(ALIGN_METHODS)} ({DEFAULT_METHOD} when no method is given)")
    p.add_argument("--composite-bg", type=_composite, metavar="R,G,B|IMAGE",
                   help="what the composite puts the foreground over: a colour (default green 0,255,0) or an "
                        "image of the frame size")
    p.add_argument("--alpha-bits", type=int, choices=(8, 16), default=8, help="alpha PNG / bag depth (default 8)")
    p.add_argument("--video-codec", choices=tuple(VIDEO_CODECS),
                   help=f"default {DEFAULT_CODEC}; png, prores (4444) and vp9 keep the foreground's alpha")
    p.add_argument("--fps", type=number(check=_fps), help="video frame rate (default: the input's, else 30)")
    p.add_argument("--bag-storage", choices=("sqlite3", "mcap"), help="output bag storage (default: the input's)")
    p.add_argument("--max-frame-pixels", type=number(int, 1, MAX_FRAME_PIXELS_LIMIT), default=DEFAULT_MAX_FRAME_PIXELS,
                   metavar="N", help="refuse frames, plates and backgrounds of more pixels (width x height), read "
                                     f"from their headers before decoding (default {DEFAULT_MAX_FRAME_PIXELS})")
    p.add_argument("--allow-truncated", action="store_true",
                   help="accept a video or bag holding fewer frames than its header declares (a warning with "
                        "the counts instead of an error)")
    e = p.add_argument_group("engine")
    e.add_argument("--checkpoint", help="weight file (default: the packaged model)")
    e.add_argument("--device", type=_device, default="auto", help="auto (default), cpu, cuda or cuda:N")
    e.add_argument("--precision", default="auto", choices=PRECISION_NAMES,
                   help="auto (default): fp16 on CUDA, bf16 on CPUs with native bf16, else fp32")
    e.add_argument("--backbone-scale", type=number(check=_backbone_scale), default=0.0,
                   help="0 = auto (default: a 480-pixel coarse pass), else in [1/64, 1/2]")
    e.add_argument("--refine-mode", choices=REFINE_MODES, help="default: the model's")
    e.add_argument("--refine-sample-pixels", type=number(int, 16, MAX_SAMPLE_PIXELS),
                   help="pixels refined per frame in sampling mode (default: the model's)")
    e.add_argument("--refine-threshold", type=number(check=_threshold),
                   help="error above which thresholding mode refines a patch (default: the model's)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace outputs this program wrote before (never anything else)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--bench", type=number(int, 1), metavar="N", help="matte only the first N frames and report "
                                                                  "offline frames/s against the engine alone on them")
    return p


def check_combinations(args: argparse.Namespace, fmt: str) -> None:
    """OfflineError for flags that do nothing with output format ``fmt`` or contradict each other."""
    def refuse(flag: str, why: str) -> None:
        raise OfflineError(f"{flag} {why}")
    if args.fps is not None and fmt != "video":
        refuse("--fps", f"sets a video's frame rate; this run writes {fmt} (use --format video)")
    if args.video_codec is not None and fmt != "video":
        refuse("--video-codec", f"applies to video outputs; this run writes {fmt} (use --format video)")
    if args.bag_storage is not None and fmt != "bag":
        refuse("--bag-storage", f"applies to bag outputs; this run writes {fmt}")
    if args.alpha_bits == 16 and fmt == "video":
        refuse("--alpha-bits 16", "applies to png and bag outputs; video alpha is 8 bit")
    if args.composite_bg is not None and "composite" not in args.output_types:
        refuse("--composite-bg", "sets what the composite shows, but --output-types has no composite")
    mode = args.refine_mode
    if args.refine_threshold is not None and mode in ("full", "sampling"):
        refuse("--refine-threshold", f"applies to --refine-mode thresholding, not {mode}")
    if args.refine_sample_pixels is not None and mode in ("full", "thresholding"):
        refuse("--refine-sample-pixels", f"applies to --refine-mode sampling, not {mode}")
