"""Offline outputs: PNG sequences, videos (PyAV) and, for bag inputs, a rosbag2 (bags.BagOutput).

Layout under the output path OUT, one entry per output type (alpha, foreground, composite, error,
refinement):
    png    OUT/<type>/<name>.png    alpha grey 8 or 16 bit, foreground RGBA (the alpha as 4th
                                    channel), composite RGB, error / refinement grey 8 bit
    video  OUT/<type>.<ext>         the codec's container; an alpha-capable codec (png, prores, vp9)
                                    stores the foreground as RGBA
    bag    OUT itself               the input's messages plus /matte/<type>
Every writer has write(result) and close(); PNG files appear atomically, a video is playable once closed.
``suffix`` is added to each type's name (staging.py writes under ``<type>.partial`` and moves the
outputs into place when the run succeeded).
"""
import os
from fractions import Fraction
from typing import Dict, NamedTuple, Optional, Sequence, Tuple

import cv2
import numpy as np

from matte_ros.core.files import atomic_write

from .convert import rgba, to_u8, to_u16
from .frames import OfflineError, Result

__all__ = ["FORMATS", "VideoCodec", "VIDEO_CODECS", "png_image", "PngWriter", "VideoWriter", "check_video_size",
           "output_path", "open_writer"]

FORMATS = ("png", "video", "bag")


class VideoCodec(NamedTuple):
    encoder: str                  # FFmpeg encoder name
    extension: str                # container file extension
    rgb_format: str               # pixel format of colour frames
    grey_format: str              # pixel format of grey frames (alpha, error, refinement)
    alpha_format: Optional[str]   # pixel format of the RGBA foreground; None: no alpha channel
    options: Dict[str, str]
    even_size: bool               # needs an even width and height (chroma subsampling)


VIDEO_CODECS = {
    "h264": VideoCodec("libx264", ".mp4", "yuv420p", "yuv420p", None, {"crf": "16", "preset": "fast"}, True),
    "png": VideoCodec("png", ".mov", "rgb24", "gray", "rgba", {}, False),
    "prores": VideoCodec("prores_ks", ".mov", "yuv444p10le", "yuv444p10le", "yuva444p10le", {"profile": "4"}, False),
    "vp9": VideoCodec("libvpx-vp9", ".webm", "yuv420p", "yuv420p", "yuva420p", {"crf": "20", "b": "0"}, True),
}


def png_image(kind: str, result: Result, alpha_bits: int = 8) -> np.ndarray:
    """The image stored for output type ``kind``, in OpenCV's channel order (BGR / BGRA / grey)."""
    if kind == "alpha":
        return to_u16(result.alpha) if alpha_bits == 16 else to_u8(result.alpha)
    if kind == "foreground":
        return cv2.cvtColor(rgba(result.foreground, to_u8(result.alpha)), cv2.COLOR_RGBA2BGRA)
    if kind == "composite":
        return cv2.cvtColor(result.composite, cv2.COLOR_RGB2BGR)
    return to_u8(getattr(result, kind))          # error, refinement


def _write_bytes(path: str, data: bytes) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)
    atomic_write(path, write)


def output_path(fmt: str, out: str, kind: str, codec: str = "h264", suffix: str = "") -> str:
    """Where output type ``kind`` goes: OUT/<kind><suffix> (png folder), OUT/<kind><suffix><ext>
    (video file); a bag is OUT itself."""
    if fmt == "png":
        return os.path.join(out, kind + suffix)
    if fmt == "video":
        return os.path.join(out, kind + suffix + VIDEO_CODECS[codec].extension)
    return out


def check_video_size(codec: str, size: Tuple[int, int]) -> None:
    """OfflineError when ``codec`` cannot store frames of ``size`` (H, W)."""
    h, w = size
    if VIDEO_CODECS[codec].even_size and (h % 2 or w % 2):
        raise OfflineError(f"video codec {codec} needs an even width and height, frames are {w}x{h}; "
                           "use --video-codec png or prores")


class PngWriter:
    """OUT/<type><suffix>/<frame name>.png for each type."""

    def __init__(self, out: str, types: Sequence[str], alpha_bits: int = 8, suffix: str = ""):
        self.types, self.alpha_bits = tuple(types), alpha_bits
        self.folders = {t: output_path("png", out, t, suffix=suffix) for t in self.types}
        for folder in self.folders.values():
            os.makedirs(folder, exist_ok=True)

    def write(self, result: Result) -> None:
        for t in self.types:
            ok, buf = cv2.imencode(".png", png_image(t, result, self.alpha_bits))
            if not ok:
                raise OfflineError(f"PNG encoding of {t} frame {result.frame.name} failed")
            _write_bytes(os.path.join(self.folders[t], result.frame.name + ".png"), buf.tobytes())

    def close(self) -> None:
        pass


class VideoWriter:
    """OUT/<type><suffix><ext> for each type, encoded with ``codec`` (a VIDEO_CODECS key) at ``fps``."""

    def __init__(self, out: str, types: Sequence[str], codec: str, fps: float, size: Tuple[int, int],
                 suffix: str = ""):
        import av
        c = VIDEO_CODECS[codec]
        check_video_size(codec, size)
        h, w = size
        os.makedirs(out, exist_ok=True)
        self.codec, self.types = c, tuple(types)
        rate = Fraction(fps).limit_denominator(100_000)
        self._containers, self._streams, self._n = {}, {}, 0
        try:
            for t in self.types:
                container = av.open(output_path("video", out, t, codec, suffix), mode="w")
                self._containers[t] = container
                stream = container.add_stream(c.encoder, rate=rate)
                stream.width, stream.height = w, h
                stream.pix_fmt = self._pixel_format(t)
                stream.time_base = 1 / rate
                stream.options = dict(c.options)
                self._streams[t] = stream
        except (OSError, av.FFmpegError, ValueError) as e:
            self._close_all()
            raise OfflineError(f"cannot open {codec} video output in {out}: {e}") from None

    def _pixel_format(self, kind: str) -> str:
        c = self.codec
        if kind == "foreground" and c.alpha_format:
            return c.alpha_format
        return c.grey_format if kind in ("alpha", "error", "refinement") else c.rgb_format

    def _frame(self, kind: str, result: Result):
        import av
        if kind == "foreground" and self.codec.alpha_format:
            return av.VideoFrame.from_ndarray(rgba(result.foreground, to_u8(result.alpha)), format="rgba")
        value = getattr(result, kind)
        if value.ndim == 3:
            return av.VideoFrame.from_ndarray(value, format="rgb24")
        return av.VideoFrame.from_ndarray(to_u8(value), format="gray")

    def write(self, result: Result) -> None:
        import av
        for t in self.types:
            frame = self._frame(t, result)
            frame.pts = self._n
            stream = self._streams[t]
            try:
                self._containers[t].mux(stream.encode(frame.reformat(format=stream.pix_fmt)))
            except av.FFmpegError as e:
                raise OfflineError(f"encoding frame {result.frame.name} of the {t} video failed: {e}") from None
        self._n += 1

    def _close_all(self) -> None:
        import av
        failed = None
        for t, container in self._containers.items():
            stream = self._streams.get(t)
            try:
                if stream is not None and self._n:
                    container.mux(stream.encode(None))        # flush the encoder's delayed frames
                container.close()
            except (OSError, av.FFmpegError) as e:             # a full disk shows here too
                failed = failed or OfflineError(f"finishing the {t} video failed: {e}")
        self._containers = {}
        if failed is not None:
            raise failed

    def close(self) -> None:
        self._close_all()


def open_writer(fmt: str, out: str, types: Sequence[str], source, alpha_bits: int = 8, codec: str = "h264",
                fps: Optional[float] = None, bag_storage: Optional[str] = None, suffix: str = ""):
    """The writer of format ``fmt`` for frames of ``source`` (an opened input); ``out``: the output
    folder (png, video; each type's name gets ``suffix``) or the bag's path."""
    if fmt == "png":
        return PngWriter(out, types, alpha_bits, suffix)
    if fmt == "video":
        return VideoWriter(out, types, codec, fps or source.fps or 30.0, source.size, suffix)
    if source.kind != "bag":
        raise OfflineError("--format bag needs a rosbag2 input (it copies the input's topics)")
    from .bags import BagOutput
    return BagOutput(out, bag_storage or source.storage, source.connections, types, alpha_bits)
