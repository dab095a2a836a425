"""The background plate: averaging the next N frames into it, and keeping it on disk.

Pure numpy/OpenCV, no ROS: the node owns one :class:`PlateCapture` per service call and feeds it
frames from its worker thread while the service callback waits on it from another thread.

A plate must be the empty, still scene: a capture whose frames changed while they were averaged
(someone walking through) fails. Each frame is compared with the capture's first one on
:func:`thumbnail` copies (grey means of 4x4 cells), where sensor noise is a few levels at most, so a
change above ``motion_levels`` is something moving; more than ``max_moving`` of the picture
changing fails the capture with a message saying so.

Plates are stored per resolution as ``<plate_dir>/plate_<W>x<H>.png`` (RGB content, written
atomically), so a restarted node finds the plate of every camera size it has seen.
"""
import os
import re
import threading
import time
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

from .files import atomic_write

__all__ = ["PlateCapture", "CaptureResult", "MOTION_LEVELS", "MAX_MOVING", "thumbnail", "plate_file", "save_plate",
           "load_plates", "remove_plates"]

_PLATE_NAME = re.compile(r"^plate_(\d+)x(\d+)\.png$")
THUMB = 4               # thumbnail cell: 4x4 pixels
MOTION_LEVELS = 12.0    # a thumbnail cell that changed by more than this (0..255 grey levels) moved
MAX_MOVING = 0.02       # fraction of the picture allowed to move during a capture


def thumbnail(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (ceil(H/4), ceil(W/4)) float32 grey means (0..255) of cells of about 4x4
    pixels (an area resize): sensor noise averages out over 48 values, so what changes here is the scene."""
    h, w = frame.shape[:2]
    small = cv2.resize(frame, (max(1, -(-w // THUMB)), max(1, -(-h // THUMB))), interpolation=cv2.INTER_AREA)
    return small.astype(np.float32).mean(axis=2)


class CaptureResult:
    """What a finished (or abandoned) capture produced: ``plate`` (H, W, 3) uint8 RGB or None."""

    __slots__ = ("plate", "frames", "message")

    def __init__(self, plate: Optional[np.ndarray], frames: int, message: str):
        self.plate = plate
        self.frames = frames
        self.message = message

    @property
    def ok(self) -> bool:
        return self.plate is not None


class PlateCapture:
    """Average the next ``frames`` frames of one size into a plate.

    ``add(frame)`` (frame: (H, W, 3) uint8 RGB) is called by the producer; it returns True once the
    plate is complete. A frame of another size restarts the average at that size (the camera
    changed mode), so the plate never mixes resolutions. ``finish`` / ``wait`` are for the consumer.
    Thread-safe: one producer and any number of waiters. ``started`` (time.monotonic() at creation)
    lets the producer leave out frames that arrived before the capture was asked for.
    ``motion_levels`` / ``max_moving``: the static check (module docstring); ``max_moving=1`` turns it off.
    """

    def __init__(self, frames: int, motion_levels: float = MOTION_LEVELS, max_moving: float = MAX_MOVING):
        if int(frames) < 1:
            raise ValueError(f"plate_frames must be at least 1, got {frames}")
        if not 0.0 <= max_moving <= 1.0 or not motion_levels >= 0.0:
            raise ValueError(f"max_moving must be in [0, 1] and motion_levels >= 0, got {max_moving}, {motion_levels}")
        self.frames = int(frames)
        self.motion_levels = float(motion_levels)
        self.max_moving = float(max_moving)
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._sum: Optional[np.ndarray] = None   # (H, W, 3) float64 running sum
        self._first: Optional[np.ndarray] = None    # thumbnail of the first frame
        self._moved: Optional[np.ndarray] = None    # thumbnail cells that changed since the first frame
        self._count = 0
        self._restarts = 0
        self._result: Optional[CaptureResult] = None

    @property
    def count(self) -> int:
        """Frames averaged so far (at the current size)."""
        return self._count

    @property
    def restarts(self) -> int:
        """How often a size change restarted the average."""
        return self._restarts

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def add(self, frame: np.ndarray) -> bool:
        """Add one frame; True when the plate is complete (further frames are ignored)."""
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"plate frames must be (H, W, 3) uint8, got {frame.shape} {frame.dtype}")
        with self._lock:
            if self._done.is_set():
                return True
            if self._sum is not None and self._sum.shape != frame.shape:
                self._sum, self._count = None, 0
                self._restarts += 1
            thumb = thumbnail(frame)
            if self._sum is None:
                self._sum = np.zeros(frame.shape, np.float64)
                self._first, self._moved = thumb, np.zeros(thumb.shape, bool)
            else:
                self._moved |= np.abs(thumb - self._first) > self.motion_levels
            self._sum += frame
            self._count += 1
            if self._count < self.frames:
                return False
            h, w = frame.shape[:2]
            moving = float(np.count_nonzero(self._moved)) / self._moved.size
            if moving > self.max_moving:
                self._finish(CaptureResult(None, self._count, (
                    f"the scene was not still: {moving:.0%} of the picture changed while the {self._count} "
                    f"frames were averaged (at most {self.max_moving:.0%} may); capture again with the scene "
                    "empty and nothing moving")))
                return True
            plate = np.rint(self._sum / self._count).astype(np.uint8)
            self._finish(CaptureResult(plate, self._count, f"plate {w}x{h} averaged from {self._count} frames"))
            return True

    def cancel(self, message: str) -> None:
        """End the capture without a plate (timeout, shutdown); waiters get ``message``."""
        with self._lock:
            if not self._done.is_set():
                self._finish(CaptureResult(None, self._count, message))

    def _finish(self, result: CaptureResult) -> None:
        self._result = result
        self._sum = self._first = self._moved = None
        self._done.set()

    def wait(self, timeout: Optional[float]) -> Optional[CaptureResult]:
        """Block until the capture has ended; its result, or None when ``timeout`` passed first."""
        if not self._done.wait(timeout):
            return None
        return self._result


def plate_file(plate_dir: str, size: Tuple[int, int]) -> str:
    """Path of the plate for ``size`` = (H, W): ``<plate_dir>/plate_<W>x<H>.png``."""
    h, w = size
    return os.path.join(plate_dir, f"plate_{w}x{h}.png")


def save_plate(plate_dir: str, plate: np.ndarray) -> str:
    """Write ``plate`` ((H, W, 3) uint8 RGB) atomically as a PNG; returns its path."""
    if plate.ndim != 3 or plate.shape[2] != 3 or plate.dtype != np.uint8:
        raise ValueError(f"a plate must be (H, W, 3) uint8, got {plate.shape} {plate.dtype}")
    path = plate_file(plate_dir, plate.shape[:2])
    opencv_order = np.ascontiguousarray(plate[:, :, ::-1])     # cv2 writes blue, green, red

    def write(tmp: str) -> None:
        if not cv2.imwrite(tmp, opencv_order):
            raise OSError(f"OpenCV could not write {tmp}")

    atomic_write(path, write)
    return path


def load_plates(plate_dir: str) -> Tuple[Dict[Tuple[int, int], np.ndarray], List[str]]:
    """Every plate stored in ``plate_dir``: ({(H, W): (H, W, 3) uint8 RGB}, problems).

    Files that cannot be read or whose content does not match the size in their name are skipped
    and described in ``problems``; a missing directory simply holds no plates.
    """
    plates: Dict[Tuple[int, int], np.ndarray] = {}
    problems: List[str] = []
    if not os.path.isdir(plate_dir):
        return plates, problems
    for name in sorted(os.listdir(plate_dir)):
        m = _PLATE_NAME.match(name)
        if m is None:
            continue
        path = os.path.join(plate_dir, name)
        size = (int(m.group(2)), int(m.group(1)))
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            problems.append(f"{path}: not a readable image")
            continue
        if img.shape[:2] != size:
            problems.append(f"{path}: image is {img.shape[1]}x{img.shape[0]}, the name says {size[1]}x{size[0]}")
            continue
        plates[size] = np.ascontiguousarray(img[:, :, ::-1])
    return plates, problems


def remove_plates(plate_dir: str, size: Optional[Tuple[int, int]] = None) -> List[str]:
    """Delete the stored plate of ``size`` = (H, W), or every stored plate when None; the removed paths."""
    if size is not None:
        paths = [plate_file(plate_dir, size)]
    elif os.path.isdir(plate_dir):
        paths = [os.path.join(plate_dir, n) for n in sorted(os.listdir(plate_dir)) if _PLATE_NAME.match(n)]
    else:
        paths = []
    removed = []
    for path in paths:
        if os.path.exists(path):
            os.remove(path)
            removed.append(path)
    return removed
