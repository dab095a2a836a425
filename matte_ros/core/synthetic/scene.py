"""Plate perturbation and the fake camera's moving scene (pure numpy/OpenCV)."""
from statistics import NormalDist
from typing import Tuple

import cv2
import numpy as np

from .subject import render_subject
from .textures import render_background

__all__ = ["perturb_plate", "cast_shadow", "jpeg_roundtrip", "SceneSequence"]


def perturb_plate(rng: np.random.Generator, bgr: np.ndarray, strength: float = 1.0, max_shift: float = 1.0
                  ) -> np.ndarray:
    """What the camera sees of the background when the frame is taken, compared with the clean plate.

    bgr: (H, W, 3) float in 0..1 (uint8 is accepted and scaled by 1/255). Returns (H, W, 3) float32
    in 0..1 with, at ``strength`` 1: a shift up to ``max_shift`` px (default 1: sub-pixel) and a
    rotation up to 0.1 degree, an exposure change of a few percent with a slight white-balance
    drift, and sensor noise of sigma about 0.01. ``strength`` 0 returns the plate unchanged.
    """
    bgr = np.asarray(bgr)
    if bgr.ndim != 3 or bgr.shape[2] != 3:
        raise ValueError(f"bgr must be (H, W, 3), got shape {bgr.shape}")
    if strength < 0 or max_shift < 0:
        raise ValueError(f"strength and max_shift must be >= 0, got {strength}, {max_shift}")
    img = bgr.astype(np.float32) / 255.0 if bgr.dtype == np.uint8 else bgr.astype(np.float32)
    if strength == 0:
        return img.copy()
    h, w = img.shape[:2]
    shift = rng.uniform(-1.0, 1.0, 2) * strength * max_shift
    mat = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-0.1, 0.1) * strength, 1.0)
    mat[:, 2] += shift
    out = cv2.warpAffine(img, mat, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    gain = 1.0 + rng.uniform(-0.04, 0.04) * strength + rng.normal(0.0, 0.008 * strength, 3)
    out = out * gain.astype(np.float32) + np.float32(rng.uniform(-0.01, 0.01) * strength)
    out += rng.standard_normal(out.shape, dtype=np.float32) * np.float32(rng.uniform(0.004, 0.012) * strength)
    return np.clip(out, 0.0, 1.0)


def cast_shadow(rng: np.random.Generator, scene: np.ndarray, pha: np.ndarray, darkness: float) -> np.ndarray:
    """The scene with the subject's shadow on it: ``pha`` shifted (10..25 % of the size, mostly down
    and sideways), sheared, blurred (sigma 1..4 % of the size) and ``darkness`` (0..1) deep.

    scene: (H, W, 3) float 0..1; pha: (H, W) float 0..1. Returns (H, W, 3) float32.
    """
    if scene.shape[:2] != pha.shape:
        raise ValueError(f"scene {scene.shape[:2]} and pha {pha.shape} differ in size")
    if not 0 <= darkness <= 1:
        raise ValueError(f"darkness must be in 0..1, got {darkness}")
    h, w = pha.shape
    side = rng.choice([-1.0, 1.0])
    shift = np.array([side * rng.uniform(0.1, 0.25) * w, rng.uniform(0.0, 0.1) * h])
    mat = np.array([[1.0, side * rng.uniform(0.0, 0.5), shift[0]], [0.0, rng.uniform(0.8, 1.0), shift[1]]])
    shadow = cv2.warpAffine(pha.astype(np.float32), mat, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    shadow = cv2.GaussianBlur(shadow, (0, 0), rng.uniform(0.01, 0.04) * max(h, w))
    return (scene * (1.0 - np.float32(darkness) * shadow[..., None])).astype(np.float32)


def jpeg_roundtrip(img: np.ndarray, quality: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> the same after JPEG compression at ``quality`` (1..100), as a camera stream does."""
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _noise_luts(sigma: float) -> Tuple[np.ndarray, np.ndarray]:
    """uint8 lookup tables turning uniform random bytes into the positive and negative parts of N(0, sigma) levels."""
    dist = NormalDist(0.0, max(sigma, 1e-9))
    levels = np.round([dist.inv_cdf((b + 0.5) / 256) for b in range(256)]).astype(np.int32)
    return np.clip(levels, 0, 255).astype(np.uint8), np.clip(-levels, 0, 255).astype(np.uint8)


class SceneSequence:
    """A fixed textured room with a person walking to and fro in front of it: the fake camera's scene.

    The background and the subject are rendered once (``seed`` picks them); ``frame(i)`` moves the
    cached subject along a smooth periodic path (period ``PERIOD`` frames, so any ``i`` works),
    composites it and adds sensor noise of sigma ``noise`` (in 0..1 units). Frames are a pure
    function of (seed, i); ``background()`` draws fresh noise on every call, like a real camera.
    ``light``: the room's light, a per-channel factor on the background and the subject (clipped
    to 0..1), e.g. (1.4, 1.15, 0.85) for a warm, bright room; the default leaves them as rendered.
    """
    PERIOD = 240

    def __init__(self, h: int, w: int, seed: int = 0, noise: float = 0.01,
                 light: Tuple[float, float, float] = (1.0, 1.0, 1.0)):
        if int(h) < 32 or int(w) < 32:
            raise ValueError(f"scene size must be at least 32x32, got {h}x{w}")
        if not 0 <= noise <= 0.2:
            raise ValueError(f"noise must be in 0..0.2, got {noise}")
        lit = np.asarray(light, np.float32)
        if lit.shape != (3,) or not np.all((lit > 0) & (lit <= 4)):
            raise ValueError(f"light must be three factors in (0, 4], got {light}")
        self.h, self.w, self.seed, self.noise = int(h), int(w), int(seed), float(noise)
        self.light = tuple(float(v) for v in lit)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0x5CE7E]))
        self._bgr = np.round(np.clip(render_background(rng, self.h, self.w) * lit, 0, 1) * 255).astype(np.uint8)
        sh = int(self.h * 0.82)
        wide = int(sh * 1.6)  # room for raised arms; cropped to the columns the subject covers
        fgr, pha = render_subject(rng, sh, wide, kind="person", extras=False, box=(wide / 2, 0.04 * sh, 0.95 * sh))
        cols = np.nonzero(pha.max(axis=0) > 0)[0]
        x0, x1 = (cols[0], cols[-1] + 1) if len(cols) else (0, wide)
        self._pha = np.ascontiguousarray(pha[:, x0:x1])
        fgr = np.clip(fgr * lit, 0, 1)
        self._pre = np.ascontiguousarray((fgr * pha[..., None])[:, x0:x1])  # premultiplied: src = pre + (1-pha)*bgr
        self._sh, self._sw = self._pha.shape
        self._lut_pos, self._lut_neg = _noise_luts(self.noise * 255)
        self._rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0xB6]))

    @property
    def size(self) -> Tuple[int, int]:
        return self.h, self.w

    def position(self, i: int) -> Tuple[int, int]:
        """Top-left corner (y, x) of the subject's box in frame ``i`` (may lie partly outside the frame)."""
        phase = 2 * np.pi * (int(i) % self.PERIOD) / self.PERIOD
        x = (self.w - self._sw) / 2 + 0.3 * self.w * np.sin(phase)
        y = self.h - self._sh + 0.03 * self.h * (1 - np.cos(2 * phase)) / 2
        return int(round(y)), int(round(x))

    def _add_noise(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.noise == 0:
            return img
        raw = np.frombuffer(rng.bytes(img.size), np.uint8).reshape(img.shape)
        out = cv2.add(img, cv2.LUT(raw, self._lut_pos))
        return cv2.subtract(out, cv2.LUT(raw, self._lut_neg), dst=out)

    def background(self) -> np.ndarray:
        """The empty scene: (h, w, 3) uint8 RGB with fresh sensor noise."""
        return self._add_noise(self._bgr.copy(), self._rng)

    def frame(self, i: int) -> Tuple[np.ndarray, np.ndarray]:
        """Frame ``i``: (src (h, w, 3) uint8 RGB, true alpha (h, w) float32 in 0..1)."""
        y, x = self.position(i)
        y0, y1, x0, x1 = max(y, 0), min(y + self._sh, self.h), max(x, 0), min(x + self._sw, self.w)
        src = self._bgr.copy()
        pha = np.zeros((self.h, self.w), np.float32)
        if y1 > y0 and x1 > x0:
            a = self._pha[y0 - y:y1 - y, x0 - x:x1 - x]
            pre = self._pre[y0 - y:y1 - y, x0 - x:x1 - x]
            box = src[y0:y1, x0:x1].astype(np.float32)
            src[y0:y1, x0:x1] = np.clip(pre * 255 + (1 - a[..., None]) * box + 0.5, 0, 255).astype(np.uint8)
            pha[y0:y1, x0:x1] = a
        return self._add_noise(src, np.random.default_rng([self.seed, int(i) % (2 ** 32)])), pha
