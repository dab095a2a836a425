"""The demo's bookkeeping, without ROS: joining the node's outputs to the camera's frames by header
stamp, the numbers it prints (throughput, latency, drops, quality) and the contact sheet.

Stamps are integer nanoseconds (``rclpy.time.Time.from_msg(header.stamp).nanoseconds``).
Used by :mod:`matte_ros.tools.demo`; tested in ``test/test_demo.py`` without a running ROS graph.
"""
import json
from typing import Any, Dict, List, Mapping, Optional, Sequence

import cv2
import numpy as np

from matte_ros.core.files import atomic_write
from matte_ros.core.metrics import HAIR_BAND

__all__ = ["COLUMNS", "QUALITY_KEYS", "StampMatcher", "pick_indices", "percentile", "mean_quality", "run_summary",
           "format_summary", "alpha_u8", "contact_sheet", "write_png", "write_json"]

COLUMNS = ("input frame", "predicted alpha", "true alpha", "composite")
QUALITY_KEYS = ("sad", "mse", "grad", "conn", "hair_sad", "hair_mse")   # hair_*: matte_ros.core.metrics.hair_band


class StampMatcher:
    """Joins items of several streams that carry the same header stamp.

    ``add(stream, stamp, item)`` returns ``{stream: item}`` once every stream has delivered an item
    for ``stamp``, else None. Each stream delivers in stamp order and the node mattes frames in
    order, so when a stamp completes every older pending stamp belongs to a frame the node skipped:
    those are discarded. At most ``max_pending`` stamps wait (the oldest goes first), which bounds
    memory while the camera runs ahead of the node.
    """

    def __init__(self, streams: Sequence[str], max_pending: int = 64):
        if not streams or len(set(streams)) != len(streams):
            raise ValueError(f"streams must be distinct names, got {list(streams)}")
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {max_pending}")
        self.streams = tuple(streams)
        self.max_pending = int(max_pending)
        self._pending: Dict[int, Dict[str, Any]] = {}

    def add(self, stream: str, stamp: int, item: Any) -> Optional[Dict[str, Any]]:
        if stream not in self.streams:
            raise ValueError(f"unknown stream {stream!r}; expected one of {', '.join(self.streams)}")
        entry = self._pending.setdefault(stamp, {})
        entry[stream] = item
        if len(entry) == len(self.streams):
            del self._pending[stamp]
            for old in [s for s in self._pending if s < stamp]:
                del self._pending[old]
            return entry
        while len(self._pending) > self.max_pending:
            del self._pending[min(self._pending)]
        return None

    def __len__(self) -> int:
        """Stamps waiting for at least one stream."""
        return len(self._pending)


def pick_indices(n: int, k: int) -> List[int]:
    """Up to ``k`` indices of ``range(n)`` spread evenly, first and last included (k >= 2)."""
    if n < 0 or k < 0:
        raise ValueError(f"n and k must be >= 0, got {n} and {k}")
    if n == 0 or k == 0:
        return []
    if k == 1:
        return [0]
    return sorted({int(round(x)) for x in np.linspace(0, n - 1, min(k, n))})


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between order statistics; NaN when empty."""
    if not 0 <= q <= 100:
        raise ValueError(f"q must be in 0..100, got {q}")
    return float(np.percentile(np.asarray(values, np.float64), q)) if len(values) else float("nan")


def mean_quality(rows: Sequence[Mapping[str, float]]) -> Dict[str, float]:
    """The mean of each of QUALITY_KEYS over the frames' rows."""
    return {k: float(np.mean([r[k] for r in rows])) if len(rows) else float("nan") for k in QUALITY_KEYS}


def run_summary(stamps: Sequence[int], received: Sequence[int], camera_stamps: Sequence[int],
              output_stamps: Sequence[int], quality: Mapping[str, float]) -> Dict[str, Any]:
    """The demo's numbers for the collected frames.

    stamps / received: header stamp and receipt time (ns, same clock) of each collected output;
    camera_stamps / output_stamps: every frame the camera published / the node matted, as seen by
    the demo. Over the window from the first to the last collected stamp it counts the camera's
    frames and those without output (``dropped``: the node keeps only the newest frame). Rates
    are in Hz, latencies (receipt - stamp) in milliseconds. ``quality`` is copied.
    """
    if len(stamps) < 2 or len(stamps) != len(received):
        raise ValueError(f"need >= 2 collected frames with one receipt time each, got {len(stamps)} and "
                         f"{len(received)}")
    lo, hi = min(stamps), max(stamps)
    camera = sorted({s for s in camera_stamps if lo <= s <= hi})
    matted = {s for s in output_stamps if lo <= s <= hi}
    latency = [(r - s) * 1e-6 for s, r in zip(stamps, received)]
    span_out = (max(received) - min(received)) * 1e-9
    span_cam = (camera[-1] - camera[0]) * 1e-9 if len(camera) > 1 else 0.0
    return {
        "frames": len(stamps),
        "output_hz": (len(received) - 1) / span_out if span_out > 0 else float("nan"),
        "camera_hz": (len(camera) - 1) / span_cam if span_cam > 0 else float("nan"),
        "latency_ms": {"median": percentile(latency, 50), "p90": percentile(latency, 90)},
        "camera_frames": len(camera),
        "matted_frames": len(matted),
        "dropped": len(camera) - len(matted & set(camera)),
        "quality": {k: float(quality[k]) for k in QUALITY_KEYS},
    }


def format_summary(s: Mapping[str, Any]) -> str:
    """The summary as printed at the end of the demo (a few aligned lines)."""
    q, lat = s["quality"], s["latency_ms"]
    return "\n".join([
        f"throughput  {s['output_hz']:.2f} Hz of matted output (camera {s['camera_hz']:.2f} Hz)",
        f"latency     stamp -> receipt: median {lat['median']:.1f} ms, p90 {lat['p90']:.1f} ms",
        f"drops       {s['dropped']} of {s['camera_frames']} camera frames skipped by the node "
        f"(it mattes only the newest frame)",
        f"quality     SAD {q['sad']:.4f}  MSE {q['mse']:.6f}  Grad {q['grad']:.4f}  Conn {q['conn']:.4f}",
        f"hair band   SAD {q['hair_sad']:.4f}  MSE {q['hair_mse']:.6f}  where the true alpha is in "
        f"{HAIR_BAND[0]:g}..{HAIR_BAND[1]:g} (strands, soft edges)",
        f"            mean over {s['frames']} frames against the camera's true alpha "
        f"(SAD, Grad, Conn divided by 1000)",
    ])


def alpha_u8(pha: np.ndarray) -> np.ndarray:
    """pha: (H, W) float 0..1 -> (H, W) uint8, rounded and clipped."""
    pha = np.asarray(pha)
    if pha.ndim != 2:
        raise ValueError(f"alpha must be (H, W), got shape {pha.shape}")
    return np.round(np.clip(pha.astype(np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)


def _tile(img: np.ndarray, w: int, h: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB or (H, W) float alpha -> (h, w, 3) uint8 RGB."""
    img = np.asarray(img)
    if img.ndim == 2:
        img = cv2.cvtColor(alpha_u8(img), cv2.COLOR_GRAY2RGB)
    elif img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"tiles must be (H, W, 3) uint8 images or (H, W) alphas, got {img.dtype} {img.shape}")
    if img.shape[:2] == (h, w):
        return img
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)


def contact_sheet(rows: Sequence[Sequence[np.ndarray]], titles: Sequence[str] = COLUMNS, tile_width: int = 320,
                  header: int = 24) -> np.ndarray:
    """rows: one sequence per frame of ``len(titles)`` images ((H, W, 3) uint8 RGB or (H, W) float alpha),
    all of one size -> (header + n * th, len(titles) * tile_width, 3) uint8 RGB: a title bar, then
    each row's images side by side, each resized to ``tile_width`` x ``th`` (aspect kept)."""
    if not rows:
        raise ValueError("a contact sheet needs at least one row")
    h, w = np.asarray(rows[0][0]).shape[:2]
    for row in rows:
        if len(row) != len(titles):
            raise ValueError(f"each row needs {len(titles)} images ({', '.join(titles)}), got {len(row)}")
        if any(np.asarray(img).shape[:2] != (h, w) for img in row):
            raise ValueError(f"every image must be {w}x{h}, got {[np.asarray(i).shape for i in row]}")
    tw = int(tile_width)
    th = max(1, int(round(h * tw / w)))
    sheet = np.zeros((header + len(rows) * th, len(titles) * tw, 3), np.uint8)
    for c, title in enumerate(titles):
        cv2.putText(sheet, title, (c * tw + 6, header - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1,
                    cv2.LINE_AA)
    for r, row in enumerate(rows):
        y = header + r * th
        for c, img in enumerate(row):
            sheet[y:y + th, c * tw:(c + 1) * tw] = _tile(img, tw, th)
    return sheet


def write_png(path: str, img: np.ndarray) -> None:
    """Write (H, W) gray, (H, W, 3) RGB or (H, W, 4) RGBA uint8 ``img`` as a PNG, atomically."""
    img = np.asarray(img)
    if img.dtype != np.uint8 or not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] in (3, 4))):
        raise ValueError(f"PNG images must be uint8 (H, W), (H, W, 3) or (H, W, 4), got {img.dtype} {img.shape}")
    code = {3: cv2.COLOR_RGB2BGR, 4: cv2.COLOR_RGBA2BGRA}.get(img.shape[2] if img.ndim == 3 else 0)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(img, code) if code is not None else img)
    if not ok:
        raise ValueError(f"OpenCV could not encode a {img.shape} image as PNG")

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(buf.tobytes())

    atomic_write(path, write)



def write_json(path: str, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    text = json.dumps(obj, indent=2) + "\n"

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    atomic_write(path, write)
