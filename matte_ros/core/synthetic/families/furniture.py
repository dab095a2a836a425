"""Furniture-like subjects (held out of training): chairs, tables, shelves, stools of thin bars and
slats, with the background seen through them."""
from typing import List

import cv2
import numpy as np

from ..layers import Layer, coverage, pts

__all__ = ["FURNITURE_KINDS", "furniture_layers"]

FURNITURE_KINDS = ("chair", "table", "shelf", "stool")


def _bars(kind: str, rng: np.random.Generator, h: int, w: int):
    """The piece as (polygons, bars): filled quadrilaterals and (p0, p1, width) bars in pixels."""
    unit = min(h, w)
    bar = rng.uniform(0.008, 0.03) * unit
    cx, floor = rng.uniform(0.35, 0.65) * w, rng.uniform(0.85, 0.99) * h
    width, depth = rng.uniform(0.35, 0.7) * w, rng.uniform(0.05, 0.15) * h   # depth: the seat's perspective
    polys, bars = [], []
    x0, x1 = cx - width / 2, cx + width / 2
    if kind in ("chair", "table", "stool"):
        top = floor - rng.uniform(0.3, 0.5) * h if kind != "table" else floor - rng.uniform(0.35, 0.6) * h
        if kind == "stool":
            x0, x1 = cx - width / 4, cx + width / 4
        slab = rng.uniform(0.015, 0.04) * h
        skew = depth * rng.uniform(0.3, 0.8)
        polys.append([(x0, top), (x1, top), (x1 + skew, top - depth), (x0 + skew, top - depth)])
        polys.append([(x0, top), (x1, top), (x1, top + slab), (x0, top + slab)])
        for x, y, far in ((x0 + bar, top, 0), (x1 - bar, top, 0), (x0 + skew + bar, top - depth, 1),
                          (x1 + skew - bar, top - depth, 1)):  # legs; the far ones end higher up
            bars.append(((x, y), (x + rng.normal(0, 0.01) * w, floor - far * depth), bar))
        if rng.random() < 0.6:  # stretchers between the legs
            y = top + rng.uniform(0.4, 0.7) * (floor - top)
            bars.append(((x0 + bar, y), (x1 - bar, y), bar * 0.8))
        if kind == "chair":  # a back of two posts, a top rail and slats: holes between them
            back = top - rng.uniform(0.25, 0.45) * h
            bx0, bx1 = x0 + skew + bar, x1 + skew - bar
            bars += [((bx0, top - depth), (bx0, back), bar), ((bx1, top - depth), (bx1, back), bar),
                     ((bx0, back), (bx1, back), bar * rng.uniform(1.5, 3))]
            slats = int(rng.integers(2, 7))
            horizontal = rng.random() < 0.4
            for i in range(1, slats + 1):
                f = i / (slats + 1)
                if horizontal:
                    y = back + f * (top - depth - back)
                    bars.append(((bx0, y), (bx1, y), bar * rng.uniform(0.5, 1.5)))
                else:
                    x = bx0 + f * (bx1 - bx0)
                    bars.append(((x, back), (x, top - depth), bar * rng.uniform(0.4, 1.5)))
    else:  # shelf: a frame with boards, open between them
        top = floor - rng.uniform(0.5, 0.85) * h
        bars += [((x0, top), (x0, floor), bar * 1.5), ((x1, top), (x1, floor), bar * 1.5),
                 ((x0, top), (x1, top), bar * 2)]
        for i in range(1, int(rng.integers(2, 6)) + 1):
            y = top + i * (floor - top) / (i + 1 + rng.uniform(0, 1))
            bars.append(((x0, y), (x1, y), bar * rng.uniform(1, 3)))
        if rng.random() < 0.5:  # a diagonal brace
            bars.append(((x0, floor), (x1, top), bar * 0.6))
    return polys, bars


def furniture_layers(rng, h, w, palette, texture) -> List[Layer]:
    """A chair, table, shelf or stool of bars 0.8..3 % of the image wide: slats, legs and stretchers
    with the background visible through every gap; a wood-like texture or a flat colour."""
    kind = FURNITURE_KINDS[int(rng.integers(len(FURNITURE_KINDS)))]
    polys, bars = _bars(kind, rng, h, w)

    def draw(cv, s):
        for poly in polys:
            cv2.fillPoly(cv, [pts(poly, s)], 255, cv2.LINE_AA)
        for p0, p1, wd in bars:
            cv2.line(cv, pts(p0, s).tolist(), pts(p1, s).tolist(), 255, max(int(wd * s), 1), cv2.LINE_AA)

    return [(coverage(h, w, draw), texture(rng, h, w, palette))]
