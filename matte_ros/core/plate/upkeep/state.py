"""PlateUpkeep: one plate kept matching the camera, frame by frame.

    up = PlateUpkeep(plate)                       # (H, W, 3) uint8, the captured plate
    step = up.compensate(frame, settings)         # before the network: the plate as the frame sees it
    health = up.observe(frame, alpha, step, settings)   # after: health; the refresh; the mask for next time

``compensate`` estimates, on reduced copies and on the background of the previous frame's matte,
the camera motion (warp) and the exposure (gain and offset) and returns the plate warped
(``step.plate``; None when that is the captured plate unchanged) and either re-exposed to the
frame's exposure or, with ``step.normalise``, the gain the frame is to be brought back to the
plate's exposure with (``step.to_plate``, applied by the engine on the device, which brings the
foreground back with ``step.to_camera``). ``observe`` measures the plate's health on the matte just
computed, refreshes the plate from confident background (in the plate's own geometry and exposure)
and keeps the matte's background for the next frame. Calls go one way: the engine calls this,
never the other way round; what the network makes of a compensated plate is the engine's to keep.
Thread-safe: persistent state is changed under a lock; a step carries its own per-frame data.
"""
import math
import threading
from typing import NamedTuple, Optional, Tuple

import cv2
import numpy as np

from ..align import IDENTITY, estimate_warp, motion_extent, rescale_warp, warp_image, warp_valid
from .drift import background_mask, refresh_plate
from .exposure import CHANNELS, apply_gain, clipped_cells, fit_exposure, invert_gain
from .health import MIN_SUPPORT, PlateHealth, disagreement
from .settings import UpkeepSettings

__all__ = ["PlateUpkeep", "UpkeepStep", "MAX_FIT_PIXELS", "STILL_PX", "STILL_GAIN"]

MAX_FIT_PIXELS = 10_000         # background pixels the exposure fit uses at most (an even subsample)
STILL_PX = 0.05                 # a warp moving no point more than this (px) is the previous warp
STILL_GAIN = 0.002              # gain and offset changes below this are the previous ones
SETTLED_FRAMES = 10             # a pixel is refreshed once it has been confident background this many frames
REFRESH_STEPS = 10              # refresh steps per time constant at most: every refresh_frames / 10 frames, the
                                # plate moves by that fraction (a changed plate is prepared anew for the network)
_NO_GAIN = (np.ones(3, np.float32), np.zeros(3, np.float32))


class UpkeepStep(NamedTuple):
    """What compensate found for one frame (read by observe)."""
    plate: Optional[np.ndarray]      # (H, W, 3) uint8 compensated plate, None: the captured plate unchanged
    normalise: bool                  # exposure "frame": the network gets the frame through invert_gain(gain, offset)
    frame_small: Optional[np.ndarray]   # the reduced frame and plate as compared (None: nothing estimated)
    plate_small: Optional[np.ndarray]
    valid_small: Optional[np.ndarray]   # bool: reduced pixels the warped plate covers
    warp: np.ndarray                 # 3x3 plate -> frame warp applied (full-size pixels)
    gain: np.ndarray
    offset: np.ndarray
    motion_px: float
    stale_reason: str
    exposure_note: str = ""          # the channels whose gain was not fitted this frame, and why

    @property
    def to_plate(self) -> Tuple[np.ndarray, np.ndarray]:
        """(gain, offset) bringing the frame to the plate's exposure (what ``normalise`` asks for)."""
        return invert_gain(self.gain, self.offset)

    @property
    def to_camera(self) -> Tuple[np.ndarray, np.ndarray]:
        """(gain, offset) bringing an image in the plate's exposure back to the camera's."""
        return self.gain, self.offset


class _Reduced(NamedTuple):
    """A plate and its reduced copy (the copy is reused while the same plate object comes back)."""
    source: np.ndarray
    small: np.ndarray


class _Compensated(NamedTuple):
    """The last compensated plate and what it was made from (reused while the plate object is the
    same and the warp and gain moved less than they can show)."""
    plate: np.ndarray
    warp: np.ndarray
    gain: Optional[np.ndarray]       # None: not re-exposed
    offset: np.ndarray
    out: np.ndarray


def _is_identity(w: np.ndarray) -> bool:
    return bool(np.array_equal(w, IDENTITY))


def _grey(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)


class PlateUpkeep:
    """The upkeep state of one plate ((H, W, 3) uint8, the captured plate; not changed)."""

    def __init__(self, plate: np.ndarray):
        self.base = plate
        self.h, self.w = plate.shape[:2]
        self._lock = threading.Lock()
        self._plate_u8 = plate                      # the plate as maintained (refreshed), uint8
        self._plate_f: Optional[np.ndarray] = None  # its float32 accumulator, once refreshed
        self._small_cache: Optional[_Reduced] = None
        self._base_cache: Optional[np.ndarray] = None   # the captured plate reduced
        self._base_clip: Optional[np.ndarray] = None    # its reduced pixels that may hide a clipped value, 0 / 255
        self._good = (_NO_GAIN[0], _NO_GAIN[1])         # per channel: the last gain and offset fitted
        self._warp = IDENTITY                       # the last warp estimated (to start the next estimate from)
        self._background: Optional[np.ndarray] = None   # reduced confident background of the last matte
        self._known: Optional[np.ndarray] = None        # the last one large enough to measure health on
        self._age: Optional[np.ndarray] = None          # reduced: frames each pixel has been confident background
        self._count = 0                                 # frames observed
        self._last: Optional[_Compensated] = None
        self.last: Optional[PlateHealth] = None

    @property
    def plate(self) -> np.ndarray:
        """The maintained plate ((H, W, 3) uint8) in the captured plate's geometry and exposure."""
        return self._plate_u8

    def work_size(self, s: UpkeepSettings) -> Tuple[int, int]:
        """(w, h) of the reduced copies."""
        k = min(1.0, s.work_long_side / max(self.h, self.w))
        return max(1, round(self.w * k)), max(1, round(self.h * k))

    def _reduce(self, img: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
        if size == (img.shape[1], img.shape[0]):
            return img
        return cv2.resize(img, size, interpolation=cv2.INTER_AREA)

    def _base_small(self, size: Tuple[int, int]) -> np.ndarray:
        small = self._base_cache
        if small is None or small.shape[:2] != (size[1], size[0]):
            small = self._base_cache = self._reduce(self.base, size)
        return small

    def _base_clipped(self, size: Tuple[int, int]) -> np.ndarray:
        clip = self._base_clip
        if clip is None or clip.shape[:2] != (size[1], size[0]):
            clip = self._base_clip = clipped_cells(self.base, size).view(np.uint8) * np.uint8(255)
        return clip

    def _plate_small(self, plate: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
        cached = self._small_cache
        if cached is not None and cached.source is plate and cached.small.shape[:2] == (size[1], size[0]):
            return cached.small
        small = self._reduce(plate, size)
        self._small_cache = _Reduced(plate, small)
        return small

    # ---- before the network ------------------------------------------------------------
    def compensate(self, frame: np.ndarray, s: UpkeepSettings) -> UpkeepStep:
        """frame: (H, W, 3) uint8 -> the step for this frame (see the module docstring)."""
        with self._lock:
            plate, background, warp0 = self._plate_u8, self._background, self._warp
            need_small = s.exposure != "none" or s.motion != "none" or s.health
            size = self.work_size(s)
            if background is not None and background.shape != (size[1], size[0]):
                background = None                   # the work size changed: no usable previous matte
            plate_s = self._plate_small(plate, size) if need_small else None
            base_s = self._base_small(size) if s.exposure != "none" else None
            base_clip = self._base_clipped(size) if s.exposure != "none" else None
        warp, gain, offset, motion_px, reason, note = IDENTITY, _NO_GAIN[0], _NO_GAIN[1], 0.0, "", ""
        frame_s = valid_s = None
        if need_small:
            frame_s = self._reduce(frame, size)
            sx, sy = size[0] / self.w, size[1] / self.h
            if s.motion != "none":
                found = estimate_warp(_grey(plate_s), _grey(frame_s), s.motion_method, s.motion, background,
                                      rescale_warp(warp0, sx, sy))
                if found is not None:
                    found = rescale_warp(found, 1 / sx, 1 / sy)
                    with self._lock:
                        self._warp = found
                candidate = warp0 if found is None else found       # not estimated: the camera stays put
                motion_px = motion_extent(candidate, self.w, self.h)
                if motion_px > s.max_motion_px:
                    reason = (f"the camera moved {motion_px:.1f} px, more than max_motion_px "
                              f"{s.max_motion_px:g}: recapture the plate")
                else:
                    warp = candidate
            if not _is_identity(warp):
                warp_s = rescale_warp(warp, sx, sy)
                plate_s = warp_image(plate_s, warp_s)
                if base_s is not None:
                    base_s = plate_s if plate is self.base else warp_image(base_s, warp_s)
                    base_clip = warp_image(base_clip, warp_s)
                valid_s = warp_valid(plate_s.shape[:2], warp_s)
            if s.exposure != "none":
                # against the captured plate: the refresh corrects local drift only, the exposure stays the fit's
                usable = ~(clipped_cells(frame, size) | (base_clip > 0))
                gain, offset, note = self._fit(base_s, frame_s, background, valid_s, usable)
                if s.exposure == "plate":
                    plate_s = apply_gain(plate_s, gain, offset)
                else:
                    frame_s = apply_gain(frame_s, *invert_gain(gain, offset))
        unchanged = np.array_equal(gain, _NO_GAIN[0]) and np.array_equal(offset, _NO_GAIN[1])
        gained = s.exposure != "none" and not unchanged
        out = self._compensated(plate, warp, gain if gained and s.exposure == "plate" else None, offset)
        return UpkeepStep(None if out is self.base else out, gained and s.exposure == "frame", frame_s, plate_s,
                          valid_s, warp, gain, offset, motion_px, reason, note)

    def _compensated(self, plate: np.ndarray, warp: np.ndarray, gain: Optional[np.ndarray],
                     offset: np.ndarray) -> np.ndarray:
        """The plate warped and re-exposed (gain None: not), full size. The previous result is returned
        again while the plate is the same and the warp and gain moved less than they can show
        (STILL_PX, STILL_GAIN): estimates jitter slightly from frame to frame, and an unchanged
        plate need not be prepared again for the network."""
        with self._lock:
            last = self._last
        if last is not None and last.plate is plate and (last.gain is None) == (gain is None):
            moved = np.abs(last.warp[:2] - warp[:2]) @ [self.w, self.h, 1]       # bounds any pixel's move
            still = np.max(moved) < STILL_PX
            if still and (gain is None or np.abs(np.r_[last.gain - gain, last.offset - offset]).max() < STILL_GAIN):
                return last.out
        out = plate
        if not _is_identity(warp):
            out = warp_image(out, warp)
        if gain is not None:
            out = apply_gain(out, gain, offset)
        with self._lock:
            self._last = _Compensated(plate, warp, gain, offset, out)
        return out

    def _fit(self, plate_s: np.ndarray, frame_s: np.ndarray, background: Optional[np.ndarray],
             valid_s: Optional[np.ndarray], usable: np.ndarray) -> Tuple[np.ndarray, np.ndarray, str]:
        """The exposure fit on the reduced images' background -> (gain, offset, note): a channel
        whose fit is rejected keeps its last fitted gain and offset (1 and 0 until one is fitted),
        and the note says which and why ('' when every channel was fitted)."""
        m = np.ones(plate_s.shape[:2], bool) if background is None else background.astype(bool)
        if valid_s is not None:
            m &= valid_s
        idx = np.flatnonzero(m)
        if idx.size > MAX_FIT_PIXELS:
            idx = idx[::-(-idx.size // MAX_FIT_PIXELS)]
        fit = fit_exposure(plate_s.reshape(-1, 3)[idx], frame_s.reshape(-1, 3)[idx], usable.reshape(-1, 3)[idx])
        fitted = np.array([not why for why in fit.rejected])
        with self._lock:
            gain = np.where(fitted, fit.gain, self._good[0]).astype(np.float32)
            offset = np.where(fitted, fit.offset, self._good[1]).astype(np.float32)
            self._good = (gain, offset)
        note = "; ".join(f"{CHANNELS[c]} not fitted ({why}), gain {gain[c]:.2f} kept"
                         for c, why in enumerate(fit.rejected) if why)
        return gain, offset, note

    # ---- after the network -------------------------------------------------------------
    def observe(self, frame: np.ndarray, alpha: np.ndarray, step: UpkeepStep, s: UpkeepSettings) -> PlateHealth:
        """frame: (H, W, 3) uint8 and its matte alpha: (H, W) float 0..1, with the step compensate
        returned for it -> the plate's health; refreshes the plate when asked."""
        size = self.work_size(s)
        k = size[0] / self.w
        margin = math.ceil(s.edge_margin_px * k)
        background = background_mask(alpha, s.background_alpha, margin, size)
        dis, support = float("nan"), float(np.count_nonzero(background)) / background.size
        if s.health and step.plate_small is not None:
            dis, support = disagreement(step.plate_small, step.frame_small, self._health_mask(background, step))
        reason = step.stale_reason
        if not reason and dis > s.stale_fraction:
            reason = (f"{dis:.0%} of the background differs from the plate (more than stale_fraction "
                      f"{s.stale_fraction:g}) after compensation: recapture the plate")
        settled = self._settle(background)
        every = max(1, int(s.refresh_frames // REFRESH_STEPS))
        if s.refresh and not reason and self._count % every == 0:
            self._refresh(frame, settled, step, min(1.0, every / s.refresh_frames), s.refresh_tolerance)
        health = PlateHealth(dis, support, bool(reason), reason, tuple(float(g) for g in step.gain),
                             tuple(float(o) for o in step.offset), step.motion_px, step.exposure_note)
        with self._lock:
            self._background = background
            self.last = health
        return health

    def _settle(self, background: np.ndarray) -> np.ndarray:
        """Counts, per reduced pixel, the frames it has been confident background in a row -> (h, w)
        uint8, 1 where that reached SETTLED_FRAMES. Parts of a moving subject the matte misses for a
        frame or two (colours close to the wall's) lie next to parts it sees, which reset the count
        as the subject moves; only background that stays background is refreshed."""
        with self._lock:
            age = self._age
            if age is None or age.shape != background.shape:
                age = np.zeros(background.shape, np.uint8)
            age = np.where(background > 0, np.minimum(age, SETTLED_FRAMES - 1) + 1, 0).astype(np.uint8)
            self._age = age
            self._count += 1
        return (age >= SETTLED_FRAMES).view(np.uint8)

    def _health_mask(self, background: np.ndarray, step: UpkeepStep) -> np.ndarray:
        """Where health is measured: the matte's confident background; when the matte leaves almost
        none (a plate so wrong that the network calls everything foreground), the last confident
        background that was large enough; failing that, the whole frame."""
        if np.count_nonzero(background) >= MIN_SUPPORT * background.size:
            with self._lock:
                self._known = background
            mask = background
        else:
            with self._lock:
                known = self._known
            mask = known if known is not None and known.shape == background.shape else np.ones_like(background)
        return mask if step.valid_small is None else mask & step.valid_small

    def _refresh(self, frame: np.ndarray, background: np.ndarray, step: UpkeepStep, rate: float,
                 tolerance: float) -> None:
        """Move the maintained plate towards the frame, seen in the plate's geometry and exposure,
        on settled confident background (drift.refresh_plate's guards)."""
        mask = cv2.resize(background, (self.w, self.h), interpolation=cv2.INTER_NEAREST)
        target = frame
        if not _is_identity(step.warp):
            inv = np.linalg.inv(step.warp)
            target = warp_image(frame, inv)
            mask = warp_image(mask, inv, cv2.BORDER_CONSTANT)
        if not (np.array_equal(step.gain, _NO_GAIN[0]) and np.array_equal(step.offset, _NO_GAIN[1])):
            target = apply_gain(target, *step.to_plate)
        with self._lock:
            if self._plate_f is None:
                self._plate_f = self._plate_u8.astype(np.float32)
            refresh_plate(self._plate_f, target, mask, rate, tolerance, plate_u8=self._plate_u8)
            self._plate_u8 = cv2.convertScaleAbs(self._plate_f)
