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

from .frames import Frame, OfflineError

__all__ = ["IMAGE_EXTENSIONS", "ImageFolder", "VideoFile", "open_input", "read_image", "is_bag_path"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
_GLOB_CHARS = "*?["


def read_image(path: str) -> np.ndarray:
    """An image file -> (H, W, 3) uint8 RGB (grey and 16-bit files converted); OfflineError if unreadable."""
    img = cv2.imread(path, cv2.IMREAD_COLOR_RGB) if os.path.isfile(path) else None
    if img is None:
        raise OfflineError(f"cannot read image {path} (missing, unreadable or not an image OpenCV decodes)")
    return img


class ImageFolder:
    """The image files of a folder (extensions IMAGE_EXTENSIONS) or of a glob pattern, sorted by name."""

    kind = "images"
    fps: Optional[float] = None

    def __init__(self, spec: str):
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
        self.size: Tuple[int, int] = read_image(self.paths[0]).shape[:2]

    def frames(self) -> Iterator[Frame]:
        for i, (path, name) in enumerate(zip(self.paths, self.names)):
            yield Frame(i, name, read_image(path))


class VideoFile:
    """The first video stream of a file FFmpeg reads (through PyAV), decoded to RGB."""

    kind = "video"

    def __init__(self, path: str):
        self.path = path
        with self._open() as container:
            stream = container.streams.video[0]
            self.count: Optional[int] = stream.frames or None
            rate = stream.average_rate or stream.guessed_rate
            self.fps: Optional[float] = float(rate) if rate else None
            self.size = (stream.codec_context.height, stream.codec_context.width)

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
        with self._open() as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            start = None
            try:
                for i, f in enumerate(container.decode(stream)):
                    t = f.time
                    start = t if start is None else start
                    yield Frame(i, f"{i:06d}", f.to_ndarray(format="rgb24"),
                                None if t is None else t - start)
            except av.FFmpegError as e:
                raise OfflineError(f"cannot decode video {self.path}: {e}") from None


def is_bag_path(path: str) -> bool:
    """A rosbag2 directory (with metadata.yaml) or a single .db3 / .mcap file."""
    if os.path.isdir(path):
        return os.path.isfile(os.path.join(path, "metadata.yaml"))
    return path.lower().endswith((".db3", ".mcap")) and os.path.isfile(path)


def open_input(path: str, topic: Optional[str] = None, passthrough: bool = False):
    """The input at ``path``: a rosbag2 (``topic``: its image topic, needed when it has several;
    ``passthrough``: also yield every other message as RawMessage), a folder or glob of images, or a
    video file. OfflineError when it is none of these or cannot be read."""
    if is_bag_path(path):
        from .bags import BagInput
        return BagInput(path, topic, passthrough)
    if topic is not None:
        raise OfflineError(f"--topic applies to rosbag2 inputs only; {path} is not a rosbag2 directory")
    if os.path.isdir(path) or any(c in path for c in _GLOB_CHARS):
        return ImageFolder(path)
    if not os.path.isfile(path):
        raise OfflineError(f"input {path} does not exist")
    if path.lower().endswith(IMAGE_EXTENSIONS):
        raise OfflineError(f"input {path} is a single image; give its folder or a glob such as "
                           f"'{os.path.join(os.path.dirname(path) or '.', '*' + os.path.splitext(path)[1])}'")
    return VideoFile(path)
