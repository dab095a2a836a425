"""Person-like subjects: head, neck, torso, two arms in a pose, and hair (a soft volume plus strands)."""
from typing import List, Optional, Tuple

import cv2
import numpy as np

from ..layers import Layer, blur_layer, coverage, motion_kernel, pts, strands
from ..textures import fractal_noise, random_colors

__all__ = ["HAIR_DENSITIES", "hair_layer", "person_layers"]

HAIR_DENSITIES = ("sparse", "dense")


def hair_layer(rng, h, w, center, radii, palette, density: Optional[str] = None) -> Layer:
    """Hair (drawn behind the head): a soft volume plus hundreds of sub-pixel strands flying out of it;
    ``density`` "sparse" (a fifth of the strands) or "dense" (four times as many); None as drawn."""
    if density not in (None,) + HAIR_DENSITIES:
        raise ValueError(f"hair density must be one of {HAIR_DENSITIES} or None, got {density!r}")
    cx, cy = center
    rx, ry = radii
    volume = coverage(h, w, lambda cv, s: cv2.ellipse(  # behind the head: the face stays visible
        cv, pts((cx, cy - 0.2 * ry), s).tolist(), pts((rx * 1.2, ry * 1.0), s).tolist(), 0, 0, 360, 255, -1,
        cv2.LINE_AA))
    volume = cv2.GaussianBlur(volume, (0, 0), rng.uniform(0.6, 2.5) * max(rx, 4) / 40)
    n = int(rng.integers(120, 420))
    top = rng.random() < 0.7        # strands from the top of the head only, or all round

    def thetas(k):
        return rng.uniform(-np.pi * 0.95, -np.pi * 0.05, k) if top else rng.uniform(-np.pi, np.pi, k)

    def roots(theta):
        return np.stack([cx + np.cos(theta) * rx * 1.05, cy - 0.15 * ry + np.sin(theta) * ry * 1.02], axis=1)

    theta = thetas(n)
    if rng.random() < 0.4:  # long hair falling over the shoulders
        spread, length, steps = 0.2, (1.2 * rx, 4.0 * rx), 16
        turn = theta + rng.normal(0, spread, n)
        curl, gravity = rng.uniform(0.02, 0.12), rng.uniform(0.6, 1.0)
    else:  # short, frizzy hair
        spread, length, steps, gravity = 0.35, (0.2 * rx, 0.9 * rx), 12, 0.0
        turn = theta + rng.normal(0, spread, n)
        curl = rng.uniform(0.05, 0.3)
    lines = strands(rng, roots(theta), turn, length, curl, steps=steps, gravity=gravity)
    if density == "sparse":
        lines = lines[:max(n // 5, 8)]
    elif density == "dense":  # three times as many more, in the same style
        more = thetas(3 * n)
        lines += strands(rng, roots(more), more + rng.normal(0, spread, 3 * n), length, curl, steps=steps,
                         gravity=gravity)
    n = len(lines)
    groups = np.array_split(np.arange(n), 4)

    def draw(cv, s):
        for g, members in enumerate(groups):  # four strand opacities, 0.25..0.75 px wide
            cv2.polylines(cv, [pts(lines[i], s) for i in members], False, int(255 * (0.55 + 0.15 * g)),
                          1 + g % 3 if s >= 4 else 1, cv2.LINE_AA)

    hair = coverage(h, w, draw)
    a = 1.0 - (1.0 - volume) * (1.0 - hair)
    base = random_colors(rng, 2, palette if rng.random() < 0.3 else None) * [0.8, 0.8, 0.8]
    t = fractal_noise(rng, h, w, scale=rng.uniform(4, 24), octaves=2)[..., None]
    c = base[0] * (1 - t) + np.clip(base[1] * 1.3, 0, 1) * t
    return a.astype(np.float32), c.astype(np.float32)


def _body(rng, h, w, palette, box, texture, hair) -> Tuple[Layer, List[Tuple[np.ndarray, np.ndarray, str]], Layer]:
    """A person placed at ``box``: the head-neck-torso layer, the arms as (a, c, pose), the hair layer."""
    cx, top, height = box
    r = rng.uniform(0.1, 0.14) * height  # head radius unit
    head_c, head_r = (cx + rng.normal(0, 0.05) * r, top + 1.1 * r), (rng.uniform(0.75, 0.9) * r, 1.08 * r)
    head_tilt, neck = rng.normal(0, 6), r * rng.uniform(0.3, 0.45)
    shoulder_y = top + 2.55 * r
    half = r * rng.uniform(1.7, 2.4)
    bottom = max(top + height * 1.2, h + 4.0)  # the torso always leaves the frame at the bottom
    flare = rng.uniform(0.85, 1.15) if rng.random() < 0.7 else rng.uniform(1.3, 1.7)  # straight or coat / dress
    torso = [(cx - half, shoulder_y), (cx + half, shoulder_y), (cx + half * flare, bottom), (cx - half * flare, bottom)]
    rounded = rng.random() < 0.4  # sloping shoulders: an ellipse over the trapezoid's top

    def body(cv, s):
        cv2.ellipse(cv, pts(head_c, s).tolist(), pts(head_r, s).tolist(), head_tilt, 0, 360, 255, -1, cv2.LINE_AA)
        cv2.rectangle(cv, pts((cx - neck, top + 1.8 * r), s).tolist(), pts((cx + neck, shoulder_y + r), s).tolist(),
                      255, -1, cv2.LINE_AA)
        if rounded:
            cv2.ellipse(cv, pts((cx, shoulder_y + 1.6 * r), s).tolist(), pts((half, 1.9 * r), s).tolist(), 0, 180,
                        360, 255, -1, cv2.LINE_AA)
            cv2.fillPoly(cv, [pts([(cx - half, shoulder_y + 1.6 * r), (cx + half, shoulder_y + 1.6 * r)]
                                  + torso[2:], s)], 255, cv2.LINE_AA)
            return
        cv2.fillPoly(cv, [pts(torso, s)], 255, cv2.LINE_AA)
        for side in (-1, 1):
            cv2.circle(cv, pts((cx + side * (half - 0.45 * r), shoulder_y + 0.45 * r), s).tolist(),
                       int(0.5 * r * s), 255, -1, cv2.LINE_AA)

    skin = random_colors(rng, 1)[0] * 0.3 + np.array([0.75, 0.55, 0.42], np.float32) * rng.uniform(0.4, 1.1) * 0.7
    clothes = texture(rng, h, w, palette)
    a_body = coverage(h, w, body)
    y = np.arange(h, dtype=np.float32)[:, None, None]
    collar = shoulder_y - (0.45 if rounded else 0.2) * r
    c_body = np.where(y < collar, np.clip(skin + 0.05 * fractal_noise(rng, h, w, 16)[..., None], 0, 1),
                      clothes)
    arms = []
    for side in (-1, 1):
        pose = rng.choice(["down", "hip", "up"], p=[0.4, 0.35, 0.25])
        sh = np.array((cx + side * (half - 0.45 * r), shoulder_y + 0.45 * r))
        if pose == "down":
            elbow = sh + (side * r * rng.uniform(0.3, 0.9), r * 2.6)
            hand = elbow + (side * r * rng.uniform(-0.2, 0.5), r * 2.4)
        elif pose == "hip":  # hand on hip: the arm closes a hole against the torso
            elbow = sh + (side * r * rng.uniform(1.6, 2.4), r * 2.2)
            hand = np.array((cx + side * half * 0.9, sh[1] + r * 4.2))
        else:
            elbow = sh + (side * r * rng.uniform(1.0, 2.2), -r * rng.uniform(0.5, 1.8))
            hand = elbow + (side * r * rng.uniform(-0.8, 0.8), -r * rng.uniform(1.5, 2.5))
        thick = r * rng.uniform(0.45, 0.7)

        def arm(cv, s, p=(sh, elbow, hand), thick=thick):
            cv2.polylines(cv, [pts(p, s)], False, 255, max(int(thick * s), 1), cv2.LINE_AA)
            cv2.circle(cv, pts(p[2], s).tolist(), int(0.4 * r * s), 255, -1, cv2.LINE_AA)

        c_arm = clothes if rng.random() < 0.5 else np.broadcast_to(skin, (h, w, 3)).astype(np.float32)  # sleeve or skin
        arms.append((coverage(h, w, arm), c_arm, pose))
    return (a_body, c_body.astype(np.float32)), arms, hair_layer(rng, h, w, head_c, head_r, palette, hair)


def person_layers(rng, h, w, palette, texture, box: Optional[Tuple[float, float, float]] = None,
                  hair: Optional[str] = None) -> List[Layer]:
    """A person, back to front: hair, head and torso, arms (a raised arm motion-blurred, p 0.6).

    box: ``(center x, head top y, height)`` in pixels (None: drawn); hair: a density of HAIR_DENSITIES."""
    if box is None:
        height = rng.uniform(0.55, 1.1) * h
        box = (rng.uniform(0.3, 0.7) * w, rng.uniform(0.03, 0.3) * h, height)
    back, arms, hair_l = _body(rng, h, w, palette, box, texture, hair)
    arm_layers = []
    for a, c, pose in arms:
        layer = (a, c)
        if pose == "up" and rng.random() < 0.6:  # a waving arm: motion-blurred edges
            layer = blur_layer(layer, motion_kernel(rng.uniform(5, 0.06 * h + 6), rng.uniform(0, np.pi)))
        arm_layers.append(layer)
    return [hair_l, back] + arm_layers
