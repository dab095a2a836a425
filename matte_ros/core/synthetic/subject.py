"""Matting subjects: a foreground colour and a physically consistent alpha (pure numpy/OpenCV).

A subject is built from layers, each a coverage map ``a`` (h, w) and a colour ``c`` (h, w, 3),
composited front over back in premultiplied form (``P = a*c + (1-a)*P``, ``A = a + (1-a)*A``); the
foreground is ``fgr = P / A``. So ``pha*fgr + (1-pha)*bgr`` is exactly the image of the layers in
front of ``bgr``. Coverage is drawn at ``SUPERSAMPLE`` times the resolution and area-averaged, so
strands a quarter of a pixel wide give fractional alpha. The difficulties real matting has are
all here: hair strands and soft hair volume, thin rigid structures, holes, semi-transparent
regions, defocused and motion-blurred edges, textured and camouflaged colours.
"""
from typing import Callable, List, Optional, Tuple

import cv2
import numpy as np

from .textures import fractal_noise, random_colors, render_texture

__all__ = ["SUPERSAMPLE", "SUBJECT_KINDS", "render_subject"]

SUPERSAMPLE = 4
SUBJECT_KINDS = ("person", "object")
Layer = Tuple[np.ndarray, np.ndarray]  # (a (h, w) float32, c (h, w, 3) float32)
Texture = Callable[[np.random.Generator, int, int, Optional[np.ndarray]], np.ndarray]


def _coverage(h: int, w: int, draw: Callable[[np.ndarray, int], None]) -> np.ndarray:
    """Run ``draw(canvas, S)`` on a zeroed uint8 canvas S times larger, area-average back to (h, w) float32 0..1."""
    s = SUPERSAMPLE
    canvas = np.zeros((h * s, w * s), np.uint8)
    draw(canvas, s)
    return cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def _pts(points, s: int) -> np.ndarray:
    return np.round(np.asarray(points, np.float64) * s).astype(np.int32)


def _motion_kernel(length: float, angle: float) -> np.ndarray:
    """Normalised linear motion-blur kernel of ``length`` px at ``angle`` radians."""
    k = int(np.ceil(length)) | 1
    kernel = np.zeros((k, k), np.float32)
    c, d = (k - 1) / 2, (length - 1) / 2
    p0 = (c - d * np.cos(angle), c - d * np.sin(angle))
    p1 = (c + d * np.cos(angle), c + d * np.sin(angle))
    cv2.line(kernel, _pts(p0, 16).tolist(), _pts(p1, 16).tolist(), 1.0, 1, cv2.LINE_AA, shift=4)
    return kernel / kernel.sum()


def _blur_layer(layer: Layer, kernel: np.ndarray) -> Layer:
    """Blur a layer in premultiplied form (what a moving or defocused object does over a static background)."""
    a, c = layer
    a_b = cv2.filter2D(a, -1, kernel, borderType=cv2.BORDER_CONSTANT)
    p_b = cv2.filter2D(c * a[..., None], -1, kernel, borderType=cv2.BORDER_CONSTANT)
    safe = np.maximum(a_b, 1e-6)[..., None]
    return np.clip(a_b, 0, 1), np.where(a_b[..., None] > 1e-6, np.clip(p_b / safe, 0, 1), c)


def _strands(rng: np.random.Generator, roots: np.ndarray, directions: np.ndarray, length: Tuple[float, float],
             curl: float, steps: int = 12, gravity: float = 0.0) -> List[np.ndarray]:
    """Smooth random curves ``(steps+1, 2)`` starting at ``roots`` (N, 2) heading along ``directions`` (N,) rad.

    gravity in 0..1 bends each strand, more towards its tip, to hang down (image +y) on its own side.
    """
    n = len(roots)
    seg = rng.uniform(*length, n)[:, None] / steps
    turn = np.cumsum(rng.normal(0.0, curl, (n, steps)), axis=1) + rng.normal(0.0, curl, (n, 1)) * 3
    ang = directions[:, None] + np.cumsum(turn * 0.25, axis=1)
    if gravity > 0:
        down = np.where(np.cos(directions) >= 0, np.pi / 2, -1.5 * np.pi)[:, None]  # turn the short way round
        ang = np.unwrap(ang, axis=1)
        ang = ang + (down - ang) * gravity * np.linspace(0.5, 1.0, steps)[None]
    step = np.stack([np.cos(ang), np.sin(ang)], axis=2) * seg[..., None]
    return list(np.concatenate([roots[:, None], roots[:, None] + np.cumsum(step, axis=1)], axis=1))


def _hair_layer(rng, h, w, center, radii, palette) -> Layer:
    """Hair (drawn behind the head): a soft volume plus hundreds of sub-pixel strands flying out of it."""
    cx, cy = center
    rx, ry = radii
    volume = _coverage(h, w, lambda cv, s: cv2.ellipse(  # behind the head: the face stays visible
        cv, _pts((cx, cy - 0.2 * ry), s).tolist(), _pts((rx * 1.2, ry * 1.0), s).tolist(), 0, 0, 360, 255, -1,
        cv2.LINE_AA))
    volume = cv2.GaussianBlur(volume, (0, 0), rng.uniform(0.6, 2.5) * max(rx, 4) / 40)
    n = int(rng.integers(120, 420))
    theta = rng.uniform(-np.pi * 0.95, -np.pi * 0.05, n) if rng.random() < 0.7 else rng.uniform(-np.pi, np.pi, n)
    roots = np.stack([cx + np.cos(theta) * rx * 1.05, cy - 0.15 * ry + np.sin(theta) * ry * 1.02], axis=1)
    if rng.random() < 0.4:  # long hair falling over the shoulders
        lines = _strands(rng, roots, theta + rng.normal(0, 0.2, n), (1.2 * rx, 4.0 * rx), rng.uniform(0.02, 0.12),
                         steps=16, gravity=rng.uniform(0.6, 1.0))
    else:  # short, frizzy hair
        lines = _strands(rng, roots, theta + rng.normal(0, 0.35, n), (0.2 * rx, 0.9 * rx), rng.uniform(0.05, 0.3))
    groups = np.array_split(np.arange(n), 4)

    def draw(cv, s):
        for g, members in enumerate(groups):  # four strand opacities, 0.25..0.75 px wide
            cv2.polylines(cv, [_pts(lines[i], s) for i in members], False, int(255 * (0.55 + 0.15 * g)),
                          1 + g % 3 if s >= 4 else 1, cv2.LINE_AA)

    strands = _coverage(h, w, draw)
    a = 1.0 - (1.0 - volume) * (1.0 - strands)
    base = random_colors(rng, 2, palette if rng.random() < 0.3 else None) * [0.8, 0.8, 0.8]
    t = fractal_noise(rng, h, w, scale=rng.uniform(4, 24), octaves=2)[..., None]
    c = base[0] * (1 - t) + np.clip(base[1] * 1.3, 0, 1) * t
    return a.astype(np.float32), c.astype(np.float32)


def _person_layers(rng, h, w, palette, box, texture) -> Tuple[Layer, List[Tuple[np.ndarray, np.ndarray, str]], Layer]:
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
        cv2.ellipse(cv, _pts(head_c, s).tolist(), _pts(head_r, s).tolist(), head_tilt, 0, 360, 255, -1, cv2.LINE_AA)
        cv2.rectangle(cv, _pts((cx - neck, top + 1.8 * r), s).tolist(), _pts((cx + neck, shoulder_y + r), s).tolist(),
                      255, -1, cv2.LINE_AA)
        if rounded:
            cv2.ellipse(cv, _pts((cx, shoulder_y + 1.6 * r), s).tolist(), _pts((half, 1.9 * r), s).tolist(), 0, 180,
                        360, 255, -1, cv2.LINE_AA)
            cv2.fillPoly(cv, [_pts([(cx - half, shoulder_y + 1.6 * r), (cx + half, shoulder_y + 1.6 * r)]
                                   + torso[2:], s)], 255, cv2.LINE_AA)
            return
        cv2.fillPoly(cv, [_pts(torso, s)], 255, cv2.LINE_AA)
        for side in (-1, 1):
            cv2.circle(cv, _pts((cx + side * (half - 0.45 * r), shoulder_y + 0.45 * r), s).tolist(),
                       int(0.5 * r * s), 255, -1, cv2.LINE_AA)

    skin = random_colors(rng, 1)[0] * 0.3 + np.array([0.75, 0.55, 0.42], np.float32) * rng.uniform(0.4, 1.1) * 0.7
    clothes = texture(rng, h, w, palette)
    a_body = _coverage(h, w, body)
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

        def arm(cv, s, pts=(sh, elbow, hand), thick=thick):
            cv2.polylines(cv, [_pts(pts, s)], False, 255, max(int(thick * s), 1), cv2.LINE_AA)
            cv2.circle(cv, _pts(pts[2], s).tolist(), int(0.4 * r * s), 255, -1, cv2.LINE_AA)

        c_arm = clothes if rng.random() < 0.5 else np.broadcast_to(skin, (h, w, 3)).astype(np.float32)  # sleeve or skin
        arms.append((_coverage(h, w, arm), c_arm, pose))
    hair = _hair_layer(rng, h, w, head_c, head_r, palette)
    return (a_body, c_body.astype(np.float32)), arms, hair


def _object_layers(rng, h, w, palette, texture) -> List[Layer]:
    """An organic object: thresholded noise inside an envelope (lobes, holes), optionally a furry rim."""
    n = cv2.resize(fractal_noise(rng, max(h // 4, 8), max(w // 4, 8), scale=rng.uniform(4, 20), octaves=3),
                   (w * SUPERSAMPLE, h * SUPERSAMPLE), interpolation=cv2.INTER_CUBIC)
    y, x = np.mgrid[0:h * SUPERSAMPLE, 0:w * SUPERSAMPLE].astype(np.float32) / SUPERSAMPLE
    cx, cy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h
    env = 1 - np.hypot((x - cx) / (rng.uniform(0.25, 0.45) * w), (y - cy) / (rng.uniform(0.25, 0.45) * h))
    hard = ((0.6 * n + env) > rng.uniform(0.45, 0.6)).astype(np.uint8) * 255
    a = cv2.resize(hard, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    layers = [(a, texture(rng, h, w, palette))]
    if rng.random() < 0.5:  # fur: short strands along the rim
        edge = cv2.Canny((a > 0.5).astype(np.uint8) * 255, 50, 150)
        ys, xs = np.nonzero(edge)
        if len(xs):
            pick = rng.choice(len(xs), min(len(xs), int(rng.integers(150, 600))), replace=False)
            roots = np.stack([xs[pick], ys[pick]], 1).astype(np.float64)
            out = np.arctan2(roots[:, 1] - cy, roots[:, 0] - cx) + rng.normal(0, 0.5, len(pick))
            lines = _strands(rng, roots, out, (3, 0.05 * min(h, w) + 4), 0.2, steps=6)
            fur = _coverage(h, w, lambda cv, s: cv2.polylines(cv, [_pts(p, s) for p in lines], False, 200, 1 + (s >= 4),
                                                              cv2.LINE_AA))
            layers.append((fur, layers[0][1]))
    return layers


def _extras(rng, h, w, palette, texture) -> List[Layer]:
    """Thin rigid structures, a ring with a hole, a semi-transparent veil."""
    layers = []
    if rng.random() < 0.6:  # sticks / antennas / cables: 1..3 px wide, opaque, crossing the frame edge
        pts = [(rng.uniform(0, 1, 2) * [w, h], rng.uniform(-0.3, 1.3, 2) * [w, h])
               for _ in range(int(rng.integers(1, 4)))]
        widths = rng.uniform(0.6, 3.0, len(pts))
        a = _coverage(h, w, lambda cv, s: [cv2.line(cv, _pts(p0, s).tolist(), _pts(p1, s).tolist(), 255,
                                                    max(int(wd * s), 1), cv2.LINE_AA)
                                           for (p0, p1), wd in zip(pts, widths)])
        layers.append((a, np.broadcast_to(random_colors(rng, 1, palette)[0], (h, w, 3)).astype(np.float32)))
    if rng.random() < 0.4:  # a ring (bag handle, hoop): background visible through its hole
        c, ax = rng.uniform(0.2, 0.8, 2) * [w, h], rng.uniform(0.05, 0.2, 2) * min(h, w)
        width = rng.uniform(0.1, 0.35) * ax.min()
        a = _coverage(h, w, lambda cv, s: cv2.ellipse(cv, _pts(c, s).tolist(), _pts(ax, s).tolist(),
                                                      rng.uniform(0, 180), 0, 360, 255, max(int(width * s), 1),
                                                      cv2.LINE_AA))
        layers.append((a, texture(rng, h, w, palette)))
    if rng.random() < 0.45:  # a veil / glass / smoke: fractional alpha over a large region
        poly = rng.uniform(0.1, 0.9, (int(rng.integers(3, 7)), 2)) * [w, h]
        hull = cv2.convexHull(poly.astype(np.float32))[:, 0]
        a = _coverage(h, w, lambda cv, s: cv2.fillPoly(cv, [_pts(hull, s)], 255, cv2.LINE_AA))
        a = cv2.GaussianBlur(a, (0, 0), rng.uniform(0.3, 3.0))
        opacity = rng.uniform(0.15, 0.7) * (0.7 + 0.3 * fractal_noise(rng, h, w, scale=rng.uniform(16, 96), octaves=2))
        layers.append(((a * opacity).astype(np.float32), texture(rng, h, w, palette)))
    return layers


def _composite(layers: List[Layer], h: int, w: int, fill: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Premultiplied front-over-back composite of ``layers`` (back first) -> (fgr, pha); ``fill`` where pha is 0."""
    pre = np.zeros((h, w, 3), np.float32)
    pha = np.zeros((h, w), np.float32)
    for a, c in layers:
        rows, cols = np.nonzero(a.any(axis=1))[0], np.nonzero(a.any(axis=0))[0]
        if not len(rows):
            continue
        box = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)  # only where the layer covers
        ab = a[box][..., None]
        pre[box] += ab * (c[box] - pre[box])  # = a*c + (1-a)*pre
        pha[box] += ab[..., 0] * (1 - pha[box])  # = a + (1-a)*pha
    fgr = np.where(pha[..., None] > 1e-6, pre / np.maximum(pha, 1e-6)[..., None], fill)
    return np.clip(fgr, 0, 1).astype(np.float32), np.clip(pha, 0, 1).astype(np.float32)


def render_subject(rng: np.random.Generator, h: int, w: int, *, palette: Optional[np.ndarray] = None,
                   kind: Optional[str] = None, box: Optional[Tuple[float, float, float]] = None,
                   extras: bool = True, texture: Optional[Texture] = None) -> Tuple[np.ndarray, np.ndarray]:
    """A random matting subject -> ``fgr`` (h, w, 3) float32 0..1 and ``pha`` (h, w) float32 0..1.

    kind: "person" (head, torso, arms, hair strands) or "object" (organic shape with holes, fur);
    None picks one (persons three times in four). box: person placement ``(center x, head top y,
    height)`` in pixels; None picks one at random. palette: (K, 3) colours the subject's textures
    are drawn near (camouflage against a background of the same palette). extras: add thin
    structures, rings and veils. texture: ``texture(rng, h, w, palette)`` -> (h, w, 3) float32 0..1, the
    surface of clothes, objects, rings and veils (default :func:`render_texture`; photographs, for example).
    """
    if int(h) < 16 or int(w) < 16:
        raise ValueError(f"subject size must be at least 16x16, got {h}x{w}")
    texture = render_texture if texture is None else texture
    if kind is None:
        kind = "person" if rng.random() < 0.75 else "object"
    if kind not in SUBJECT_KINDS:
        raise ValueError(f"unknown subject kind {kind!r}; expected one of {SUBJECT_KINDS}")
    if kind == "person":
        if box is None:
            height = rng.uniform(0.55, 1.1) * h
            box = (rng.uniform(0.3, 0.7) * w, rng.uniform(0.03, 0.3) * h, height)
        back, arms, hair = _person_layers(rng, h, w, palette, box, texture)
        arm_layers = []
        for a, c, pose in arms:
            layer = (a, c)
            if pose == "up" and rng.random() < 0.6:  # a waving arm: motion-blurred edges
                layer = _blur_layer(layer, _motion_kernel(rng.uniform(5, 0.06 * h + 6), rng.uniform(0, np.pi)))
            arm_layers.append(layer)
        layers = [hair, back] + arm_layers
    else:
        layers = _object_layers(rng, h, w, palette, texture)
    if extras:
        layers += _extras(rng, h, w, palette, texture)
    fgr, pha = _composite(layers, h, w, layers[0][1])
    if rng.random() < 0.2:  # the whole subject moving or out of focus
        kernel = (_motion_kernel(rng.uniform(3, 15), rng.uniform(0, np.pi)) if rng.random() < 0.5
                  else cv2.getGaussianKernel(9, rng.uniform(0.5, 1.5))
                  @ cv2.getGaussianKernel(9, rng.uniform(0.5, 1.5)).T)
        fgr, pha = _blur_layer((pha, fgr), kernel.astype(np.float32))[::-1]
    return fgr, pha
