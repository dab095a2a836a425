"""sensor_msgs Image / CompressedImage <-> numpy arrays, with as few copies as the layout allows.

Input: rgb8 and rgba8 become views of ``msg.data`` (row padding from ``step`` kept as a stride);
bgr8, bgra8, mono8, mono16 and YUV 4:2:2 take one OpenCV conversion. YUV 4:2:2 uses the ROS
encoding names ``uyvy`` (alias ``yuv422``, bytes U Y0 V Y1) and ``yuyv`` (alias ``yuv422_yuy2``,
bytes Y0 U Y1 V), converted with ITU-R BT.601 video-range coefficients. A working ROS 2
``cv_bridge`` (checked by a round trip before it is trusted) adds the encodings it knows beyond
these; the PyPI ``cv-bridge`` package is a broken ROS 1 port and is then simply not used.
Compressed input is PNG or JPEG: the size its header declares (IHDR, SOF; read by
core/image_header.py, shared with the offline tool) is checked against the caller's pixel limit
before anything is decoded; raw frames are checked the same way.

Output: ``msg.data`` is filled from the array's buffer with one copy into an ``array.array`` that
is stored without the generated setter's second copy.
"""
import array
import functools
import sys
from typing import Optional, Tuple

import cv2
import numpy as np
from sensor_msgs.msg import CompressedImage, Image

from matte_ros.core.image_header import ImageHeaderError, image_size

__all__ = ["ImageFormatError", "FrameTooLargeError", "ENCODINGS", "ALPHA_ENCODINGS", "FOREGROUND_ENCODINGS",
           "RGB_ENCODINGS", "image_to_rgb", "compressed_to_rgb", "compressed_size", "alpha_to_msg",
           "foreground_to_msg", "rgb_to_msg", "msg_to_alpha"]


class ImageFormatError(ValueError):
    """A malformed or unsupported image message; the message says what is wrong."""


class FrameTooLargeError(ImageFormatError):
    """A frame with more pixels than allowed, found from its header before any conversion or decoding."""


# encoding -> (channels, bytes per channel); YUV 4:2:2 stores 2 bytes per pixel
_LAYOUTS = {"rgb8": (3, 1), "bgr8": (3, 1), "rgba8": (4, 1), "bgra8": (4, 1), "mono8": (1, 1), "mono16": (1, 2),
            "uyvy": (2, 1), "yuv422": (2, 1), "yuyv": (2, 1), "yuv422_yuy2": (2, 1)}
ENCODINGS = tuple(_LAYOUTS)
ALPHA_ENCODINGS = ("mono8", "32FC1")
FOREGROUND_ENCODINGS = ("rgb8", "bgra8")
RGB_ENCODINGS = ("rgb8", "bgr8")
COMPRESSED_FORMATS = ("png", "jpeg")     # image_header names of what CompressedImage input may be

_TO_RGB = {"bgr8": cv2.COLOR_BGR2RGB, "bgra8": cv2.COLOR_BGRA2RGB, "mono8": cv2.COLOR_GRAY2RGB,
           "uyvy": cv2.COLOR_YUV2RGB_UYVY, "yuv422": cv2.COLOR_YUV2RGB_UYVY,
           "yuyv": cv2.COLOR_YUV2RGB_YUY2, "yuv422_yuy2": cv2.COLOR_YUV2RGB_YUY2}
_NATIVE_BIG = sys.byteorder == "big"


def _view(msg: Image, channels: int, itemsize: int, kind: str = "u") -> np.ndarray:
    """(H, W, channels) view of msg.data honouring step and is_bigendian; ImageFormatError if the
    header does not fit the data."""
    h, w, step, enc = msg.height, msg.width, msg.step, msg.encoding
    if h == 0 or w == 0:
        raise ImageFormatError(f"{enc} image has zero size ({w}x{h})")
    row = w * channels * itemsize
    if step < row:
        raise ImageFormatError(f"{enc} image {w}x{h}: step {step} is smaller than width x bytes per pixel = {row}")
    size = len(msg.data)
    if size < step * h:
        raise ImageFormatError(f"{enc} image {w}x{h}: data has {size} bytes, expected step x height = {step * h} "
                               "(truncated message)")
    order = ">" if msg.is_bigendian else "<"
    dtype = np.dtype(f"{order}{kind}{itemsize}") if itemsize > 1 else np.dtype(np.uint8)
    return np.ndarray((h, w, channels), dtype, buffer=msg.data, strides=(step, channels * itemsize, itemsize))


def _check_pixels(width: int, height: int, max_pixels: Optional[int], what: str) -> None:
    if max_pixels is not None and width * height > max_pixels:
        raise FrameTooLargeError(f"{what} of {width}x{height} = {width * height} pixels is larger than the limit "
                                 f"of {max_pixels} pixels (max_frame_pixels)")


def image_to_rgb(msg: Image, max_pixels: Optional[int] = None) -> np.ndarray:
    """sensor_msgs/Image -> (H, W, 3) uint8 RGB; for rgb8 and rgba8 a view sharing msg.data's
    memory (numpy keeps that buffer alive), else the result of one conversion. A frame of more
    than ``max_pixels`` pixels raises FrameTooLargeError before any conversion."""
    _check_pixels(msg.width, msg.height, max_pixels, f"{msg.encoding} image")
    enc = msg.encoding
    if enc not in _LAYOUTS:
        return _bridge_to_rgb(msg)
    if enc in ("uyvy", "yuv422", "yuyv", "yuv422_yuy2") and msg.width % 2:
        raise ImageFormatError(f"{enc} image has odd width {msg.width}: YUV 4:2:2 pairs of pixels share chroma")
    v = _view(msg, *_LAYOUTS[enc])
    if enc in ("rgb8", "rgba8"):
        return v[:, :, :3]
    if enc == "mono16":
        if not (v.flags.aligned and v.dtype.isnative):      # OpenCV reads only native, aligned words
            v = v.astype(np.uint16)
        v = cv2.convertScaleAbs(v, alpha=1.0 / 257)                 # 65535 -> 255, rounded
        return cv2.cvtColor(v, cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(v[:, :, 0] if enc == "mono8" else v, _TO_RGB[enc])


def compressed_size(data) -> Tuple[str, int, int]:
    """(kind "png" or "jpeg", width, height) declared by the header of PNG (IHDR) or JPEG (SOF)
    data, read without decoding (core/image_header.py); ImageFormatError for anything else."""
    try:
        return tuple(image_size(data, COMPRESSED_FORMATS))
    except ImageHeaderError as e:
        raise ImageFormatError(str(e)) from None


def compressed_to_rgb(msg: CompressedImage, max_pixels: Optional[int] = None) -> np.ndarray:
    """sensor_msgs/CompressedImage (PNG or JPEG) -> (H, W, 3) uint8 RGB. The size the header declares
    is checked first: zero, or more than ``max_pixels`` pixels (FrameTooLargeError), is refused
    before decoding, so a small message cannot make the node decode a huge frame."""
    fmt = msg.format or "(no format)"
    if "compresseddepth" in fmt.lower():
        raise ImageFormatError(f"CompressedImage format {fmt!r} is a depth image, not a colour image")
    if len(msg.data) == 0:
        raise ImageFormatError(f"CompressedImage ({fmt}) has no data")
    try:
        kind, w, h = compressed_size(msg.data)
    except ImageFormatError as e:
        raise ImageFormatError(f"CompressedImage ({fmt}, {len(msg.data)} bytes) could not be decoded: {e}") from None
    if w == 0 or h == 0:
        raise ImageFormatError(f"CompressedImage ({fmt}) declares a zero size ({w}x{h})")
    _check_pixels(w, h, max_pixels, f"CompressedImage ({fmt}) declaring a {kind} image")
    buf = np.frombuffer(msg.data, np.uint8)
    rgb_flag = getattr(cv2, "IMREAD_COLOR_RGB", None)
    try:
        img = cv2.imdecode(buf, cv2.IMREAD_COLOR if rgb_flag is None else rgb_flag)
    except cv2.error as e:
        raise ImageFormatError(f"CompressedImage ({fmt}, {len(msg.data)} bytes) could not be decoded: "
                               f"{str(e).strip().splitlines()[-1]}") from None
    if img is None or img.shape[:2] not in ((h, w), (w, h)):      # (w, h): JPEG EXIF orientation applied
        raise ImageFormatError(f"CompressedImage ({fmt}, {len(msg.data)} bytes) could not be decoded")
    return img if rgb_flag is not None else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def alpha_to_msg(alpha: np.ndarray, header, encoding: str = "mono8") -> Image:
    """alpha: (H, W) float 0..1 -> Image in mono8 (rounded, saturated) or 32FC1."""
    if encoding not in ALPHA_ENCODINGS:
        raise ValueError(f"alpha encoding must be one of {', '.join(ALPHA_ENCODINGS)}, got {encoding!r}")
    alpha = _check_array(alpha, 2, "alpha")
    h, w = alpha.shape
    if encoding == "mono8":
        return _image(header, h, w, "mono8", w, _alpha_u8(alpha))
    data = np.ascontiguousarray(alpha, dtype=np.float32)
    return _image(header, h, w, "32FC1", 4 * w, data, bigendian=_NATIVE_BIG)


def foreground_to_msg(fgr: np.ndarray, header, encoding: str = "rgb8", alpha: Optional[np.ndarray] = None) -> Image:
    """fgr: (H, W, 3) uint8 RGB -> Image in rgb8, or bgra8 carrying ``alpha`` ((H, W) float 0..1
    or uint8) as its fourth channel."""
    if encoding not in FOREGROUND_ENCODINGS:
        raise ValueError(f"foreground encoding must be one of {', '.join(FOREGROUND_ENCODINGS)}, got {encoding!r}")
    fgr = _check_array(fgr, 3, "foreground")
    h, w = fgr.shape[:2]
    if encoding == "rgb8":
        return _image(header, h, w, "rgb8", 3 * w, fgr)
    if alpha is None:
        raise ValueError("foreground encoding bgra8 carries the alpha: pass alpha=")
    a8 = _alpha_u8(alpha)
    if a8.shape != (h, w):
        raise ValueError(f"alpha shape {a8.shape} does not match the foreground's {(h, w)}")
    out = np.empty((h, w, 4), np.uint8)
    cv2.mixChannels([np.ascontiguousarray(fgr), a8], [out], [0, 2, 1, 1, 2, 0, 3, 3])
    return _image(header, h, w, "bgra8", 4 * w, out)


def rgb_to_msg(rgb: np.ndarray, header, encoding: str = "rgb8") -> Image:
    """rgb: (H, W, 3) uint8 RGB -> Image in rgb8 or bgr8."""
    if encoding not in RGB_ENCODINGS:
        raise ValueError(f"image encoding must be one of {', '.join(RGB_ENCODINGS)}, got {encoding!r}")
    rgb = _check_array(rgb, 3, "image")
    h, w = rgb.shape[:2]
    data = rgb if encoding == "rgb8" else cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    return _image(header, h, w, encoding, 3 * w, data)


def msg_to_alpha(msg: Image) -> np.ndarray:
    """Image in mono8 or 32FC1 -> (H, W) float32 alpha 0..1."""
    if msg.encoding == "mono8":
        return _view(msg, 1, 1)[:, :, 0].astype(np.float32) / 255
    if msg.encoding == "32FC1":
        return _view(msg, 1, 4, "f")[:, :, 0].astype(np.float32)
    raise ImageFormatError(f"alpha image must be mono8 or 32FC1, got {msg.encoding!r}")


# ---- helpers --------------------------------------------------------------------------------
def _check_array(x: np.ndarray, ndim: int, what: str) -> np.ndarray:
    if not isinstance(x, np.ndarray) or x.ndim != ndim or (ndim == 3 and x.shape[2] != 3):
        shape = getattr(x, "shape", type(x).__name__)
        raise ValueError(f"{what} must be an array of shape {'(H, W)' if ndim == 2 else '(H, W, 3)'}, got {shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{what} is empty: shape {x.shape}")
    if ndim == 3 and x.dtype != np.uint8:
        raise ValueError(f"{what} must be uint8, got {x.dtype}")
    if ndim == 2 and x.dtype != np.uint8 and not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{what} must be float 0..1 or uint8, got {x.dtype}")
    return x


def _alpha_u8(alpha: np.ndarray) -> np.ndarray:
    """(H, W) float 0..1 (or uint8, passed through) -> uint8, rounded, out-of-range values saturated.
    convertScaleAbs is the fast convert (0.14 ms at 1920x1080 against 2.5 ms for cv2.multiply to
    uint8) but mirrors negatives, so those are zeroed first when the minimum says there are any."""
    alpha = _check_array(alpha, 2, "alpha")
    if alpha.dtype == np.uint8:
        return alpha
    alpha = alpha.astype(np.float32, copy=False)
    if cv2.minMaxLoc(alpha)[0] < 0:
        alpha = cv2.threshold(alpha, 0, 0, cv2.THRESH_TOZERO)[1]
    return cv2.convertScaleAbs(alpha, alpha=255.0)


def _image(header, h: int, w: int, encoding: str, step: int, data: np.ndarray, bigendian: bool = False) -> Image:
    msg = Image(header=header, height=h, width=w, encoding=encoding, is_bigendian=int(bigendian), step=step)
    buf = array.array("B")
    buf.frombytes(memoryview(np.ascontiguousarray(data)).cast("B"))   # the one copy when data is contiguous
    if "_data" in getattr(Image, "__slots__", ()):
        msg._data = buf        # the generated setter would copy the array once more (array.array('B', value))
    else:
        msg.data = buf
    return msg


@functools.lru_cache(maxsize=1)
def _bridge():
    """A cv_bridge.CvBridge that decodes two probe messages correctly, or None.

    The probes: rgb8 with rows padded by one whole pixel, and bgr8. (ROS 2's cv_bridge reads rows
    of ``step // bytes per pixel`` pixels: padding that is not a whole number of pixels is beyond it.)
    """
    try:
        from cv_bridge import CvBridge
        bridge = CvBridge()
        px = np.arange(2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 3)
        data = np.zeros((2, 9), np.uint8)
        data[:, :6] = px.reshape(2, 6)
        probe = Image(height=2, width=2, encoding="rgb8", step=9, data=data.tobytes())
        ok = np.array_equal(np.asarray(bridge.imgmsg_to_cv2(probe, desired_encoding="rgb8")), px)
        probe = Image(height=2, width=2, encoding="bgr8", step=6, data=px.tobytes())
        ok = ok and np.array_equal(np.asarray(bridge.imgmsg_to_cv2(probe, desired_encoding="rgb8")), px[..., ::-1])
        return bridge if ok else None
    except Exception:           # missing, or a broken port (e.g. the PyPI ROS 1 package on numpy 2)
        return None


def _bridge_to_rgb(msg: Image) -> np.ndarray:
    bridge = _bridge()
    if bridge is None:
        raise ImageFormatError(f"unsupported encoding {msg.encoding!r}; supported: {', '.join(ENCODINGS)}")
    if msg.height == 0 or msg.width == 0:
        raise ImageFormatError(f"{msg.encoding} image has zero size ({msg.width}x{msg.height})")
    try:
        rgb = np.asarray(bridge.imgmsg_to_cv2(msg, desired_encoding="rgb8"))
    except Exception as e:
        raise ImageFormatError(f"cv_bridge cannot convert {msg.encoding!r} to rgb8: {e}") from None
    if rgb.dtype != np.uint8 or rgb.shape != (msg.height, msg.width, 3):
        raise ImageFormatError(f"cv_bridge converted {msg.encoding!r} to {rgb.dtype} {rgb.shape}, not rgb8")
    return rgb
