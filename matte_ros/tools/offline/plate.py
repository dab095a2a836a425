"""Background plates for offline matting: where each frame's plate comes from.

Sources (each has ``for_frame(frame) -> plate or None``; None keeps the plate already set):
    FixedPlate(rgb)          one plate for every frame: an image file, or the average of the first
                             N frames or of a time range (matte_ros.core.plate.average_frames, with
                             the node's stillness check; frames_in_range picks the range)
    FolderPlates(folder)     per-frame backgrounds: the i-th image of a folder for the i-th frame
    AlignedPlates(source)    the plate of ``source`` warped onto each frame (hand-held or shaky footage)
                             by the plate's aligner (matte_ros.core.plate.align: ecc, orb, sift, orb+ecc)
"""
from typing import Iterable, Iterator, Optional

import numpy as np

from matte_ros.core.plate import align

from .frames import Frame, OfflineError
from .readers import ImageFolder

__all__ = ["frames_in_range", "FixedPlate", "FolderPlates", "AlignedPlates", "check_plate_size"]


def frames_in_range(frames: Iterable[Frame], start_s: float, end_s: float) -> Iterator[np.ndarray]:
    """The rgb of frames whose time_s lies in [start_s, end_s] (seconds from the input's start)."""
    for f in frames:
        if not isinstance(f, Frame):
            continue
        if f.time_s is None:
            raise OfflineError("this input has no timestamps; use --plate-frames instead of --plate-time")
        if f.time_s > end_s:
            return
        if f.time_s >= start_s:
            yield f.rgb


def check_plate_size(plate: np.ndarray, frame: Frame, what: str) -> None:
    """OfflineError unless plate and frame have the same size."""
    if plate.shape[:2] != frame.rgb.shape[:2]:
        (ph, pw), (fh, fw) = plate.shape[:2], frame.rgb.shape[:2]
        raise OfflineError(f"{what} is {pw}x{ph} but frame {frame.name} is {fw}x{fh} (width x height); "
                           "the plate must be the same scene at the same size")


class FixedPlate:
    """The same plate for every frame."""

    def __init__(self, rgb: np.ndarray, what: str = "the plate"):
        self.rgb, self.what, self._given = rgb, what, False

    def for_frame(self, frame: Frame) -> Optional[np.ndarray]:
        if self._given:
            return None
        check_plate_size(self.rgb, frame, self.what)
        self._given = True
        return self.rgb


class FolderPlates:
    """The i-th image (sorted by name) of a folder or glob is the plate of frame i."""

    def __init__(self, spec: str, frame_count: Optional[int] = None, max_pixels: Optional[int] = None):
        self.folder = ImageFolder(spec, max_pixels, "background")
        if frame_count is not None and self.folder.count < frame_count:
            raise OfflineError(f"{spec} has {self.folder.count} background images for {frame_count} frames")

    def for_frame(self, frame: Frame) -> np.ndarray:
        if frame.index >= self.folder.count:
            raise OfflineError(f"no background image for frame {frame.name}: {self.folder.spec} has "
                               f"{self.folder.count}")
        plate = self.folder.read(frame.index)
        check_plate_size(plate, frame, f"background {self.folder.paths[frame.index]}")
        return plate


class AlignedPlates:
    """The plate of ``source`` aligned to every frame by ``method`` (matte_ros.core.plate.ALIGN_METHODS);
    ``unaligned`` counts frames left as they were (no alignment found)."""

    def __init__(self, source, method: str):
        self.source, self.method = source, method
        self.plate: Optional[np.ndarray] = None
        self.unaligned = 0

    def for_frame(self, frame: Frame) -> np.ndarray:
        new = self.source.for_frame(frame)
        if new is not None:
            self.plate = new
        result = align(self.plate, frame.rgb, self.method)
        self.unaligned += result.warp is None
        return result.plate
