"""What a real camera does to a scene after its plate was captured, for the synthetic scenes.

    seq = DisturbedSequence(SceneSequence(480, 640, seed=0), "exposure_step", seed=3)
    plate = seq.background()          # captured before the disturbance starts
    src, pha = seq.frame(i)           # the frame under the disturbance; the true alpha as without it

Kinds (``DISTURBANCES``), each deterministic per ``seed`` and scaled by ``strength``:
- ``exposure_step``: from frame ``start`` on, a per-channel gain (exposure about +-30 %, white
  balance a few percent per channel) and a small offset, as auto exposure does when someone enters;
- ``exposure_drift``: the same gains drifting smoothly (a slow sine, period ``period`` frames);
- ``white_balance``: from frame ``start`` on, the per-channel gain ``WHITE_BALANCE_GAIN`` (1.25 /
  1.15 / 1.05, a camera's white balance turning warmer), the same for every seed: on a warm,
  bright scene (``SceneSequence(light=...)``) it saturates the red channel in much of the frame;
- ``light_change``: a spatially varying light (a gradient across the room and a lamp-like blob)
  fading in over ``period`` frames, up to +-35 %;
- ``shake``: the background shifted by a fresh sub-pixel jitter each frame (sigma 1 px, at most 2.5);
- ``pan``: the background drifting linearly to a shift of 6 px over ``period`` frames, then holding.
Light and exposure act on the whole image (subject included: the camera sees both). Camera motion
moves the background under the subject, so the subject and the true alpha stay exactly where
the undisturbed scene has them.
"""
from typing import Optional, Tuple

import cv2
import numpy as np

from .scene import SceneSequence

__all__ = ["DISTURBANCES", "WHITE_BALANCE_GAIN", "DisturbedSequence", "disturbance_gain", "disturbance_shift"]

DISTURBANCES = ("none", "exposure_step", "exposure_drift", "light_change", "shake", "pan", "white_balance")
WHITE_BALANCE_GAIN = (1.25, 1.15, 1.05)     # per channel (RGB) at strength 1


def _rng(seed: int, kind: str, *more: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), DISTURBANCES.index(kind), *more]))


def disturbance_gain(kind: str, seed: int, i: int, start: int, period: int,
                     strength: float = 1.0) -> Tuple[np.ndarray, np.ndarray]:
    """The global per-channel (gain (3,), offset (3,)) of frame ``i`` (0..1 units): identity
    except for the exposure and white balance kinds."""
    one, zero = np.ones(3, np.float32), np.zeros(3, np.float32)
    if kind not in ("exposure_step", "exposure_drift", "white_balance") or i < start:
        return one, zero
    if kind == "white_balance":
        return (1 + (np.float32(WHITE_BALANCE_GAIN) - 1) * np.float32(strength)).astype(np.float32), zero
    r = _rng(seed, kind)
    exposure = r.choice([-1.0, 1.0]) * r.uniform(0.25, 0.35)
    balance = r.uniform(-0.06, 0.06, 3)
    offset = r.uniform(-0.02, 0.02, 3).astype(np.float32) * strength
    if kind == "exposure_step":
        return (1 + (exposure + balance) * strength).astype(np.float32), offset
    phase = np.sin(2 * np.pi * (i - start) / period)
    return (1 + (exposure + balance) * strength * phase).astype(np.float32), offset * np.float32(phase)


def disturbance_shift(kind: str, seed: int, i: int, start: int, period: int, strength: float = 1.0) -> np.ndarray:
    """The background's shift (dx, dy) in px in frame ``i``: zero except for shake and pan."""
    if kind not in ("shake", "pan") or i < start:
        return np.zeros(2)
    if kind == "shake":
        return np.clip(_rng(seed, kind, int(i)).normal(0.0, 1.0, 2), -2.5, 2.5) * strength
    angle = _rng(seed, kind).uniform(0, 2 * np.pi)
    return 6.0 * strength * min(1.0, (i - start) / period) * np.array([np.cos(angle), np.sin(angle)])


def _light_field(seed: int, h: int, w: int) -> np.ndarray:
    """(h, w) float32 in -1..1: a gradient across the frame plus a soft blob, as a window or a lamp gives."""
    r = _rng(seed, "light_change")
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = r.uniform(0, 2 * np.pi)
    ramp = ((x / w - 0.5) * np.cos(angle) + (y / h - 0.5) * np.sin(angle)) * 1.4
    cy, cx, sigma = r.uniform(0.2, 0.8) * h, r.uniform(0.2, 0.8) * w, r.uniform(0.2, 0.35) * max(h, w)
    blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma ** 2))
    field = 0.6 * ramp + 0.6 * blob * r.choice([-1.0, 1.0])
    return np.clip(field / max(np.abs(field).max(), 1e-6), -1.0, 1.0).astype(np.float32)


class DisturbedSequence:
    """A :class:`SceneSequence` through a camera disturbance (module docstring).

    kind: one of DISTURBANCES; seed: fixes the disturbance (the scene has its own); start: the first
    disturbed frame; period: frames of a drift cycle, a light fade or a pan; strength: scales the
    magnitude (0: none); still_at: keep the subject where frame ``still_at`` has it in every frame
    (a person standing still) while the disturbance runs on.
    """

    def __init__(self, scene: SceneSequence, kind: str, seed: int = 0, start: int = 10, period: int = 120,
                 strength: float = 1.0, still_at: Optional[int] = None):
        if kind not in DISTURBANCES:
            raise ValueError(f"disturbance must be one of {', '.join(DISTURBANCES)}, got {kind!r}")
        if int(start) < 0 or int(period) < 1 or not 0.0 <= strength <= 3.0:
            raise ValueError(f"start must be >= 0, period >= 1 and strength in 0..3, got {start}, {period}, {strength}")
        self.scene, self.kind, self.seed = scene, kind, int(seed)
        self.start, self.period, self.strength = int(start), int(period), float(strength)
        self.still_at = None if still_at is None else int(still_at)
        self._clean: Optional[np.ndarray] = None      # the noise-free background, for camera motion
        self._light: Optional[np.ndarray] = None

    @property
    def size(self) -> Tuple[int, int]:
        return self.scene.size

    def background(self) -> np.ndarray:
        """The empty, undisturbed scene (what the plate is captured from): (h, w, 3) uint8 RGB."""
        return self.scene.background()

    def gain(self, i: int) -> Tuple[np.ndarray, np.ndarray]:
        return disturbance_gain(self.kind, self.seed, i, self.start, self.period, self.strength)

    def shift(self, i: int) -> np.ndarray:
        return disturbance_shift(self.kind, self.seed, i, self.start, self.period, self.strength)

    def light(self, i: int) -> Optional[np.ndarray]:
        """The multiplicative light of frame ``i`` ((h, w) float32) for light_change, else None."""
        if self.kind != "light_change" or i < self.start:
            return None
        if self._light is None:
            self._light = _light_field(self.seed, *self.scene.size)
        return 1.0 + 0.35 * self.strength * min(1.0, (i - self.start) / self.period) * self._light

    def frame(self, i: int) -> Tuple[np.ndarray, np.ndarray]:
        """Frame ``i``: (src (h, w, 3) uint8 RGB, true alpha (h, w) float32 0..1)."""
        src, pha = self.scene.frame(i if self.still_at is None else self.still_at)
        return self._disturb(src, pha, i), pha

    def background_at(self, i: int) -> np.ndarray:
        """The empty scene as the camera sees it at frame ``i`` (fresh sensor noise): the plate a
        perfect upkeep would have then. (h, w, 3) uint8 RGB."""
        return self._disturb(self.scene.background(), np.zeros(self.scene.size, np.float32), i)

    def _disturb(self, src: np.ndarray, pha: np.ndarray, i: int) -> np.ndarray:
        img = src.astype(np.float32)
        d = self.shift(i)
        if np.any(d != 0):
            if self._clean is None:
                s = self.scene
                self._clean = SceneSequence(s.h, s.w, s.seed, noise=0.0, light=s.light).background().astype(np.float32)
            h, w = pha.shape
            moved = cv2.warpAffine(self._clean, np.float32([[1, 0, d[0]], [0, 1, d[1]]]), (w, h),
                                   flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            img += (1.0 - pha)[..., None] * (moved - self._clean)
        gain, offset = self.gain(i)
        if not (np.all(gain == 1) and np.all(offset == 0)):
            img = img * gain + 255.0 * offset
        light = self.light(i)
        if light is not None:
            img *= light[..., None]
        return np.clip(np.rint(img), 0, 255).astype(np.uint8)
