"""Text: words in OpenCV's Hershey fonts, bold or hairline, upright or turned (letters with holes)."""
from typing import List

import cv2
import numpy as np

from ..layers import Layer, coverage
from ..textures import random_colors

__all__ = ["text_layers"]

_FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_TRIPLEX,
          cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, cv2.FONT_HERSHEY_SCRIPT_COMPLEX, cv2.FONT_HERSHEY_PLAIN)
_LETTERS = "ABDOPQRabdegopq0689AEHKMNSTWXYZacfhkmnrstuwxyz&@#%"


def text_layers(rng, h, w, palette, texture) -> List[Layer]:
    """One to three lines of random letters (many with holes) filling 50..95 % of the width, stroke
    1..12 % of the letter height, turned by up to 25 degrees; a flat colour or a texture."""
    lines = ["".join(rng.choice(list(_LETTERS), int(rng.integers(2, 8)))) for _ in range(int(rng.integers(1, 4)))]
    font = int(rng.choice(_FONTS))
    stroke = rng.uniform(0.01, 0.12)
    angle = rng.uniform(-25, 25) if rng.random() < 0.5 else 0.0
    fill = rng.uniform(0.5, 0.95)
    top = rng.uniform(0.05, 0.3)

    def draw(cv, s):
        big_h, big_w = cv.shape
        longest = max(cv2.getTextSize(t, font, 1.0, 1)[0][0] for t in lines)
        unit_h = cv2.getTextSize("Ag", font, 1.0, 1)[0][1]          # line height at scale 1
        scale = min(fill * big_w / max(longest, 1), (1 - top) * big_h / (1.5 * unit_h * len(lines)))
        line_h = unit_h * scale
        thick = max(int(stroke * line_h), 1)
        canvas = np.zeros_like(cv)
        for i, t in enumerate(lines):
            tw = cv2.getTextSize(t, font, scale, thick)[0][0]
            org = (int((big_w - tw) / 2), int(top * big_h + (i + 1) * 1.5 * line_h))
            cv2.putText(canvas, t, org, font, scale, 255, thick, cv2.LINE_AA)
        if angle:
            mat = cv2.getRotationMatrix2D((big_w / 2, big_h / 2), angle, 1.0)
            canvas = cv2.warpAffine(canvas, mat, (big_w, big_h), flags=cv2.INTER_LINEAR)
        cv[...] = canvas

    a = coverage(h, w, draw)
    color = (np.broadcast_to(random_colors(rng, 1, palette)[0], (h, w, 3)).astype(np.float32)
             if rng.random() < 0.6 else texture(rng, h, w, palette))
    return [(a, color)]
