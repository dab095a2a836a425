"""Tiny inputs for the offline matting tests, made on the spot: a model file, scenes as PNG folders,
videos written with PyAV and rosbag2 recordings written with rosbags."""
import os
from typing import List, Sequence, Tuple

import cv2
import numpy as np

from matte_ros.core.synthetic import SceneSequence

H, W = 64, 96          # small enough for seconds, large enough for the backbone at scale 0.5


def save_model(path: str) -> str:
    """A random-weights MobileNetV2 MattingRefine as .safetensors (coarse pass at scale 0.5)."""
    from matte_ros.core.model import save_safetensors
    save_safetensors(path, tiny_model())
    return path


def tiny_model():
    """Random weights, with the decoder's alpha and error outputs moved to mid-range so that alpha,
    the error map and the refined patches all vary over the frame."""
    import torch

    from matte_ros.core.model import MattingRefine
    torch.manual_seed(0)
    model = MattingRefine("mobilenetv2", backbone_scale=0.5, refine_sample_pixels=512).eval()
    with torch.no_grad():
        model.decoder.conv4.bias[0] += 0.5
        model.decoder.conv4.bias[4] += 0.5
    return model


def scene(n: int, h: int = H, w: int = W, seed: int = 3) -> Tuple[np.ndarray, List[np.ndarray]]:
    """(plate, [n frames]) of a synthetic scene, (h, w, 3) uint8 RGB."""
    seq = SceneSequence(h, w, seed=seed)
    return seq.background(), [seq.frame(i)[0] for i in range(n)]


def write_pngs(folder: str, images: Sequence[np.ndarray], prefix: str = "f") -> List[str]:
    os.makedirs(folder, exist_ok=True)
    paths = []
    for i, img in enumerate(images):
        paths.append(os.path.join(folder, f"{prefix}{i:03d}.png"))
        cv2.imwrite(paths[-1], cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return paths


def write_video(path: str, images: Sequence[np.ndarray], fps: int = 10, codec: str = "png") -> None:
    """A lossless (PNG codec) .mov, so decoded frames equal the images; or ``codec`` libx264 (mp4, mkv).
    MP4 and MOV get their index first (faststart), so a file cut short still declares every frame."""
    import av
    options = {"movflags": "faststart"} if path.endswith((".mov", ".mp4")) else {}
    with av.open(path, mode="w", options=options) as c:
        s = c.add_stream(codec, rate=fps)
        s.height, s.width = images[0].shape[:2]
        s.pix_fmt = "rgb24" if codec == "png" else "yuv420p"
        for img in images:
            c.mux(s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        c.mux(s.encode(None))


def read_video(path: str, fmt: str = "rgb24") -> List[np.ndarray]:
    import av
    with av.open(path) as c:
        return [f.to_ndarray(format=fmt) for f in c.decode(c.streams.video[0])]


STAMP0 = 1_700_000_000          # header stamps (s) of the recorded frames: STAMP0 + i / 10
NOTE_TOPIC = "/note"


def image_msg(types, rgb: np.ndarray, i: int, encoding: str = "rgb8"):
    t = types.types
    header = t["std_msgs/msg/Header"](stamp=t["builtin_interfaces/msg/Time"](sec=STAMP0 + i // 10,
                                                                             nanosec=(i % 10) * 100_000_000),
                                      frame_id="camera")
    img = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if encoding == "bgr8" else rgb
    return t["sensor_msgs/msg/Image"](header=header, height=rgb.shape[0], width=rgb.shape[1], encoding=encoding,
                                      is_bigendian=0, step=img.shape[1] * img.shape[2],
                                      data=np.ascontiguousarray(img).reshape(-1))


def write_bag(path: str, images: Sequence[np.ndarray], storage: str = "sqlite3", topic: str = "/camera/image",
              encoding: str = "rgb8", compressed: bool = False, corrupt: Sequence[int] = (),
              huge: Sequence[int] = ()) -> List[int]:
    """A rosbag2 with ``images`` on ``topic`` (Image in ``encoding``, or CompressedImage png) and a
    std_msgs/String on NOTE_TOPIC between frames; bag timestamps differ from the header stamps.
    The image messages at the indices in ``corrupt`` are stored as a few bytes that are no message,
    those in ``huge`` declare 60000x60000 pixels (an Image's height and width, a PNG's header).
    Returns the bag timestamps (ns) of the image messages."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore
    ts = get_typestore(Stores.ROS2_JAZZY)
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    kind = "sensor_msgs/msg/CompressedImage" if compressed else "sensor_msgs/msg/Image"
    stamps = []
    with Writer(path, version=9, storage_plugin=plugin) as w:
        conn = w.add_connection(topic, kind, typestore=ts)
        note = w.add_connection(NOTE_TOPIC, "std_msgs/msg/String", typestore=ts)
        for i, rgb in enumerate(images):
            msg = image_msg(ts, rgb, i, encoding)
            if compressed:
                data = np.frombuffer(cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1], np.uint8)
                if i in huge:
                    data = np.frombuffer(png_declaring(60000, 60000), np.uint8)
                msg = ts.types[kind](header=msg.header, format="rgb8; png compressed bgr8", data=data)
            elif i in huge:
                msg.height = msg.width = 60000
            stamps.append(5_000_000_000 + i * 50_000_000)
            data = b"\x00\x01\x00\x00\xff\xff" if i in corrupt else ts.serialize_cdr(msg, kind)
            w.write(conn, stamps[-1], data)
            w.write(note, stamps[-1] + 1, ts.serialize_cdr(ts.types["std_msgs/msg/String"](data=f"n{i}"),
                                                           "std_msgs/msg/String"))
    return stamps


def read_bag(path: str):
    """{topic: [(bag timestamp, message)]} of a rosbag2."""
    from rosbags.rosbag2 import Reader
    from rosbags.typesys import Stores, get_typestore
    ts = get_typestore(Stores.ROS2_JAZZY)
    out = {}
    with Reader(path) as r:
        for conn, t, data in r.messages():
            out.setdefault(conn.topic, []).append((t, ts.deserialize_cdr(data, conn.msgtype)))
    return out


def drop_bag_messages(path: str, keep: int) -> None:
    """Delete all but the first ``keep`` image messages of a sqlite3 bag written by write_bag; its
    metadata still declares them all (a bag cut short)."""
    import glob
    import sqlite3
    db = glob.glob(os.path.join(path, "*.db3"))[0]
    with sqlite3.connect(db) as con:
        topic_id = con.execute("SELECT id FROM topics WHERE name = '/camera/image'").fetchone()[0]
        ids = [r[0] for r in con.execute("SELECT id FROM messages WHERE topic_id = ? ORDER BY timestamp", (topic_id,))]
        con.executemany("DELETE FROM messages WHERE id = ?", [(i,) for i in ids[keep:]])
    con.close()


def png_declaring(w: int, h: int) -> bytes:
    """A PNG whose IHDR declares w x h, holding two rows only (a few hundred bytes)."""
    import struct
    import zlib

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    rows = zlib.compress(b"\x00" * (w * 3 + 1) * 2)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", rows) + chunk(b"IEND", b""))


def checksums(*roots) -> dict:
    """{path: sha256} of every file at or below each of ``roots``: what a run must leave unchanged."""
    import hashlib
    out = {}
    for root in map(str, roots):
        paths = [root] if os.path.isfile(root) else [os.path.join(t, n) for t, _, ns in os.walk(root) for n in ns]
        for p in paths:
            with open(p, "rb") as f:
                out[p] = hashlib.sha256(f.read()).hexdigest()
    return out

