"""Organic objects: a blob of thresholded noise inside an envelope (lobes, holes), optionally furry."""
from typing import List

import cv2
import numpy as np

from ..layers import SUPERSAMPLE, Layer, fur_layer
from ..textures import fractal_noise

__all__ = ["object_layers"]


def object_layers(rng, h, w, palette, texture) -> List[Layer]:
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
        fur = fur_layer(rng, a, layers[0][1], (cx, cy), (150, 600), (3, 0.05 * min(h, w) + 4))
        if fur is not None:
            layers.append(fur)
    return layers
