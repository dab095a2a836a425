"""Background plates for offline matting: where each frame's plate comes from.

Sources (each has ``for_frame(frame) -> plate or None``; None keeps the plate already set):
    FixedPlate(rgb)          one plate for every frame: an image file, or the average of the first
                             N frames or of a time range (average_frames / frames_in_range)
    FolderPlates(folder)     per-frame backgrounds: the i-th image of a folder for the i-th frame
    AlignedPlates(source)    the plate of ``source`` warped onto each frame (hand-held or shaky footage)

Alignment (the idea of the published image program, implemented here with OpenCV): features (ORB,
or SIFT: slower, steadier on low-texture scenes) of plate and frame, matches kept by Lowe's ratio
test, a RANSAC homography from the plate to the frame, the plate warped with it; where the warped
plate does not reach, the frame's own pixels stand in (they then read as background). Too few
matches leave the plate as it is.
"""
from typing import Iterable, Iterator, NamedTuple, Optional, Tuple

import cv2
import numpy as np

from .frames import Frame, OfflineError
from .readers import ImageFolder

__all__ = ["ALIGN_METHODS", "average_frames", "frames_in_range", "FixedPlate", "FolderPlates", "Alignment",
           "PlateAligner", "AlignedPlates", "check_plate_size"]

ALIGN_METHODS = ("orb", "sift")
_RATIO = 0.75          # a match is kept when its distance is below this fraction of the second best's
_MIN_INLIERS = 12      # fewer RANSAC inliers than this: no trustworthy homography
_RANSAC_PX = 3.0


def average_frames(frames: Iterable[np.ndarray]) -> Tuple[np.ndarray, int]:
    """Mean of (H, W, 3) uint8 frames, rounded -> (plate uint8, count); OfflineError if none or sizes differ."""
    total, n = None, 0
    for f in frames:
        if total is None:
            total = np.zeros(f.shape, np.float64)
        elif f.shape != total.shape:
            raise OfflineError(f"cannot average plate frames of different sizes {total.shape[1]}x{total.shape[0]} "
                               f"and {f.shape[1]}x{f.shape[0]}")
        total += f
        n += 1
    if total is None:
        raise OfflineError("no frames to average into a plate")
    return np.rint(total / n).astype(np.uint8), n


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


class Alignment(NamedTuple):
    plate: np.ndarray                   # (H, W, 3) uint8: the plate warped onto the frame (or unchanged)
    homography: Optional[np.ndarray]    # (3, 3) plate -> frame, None when no alignment was found
    inliers: int


def _detector(method: str):
    """(feature detector, descriptor norm) of an ALIGN_METHODS name."""
    if method == "orb":
        return cv2.ORB_create(nfeatures=2000), cv2.NORM_HAMMING
    if method == "sift":
        return cv2.SIFT_create(nfeatures=2000), cv2.NORM_L2
    raise OfflineError(f"unknown alignment method {method!r}; choose {' or '.join(ALIGN_METHODS)}")


class PlateAligner:
    """Features of one plate, computed once; ``align(frame)`` warps the plate onto a frame."""

    def __init__(self, plate: np.ndarray, method: str = "orb"):
        self.detector, norm = _detector(method)
        self.plate, self.matcher = plate, cv2.BFMatcher(norm)
        self.keypoints, self.descriptors = self.detector.detectAndCompute(cv2.cvtColor(plate, cv2.COLOR_RGB2GRAY), None)

    def align(self, frame: np.ndarray) -> Alignment:
        """frame: (H, W, 3) uint8 RGB of the plate's size -> Alignment."""
        unchanged = Alignment(self.plate, None, 0)
        kp, des = self.detector.detectAndCompute(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), None)
        if des is None or self.descriptors is None or len(kp) < 2 or len(self.keypoints) < 2:
            return unchanged
        good = [m[0] for m in self.matcher.knnMatch(self.descriptors, des, k=2)
                if len(m) == 2 and m[0].distance < _RATIO * m[1].distance]
        if len(good) < _MIN_INLIERS:
            return unchanged
        src = np.float32([self.keypoints[m.queryIdx].pt for m in good]).reshape(-1, 1, 2)
        dst = np.float32([kp[m.trainIdx].pt for m in good]).reshape(-1, 1, 2)
        hom, mask = cv2.findHomography(src, dst, cv2.RANSAC, _RANSAC_PX)
        inliers = int(mask.sum()) if mask is not None else 0
        if hom is None or inliers < _MIN_INLIERS:
            return unchanged
        h, w = frame.shape[:2]
        warped = cv2.warpPerspective(self.plate, hom, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        reach = cv2.warpPerspective(np.full((h, w), 255, np.uint8), hom, (w, h), flags=cv2.INTER_NEAREST,
                                    borderMode=cv2.BORDER_CONSTANT)
        outside = reach < 255
        warped[outside] = frame[outside]
        return Alignment(warped, hom, inliers)


class AlignedPlates:
    """The plate of ``source`` aligned to every frame; ``unaligned`` counts frames left as they were."""

    def __init__(self, source, method: str = "orb"):
        _detector(method)
        self.source, self.method = source, method
        self.aligner: Optional[PlateAligner] = None
        self.unaligned = 0

    def for_frame(self, frame: Frame) -> np.ndarray:
        new = self.source.for_frame(frame)
        if new is not None:
            self.aligner = PlateAligner(new, self.method)
        result = self.aligner.align(frame.rgb)
        self.unaligned += result.homography is None
        return result.plate
