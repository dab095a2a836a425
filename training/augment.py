"""Augmentation of the training data, as in the published BGMv2 training.

Per sample (data loader workers, numpy + OpenCV, randomness from an explicit ``np.random.Generator``):
  :func:`augment_pair` on foreground + alpha, :func:`augment_background` on backgrounds.
Per batch (training device, torch + kornia, randomness from torch's global generator):
  :func:`random_crop`, then :func:`compose_batch` (shadow, compositing, noise, background jitter, a
  white-balance offset, a small background affine and JPEG compression of the frame, so the network
  tolerates an imperfect plate and a compressed camera stream).
Images are float32 in 0..1; numpy images are (H, W, C), tensors (B, C, H, W).
"""
import math
from dataclasses import dataclass
from typing import List, NamedTuple, Optional, Sequence, Tuple

import cv2
import kornia
import numpy as np
import torch
from torch.nn import functional as F

__all__ = ["AffineRange", "pair_affine", "BGR_AFFINE", "VALID_PAIR_SCALE", "affine_matrix", "warp_to_size",
           "color_jitter", "augment_pair", "augment_background", "random_crop", "Batch", "compose_batch",
           "warp_batch", "warp_centred", "motion_blur_pair", "jpeg_batch"]

_SHARPEN = np.array([[-2, -2, -2], [-2, 32, -2], [-2, -2, -2]], np.float32) / 16.0


@dataclass(frozen=True)
class AffineRange:
    """Random affine ranges: rotation +-degrees, translation +-translate (fraction of the output side),
    scale in [scale[0], scale[1]], shear +-shear degrees on each axis."""
    degrees: float
    translate: float
    scale: Tuple[float, float]
    shear: float

    def sample(self, uniform) -> Tuple[float, Tuple[float, float], float, Tuple[float, float]]:
        """``uniform(lo, hi)`` draws one float; returns (angle, (tx, ty), scale, (shear_x, shear_y))."""
        angle = uniform(-self.degrees, self.degrees)
        t = (uniform(-self.translate, self.translate), uniform(-self.translate, self.translate))
        s = uniform(self.scale[0], self.scale[1])
        sh = (uniform(-self.shear, self.shear), uniform(-self.shear, self.shear))
        return angle, t, s, sh


def pair_affine(scale: Tuple[float, float]) -> AffineRange:
    """Foreground + alpha: +-5 deg, 10 % translation, the mode's scale range, +-5 deg shear."""
    return AffineRange(5.0, 0.1, scale, 5.0)


VALID_PAIR_SCALE = (0.3, 1.0)                              # foregrounds while validating (both modes)
BGR_AFFINE = AffineRange(5.0, 0.1, (1.0, 2.0), 5.0)         # backgrounds while training
VALID_BGR_AFFINE = AffineRange(5.0, 0.1, (1.0, 1.2), 5.0)   # backgrounds while validating
SHADOW_AFFINE = AffineRange(5.0, 0.2, (0.5, 1.5), 5.0)
PLATE_AFFINE = AffineRange(1.0, 0.01, (1.0, 1.0), 0.0)      # the small plate misalignment


def affine_matrix(angle: float, translate: Tuple[float, float], scale: float, shear: Tuple[float, float],
                  center_in: Tuple[float, float], center_out: Tuple[float, float]) -> np.ndarray:
    """(2, 3) forward map input pixel (x, y) -> output pixel: move ``center_in`` to the origin, scale,
    shear, rotate (degrees), move to ``center_out`` + ``translate`` (pixels)."""
    a = math.radians(angle)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    shr = np.array([[1.0, math.tan(math.radians(shear[0]))], [math.tan(math.radians(shear[1])), 1.0]])
    lin = rot @ shr * scale
    off = np.array(center_out) + np.array(translate) - lin @ np.array(center_in)
    return np.concatenate([lin, off[:, None]], axis=1).astype(np.float64)


def warp_to_size(imgs: Sequence[np.ndarray], size: int, rng: np.random.Generator, rng_spec: AffineRange
                 ) -> List[np.ndarray]:
    """Random affine of same-sized images into a ``size`` x ``size`` output; scale 1 covers the output."""
    h, w = imgs[0].shape[:2]
    cover = max(size / w, size / h)
    angle, (tx, ty), s, sh = rng_spec.sample(rng.uniform)
    m = affine_matrix(angle, (tx * size, ty * size), s * cover, sh, ((w - 1) / 2, (h - 1) / 2),
                      ((size - 1) / 2, (size - 1) / 2))
    return [cv2.warpAffine(x, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                           borderValue=0).reshape(size, size, *x.shape[2:]) for x in imgs]


def _filters(imgs: List[np.ndarray], rng: np.random.Generator) -> List[np.ndarray]:
    """Horizontal flip (p 0.5), box blur (p 0.1, radius 0..4), sharpen (p 0.1): the same on every image."""
    if rng.random() < 0.5:
        imgs = [x[:, ::-1] for x in imgs]
    if rng.random() < 0.1:
        k = 2 * int(rng.integers(0, 5)) + 1
        imgs = [cv2.blur(np.ascontiguousarray(x), (k, k)).reshape(x.shape) for x in imgs]
    if rng.random() < 0.1:
        imgs = [np.clip(cv2.filter2D(np.ascontiguousarray(x), -1, _SHARPEN, borderType=cv2.BORDER_REPLICATE),
                        0.0, 1.0).reshape(x.shape) for x in imgs]
    return [np.ascontiguousarray(x) for x in imgs]


def color_jitter(x: torch.Tensor, brightness: torch.Tensor, contrast: torch.Tensor, saturation: torch.Tensor,
                 hue: torch.Tensor) -> torch.Tensor:
    """x: (B, 3, H, W) RGB 0..1; factors: (B,) -- brightness/contrast/saturation multiply (1 = unchanged;
    contrast and saturation blend with the grey mean / grey image), hue shifts by a fraction of a turn."""
    b, c, s, h = (v.to(x).view(-1, 1, 1, 1) for v in (brightness, contrast, saturation, hue))
    x = (x * b).clamp(0, 1)
    grey = kornia.color.rgb_to_grayscale(x)
    x = ((x - grey.mean(dim=(1, 2, 3), keepdim=True)) * c + grey.mean(dim=(1, 2, 3), keepdim=True)).clamp(0, 1)
    grey = kornia.color.rgb_to_grayscale(x)
    x = ((x - grey) * s + grey).clamp(0, 1)
    hsv = kornia.color.rgb_to_hsv(x)
    hsv = torch.cat([torch.remainder(hsv[:, :1] + h * 2 * math.pi, 2 * math.pi), hsv[:, 1:]], dim=1)
    return kornia.color.hsv_to_rgb(hsv).clamp(0, 1)


def _jitter_np(img: np.ndarray, rng: np.random.Generator, b: float, c: float, s: float, h: float) -> np.ndarray:
    f = [torch.tensor([rng.uniform(1 - v, 1 + v)]) for v in (b, c, s)] + [torch.tensor([rng.uniform(-h, h)])]
    x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None]
    return color_jitter(x, *f)[0].permute(1, 2, 0).numpy()


def motion_blur_pair(fgr: np.ndarray, pha: np.ndarray, length: float, angle: float) -> Tuple[np.ndarray, np.ndarray]:
    """A subject moving during the exposure: fgr (H, W, 3), pha (H, W) blurred along a line of ``length``
    px at ``angle`` radians, in premultiplied form (what the camera integrates), straight colour back."""
    k = int(np.ceil(length)) | 1
    kernel = np.zeros((k, k), np.float32)
    c, d = (k - 1) / 2, (length - 1) / 2
    p0 = (int(round((c - d * math.cos(angle)) * 16)), int(round((c - d * math.sin(angle)) * 16)))
    p1 = (int(round((c + d * math.cos(angle)) * 16)), int(round((c + d * math.sin(angle)) * 16)))
    cv2.line(kernel, p0, p1, 1.0, 1, cv2.LINE_AA, shift=4)
    kernel /= kernel.sum()
    pha_b = cv2.filter2D(pha, -1, kernel, borderType=cv2.BORDER_CONSTANT)
    pre_b = cv2.filter2D(fgr * pha[..., None], -1, kernel, borderType=cv2.BORDER_CONSTANT)
    fgr_b = np.where(pha_b[..., None] > 1e-4, pre_b / np.maximum(pha_b, 1e-4)[..., None], fgr)
    return np.clip(fgr_b, 0, 1).astype(np.float32), np.clip(pha_b, 0, 1).astype(np.float32)


def augment_pair(rng: np.random.Generator, fgr: np.ndarray, pha: np.ndarray, size: int,
                 scale: Tuple[float, float], train: bool = True) -> Tuple[np.ndarray, np.ndarray]:
    """fgr: (H, W, 3), pha: (H, W) -> the same at (size, size). Validation (``train=False``) only warps.
    Training adds flips, blur, sharpening, colour jitter and motion blur (p 0.1, 3..4 % of the size)."""
    fgr, pha = warp_to_size([fgr, pha], size, rng, pair_affine(scale))
    if train:
        fgr, pha = _filters([fgr, pha], rng)
        fgr = _jitter_np(fgr, rng, 0.15, 0.15, 0.15, 0.05)
        if rng.random() < 0.1:
            fgr, pha = motion_blur_pair(fgr, pha, rng.uniform(3.0, 3.0 + 0.04 * size), rng.uniform(0, math.pi))
    return fgr, pha


def augment_background(rng: np.random.Generator, bgr: np.ndarray, size: int, train: bool = True) -> np.ndarray:
    """bgr: (H, W, 3) -> (size, size, 3)."""
    (bgr,) = warp_to_size([bgr], size, rng, BGR_AFFINE if train else VALID_BGR_AFFINE)
    if train:
        (bgr,) = _filters([bgr], rng)
        bgr = _jitter_np(bgr, rng, 0.15, 0.15, 0.15, 0.05)
    return bgr


# ---------------------------------------------------------------- batch level, on the training device

def _uniform(lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand(()))


def random_crop(tensors: Sequence[torch.Tensor], lo: int, hi: int, multiple: int = 1) -> List[torch.Tensor]:
    """Pick h, w in [lo, hi] (multiples of ``multiple``), resize every (B, C, S, S) tensor to
    max(h, w) square and centre-crop h x w (one size for the whole batch)."""
    choices = torch.arange(math.ceil(lo / multiple) * multiple, hi + 1, multiple)
    if len(choices) == 0:
        raise ValueError(f"no crop size in [{lo}, {hi}] is a multiple of {multiple}")
    h, w = (int(choices[torch.randint(len(choices), ())]) for _ in range(2))
    side = max(h, w)
    out = []
    for x in tensors:
        if x.shape[-1] != side or x.shape[-2] != side:
            x = F.interpolate(x, (side, side), mode="bilinear", align_corners=False)
        top, left = (side - h) // 2, (side - w) // 2
        out.append(x[:, :, top:top + h, left:left + w])
    return out


def warp_batch(x: torch.Tensor, rng_spec: AffineRange) -> torch.Tensor:
    """x: (B, C, H, W) -> each sample warped by its own random affine about the centre (zeros outside)."""
    b, _, h, w = x.shape
    mats = []
    for _ in range(b):
        angle, (tx, ty), s, sh = rng_spec.sample(_uniform)
        mats.append(affine_matrix(angle, (tx * w, ty * h), s, sh, (0.0, 0.0), (0.0, 0.0)))
    return warp_centred(x, mats)


def warp_centred(x: torch.Tensor, mats: Sequence[np.ndarray]) -> torch.Tensor:
    """x: (B, C, H, W); mats: B forward (2, 3) maps in pixels about the image centre -> warped x,
    bilinear, zeros outside."""
    _, _, h, w = x.shape
    d = np.diag([2.0 / w, 2.0 / h])                                   # centred pixels -> grid units
    thetas = []
    for m in mats:
        inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2]            # output -> input
        thetas.append(np.concatenate([d @ inv[:, :2] @ np.linalg.inv(d), d @ inv[:, 2:]], axis=1))
    theta = torch.tensor(np.stack(thetas), dtype=x.dtype, device=x.device)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


class Batch(NamedTuple):
    """src, bgr, fgr: (B, 3, H, W); pha: (B, 1, H, W); all 0..1 on the training device."""
    src: torch.Tensor
    bgr: torch.Tensor
    pha: torch.Tensor
    fgr: torch.Tensor


def _pick(p: float, n: int, device: torch.device) -> torch.Tensor:
    return (torch.rand(n) < p).to(device)


def jpeg_batch(x: torch.Tensor, quality: Sequence[int]) -> torch.Tensor:
    """x: (B, 3, H, W) RGB 0..1 -> each image JPEG encoded and decoded at its ``quality`` (1..100), as
    8-bit (computed on the CPU with OpenCV, returned on x's device and dtype)."""
    if len(quality) != x.shape[0]:
        raise ValueError(f"need one quality per image: {len(quality)} for {x.shape[0]}")
    imgs = (x.detach().float().clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    out = []
    for img, q in zip(imgs, quality):
        if not 1 <= int(q) <= 100:
            raise ValueError(f"JPEG quality must be in 1..100, got {q}")
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(q)])
        if not ok:
            raise ValueError("JPEG encoding failed")
        out.append(cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1])
    res = torch.from_numpy(np.ascontiguousarray(np.stack(out))).permute(0, 3, 1, 2)
    return res.to(device=x.device, dtype=x.dtype) / 255.0


def compose_batch(pha: torch.Tensor, fgr: torch.Tensor, bgr: torch.Tensor, train: bool = True,
                  calm: Optional[torch.Tensor] = None) -> Batch:
    """Composite fgr over bgr by pha. While training also: shadow on the scene (p 0.3), noise on src and
    plate (p 0.4, sigma <= 0.03), plate colour jitter (p 0.8; never on the samples of the (B,) bool mask
    ``calm``, e.g. the hard scenes, whose subjects differ from the plate by as little as 0.02), a
    white-balance offset of the plate (p 0.3, per-channel gain +-4 %), a small plate affine (p 0.3) and
    JPEG on the frame (p 0.25, quality 60..95)."""
    if not train:
        return Batch(fgr * pha + bgr * (1 - pha), bgr, pha, fgr)
    n, dev = pha.shape[0], pha.device
    scene = bgr.clone()
    idx = _pick(0.3, n, dev)
    if idx.any():
        shadow = warp_batch(pha[idx] * _uniform(0.0, 0.3), SHADOW_AFFINE)
        k = min(int(torch.randint(20, 40, ())), min(pha.shape[2:]))    # reflect padding needs k // 2 < side
        shadow = kornia.filters.box_blur(shadow, (k, k))
        scene[idx] = (scene[idx] - shadow).clamp(0, 1)
    src = fgr * pha + scene * (1 - pha)
    idx = _pick(0.4, n, dev)
    if idx.any():
        src[idx] = (src[idx] + torch.randn_like(src[idx]) * _uniform(0.0, 0.03)).clamp(0, 1)
        bgr = bgr.clone()
        bgr[idx] = (bgr[idx] + torch.randn_like(bgr[idx]) * _uniform(0.0, 0.03)).clamp(0, 1)
    idx = _pick(0.8, n, dev)
    if calm is not None:
        idx = idx & ~calm
    if idx.any():
        m = int(idx.sum())
        f = [torch.empty(m).uniform_(1 - v, 1 + v) for v in (0.18, 0.18, 0.18)] + [torch.empty(m).uniform_(-0.1, 0.1)]
        bgr = bgr.clone()
        bgr[idx] = color_jitter(bgr[idx], *f)
    idx = _pick(0.3, n, dev)
    if idx.any():
        gain = torch.empty(int(idx.sum()), 3, 1, 1).uniform_(0.96, 1.04).to(bgr)
        bgr = bgr.clone()
        bgr[idx] = (bgr[idx] * gain).clamp(0, 1)
    idx = _pick(0.3, n, dev)
    if idx.any():
        bgr = bgr.clone()
        bgr[idx] = warp_batch(bgr[idx], PLATE_AFFINE)
    idx = _pick(0.25, n, dev)
    if idx.any():
        src = src.clone()
        src[idx] = jpeg_batch(src[idx], [int(q) for q in torch.randint(60, 96, (int(idx.sum()),))])
    return Batch(src, bgr, pha, fgr)
