"""Procedural colour textures and background plates (pure numpy/OpenCV, vectorised).

Every function draws all of its randomness from the ``rng`` it is given, so a seeded generator
gives the same image on every run. Images are float32 RGB in 0..1, shape ``(h, w, 3)``.
"""
from typing import Optional

import cv2
import numpy as np

__all__ = ["random_colors", "fractal_noise", "colorize", "render_texture", "flat_texture", "render_background"]

TEXTURE_KINDS = ("noise", "stripes", "gradient", "blobs", "checker")


def _check_size(h: int, w: int) -> None:
    if int(h) < 8 or int(w) < 8:
        raise ValueError(f"image size must be at least 8x8, got {h}x{w}")


def random_colors(rng: np.random.Generator, n: int, palette: Optional[np.ndarray] = None,
                  jitter: float = 0.06) -> np.ndarray:
    """``n`` random RGB colours ``(n, 3)`` float32 in 0..1.

    Without a palette the colours are drawn in HSV (any hue, varied saturation and value); with a
    palette ``(K, 3)`` each colour is a palette entry plus a small jitter, which is how camouflage
    (subject colours close to the background's) is produced.
    """
    if palette is not None:
        palette = np.asarray(palette, np.float32).reshape(-1, 3)
        base = palette[rng.integers(0, len(palette), n)]
        return np.clip(base + rng.normal(0.0, jitter, (n, 3)), 0.0, 1.0).astype(np.float32)
    hsv = np.stack([rng.uniform(0, 180, n), 255 * rng.uniform(0, 1, n) ** 0.8,  # OpenCV hue range is 0..180
                    rng.uniform(25, 255, n)], axis=1).astype(np.uint8)
    rgb = cv2.cvtColor(hsv[None], cv2.COLOR_HSV2RGB)[0]
    return rgb.astype(np.float32) / 255.0


def fractal_noise(rng: np.random.Generator, h: int, w: int, scale: float = 64.0, octaves: int = 4,
                  persistence: float = 0.5) -> np.ndarray:
    """Smooth multi-octave value noise ``(h, w)`` float32 normalised to 0..1; ``scale`` = largest feature in px."""
    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    for octave in range(octaves):
        cell = max(scale / (2 ** octave), 1.5)
        gh, gw = int(np.ceil(h / cell)) + 3, int(np.ceil(w / cell)) + 3
        grid = rng.random((gh, gw), dtype=np.float32)
        big = cv2.resize(grid, (int(gw * cell), int(gh * cell)), interpolation=cv2.INTER_CUBIC)
        skip = int(cell)  # the first cell's cubic interpolation is one-sided: start after it
        out += amp * big[skip:skip + h, skip:skip + w]
        total += amp
        amp *= persistence
    out /= total
    lo, hi = float(out.min()), float(out.max())
    return (out - lo) / max(hi - lo, 1e-6)


def colorize(t: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """Map a scalar field ``t`` (h, w) in 0..1 through a piecewise-linear colour ramp ``(K, 3)`` -> (h, w, 3)."""
    colors = np.asarray(colors, np.float32)
    stops = np.linspace(0.0, 1.0, len(colors), dtype=np.float32)
    flat = t.reshape(-1)
    out = np.stack([np.interp(flat, stops, colors[:, c]) for c in range(3)], axis=1)
    return out.reshape(*t.shape, 3).astype(np.float32)


def _coords(h: int, w: int, angle: float):
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return x * np.cos(angle) + y * np.sin(angle), -x * np.sin(angle) + y * np.cos(angle)


def _field(rng: np.random.Generator, kind: str, h: int, w: int) -> np.ndarray:
    """A scalar pattern field (h, w) in 0..1 of the given kind."""
    if kind == "noise":
        return fractal_noise(rng, h, w, scale=rng.uniform(8, 128), octaves=int(rng.integers(2, 6)),
                             persistence=rng.uniform(0.35, 0.7))
    if kind == "stripes":
        u, _ = _coords(h, w, rng.uniform(0, np.pi))
        warp = fractal_noise(rng, h, w, scale=rng.uniform(40, 160), octaves=2) * rng.uniform(0, 12)
        wave = np.sin(2 * np.pi * u / rng.uniform(3, 40) + warp)
        hard = rng.uniform(1, 8)
        return (0.5 + 0.5 * np.tanh(hard * wave) / np.tanh(hard)).astype(np.float32)
    if kind == "gradient":
        if rng.random() < 0.5:
            u, _ = _coords(h, w, rng.uniform(0, 2 * np.pi))
        else:
            y, x = np.mgrid[0:h, 0:w].astype(np.float32)
            u = np.hypot(x - rng.uniform(0, w), y - rng.uniform(0, h))
        return ((u - u.min()) / max(float(np.ptp(u)), 1e-6)).astype(np.float32)
    if kind == "blobs":
        canvas = np.full((h, w), rng.random(), np.float32)
        for _ in range(int(rng.integers(8, 40))):
            center = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
            axes = (int(rng.uniform(1, max(w / 4, 2))), int(rng.uniform(1, max(h / 4, 2))))
            cv2.ellipse(canvas, center, axes, rng.uniform(0, 180), 0, 360, float(rng.random()), -1, cv2.LINE_AA)
        return cv2.GaussianBlur(canvas, (0, 0), rng.uniform(0.5, 4))
    if kind == "checker":
        u, v = _coords(h, w, rng.uniform(0, np.pi))
        size = rng.uniform(4, 48)
        return ((np.floor(u / size) + np.floor(v / size)) % 2).astype(np.float32)
    raise ValueError(f"unknown texture kind {kind!r}; expected one of {TEXTURE_KINDS}")


def render_texture(rng: np.random.Generator, h: int, w: int, palette: Optional[np.ndarray] = None) -> np.ndarray:
    """A random colour texture ``(h, w, 3)`` float32 in 0..1: one or two pattern kinds mixed through a noise mask."""
    _check_size(h, w)
    kind = TEXTURE_KINDS[rng.integers(0, len(TEXTURE_KINDS))]
    img = colorize(_field(rng, kind, h, w), random_colors(rng, int(rng.integers(2, 5)), palette))
    if rng.random() < 0.6:
        other = TEXTURE_KINDS[rng.integers(0, len(TEXTURE_KINDS))]
        second = colorize(_field(rng, other, h, w), random_colors(rng, int(rng.integers(2, 4)), palette))
        mask = np.clip((fractal_noise(rng, h, w, scale=rng.uniform(32, 256), octaves=3) - 0.5) * rng.uniform(2, 12)
                       + 0.5, 0, 1)[..., None]
        img = img * (1 - mask) + second * mask
    grain = rng.uniform(0.0, 0.04)
    if grain > 0.005:
        img = img + grain * (fractal_noise(rng, h, w, scale=2.0, octaves=1)[..., None] - 0.5)
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def flat_texture(rng: np.random.Generator, h: int, w: int, palette: Optional[np.ndarray] = None) -> np.ndarray:
    """A flat-coloured surface ``(h, w, 3)`` float32 in 0..1: one colour (near ``palette`` when given)
    under a smooth shading of at most +-4 % (painted wood, plastic, a plain shirt)."""
    _check_size(h, w)
    color = random_colors(rng, 1, palette)[0]
    shade = 1.0 + rng.uniform(0.0, 0.04) * (fractal_noise(rng, h, w, scale=max(h, w), octaves=1)[..., None] * 2 - 1)
    return np.clip(color * shade, 0.0, 1.0).astype(np.float32)


def render_background(rng: np.random.Generator, h: int, w: int, palette: Optional[np.ndarray] = None) -> np.ndarray:
    """A background plate ``(h, w, 3)`` float32 in 0..1: textured walls, a few objects, uneven lighting."""
    _check_size(h, w)
    bgr = render_texture(rng, h, w, palette)
    for _ in range(int(rng.integers(0, 6))):  # furniture-like objects: textured boxes and bars with crisp edges
        x0, y0 = int(rng.uniform(-0.2, 1) * w), int(rng.uniform(-0.2, 1) * h)
        x1, y1 = x0 + int(rng.uniform(0.03, 0.6) * w), y0 + int(rng.uniform(0.03, 0.6) * h)
        xa, xb, ya, yb = max(x0, 0), min(x1, w), max(y0, 0), min(y1, h)
        if xb - xa >= 8 and yb - ya >= 8:
            bgr[ya:yb, xa:xb] = render_texture(rng, yb - ya, xb - xa, palette)
    for _ in range(int(rng.integers(0, 4))):  # thin lines (cables, frames): high-frequency background edges
        pts = (rng.uniform(0, 1, (2, 2)) * [w, h]).astype(np.int32)
        cv2.line(bgr, tuple(map(int, pts[0])), tuple(map(int, pts[1])), random_colors(rng, 1, palette)[0].tolist(),
                 int(rng.integers(1, 4)), cv2.LINE_AA)
    light = 1.0 + rng.uniform(-0.35, 0.15) * (fractal_noise(rng, h, w, scale=max(h, w), octaves=1) - 0.5) * 2
    return np.clip(bgr * light[..., None], 0.0, 1.0).astype(np.float32)
