"""The stress suite's categories and scenes: one category per way matting fails, each scene a pure
function of (seed, category, index, size, photographs).

Every scene: a plate cut from a held-out photograph (:mod:`training.heldout`; a plain wall for
``wall``), a subject whose surfaces are crops of those photographs, from a held-out family
(animal-like, furniture-like: every other image) or a training family, the plate as the camera sees
it behind the subject (sub-pixel shift, exposure offset of about 1 %, sensor noise), and the
category's own difficulty on top. The ground truth (alpha, foreground) is exact; the trimap's
unknown band (128) is where the true alpha is fractional, plus the subject's edge, dilated by
``BAND_RADIUS`` px. Images are uint8 RGB; alphas and trimaps uint8.
"""
import zlib
from typing import Dict, List, NamedTuple, Sequence, Tuple

import cv2
import numpy as np

from matte_ros.core.synthetic import (
    HELD_OUT_FAMILIES,
    TRAINING_FAMILIES,
    cast_shadow,
    flat_texture,
    jpeg_roundtrip,
    perturb_plate,
    render_subject,
)
from matte_ros.core.synthetic.layers import blur_layer, composite, coverage, motion_kernel, pts
from matte_ros.core.synthetic.textures import fractal_noise

from .photos import load_photo, photo_crop
from .synth import photo_texture

__all__ = ["Category", "CATEGORIES", "CAMOUFLAGE_LEVELS", "BAND_RADIUS", "StressSample", "camouflage", "plain_wall",
           "band_trimap", "make_stress_sample", "describe_categories"]

BAND_RADIUS = 3
CAMOUFLAGE_LEVELS = (0.03, 0.06, 0.12)   # mean |subject - plate| per channel over the subject


class Category(NamedTuple):
    about: str
    effects: Tuple[str, ...]


# category -> what its scenes hold; each category's scenes carry the effect of its own name, "mixed"
# two or three of _MIXABLE's (make_stress_sample)
_ABOUT: Dict[str, str] = {
    "camouflage-0.03": "subject 0.03 from the plate per channel (its texture follows the plate)",
    "camouflage-0.06": "subject 0.06 from the plate per channel",
    "camouflage-0.12": "subject 0.12 from the plate per channel",
    "wall": "plain wall (a colour, a gradient, shading); smooth subject 0.04..0.08 from it",
    "hair": "persons with dense or sparse hair, animal-like bodies under dense fur",
    "translucent": "a large veil, glass or smoke (alpha 0.15..0.7) over 25..60 % of the frame",
    "thin": "furniture-like bars and slats, plants, sticks and rings: thin structures and holes",
    "motion": "the whole subject motion-blurred over 8..30 px",
    "shadow": "the subject's shadow on the scene, 25..60 % dark",
    "exposure": "exposure 8..25 % and white balance +-5 % off the plate, frame-wide",
    "shift": "the plate seen shifted by 1..4 px",
    "jpeg": "the frame JPEG-compressed at quality 30..70",
    "mixed": "two or three of the other categories' difficulties at once",
}
CATEGORIES: Dict[str, Category] = {name: Category(about, () if name == "mixed" else (name,))
                                   for name, about in _ABOUT.items()}
_MIXABLE = ("camouflage-0.03", "camouflage-0.06", "camouflage-0.12", "hair", "translucent", "thin", "motion", "shadow",
            "exposure", "shift", "jpeg")


class StressSample(NamedTuple):
    """src, bgr, fgr: (H, W, 3) uint8 RGB; pha, trimap: (H, W) uint8 (trimap: 0, 128 unknown, 255)."""
    src: np.ndarray
    bgr: np.ndarray
    pha: np.ndarray
    fgr: np.ndarray
    trimap: np.ndarray


def _u8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)


def camouflage(rng: np.random.Generator, fgr: np.ndarray, pha: np.ndarray, bgr: np.ndarray, level: float,
               smooth: bool = False) -> np.ndarray:
    """The subject recoloured to lie ``level`` from the plate: mean over the subject (alpha > 0.5) and
    the channels of |fgr - bgr| equal to ``level`` (up to clipping). Its colour follows the plate
    blurred over 6 % of the side plus a per-channel offset pointing away from the nearer end of 0..1,
    keeping half of its own texture (none when ``smooth``). fgr, bgr: (H, W, 3) float 0..1."""
    h, w = pha.shape
    local = cv2.GaussianBlur(bgr.astype(np.float32), (0, 0), 0.06 * max(h, w))
    inside = pha > 0.5
    if not inside.any():
        return fgr
    sign = np.where(local[inside].mean(0) > 0.5, -1.0, 1.0).astype(np.float32)
    own = 0.0 if smooth else 0.5 * (fgr - fgr[inside].mean(0))
    diff = (local + sign * level + own - bgr).astype(np.float32)
    out = fgr
    for _ in range(3):  # scale the difference to the level; again after clipping
        out = np.clip(bgr + diff, 0, 1)
        got = float(np.abs(out - bgr)[inside].mean())
        if got < 1e-6:
            break
        diff = diff * (level / got)
    return np.clip(bgr + diff, 0, 1).astype(np.float32)


def plain_wall(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """(h, w, 3) float32: a painted wall: a muted colour, a linear gradient up to 0.12, shading +-0.03."""
    base = 0.15 + 0.7 * rng.random(3)
    base = 0.6 * base + 0.4 * base.mean()
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = ((x / w - 0.5) * np.cos(angle) + (y / h - 0.5) * np.sin(angle))[..., None] * rng.uniform(0, 0.12)
    shade = (fractal_noise(rng, h, w, scale=max(h, w), octaves=2)[..., None] - 0.5) * 0.06
    return np.clip(base + ramp + shade, 0, 1).astype(np.float32)


def band_trimap(pha8: np.ndarray, radius: int = BAND_RADIUS) -> np.ndarray:
    """(H, W) uint8 trimap of a true alpha (uint8): 128 where alpha is fractional or on the edge of
    alpha >= 128, dilated by ``radius`` px (ellipse); elsewhere 255 (alpha >= 128) or 0."""
    solid = (pha8 >= 128).astype(np.uint8)
    edge = cv2.morphologyEx(solid, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    band = ((pha8 > 0) & (pha8 < 255)) | edge
    if radius > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        band = cv2.dilate(band.astype(np.uint8), kernel) > 0
    return np.where(band, 128, np.where(solid > 0, 255, 0)).astype(np.uint8)


def _veil(rng: np.random.Generator, h: int, w: int, texture) -> Tuple[np.ndarray, np.ndarray]:
    """A large translucent layer: a blurred convex region of 25..60 % of the frame, alpha 0.15..0.7."""
    area = rng.uniform(0.25, 0.6)
    c = rng.uniform(0.3, 0.7, 2) * [w, h]
    r = np.sqrt(area * h * w / np.pi)
    ang = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(5, 9))))
    poly = c + np.stack([np.cos(ang) * r * rng.uniform(0.8, 1.25, len(ang)) * w / max(h, w) * 1.3,
                         np.sin(ang) * r * rng.uniform(0.8, 1.25, len(ang)) * h / max(h, w) * 1.3], 1)
    a = coverage(h, w, lambda cv, s: cv2.fillPoly(cv, [pts(cv2.convexHull(poly.astype(np.float32))[:, 0], s)], 255,
                                                  cv2.LINE_AA))
    a = cv2.GaussianBlur(a, (0, 0), rng.uniform(0.5, 4.0))
    opacity = rng.uniform(0.15, 0.7) * (0.75 + 0.25 * fractal_noise(rng, h, w, scale=rng.uniform(24, 96), octaves=2))
    return (a * opacity).astype(np.float32), texture(rng, h, w, None)


def _subject_kind(effects: Sequence[str], index: int, rng: np.random.Generator) -> Dict:
    """render_subject's options: held-out families for even indices, training families for odd ones."""
    if "hair" in effects:
        return ({"kind": "person", "hair": "dense"}, {"kind": "animal"},
                {"kind": "person", "hair": "sparse"})[index % 3]
    if "thin" in effects:
        return {"kind": "furniture" if index % 2 == 0 else "plant"}
    pool = HELD_OUT_FAMILIES if index % 2 == 0 else TRAINING_FAMILIES
    return {"kind": pool[int(rng.integers(len(pool)))]}


def _shifted(rng: np.random.Generator, bgr8: np.ndarray) -> np.ndarray:
    """The plate shifted by 1..4 px in a random direction, with sensor noise: (H, W, 3) float32."""
    h, w = bgr8.shape[:2]
    d, angle = rng.uniform(1.0, 4.0), rng.uniform(0, 2 * np.pi)
    mat = np.float32([[1, 0, d * np.cos(angle)], [0, 1, d * np.sin(angle)]])
    out = cv2.warpAffine(bgr8.astype(np.float32) / 255.0, mat, (w, h), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT)
    return np.clip(out + rng.standard_normal(out.shape, dtype=np.float32) * np.float32(0.006), 0, 1)


def _category_seed(category: str) -> int:
    return zlib.crc32(category.encode())


def make_stress_sample(seed: int, category: str, index: int, size: Tuple[int, int], photos: Sequence[str]
                       ) -> StressSample:
    """Image ``index`` of ``category`` (see CATEGORIES and the module docstring)."""
    if category not in CATEGORIES:
        raise ValueError(f"unknown stress category {category!r}; expected one of {tuple(CATEGORIES)}")
    if not photos:
        raise ValueError("the stress suite needs held-out photographs (apt-get install " +
                         "lomiri-wallpapers lomiri-wallpapers-16.04 lomiri-wallpapers-20.04)")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), _category_seed(category), int(index)]))
    h, w = size
    effects: Tuple[str, ...] = CATEGORIES[category].effects
    if not effects:  # mixed
        effects = tuple(rng.choice(_MIXABLE, int(rng.integers(2, 4)), replace=False))
        camo = [e for e in effects if e.startswith("camouflage")]
        effects = tuple(e for e in effects if not e.startswith("camouflage")) + tuple(camo[:1])
    pick = photos[int(rng.integers(len(photos)))]
    wall = "wall" in effects
    bgr = plain_wall(rng, h, w) if wall else photo_crop(rng, load_photo(pick), h, w, zoom=(0.35, 1.0), jitter=0.5)
    texture = flat_texture if wall else photo_texture(photos, 0.85)
    options = _subject_kind(effects, index, rng)
    fgr, pha = render_subject(rng, h, w, texture=texture, extras="thin" in effects or rng.random() < 0.3, **options)
    if "translucent" in effects:
        fgr, pha = composite([(pha, fgr), _veil(rng, h, w, texture)], h, w, fgr)
    if "motion" in effects:
        pha, fgr = blur_layer((pha, fgr), motion_kernel(rng.uniform(8, 30), rng.uniform(0, np.pi)))
    for e in effects:
        if e.startswith("camouflage-"):
            fgr = camouflage(rng, fgr, pha, bgr, float(e.split("-")[1]))
    if wall:
        fgr = camouflage(rng, fgr, pha, bgr, rng.uniform(0.04, 0.08), smooth=True)
    bgr8, pha8 = _u8(bgr), _u8(pha)
    if "shift" in effects:
        seen = _shifted(rng, bgr8)
    else:
        seen = perturb_plate(rng, bgr8, strength=float(rng.uniform(0.2, 0.5)), max_shift=0.5)
    a = pha8.astype(np.float32)[..., None] / 255.0
    if "shadow" in effects:
        seen = cast_shadow(rng, seen, a[..., 0], float(rng.uniform(0.25, 0.6)))
    if "exposure" in effects:
        gain = (1 + rng.choice([-1.0, 1.0]) * rng.uniform(0.08, 0.25) + rng.uniform(-0.05, 0.05, 3)).astype(np.float32)
        offset = rng.uniform(-0.02, 0.02, 3).astype(np.float32)
        seen, fgr = np.clip(seen * gain + offset, 0, 1), np.clip(fgr * gain + offset, 0, 1)
    fgr8 = _u8(fgr)
    src = _u8(a * (fgr8.astype(np.float32) / 255.0) + (1.0 - a) * seen)
    if "jpeg" in effects:
        src = jpeg_roundtrip(src, int(rng.integers(30, 71)))
    return StressSample(src, bgr8, pha8, fgr8, band_trimap(pha8))


def describe_categories() -> List[str]:
    """One line per category: name and what it holds."""
    return [f"{name}: {c.about}" for name, c in CATEGORIES.items()]
