"""Plants: a branching stem with leaves (thin structures, and holes between the leaves), maybe a pot."""
from typing import List

import cv2
import numpy as np

from ..layers import Layer, coverage, pts
from ..textures import fractal_noise

__all__ = ["plant_layers", "leaf_colors"]


def leaf_colors(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 3) float32 greens to yellows (some autumn reds), varied in saturation and value."""
    hsv = np.stack([rng.uniform(8, 45, n) if rng.random() < 0.2 else rng.uniform(30, 85, n),
                    rng.uniform(80, 255, n), rng.uniform(50, 230, n)], axis=1).astype(np.uint8)
    return cv2.cvtColor(hsv[None], cv2.COLOR_HSV2RGB)[0].astype(np.float32) / 255.0


def plant_layers(rng, h, w, palette, texture) -> List[Layer]:
    """A plant, back to front: stems and branches (1..6 px, tapering), leaves (ellipses along the
    branches and at their tips), a pot at the bottom (p 0.5)."""
    stems, leaves = [], []           # (p0, p1, width), (centre, (long, short) axes, angle in degrees)
    unit = min(h, w)
    leaf_len = rng.uniform(0.05, 0.11) * unit
    density = rng.uniform(0.3, 0.9)

    def grow(p, angle, length, width, depth):
        bend = angle + rng.normal(0, 0.15)
        mid = p + 0.5 * length * np.array([np.cos(angle), np.sin(angle)])
        end = mid + 0.5 * length * np.array([np.cos(bend), np.sin(bend)])
        stems.extend([(p, mid, width), (mid, end, width * 0.85)])
        for t in np.linspace(0.2, 1.0, 5):
            if rng.random() < density:
                at = p + t * (end - p)
                side = rng.choice([-1.0, 1.0])
                turn = bend + side * rng.uniform(0.4, 1.1)
                leaves.append((at, (leaf_len * rng.uniform(0.6, 1.3), 0.0), np.degrees(turn)))
        if depth == 0 or length < 8:
            leaves.append((end, (leaf_len * 1.2, 0.0), np.degrees(bend)))
            return
        for _ in range(int(rng.integers(2, 4))):
            grow(end, bend + rng.uniform(-0.9, 0.9), length * rng.uniform(0.5, 0.8), max(width * 0.65, 0.5), depth - 1)

    pot = rng.random() < 0.5
    base = np.array([rng.uniform(0.35, 0.65) * w, h * (rng.uniform(0.75, 0.85) if pot else rng.uniform(0.95, 1.05))])
    grow(base, -np.pi / 2 + rng.normal(0, 0.2), rng.uniform(0.25, 0.4) * h, rng.uniform(2.0, 6.0),
         int(rng.integers(2, 5)))
    ratio = rng.uniform(0.25, 0.5)

    def draw_stems(cv, s):
        for p0, p1, wd in stems:
            cv2.line(cv, pts(p0, s).tolist(), pts(p1, s).tolist(), 255, max(int(wd * s), 1), cv2.LINE_AA)

    def draw_leaves(cv, s):
        for c, (long, _), ang in leaves:
            tip = c + 0.5 * long * np.array([np.cos(np.radians(ang)), np.sin(np.radians(ang))])
            cv2.ellipse(cv, pts(tip, s).tolist(),
                        pts((long / 2, long * ratio / 2), s).tolist(), ang, 0, 360, 255, -1, cv2.LINE_AA)

    stem_color = np.broadcast_to(leaf_colors(rng, 1)[0] * rng.uniform(0.4, 0.8), (h, w, 3)).astype(np.float32)
    layers = [(coverage(h, w, draw_stems), stem_color)]
    if rng.random() < 0.5:
        shade = fractal_noise(rng, h, w, scale=rng.uniform(4, 24), octaves=2)[..., None]
        two = leaf_colors(rng, 2)
        leaf_c = (two[0] * (1 - shade) + two[1] * shade).astype(np.float32)
    else:
        leaf_c = texture(rng, h, w, palette)
    layers.append((coverage(h, w, draw_leaves), leaf_c))
    if pot:
        top, half = base[1], rng.uniform(0.08, 0.18) * w
        flare = rng.uniform(0.6, 0.9)
        x = base[0]
        poly = [(x - half, top), (x + half, top), (x + half * flare, h + 2), (x - half * flare, h + 2)]
        layers.append((coverage(h, w, lambda cv, s: cv2.fillPoly(cv, [pts(poly, s)], 255, cv2.LINE_AA)),
                       texture(rng, h, w, palette)))
    return layers
