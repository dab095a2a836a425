"""Plate capture: averaging frames of the empty, still scene into a plate.

Pure numpy/OpenCV, no ROS: the node owns one :class:`PlateCapture` per service call and feeds it
frames from its worker thread while the service callback waits on it from another thread; the
offline tool averages a run of frames with :func:`average_frames`, the same average and check.

A plate must be the empty, still scene: a capture whose frames changed while they were averaged
(someone walking through) fails. Each frame is compared with the capture's first one on
:func:`thumbnail` copies (grey means of 4x4 cells), where sensor noise is a few levels at most, so a
change above ``motion_levels`` is something moving; more than ``max_moving`` of the picture
changing fails the capture with a message saying so.
"""
import threading
import time
from typing import Iterable, Optional

import cv2
import numpy as np

__all__ = ["PlateCapture", "CaptureResult", "MOTION_LEVELS", "MAX_MOVING", "thumbnail", "average_frames"]

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
            self._conclude()
            return True

    def _conclude(self) -> None:
        """Finish with the plate of the frames so far, or without one if the scene moved (under the lock)."""
        h, w = self._sum.shape[:2]
        moving = float(np.count_nonzero(self._moved)) / self._moved.size
        if moving > self.max_moving:
            self._finish(CaptureResult(None, self._count, (
                f"the scene was not still: {moving:.0%} of the picture changed while the {self._count} "
                f"frames were averaged (at most {self.max_moving:.0%} may); capture again with the scene "
                "empty and nothing moving")))
            return
        plate = np.rint(self._sum / self._count).astype(np.uint8)
        self._finish(CaptureResult(plate, self._count, f"plate {w}x{h} averaged from {self._count} frames"))

    def complete(self) -> None:
        """End the capture now with the frames averaged so far (the same check as a full one); no-op
        when it has ended."""
        with self._lock:
            if not self._done.is_set() and self._count:
                self._conclude()

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


def average_frames(frames: Iterable[np.ndarray], limit: Optional[int] = None, motion_levels: float = MOTION_LEVELS,
                   max_moving: float = MAX_MOVING) -> CaptureResult:
    """The plate of a run of (H, W, 3) uint8 frames: the first ``limit`` (None: all), averaged with
    PlateCapture's stillness check (a result without plate says the scene was not still).
    ValueError when there are no frames or their sizes differ (a run of frames is one camera mode)."""
    capture: Optional[PlateCapture] = None
    frames = iter(frames)
    for frame in frames:
        if capture is None:
            capture = PlateCapture(limit if limit is not None else 1 << 62, motion_levels, max_moving)
        capture.add(frame)
        if capture.restarts:
            raise ValueError("cannot average plate frames of different sizes")
        if capture.done:
            break
    if capture is None:
        raise ValueError("no frames to average into a plate")
    capture.complete()
    return capture.wait(0)
