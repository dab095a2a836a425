"""Offline inputs: a folder or glob of images, a video file (PyAV) or a rosbag2 (see bags.py).

    source = open_input("clip.mp4")            # or "frames/", "shots/*.jpg", "recording/" (a rosbag2)
    source.kind, source.count, source.fps, source.size
    for frame in source.frames(): ...          # Frame(index, name, rgb (H, W, 3) uint8, time_s, ...)

``frames()`` may be called again for a fresh pass (the plate sources read the first frames that way).
PyAV and rosbags are imported only when a video or a bag is opened.
"""
import glob
import os
from typing import Iterator, List, Optional, Tuple

import cv2
import numpy as np

from matte_ros.core.cli import describe_error
from matte_ros.core.image_header import ImageHeaderError, file_image_size

from .frames import Frame, OfflineError

__all__ = ["IMAGE_EXTENSIONS", "ImageFolder", "VideoFile", "open_input", "read_image", "is_bag_path",
           "check_pixels", "opencv_reason", "shortfall_problem"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
_GLOB_CHARS = "*?["


def read_image(path: str, max_pixels: Optional[int] = None, what: str = "image") -> np.ndarray:
    """An image file -> (H, W, 3) uint8 RGB (grey and 16-bit files converted); OfflineError if it is
    unreadable, or (from its header, before decoding) declares more than ``max_pixels`` pixels."""
    if not os.path.isfile(path):
        raise OfflineError(f"cannot read {what} {path}: it does not exist or is not a file")
    try:
        size = file_image_size(path)
    except (ImageHeaderError, OSError) as e:
        raise OfflineError(f"cannot read {what} {path}: {describe_error(e)}") from None
    check_pixels(size.width, size.height, max_pixels, f"{what} {path}")
    try:
        img = cv2.imread(path, cv2.IMREAD_COLOR_RGB)
    except cv2.error as e:                   # OpenCV's own limits (CV_IO_MAX_IMAGE_PIXELS), allocation failures
        raise OfflineError(f"cannot read {what} {path}: OpenCV: {opencv_reason(e)}") from None
    if img is None:
        raise OfflineError(f"cannot read {what} {path}: OpenCV could not decode it (corrupt or cut short)")
    return img


def opencv_reason(err: Exception) -> str:
    """The last line of an OpenCV error: what failed, without the source file and line."""
    lines = [s for s in str(err).strip().splitlines() if s.strip()]
    return lines[-1].split(") ", 1)[-1] if lines else type(err).__name__


def check_pixels(width: int, height: int, max_pixels: Optional[int], what: str) -> None:
    """OfflineError when width x height is more than ``max_pixels`` (None: no limit)."""
    if max_pixels is not None and width * height > max_pixels:
        raise OfflineError(f"{what} is {width}x{height} = {width * height} pixels, more than --max-frame-pixels "
                           f"{max_pixels}; refused before decoding")


def shortfall_problem(what: str, decoded: int, declared: Optional[int], exact: bool = True) -> Optional[str]:
    """Why ``decoded`` frames fall short of the ``declared`` count (None when they do not); an
    estimated count (``exact`` False, from a duration) tolerates one frame or 5 % less."""
    if not declared:
        return None
    slack = 0 if exact else max(1, int(0.05 * declared))
    if decoded >= declared - slack:
        return None
    says = f"declares {declared} frames" if exact else f"declares about {declared} frames (from its duration)"
    return f"{what} {says} but holds only {decoded} (truncated or damaged)"


class ImageFolder:
    """The image files of a folder (extensions IMAGE_EXTENSIONS) or of a glob pattern, sorted by name."""

    kind = "images"
    fps: Optional[float] = None

    def __init__(self, spec: str, max_pixels: Optional[int] = None, what: str = "image"):
        self.max_pixels, self.what = max_pixels, what
        self.shortfall: Optional[str] = None
        if any(c in spec for c in _GLOB_CHARS):
            paths = [p for p in glob.glob(spec) if os.path.isfile(p)]
        else:
            paths = [os.path.join(spec, n) for n in os.listdir(spec)
                     if n.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(spec, n))]
        if not paths:
            raise OfflineError(f"no images found in {spec} (looked for {' '.join(IMAGE_EXTENSIONS)})")
        self.spec = spec
        self.paths: List[str] = sorted(paths)
        self.names = [os.path.splitext(os.path.basename(p))[0] for p in self.paths]
        dup = sorted({n for n in self.names if self.names.count(n) > 1})
        if dup:
            raise OfflineError(f"{spec} has several images named {dup[0]} (different extensions); "
                               "their outputs would overwrite each other")
        self.count = len(self.paths)
        self.size: Tuple[int, int] = self.read(0).shape[:2]

    def read(self, i: int) -> np.ndarray:
        return read_image(self.paths[i], self.max_pixels, self.what)

    def frames(self) -> Iterator[Frame]:
        for i, name in enumerate(self.names):
            yield Frame(i, name, self.read(i))


class VideoFile:
    """The first video stream of a file FFmpeg reads (through PyAV), decoded to RGB.

    count: the frames the container declares (MP4 / MOV), else estimated from its duration and
    rate (Matroska, WebM); a pass that decodes fewer is an OfflineError at its end, or with
    ``allow_truncated`` a note in ``shortfall``."""

    kind = "video"

    def __init__(self, path: str, max_pixels: Optional[int] = None, allow_truncated: bool = False):
        self.path, self.allow_truncated = path, allow_truncated
        self.shortfall: Optional[str] = None
        with self._open() as container:
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            self.fps: Optional[float] = float(rate) if rate else None
            self.size = (stream.codec_context.height, stream.codec_context.width)
            self.count: Optional[int] = stream.frames or None
            self.exact_count = self.count is not None
            if self.count is None and self.fps and container.duration:
                self.count = round(container.duration / 1e6 * self.fps) or None
        check_pixels(self.size[1], self.size[0], max_pixels, f"video {path}")

    def _open(self):
        import av
        try:
            container = av.open(self.path)
        except (OSError, av.FFmpegError) as e:
            raise OfflineError(f"cannot read video {self.path}: {e}") from None
        if not container.streams.video:
            container.close()
            raise OfflineError(f"{self.path} has no video stream")
        return container

    def frames(self) -> Iterator[Frame]:
        import av
        n = 0
        with self._open() as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            start = None
            try:
                for f in container.decode(stream):
                    t = f.time
                    start = t if start is None else start
                    yield Frame(n, f"{n:06d}", f.to_ndarray(format="rgb24"), None if t is None else t - start)
                    n += 1
            except av.FFmpegError as e:        # cut short or damaged: the frames before it are whole
                problem = f"video {self.path} cannot be decoded after {n} frames: {e}"
                if self.count:
                    problem += f" ({'about ' if not self.exact_count else ''}{self.count} declared)"
            else:
                problem = shortfall_problem(f"video {self.path}", n, self.count, self.exact_count)
        if problem and not self.allow_truncated:
            raise OfflineError(f"{problem}; pass --allow-truncated to matte the frames before it")
        self.shortfall = problem


def is_bag_path(path: str) -> bool:
    """A rosbag2 directory (with metadata.yaml) or a single .db3 / .mcap file."""
    if os.path.isdir(path):
        return os.path.isfile(os.path.join(path, "metadata.yaml"))
    return path.lower().endswith((".db3", ".mcap")) and os.path.isfile(path)


def open_input(path: str, topic: Optional[str] = None, passthrough: bool = False, max_pixels: Optional[int] = None,
               allow_truncated: bool = False):
    """The input at ``path``: a rosbag2 (``topic``: its image topic, needed when it has several;
    ``passthrough``: also yield every other message as RawMessage), a folder or glob of images, or a
    video file. OfflineError when it is none of these or cannot be read. Frames of more than
    ``max_pixels`` pixels are refused before decoding; a video or bag holding fewer frames than it
    declares fails at the end of a pass unless ``allow_truncated`` (then ``source.shortfall`` says so)."""
    if is_bag_path(path):
        from .bags import BagInput
        return BagInput(path, topic, passthrough, max_pixels, allow_truncated)
    if topic is not None:
        raise OfflineError(f"--topic applies to rosbag2 inputs only; {path} is not a rosbag2 directory")
    if os.path.isdir(path) or any(c in path for c in _GLOB_CHARS):
        return ImageFolder(path, max_pixels, "frame")
    if not os.path.isfile(path):
        raise OfflineError(f"input {path} does not exist")
    if path.lower().endswith(IMAGE_EXTENSIONS):
        raise OfflineError(f"input {path} is a single image; give its folder or a glob such as "
                           f"'{os.path.join(os.path.dirname(path) or '.', '*' + os.path.splitext(path)[1])}'")
    return VideoFile(path, max_pixels, allow_truncated)
