"""Camera motion between a plate and a frame: one aligner for plate upkeep and for ``matte_offline --align``.

    w = estimate_warp(plate_grey, frame_grey, "ecc", "homography", mask, init)   # 3x3, plate -> frame px
    plate_now = warp_image(plate, w)                                             # the plate as the frame sees it
    a = align(plate, frame, "ecc")        # full-size RGB: the plate warped onto the frame, the frame's pixels
                                          # where the warped plate does not reach

Methods (ALIGN_METHODS):
- ``ecc``: ECC alignment (Evangelidis and Psarakis, enhanced correlation coefficient; OpenCV's
  findTransformECC), started from ``init`` (the previous frame's warp). Its correlation is invariant
  to gain and offset, so it works under exposure changes; it runs on the images' detail (less a
  blurred copy), so light changing smoothly across the room does not look like motion. Sub-pixel
  accurate, but it converges only from near the answer (a few pixels at the size it runs at).
- ``orb`` / ``sift``: features of plate and frame, matches kept by Lowe's ratio test, a RANSAC
  homography (or, for translation, the median displacement of the matches agreeing with it); any
  motion the features survive, to a few pixels (ORB) or a tenth of one (SIFT, several times slower).
- ``orb+ecc``: ORB's warp refined by ECC started from it: any motion ORB survives, to ECC's accuracy.

Which to use, measured (docs/plate_upkeep.md, ``python -m matte_ros.tools.bench_align``: a textured
640x480 synthetic plate shifted and rotated by 1.5 to 36 px at the corners): ECC alone is exact but
only for motions of a few pixels, which is what plate upkeep sees (it tracks the camera frame by
frame, each estimate started from the last: its default); orb+ecc was exact for every motion, at
about twice ORB's time and a third of SIFT's, so it is DEFAULT_METHOD, the default of
``matte_offline --align`` (a plate against any frame of hand-held footage). Masks (nonzero on
background) keep a subject out of the estimate.
"""
from typing import NamedTuple, Optional, Tuple

import cv2
import numpy as np

__all__ = ["ALIGN_METHODS", "MOTION_MODELS", "DEFAULT_METHOD", "IDENTITY", "Alignment", "estimate_warp", "align",
           "warp_image", "warp_valid", "motion_extent", "rescale_warp"]

ALIGN_METHODS = ("ecc", "orb", "sift", "orb+ecc")
MOTION_MODELS = ("translation", "homography")
DEFAULT_METHOD = "orb+ecc"
IDENTITY = np.eye(3, dtype=np.float64)
ALIGN_LONG_SIDE = 640          # align() estimates on copies at most this long (px), then scales the warp up

_ECC_MODELS = {"translation": cv2.MOTION_TRANSLATION, "homography": cv2.MOTION_HOMOGRAPHY}
_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-4)
MIN_MASK_FRACTION = 0.05       # less visible background than this: no estimate
DETAIL_SIGMA = 6.0             # px: ECC ignores light varying more slowly than this
_RATIO = 0.75                  # a match is kept when its distance is below this fraction of the second best's
_MIN_INLIERS = 12              # fewer agreeing matches than this: no trustworthy warp
_RANSAC_PX = 3.0


class Alignment(NamedTuple):
    plate: np.ndarray                   # (H, W, 3) uint8: the plate warped onto the frame (or unchanged)
    warp: Optional[np.ndarray]          # (3, 3) plate -> frame, None when no alignment was found


def _detail(grey: np.ndarray) -> np.ndarray:
    """The grey image less its blurred self: texture without the smooth light across the room."""
    grey = grey.astype(np.float32)
    return grey - cv2.GaussianBlur(grey, (0, 0), DETAIL_SIGMA)


def _ecc(plate: np.ndarray, frame: np.ndarray, mask: Optional[np.ndarray], model: str,
         init: np.ndarray) -> Optional[np.ndarray]:
    if model == "translation":
        w0 = np.array([[1, 0, init[0, 2]], [0, 1, init[1, 2]]], np.float32)
    else:
        w0 = init.astype(np.float32)
    try:
        _, w = cv2.findTransformECC(plate, frame, w0, _ECC_MODELS[model], _CRITERIA, mask, 3)
    except cv2.error:       # did not converge, or the images have no texture under the mask
        return None
    out = IDENTITY.copy()
    out[:w.shape[0]] = w
    return out if np.all(np.isfinite(out)) else None


def _detector(method: str):
    """(feature detector, descriptor norm) of a feature method."""
    if method == "orb":
        return cv2.ORB_create(nfeatures=2000), cv2.NORM_HAMMING
    return cv2.SIFT_create(nfeatures=2000), cv2.NORM_L2


def _u8(grey: np.ndarray) -> np.ndarray:
    return grey if grey.dtype == np.uint8 else cv2.convertScaleAbs(grey)


def _features(plate: np.ndarray, frame: np.ndarray, mask: Optional[np.ndarray], model: str,
              method: str) -> Optional[np.ndarray]:
    detector, norm = _detector(method)
    kp_p, des_p = detector.detectAndCompute(_u8(plate), None)
    kp_f, des_f = detector.detectAndCompute(_u8(frame), None if mask is None else (mask > 0).view(np.uint8))
    if des_p is None or des_f is None or len(kp_p) < 2 or len(kp_f) < 2:
        return None
    good = [m[0] for m in cv2.BFMatcher(norm).knnMatch(des_p, des_f, k=2)
            if len(m) == 2 and m[0].distance < _RATIO * m[1].distance]
    if len(good) < _MIN_INLIERS:
        return None
    src = np.float32([kp_p[m.queryIdx].pt for m in good]).reshape(-1, 1, 2)
    dst = np.float32([kp_f[m.trainIdx].pt for m in good]).reshape(-1, 1, 2)
    if model == "translation":
        d = (dst - src).reshape(-1, 2)
        agree = np.all(np.abs(d - np.median(d, axis=0)) < _RANSAC_PX, axis=1)
        if np.count_nonzero(agree) < _MIN_INLIERS:
            return None
        out = IDENTITY.copy()
        out[:2, 2] = d[agree].mean(axis=0)
        return out
    hom, inliers = cv2.findHomography(src, dst, cv2.RANSAC, _RANSAC_PX)
    if hom is None or inliers is None or int(inliers.sum()) < _MIN_INLIERS or not np.all(np.isfinite(hom)):
        return None
    return hom / hom[2, 2]


def estimate_warp(plate: np.ndarray, frame: np.ndarray, method: str = DEFAULT_METHOD, model: str = "homography",
                  mask: Optional[np.ndarray] = None, init: Optional[np.ndarray] = None) -> Optional[np.ndarray]:
    """plate, frame: (h, w) grey images of one size (uint8, or float32 0..255); method: ALIGN_METHODS;
    model: "translation" | "homography"; mask: (h, w) uint8, nonzero where the frame shows background
    (None: everywhere); init: the 3x3 warp to start from (ecc only; default identity).
    Returns the 3x3 float64 warp ``W`` taking plate pixel coordinates to frame coordinates
    (``frame(W x) ~ plate(x)``), or None where no estimate is possible."""
    if method not in ALIGN_METHODS:
        raise ValueError(f"alignment method must be one of {', '.join(ALIGN_METHODS)}, got {method!r}")
    if model not in MOTION_MODELS:
        raise ValueError(f"motion model must be one of {', '.join(MOTION_MODELS)}, got {model!r}")
    if plate.shape != frame.shape or plate.ndim != 2:
        raise ValueError(f"plate and frame must be grey images of one size, got {plate.shape} and {frame.shape}")
    if mask is not None and np.count_nonzero(mask) < MIN_MASK_FRACTION * mask.size:
        return None
    if method in ("orb", "sift"):
        return _features(plate, frame, mask, model, method)
    if method == "orb+ecc":                 # features for where, ECC from there for the last fraction of a pixel
        init = _features(plate, frame, mask, model, "orb")
        if init is None:
            return None
        found = _ecc(_detail(plate), _detail(frame), mask, model, init)
        return init if found is None else found
    plate, frame = _detail(plate), _detail(frame)
    w = _ecc(plate, frame, mask, model, IDENTITY if init is None else init)
    if w is None and init is not None:
        w = _ecc(plate, frame, mask, model, IDENTITY)
    return w


def align(plate: np.ndarray, frame: np.ndarray, method: str = DEFAULT_METHOD,
          model: str = "homography") -> Alignment:
    """plate, frame: (H, W, 3) uint8 RGB of one size -> the plate warped onto the frame (estimated on
    grey copies at most ALIGN_LONG_SIDE long); where the warped plate does not reach, the frame's own
    pixels stand in (they then read as background). No estimate: the plate unchanged, warp None."""
    if plate.shape != frame.shape:
        raise ValueError(f"plate {plate.shape} and frame {frame.shape} differ in size")
    h, w = frame.shape[:2]
    k = min(1.0, ALIGN_LONG_SIDE / max(h, w))
    size = (max(1, round(w * k)), max(1, round(h * k)))

    def grey(img: np.ndarray) -> np.ndarray:
        g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        return g if k == 1.0 else cv2.resize(g, size, interpolation=cv2.INTER_AREA)

    found = estimate_warp(grey(plate), grey(frame), method, model)
    if found is None:
        return Alignment(plate, None)
    warp = rescale_warp(found, w / size[0], h / size[1])
    warped = warp_image(plate, warp, cv2.BORDER_CONSTANT)
    outside = ~warp_valid((h, w), warp)
    warped[outside] = frame[outside]
    return Alignment(warped, warp)


def rescale_warp(w: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """The same warp on images scaled by (sx, sy): w on full-size pixels -> on scaled pixels."""
    s = np.diag([sx, sy, 1.0])
    return s @ w @ np.linalg.inv(s)


def motion_extent(w: np.ndarray, width: int, height: int) -> float:
    """The largest displacement (px) the warp gives a corner of a (width x height) image."""
    c = np.array([[0, 0, 1], [width, 0, 1], [0, height, 1], [width, height, 1]], np.float64).T
    m = w @ c
    return float(np.max(np.hypot(*(m[:2] / m[2] - c[:2]))))


def _is_affine(w: np.ndarray) -> bool:
    return bool(w[2, 0] == 0 and w[2, 1] == 0 and w[2, 2] == 1)


def warp_image(img: np.ndarray, w: np.ndarray, border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
    """The image seen through the warp: ``out(W x) = img(x)`` (bilinear), same size; what falls outside
    the source is filled by ``border``."""
    h, wd = img.shape[:2]
    if _is_affine(w):
        return cv2.warpAffine(img, w[:2], (wd, h), flags=cv2.INTER_LINEAR, borderMode=border)
    return cv2.warpPerspective(img, w, (wd, h), flags=cv2.INTER_LINEAR, borderMode=border)


def warp_valid(shape: Tuple[int, int], w: np.ndarray) -> np.ndarray:
    """(h, w) bool: the pixels of a warped image that come from inside the source, not from its
    border fill."""
    ones = np.full(shape, 255, np.uint8)
    return warp_image(ones, w, cv2.BORDER_CONSTANT) == 255
