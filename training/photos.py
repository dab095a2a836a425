"""Photographs as texture sources for the synthetic data: finding, splitting by file, random crops.

``find_photos`` lists JPEG/PNG files under folders (recursively, symlinks to the same file once);
``split_photos`` assigns each picture to train / valid / test by a hash of its content; copies of
the same picture at other sizes (a wallpaper's 1080x1920 and 5120x2880 versions, its screenshot)
count as one picture, of which only the largest file is used, so no test photograph is seen in
training; :func:`photo_crop` cuts a randomly scaled, flipped and colour-jittered crop of any size
from one, so a few dozen photographs give thousands of distinct textures. Pure numpy/OpenCV;
randomness from the ``np.random.Generator`` given.
"""
import hashlib
import os
from functools import lru_cache
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import cv2
import numpy as np

__all__ = ["PHOTO_EXTENSIONS", "SPLITS", "PHOTO_MAX_SIDE", "find_photos", "photo_fingerprint", "split_photos",
           "write_split_lists", "load_photo", "photo_crop", "pick_photo"]

PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png")
SPLITS = ("train", "valid", "test")
PHOTO_MAX_SIDE = 1600  # photos are kept in memory downscaled to this longer side (crops are at most ~640 px)
_SAME_PICTURE = 6.0   # mean absolute difference (0..255) of 16x16 grey thumbnails below which two files are one picture


def find_photos(paths: Iterable[str]) -> List[str]:
    """JPEG/PNG files in ``paths`` (folders searched recursively, or files), each real file once, sorted."""
    found = {}
    for root in paths:
        if os.path.isfile(root):
            candidates = [root]
        elif os.path.isdir(root):
            candidates = [os.path.join(d, f) for d, _, files in os.walk(root, followlinks=True) for f in files]
        else:
            raise FileNotFoundError(f"no such photo folder or file: {root}")
        for path in candidates:
            if path.lower().endswith(PHOTO_EXTENSIONS):
                found.setdefault(os.path.realpath(path), os.path.abspath(path))
    return sorted(found)


def photo_fingerprint(path: str) -> Tuple[np.ndarray, int]:
    """(16, 16) float32 grey thumbnail of the whole picture (independent of its resolution), pixel count."""
    img = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise ValueError(f"cannot decode photo {path}")
    return cv2.resize(img, (16, 16), interpolation=cv2.INTER_AREA).astype(np.float32), img.size


def _content_key(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def split_photos(paths: Sequence[str], valid_fraction: float = 0.1, test_fraction: float = 0.2
                 ) -> Dict[str, List[str]]:
    """Deterministic split of photo files -> {"train": [...], "valid": [...], "test": [...]}.

    Files showing the same picture (thumbnails alike) form one group, represented by its largest
    file (the others are smaller copies and are left out); groups are ordered by the SHA-256 of
    that file's bytes (so the split depends on the pictures, not on where they are installed) and
    the first ``test_fraction`` of them go to test, the next ``valid_fraction`` to valid (each at
    least one when there are three or more), the rest to train.
    """
    if not 0 <= valid_fraction < 1 or not 0 <= test_fraction < 1 or valid_fraction + test_fraction >= 1:
        raise ValueError(f"bad split fractions: valid {valid_fraction}, test {test_fraction}")
    paths = sorted(set(paths))
    prints = [photo_fingerprint(p) for p in paths]
    groups: List[List[int]] = []
    for i, (fp, _) in enumerate(prints):
        for g in groups:
            if float(np.abs(prints[g[0]][0] - fp).mean()) < _SAME_PICTURE:
                g.append(i)
                break
        else:
            groups.append([i])
    best = sorted(max(g, key=lambda i: (prints[i][1], -i)) for g in groups)
    best.sort(key=lambda i: _content_key(paths[i]))
    n = len(best)
    n_test = max(int(round(n * test_fraction)), 1 if n >= 3 and test_fraction > 0 else 0)
    n_valid = max(int(round(n * valid_fraction)), 1 if n >= 3 and valid_fraction > 0 else 0)
    cuts = {"test": best[:n_test], "valid": best[n_test:n_test + n_valid], "train": best[n_test + n_valid:]}
    return {k: sorted(paths[i] for i in cuts[k]) for k in SPLITS}


def write_split_lists(out: str, split: Dict[str, List[str]]) -> List[str]:
    """Write ``out/photos/{train,valid,test}.txt`` (one path a line); returns the files written."""
    folder = os.path.join(out, "photos")
    os.makedirs(folder, exist_ok=True)
    written = []
    for name in SPLITS:
        path = os.path.join(folder, f"{name}.txt")
        with open(path, "w") as f:
            f.writelines(p + "\n" for p in split.get(name, []))
        written.append(path)
    return written


@lru_cache(maxsize=64)
def load_photo(path: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB, downscaled (area) so that the longer side is at most PHOTO_MAX_SIDE; cached."""
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"cannot decode photo {path}")
    h, w = img.shape[:2]
    if max(h, w) > PHOTO_MAX_SIDE:
        f = PHOTO_MAX_SIDE / max(h, w)
        img = cv2.resize(img, (max(int(round(w * f)), 1), max(int(round(h * f)), 1)), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _jitter(img: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Brightness, contrast, saturation (each x (1 +- 0.25 strength)) and a hue turn (+- 0.05 strength)."""
    b, c, s = rng.uniform(1 - 0.25 * strength, 1 + 0.25 * strength, 3)
    out = img * np.float32(b)
    mean = out.mean()
    out = (out - mean) * np.float32(c) + mean
    out = np.clip(out, 0, 1).astype(np.float32)
    grey = out @ np.array([0.299, 0.587, 0.114], np.float32)
    out = np.clip((out - grey[..., None]) * np.float32(s) + grey[..., None], 0, 1).astype(np.float32)
    turn = rng.uniform(-0.05, 0.05) * strength
    if abs(turn) > 1e-4:
        hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV)  # float input: hue in degrees 0..360
        hsv[..., 0] = np.mod(hsv[..., 0] + np.float32(turn * 360), 360)
        out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return np.clip(out, 0, 1).astype(np.float32)


def photo_crop(rng: np.random.Generator, photo: np.ndarray, h: int, w: int, zoom: Tuple[float, float] = (0.25, 1.0),
               jitter: float = 1.0, flip_vertical: bool = False) -> np.ndarray:
    """A random (h, w, 3) float32 0..1 RGB crop of ``photo`` ((H, W, 3) uint8 RGB).

    zoom: the crop's share of the largest (h:w shaped) window that fits the photo, drawn
    log-uniformly (1 = the whole window, small = a close-up, magnified); horizontal flip p 0.5,
    vertical flip p 0.5 when ``flip_vertical`` (surface textures; scenes keep their sky up), colour
    jitter scaled by ``jitter`` (0 = none).
    """
    if int(h) < 1 or int(w) < 1:
        raise ValueError(f"crop size must be positive, got {h}x{w}")
    if not 0 < zoom[0] <= zoom[1] <= 1:
        raise ValueError(f"zoom must satisfy 0 < lo <= hi <= 1, got {zoom}")
    ph, pw = photo.shape[:2]
    fit = min(ph / h, pw / w)                      # source pixels per output pixel of the largest window
    z = float(np.exp(rng.uniform(np.log(zoom[0]), np.log(zoom[1]))))
    ch, cw = max(h * fit * z, 1.0), max(w * fit * z, 1.0)
    y0, x0 = rng.uniform(0, ph - ch), rng.uniform(0, pw - cw)
    scale_x, scale_y = w / cw, h / ch
    mat = np.array([[scale_x, 0, -x0 * scale_x], [0, scale_y, -y0 * scale_y]], np.float64)
    shrink = 1 / max(min(scale_x, scale_y), 1e-6)
    src = photo
    if shrink > 2:                                 # pre-blur a strong reduction (no aliasing)
        src = cv2.GaussianBlur(photo, (0, 0), 0.4 * shrink)
    out = cv2.warpAffine(src, mat, (int(w), int(h)), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    out = out.astype(np.float32) / 255.0
    if rng.random() < 0.5:
        out = out[:, ::-1]
    if flip_vertical and rng.random() < 0.5:
        out = out[::-1]
    out = np.ascontiguousarray(out)
    return _jitter(out, rng, jitter) if jitter > 0 else out


def pick_photo(rng: np.random.Generator, paths: Sequence[str]) -> Optional[np.ndarray]:
    """One of ``paths`` at random, loaded (None when there are none)."""
    if not paths:
        return None
    return load_photo(paths[int(rng.integers(len(paths)))])
