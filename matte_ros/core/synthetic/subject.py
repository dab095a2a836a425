"""Matting subjects: a foreground colour and a physically consistent alpha (pure numpy/OpenCV).

A subject is a stack of layers (:mod:`.layers`) from one family of shapes (:mod:`.families`: persons,
organic objects, plants, text; animal-like and furniture-like shapes held out of training), plus
extras (thin sticks, rings, veils) and, sometimes, motion or defocus blur of the whole. The
difficulties real matting has are all here: hair strands and soft hair volume, fur, thin rigid
structures, holes, semi-transparent regions, defocused and motion-blurred edges, textured and
camouflaged colours.
"""
from typing import List, Optional, Tuple

import cv2
import numpy as np

from .families import FAMILIES, HELD_OUT_FAMILIES, TRAINING_FAMILIES, family
from .layers import SUPERSAMPLE, Layer, Texture, blur_layer, composite, coverage, motion_kernel, pts
from .textures import fractal_noise, random_colors, render_texture

__all__ = ["SUPERSAMPLE", "SUBJECT_KINDS", "TRAINING_FAMILIES", "HELD_OUT_FAMILIES", "render_subject", "extra_layers"]

SUBJECT_KINDS = tuple(FAMILIES)


def extra_layers(rng, h, w, palette, texture) -> List[Layer]:
    """Thin rigid structures, a ring with a hole, a semi-transparent veil."""
    layers = []
    if rng.random() < 0.6:  # sticks / antennas / cables: 1..3 px wide, opaque, crossing the frame edge
        ends = [(rng.uniform(0, 1, 2) * [w, h], rng.uniform(-0.3, 1.3, 2) * [w, h])
                for _ in range(int(rng.integers(1, 4)))]
        widths = rng.uniform(0.6, 3.0, len(ends))
        a = coverage(h, w, lambda cv, s: [cv2.line(cv, pts(p0, s).tolist(), pts(p1, s).tolist(), 255,
                                                   max(int(wd * s), 1), cv2.LINE_AA)
                                          for (p0, p1), wd in zip(ends, widths)])
        layers.append((a, np.broadcast_to(random_colors(rng, 1, palette)[0], (h, w, 3)).astype(np.float32)))
    if rng.random() < 0.4:  # a ring (bag handle, hoop): background visible through its hole
        c, ax = rng.uniform(0.2, 0.8, 2) * [w, h], rng.uniform(0.05, 0.2, 2) * min(h, w)
        width = rng.uniform(0.1, 0.35) * ax.min()
        a = coverage(h, w, lambda cv, s: cv2.ellipse(cv, pts(c, s).tolist(), pts(ax, s).tolist(),
                                                     rng.uniform(0, 180), 0, 360, 255, max(int(width * s), 1),
                                                     cv2.LINE_AA))
        layers.append((a, texture(rng, h, w, palette)))
    if rng.random() < 0.45:  # a veil / glass / smoke: fractional alpha over a large region
        poly = rng.uniform(0.1, 0.9, (int(rng.integers(3, 7)), 2)) * [w, h]
        hull = cv2.convexHull(poly.astype(np.float32))[:, 0]
        a = coverage(h, w, lambda cv, s: cv2.fillPoly(cv, [pts(hull, s)], 255, cv2.LINE_AA))
        a = cv2.GaussianBlur(a, (0, 0), rng.uniform(0.3, 3.0))
        opacity = rng.uniform(0.15, 0.7) * (0.7 + 0.3 * fractal_noise(rng, h, w, scale=rng.uniform(16, 96), octaves=2))
        layers.append(((a * opacity).astype(np.float32), texture(rng, h, w, palette)))
    return layers


def render_subject(rng: np.random.Generator, h: int, w: int, *, palette: Optional[np.ndarray] = None,
                   kind: Optional[str] = None, box: Optional[Tuple[float, float, float]] = None,
                   extras: bool = True, texture: Optional[Texture] = None, hair: Optional[str] = None
                   ) -> Tuple[np.ndarray, np.ndarray]:
    """A random matting subject -> ``fgr`` (h, w, 3) float32 0..1 and ``pha`` (h, w) float32 0..1.

    kind: a family of SUBJECT_KINDS ("person": head, torso, arms, hair strands; "object": organic
    shape with holes, fur; "plant", "text", and the held-out "animal", "furniture"); None picks a
    person (three times in four) or an object. box: person placement ``(center x, head top y,
    height)`` in pixels; None picks one at random. hair: a person's hair, "sparse" or "dense" (None:
    as drawn). palette: (K, 3) colours the subject's textures are drawn near (camouflage against a
    background of the same palette). extras: add thin structures, rings and veils. texture:
    ``texture(rng, h, w, palette)`` -> (h, w, 3) float32 0..1, the surface of clothes, objects, rings
    and veils (default :func:`render_texture`; photographs, for example).
    """
    if int(h) < 16 or int(w) < 16:
        raise ValueError(f"subject size must be at least 16x16, got {h}x{w}")
    texture = render_texture if texture is None else texture
    if kind is None:
        kind = "person" if rng.random() < 0.75 else "object"
    fam = family(kind)
    if hair is not None and kind != "person":
        raise ValueError(f"hair applies to persons only, not to {kind!r}")
    options = {"box": box, "hair": hair} if kind == "person" else {}
    layers = fam.layers(rng, h, w, palette, texture, **options)
    if extras:
        layers += extra_layers(rng, h, w, palette, texture)
    fgr, pha = composite(layers, h, w, layers[0][1])
    if rng.random() < 0.2:  # the whole subject moving or out of focus
        kernel = (motion_kernel(rng.uniform(3, 15), rng.uniform(0, np.pi)) if rng.random() < 0.5
                  else cv2.getGaussianKernel(9, rng.uniform(0.5, 1.5))
                  @ cv2.getGaussianKernel(9, rng.uniform(0.5, 1.5)).T)
        fgr, pha = blur_layer((pha, fgr), kernel.astype(np.float32))[::-1]
    return fgr, pha
