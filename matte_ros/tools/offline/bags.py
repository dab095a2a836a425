"""rosbag2 input and output through the pure-Python ``rosbags`` library (sqlite3 and MCAP; no ROS install).

Input: one image topic (sensor_msgs/msg/Image in rgb8, bgr8, rgba8, bgra8, mono8, mono16, or
sensor_msgs/msg/CompressedImage in any format OpenCV decodes), optionally with every other message
passed through. Output: a new rosbag2 with the input's messages plus ``/matte/<type>`` Images
(alpha mono8 or mono16, foreground / composite rgb8, error / refinement mono8) carrying the input
image's header (stamp, frame_id) and bag timestamp.
"""
import os
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from matte_ros.core.cli import describe_error
from matte_ros.core.image_header import ImageHeaderError, image_size

from .convert import to_u8, to_u16
from .frames import Frame, OfflineError, RawMessage, Result, Stamp
from .readers import check_pixels, opencv_reason, shortfall_problem

__all__ = ["IMAGE_TYPE", "COMPRESSED_TYPE", "ENCODINGS", "MATTE_TOPIC_PREFIX", "typestore", "image_to_rgb",
           "compressed_to_rgb", "BagInput", "BagOutput"]

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
MATTE_TOPIC_PREFIX = "/matte/"
# encoding -> (channels, bytes per channel, OpenCV conversion to RGB or None)
_LAYOUTS = {"rgb8": (3, 1, None), "bgr8": (3, 1, cv2.COLOR_BGR2RGB), "rgba8": (4, 1, cv2.COLOR_RGBA2RGB),
            "bgra8": (4, 1, cv2.COLOR_BGRA2RGB), "mono8": (1, 1, cv2.COLOR_GRAY2RGB),
            "mono16": (1, 2, cv2.COLOR_GRAY2RGB)}
ENCODINGS = tuple(_LAYOUTS)


def typestore():
    """The ROS 2 Jazzy message types of rosbags (sensor_msgs, std_msgs, ...)."""
    from rosbags.typesys import Stores, get_typestore
    return get_typestore(Stores.ROS2_JAZZY)


def image_to_rgb(msg, max_pixels: Optional[int] = None) -> np.ndarray:
    """A deserialized sensor_msgs/msg/Image (fields height, width, encoding, is_bigendian, step,
    data) -> (H, W, 3) uint8 RGB, a new array. OfflineError for unsupported encodings, bad sizes or
    more than ``max_pixels`` pixels (checked before any conversion)."""
    enc, h, w, step = msg.encoding, int(msg.height), int(msg.width), int(msg.step)
    check_pixels(w, h, max_pixels, f"{enc} image")
    if enc not in _LAYOUTS:
        raise OfflineError(f"unsupported image encoding {enc!r}; supported: {', '.join(ENCODINGS)} "
                           "and sensor_msgs/CompressedImage")
    channels, itemsize, code = _LAYOUTS[enc]
    row = w * channels * itemsize
    data = np.asarray(msg.data, dtype=np.uint8).reshape(-1)
    if h == 0 or w == 0:
        raise OfflineError(f"{enc} image has zero size ({w}x{h})")
    if step < row or data.size < step * h:
        raise OfflineError(f"{enc} image {w}x{h}: step {step} and {data.size} data bytes do not hold "
                           f"{h} rows of {row} bytes")
    rows = data[:step * h].reshape(h, step)[:, :row]
    if itemsize == 2:
        words = np.ascontiguousarray(rows).view(">u2" if msg.is_bigendian else "<u2").astype(np.uint16)
        img = cv2.convertScaleAbs(words.reshape(h, w), alpha=1.0 / 257)        # 65535 -> 255, rounded
    else:
        img = rows.reshape(h, w, channels)
        if channels == 1:
            img = img[:, :, 0]
    return np.array(img, order="C") if code is None else cv2.cvtColor(np.ascontiguousarray(img), code)


def compressed_to_rgb(msg, max_pixels: Optional[int] = None) -> np.ndarray:
    """A deserialized sensor_msgs/msg/CompressedImage (jpeg, png, ...) -> (H, W, 3) uint8 RGB. The
    size its header declares is checked against ``max_pixels`` before decoding."""
    fmt = msg.format or "(no format)"
    if "compresseddepth" in fmt.lower():
        raise OfflineError(f"CompressedImage format {fmt!r} is a depth image, not a colour image")
    data = np.asarray(msg.data, dtype=np.uint8).reshape(-1)
    try:
        size = image_size(data)
    except ImageHeaderError as e:
        raise OfflineError(f"CompressedImage ({fmt}, {data.size} bytes) could not be decoded: {e}") from None
    check_pixels(size.width, size.height, max_pixels, f"CompressedImage ({fmt}) declaring a {size.kind} image")
    try:
        img = cv2.imdecode(data, cv2.IMREAD_COLOR_RGB)
    except cv2.error as e:
        raise OfflineError(f"CompressedImage ({fmt}, {data.size} bytes) could not be decoded: "
                           f"OpenCV: {opencv_reason(e)}") from None
    if img is None:
        raise OfflineError(f"CompressedImage ({fmt}, {data.size} bytes) could not be decoded")
    return img


def _open_reader(path: str):
    from rosbags.rosbag2 import Reader
    from rosbags.rosbag2.errors import ReaderError
    try:
        reader = Reader(path)
        reader.open()
    except (ReaderError, OSError, KeyError, ValueError) as e:
        raise OfflineError(f"cannot read rosbag2 {path}: {e}") from None
    return reader


class BagInput:
    """The image topic of a rosbag2 (a directory with metadata.yaml, or one .db3 / .mcap file).

    ``topic`` None picks the bag's only image topic. ``passthrough``: frames() also yields every
    other message as RawMessage, in bag order, and each Frame carries its own message in ``raw``.
    ``count`` is the topic's message count from the bag's metadata: a full pass that decodes fewer is
    an OfflineError at its end, or with ``allow_truncated`` a note in ``shortfall``.
    """

    kind = "bag"

    def __init__(self, path: str, topic: Optional[str] = None, passthrough: bool = False,
                 max_pixels: Optional[int] = None, allow_truncated: bool = False):
        self.path, self.passthrough = path, passthrough
        self.max_pixels, self.allow_truncated = max_pixels, allow_truncated
        self.shortfall: Optional[str] = None
        self.types = typestore()
        reader = _open_reader(path)
        try:
            self.connections = list(reader.connections)
            images = sorted({c.topic for c in self.connections if c.msgtype in (IMAGE_TYPE, COMPRESSED_TYPE)})
            self.topic = _choose_topic(path, topic, images, sorted({c.topic for c in self.connections}))
            self._topic_conns = [c for c in self.connections if c.topic == self.topic]
            self.count: Optional[int] = sum(c.msgcount for c in self._topic_conns) or None
            self.start_ns = reader.start_time
            span = (reader.end_time - reader.start_time) / 1e9
            self.fps: Optional[float] = (self.count - 1) / span if self.count and self.count > 1 and span > 0 else None
            self.storage = "mcap" if _is_mcap(path) else "sqlite3"
        finally:
            reader.close()
        first = next(self.frames(with_others=False), None)
        if first is None:
            raise OfflineError(f"topic {self.topic} of {path} has no messages")
        self.size: Tuple[int, int] = first.rgb.shape[:2]

    def decode(self, connection, data: bytes, index: int) -> Tuple[np.ndarray, Stamp]:
        """One serialized message of the image topic -> (rgb, header stamp)."""
        try:
            msg = self.types.deserialize_cdr(data, connection.msgtype)
        except Exception as e:          # rosbags raises several types for corrupt data
            raise OfflineError(f"message {index} on {self.topic} cannot be deserialized: {e}") from None
        try:
            rgb = (compressed_to_rgb(msg, self.max_pixels) if connection.msgtype == COMPRESSED_TYPE
                   else image_to_rgb(msg, self.max_pixels))
        except OfflineError as e:
            raise OfflineError(f"message {index} on {self.topic}: {e}") from None
        s = msg.header.stamp
        return rgb, Stamp(int(s.sec), int(s.nanosec), str(msg.header.frame_id))

    def frames(self, with_others: Optional[bool] = None) -> Iterator:
        """Frames of the topic in bag order (and RawMessages of the other topics with passthrough)."""
        others = self.passthrough if with_others is None else with_others
        reader = _open_reader(self.path)
        i = 0
        try:
            for conn, ts, data in reader.messages(connections=self.connections if others else self._topic_conns):
                raw = RawMessage(conn, ts, bytes(data)) if others else None
                if conn.topic != self.topic:
                    yield raw
                    continue
                rgb, stamp = self.decode(conn, data, i)
                yield Frame(i, f"{i:06d}", rgb, (ts - self.start_ns) / 1e9, stamp, raw)
                i += 1
        except OfflineError:
            raise
        except Exception as e:          # a damaged file: sqlite3 / mcap errors of several types
            raise OfflineError(f"cannot read rosbag2 {self.path} after {i} messages on {self.topic}: "
                               f"{describe_error(e)}") from None
        finally:
            reader.close()
        problem = shortfall_problem(f"rosbag2 {self.path} ({self.topic})", i, self.count)
        if problem and not self.allow_truncated:
            raise OfflineError(f"{problem}; pass --allow-truncated to matte the frames it holds")
        self.shortfall = problem


def _is_mcap(path: str) -> bool:
    if os.path.isdir(path):
        return any(n.endswith(".mcap") for n in os.listdir(path))
    return path.lower().endswith(".mcap")


def _choose_topic(path: str, topic: Optional[str], images: List[str], topics: List[str]) -> str:
    if not images:
        raise OfflineError(f"rosbag2 {path} has no image topics (sensor_msgs Image or CompressedImage); "
                           f"its topics: {', '.join(topics) or 'none'}")
    if topic is None:
        if len(images) > 1:
            raise OfflineError(f"rosbag2 {path} has several image topics: {', '.join(images)}; choose one with --topic")
        return images[0]
    if topic not in images:
        raise OfflineError(f"rosbag2 {path} has no image topic {topic}; its image topics: {', '.join(images)}")
    return topic


# ---- output ------------------------------------------------------------------------------------
def _image_fields(kind: str, value: np.ndarray, alpha_bits: int) -> Tuple[str, int, np.ndarray]:
    """An output value -> (encoding, step, flat uint8 data) of a sensor_msgs/Image."""
    if value.ndim == 3:
        return "rgb8", 3 * value.shape[1], np.ascontiguousarray(value).reshape(-1)
    if kind == "alpha" and alpha_bits == 16:
        return "mono16", 2 * value.shape[1], to_u16(value).astype("<u2").view(np.uint8).reshape(-1)
    return "mono8", value.shape[1], to_u8(value).reshape(-1)


class BagOutput:
    """A new rosbag2 at ``path`` (refused if it exists) in ``storage`` (sqlite3 or mcap) holding the
    passed-through messages and ``/matte/<type>`` for each of ``types``. Close it to write metadata.yaml.
    The bag is opened by the first write (or close), so one thread must do all of them."""

    def __init__(self, path: str, storage: str, connections: Sequence, types: Sequence[str], alpha_bits: int = 8):
        from rosbags.rosbag2 import StoragePlugin, Writer
        from rosbags.rosbag2.errors import WriterError
        self.types_store = typestore()
        self.path, self.kinds, self.alpha_bits = path, tuple(types), alpha_bits
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        try:
            self.writer = Writer(path, version=9, storage_plugin=plugin)      # checks the path; opened on first use
        except (WriterError, OSError) as e:
            raise OfflineError(f"cannot create rosbag2 {path}: {e}") from None
        self.connections = connections
        self._out: Dict[Tuple[str, str], object] = {}
        self._matte: Dict[str, object] = {}
        self._opened = False

    def _open(self) -> None:
        """Open the bag and add its connections, in the thread that will write it."""
        self.writer.open()
        for c in self.connections:
            key = (c.topic, c.msgtype)
            if key in self._out:
                continue
            msgdef, digest = c.msgdef.data, c.digest
            if not (msgdef and digest):                   # older bags store no definition: use the typestore's
                msgdef, digest = None, None
            ext = c.ext
            self._out[key] = self.writer.add_connection(
                c.topic, c.msgtype, typestore=self.types_store, msgdef=msgdef, rihs01=digest,
                serialization_format=getattr(ext, "serialization_format", "cdr"),
                offered_qos_profiles=getattr(ext, "offered_qos_profiles", ()))
        self._matte = {k: self.writer.add_connection(MATTE_TOPIC_PREFIX + k, IMAGE_TYPE, typestore=self.types_store)
                       for k in self.kinds}
        self._opened = True

    def write_raw(self, raw: RawMessage) -> None:
        if not self._opened:
            self._open()
        self._write(self._out[(raw.connection.topic, raw.connection.msgtype)], raw.timestamp, raw.data)

    def _write(self, connection, timestamp: int, data) -> None:
        try:
            self.writer.write(connection, timestamp, data)
        except Exception as e:          # sqlite3.Error (disk full), OSError, rosbags' WriterError
            raise OfflineError(f"writing rosbag2 {self.path} failed: {describe_error(e)}") from None

    def write(self, result: Result) -> None:
        f = result.frame
        if not self._opened:
            self._open()
        if f.raw is not None:
            self.write_raw(f.raw)
        t = self.types_store.types
        stamp = t["builtin_interfaces/msg/Time"](sec=f.stamp.sec, nanosec=f.stamp.nanosec)
        header = t["std_msgs/msg/Header"](stamp=stamp, frame_id=f.stamp.frame_id)
        h, w = f.rgb.shape[:2]
        stamp_ns = f.raw.timestamp if f.raw is not None else f.stamp.sec * 1_000_000_000 + f.stamp.nanosec
        for kind in self.kinds:
            enc, step, data = _image_fields(kind, getattr(result, kind), self.alpha_bits)
            msg = t[IMAGE_TYPE](header=header, height=h, width=w, encoding=enc, is_bigendian=0, step=step, data=data)
            self._write(self._matte[kind], stamp_ns, self.types_store.serialize_cdr(msg, IMAGE_TYPE))

    def close(self) -> None:
        try:
            if not self._opened:
                self._open()
            self.writer.close()
        except Exception as e:          # sqlite3.Error (disk full), OSError
            raise OfflineError(f"closing rosbag2 {self.path} failed: {describe_error(e)}") from None
