"""Animal-like subjects (held out of training): a four-legged body under dense fur, head, ears, tail."""
from typing import List

import cv2
import numpy as np

from ..layers import Layer, coverage, fur_layer, pts, strands
from ..textures import fractal_noise

__all__ = ["animal_layers", "fur_colors"]


def fur_colors(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 3) float32 coat colours: browns, greys, black and cream."""
    hsv = np.stack([rng.uniform(5, 30, n), rng.uniform(0, 200, n), rng.uniform(30, 240, n)], axis=1).astype(np.uint8)
    return cv2.cvtColor(hsv[None], cv2.COLOR_HSV2RGB)[0].astype(np.float32) / 255.0


def animal_layers(rng, h, w, palette, texture) -> List[Layer]:
    """A quadruped seen from the side: an elliptic body, four legs to the ground, a head with ears on a
    neck, a curved tail; its rim covered by 1500..4000 fur strands (opacity 0.6..0.85) and a sparse
    second coat of longer guard hairs."""
    unit = min(h, w)
    facing = rng.choice([-1.0, 1.0])
    bx, by = rng.uniform(0.35, 0.65) * w, rng.uniform(0.4, 0.6) * h
    ax, ay = rng.uniform(0.18, 0.3) * w, rng.uniform(0.1, 0.16) * h
    leg_w, ground = rng.uniform(0.025, 0.05) * unit, min(by + ay + rng.uniform(0.15, 0.35) * h, h - 2.0)
    head = np.array([bx + facing * ax * rng.uniform(0.95, 1.3), by - ay * rng.uniform(0.8, 1.6)])
    head_r = rng.uniform(0.45, 0.7) * ay
    tail = strands(rng, np.array([[bx - facing * ax * 0.95, by - 0.3 * ay]]),
                   np.array([np.pi / 2 - facing * rng.uniform(0.8, 2.2)]), (0.5 * ax, 1.2 * ax), 0.3, steps=10)[0]

    def draw(cv, s):
        cv2.ellipse(cv, pts((bx, by), s).tolist(), pts((ax, ay), s).tolist(), rng.normal(0, 4), 0, 360, 255, -1,
                    cv2.LINE_AA)
        for k, x in enumerate((bx - 0.75 * ax, bx - 0.5 * ax, bx + 0.5 * ax, bx + 0.75 * ax)):
            foot = (x + rng.normal(0, 0.08) * ax, ground - (k % 2) * rng.uniform(0, 0.05) * h)
            cv2.line(cv, pts((x, by), s).tolist(), pts(foot, s).tolist(), 255, max(int(leg_w * s), 1), cv2.LINE_AA)
        neck = (head + np.array([bx + facing * 0.6 * ax, by - 0.3 * ay])) / 2
        cv2.line(cv, pts(neck, s).tolist(), pts(head, s).tolist(), 255, max(int(1.2 * head_r * s), 1), cv2.LINE_AA)
        cv2.line(cv, pts((bx + facing * 0.6 * ax, by - 0.3 * ay), s).tolist(), pts(neck, s).tolist(), 255,
                 max(int(1.4 * head_r * s), 1), cv2.LINE_AA)
        cv2.ellipse(cv, pts(head, s).tolist(), pts((head_r * 1.1, head_r * 0.85), s).tolist(), 0, 0, 360, 255, -1,
                    cv2.LINE_AA)
        cv2.ellipse(cv, pts(head + (facing * head_r, 0.2 * head_r), s).tolist(),
                    pts((head_r * 0.7, head_r * 0.45), s).tolist(), 0, 0, 360, 255, -1, cv2.LINE_AA)  # muzzle
        for side in (-0.5, 0.3):  # ears
            base = head + (side * head_r, -0.6 * head_r)
            tri = [base - (0.35 * head_r, 0), base + (0.35 * head_r, 0), base + (0.1 * facing * head_r, -head_r)]
            cv2.fillPoly(cv, [pts(tri, s)], 255, cv2.LINE_AA)
        cv2.polylines(cv, [pts(tail, s)], False, 255, max(int(0.6 * leg_w * s), 1), cv2.LINE_AA)

    a = coverage(h, w, draw)
    if rng.random() < 0.6:
        two = fur_colors(rng, 2)
        t = fractal_noise(rng, h, w, scale=rng.uniform(8, 48), octaves=3)[..., None]
        coat = (two[0] * (1 - t) + two[1] * t).astype(np.float32)
    else:
        coat = texture(rng, h, w, palette)
    layers = [(a, coat)]
    dense = fur_layer(rng, a, coat, (bx, by), (1500, 4000), (2, 0.035 * unit + 3),
                      opacity=int(rng.uniform(150, 215)), curl=0.3)
    guard = fur_layer(rng, a, coat, (bx, by), (200, 600), (0.03 * unit, 0.08 * unit + 4), opacity=140, curl=0.15)
    return layers + [f for f in (dense, guard) if f is not None]
