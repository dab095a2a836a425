"""Matting error metrics of the literature (SAD, MSE, Grad, Conn) and foreground MSE.

The values equal those of the MATLAB evaluation code the matting papers use (Xu et al.'s
``compute_sad_loss``, ``compute_mse_loss``, ``compute_gradient_loss``,
``compute_connectivity_error``, with Xiong's ``gaussgradient``). That code reads alphas as
8-bit images and works on ``single(x) / 255``, so the alphas are taken as float32 here too:
for alphas that are multiples of 1/255, comparisons with the thresholds come out as in MATLAB
(``153/255 >= 0.6`` holds in float32; it fails in float64 against ``6 * 0.1``).

Scaling as in the MATLAB code: SAD is divided by 1000; MSE, Grad and Conn are not scaled
(several Python ports divide Grad and Conn by 1000 and many papers print MSE x 1e3).

All alpha arguments are ``(H, W)`` float arrays in 0..1. ``trimap`` is an optional ``(H, W)``
array whose unknown region is 128 (the only region that counts); without it every pixel counts.
"""
import math
from typing import Dict, Optional, Sequence, Tuple

import cv2
import numpy as np

__all__ = ["UNKNOWN", "sad", "mse", "gradient_error", "connectivity_error", "foreground_mse",
           "gauss_gradient", "GRAD_SIGMA", "CONN_STEP", "CONN_CUT", "METRICS", "HAIR_BAND", "hair_band",
           "hair_band_scores", "quantize", "score", "mean_scores"]

UNKNOWN = 128
GRAD_SIGMA = 1.4
CONN_STEP = 0.1
CONN_CUT = 0.15
METRICS = ("sad", "mse", "grad", "conn", "fgr_mse")
HAIR_BAND = (0.05, 0.95)   # the true alpha's open range that holds hair strands, fur and soft edges


def _pair(pred: np.ndarray, true: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Both alphas as float32 (H, W) arrays; ValueError on bad shapes or non-finite values."""
    pred = np.asarray(pred)
    true = np.asarray(true)
    if pred.ndim != 2 or pred.shape != true.shape:
        raise ValueError(f"pred and true must be (H, W) arrays of one shape, got {pred.shape} and {true.shape}")
    pred = pred.astype(np.float32)
    true = true.astype(np.float32)
    if not (np.isfinite(pred).all() and np.isfinite(true).all()):
        raise ValueError("alpha values must be finite")
    return pred, true


def _region(trimap: Optional[np.ndarray], shape: Tuple[int, ...]) -> np.ndarray:
    """(H, W) bool: the trimap's unknown region, or every pixel without a trimap."""
    if trimap is None:
        return np.ones(shape, dtype=bool)
    trimap = np.asarray(trimap)
    if trimap.shape != tuple(shape):
        raise ValueError(f"trimap shape {trimap.shape} differs from the alpha shape {tuple(shape)}")
    return trimap == UNKNOWN


def sad(pred: np.ndarray, true: np.ndarray, trimap: Optional[np.ndarray] = None) -> float:
    """Sum of |pred - true| over the region, divided by 1000."""
    pred, true = _pair(pred, true)
    region = _region(trimap, pred.shape)
    return float(np.abs(pred - true)[region].sum(dtype=np.float64) / 1000.0)


def mse(pred: np.ndarray, true: np.ndarray, trimap: Optional[np.ndarray] = None) -> float:
    """Mean of (pred - true)^2 over the region (0.0 for an empty region)."""
    pred, true = _pair(pred, true)
    region = _region(trimap, pred.shape)
    count = int(region.sum())
    if count == 0:
        return 0.0
    return float(((pred - true) ** 2)[region].sum(dtype=np.float64) / count)


def _gauss(x: np.ndarray, sigma: float) -> np.ndarray:
    return np.exp(-x ** 2 / (2 * sigma ** 2)) / (sigma * math.sqrt(2 * math.pi))


def _gauss_kernels(sigma: float, epsilon: float = 1e-2) -> Tuple[np.ndarray, np.ndarray]:
    """The separable factors (g, dg), each (2h + 1,), of the unit-L2-norm 2-D kernel
    ``hx[i, j] = g(i) * dg(j)``; h = ceil(sigma * sqrt(-2 log(sqrt(2 pi) sigma epsilon)))."""
    half = math.ceil(sigma * math.sqrt(-2 * math.log(math.sqrt(2 * math.pi) * sigma * epsilon)))
    u = np.arange(-half, half + 1, dtype=np.float64)
    g = _gauss(u, sigma)
    dg = -u * g / sigma ** 2
    norm = math.sqrt(float((g ** 2).sum()) * float((dg ** 2).sum()))  # = sqrt(sum(hx .^ 2))
    return g, dg / norm


def _convolve_1d(img: np.ndarray, kernel: np.ndarray, axis: int) -> np.ndarray:
    """True convolution along ``axis`` with replicated borders (MATLAB imfilter 'replicate','conv')."""
    half = len(kernel) // 2
    pad = [(0, 0), (0, 0)]
    pad[axis] = (half, half)
    padded = np.pad(img, pad, mode="edge")
    n = img.shape[axis]
    out = np.zeros_like(img)
    for j, k in enumerate(kernel):
        # out[x] += k[j] * img[x - (j - half)], i.e. the flipped kernel slides over the image.
        start = 2 * half - j
        out += k * np.take(padded, np.arange(start, start + n), axis=axis)
    return out


def gauss_gradient(img: np.ndarray, sigma: float = GRAD_SIGMA) -> Tuple[np.ndarray, np.ndarray]:
    """img: (H, W) -> (gx, gy), each (H, W) float64: convolution with the first-order Gaussian
    derivative kernel along x (columns) and its transpose along y, replicate borders."""
    g, dg = _gauss_kernels(sigma)
    img = np.asarray(img, dtype=np.float64)
    gx = _convolve_1d(_convolve_1d(img, g, axis=0), dg, axis=1)
    gy = _convolve_1d(_convolve_1d(img, dg, axis=0), g, axis=1)
    return gx, gy


def _min_max(x: np.ndarray) -> np.ndarray:
    """MATLAB mat2gray: (x - min) / (max - min) in float64; a constant image gives zeros."""
    x = x.astype(np.float64)
    lo, hi = float(x.min()), float(x.max())
    if hi == lo:
        return np.zeros_like(x)
    return (x - lo) / (hi - lo)


def gradient_error(pred: np.ndarray, true: np.ndarray, trimap: Optional[np.ndarray] = None,
                   sigma: float = GRAD_SIGMA) -> float:
    """Sum over the region of (|grad pred| - |grad true|)^2 on min-max normalised alphas."""
    pred, true = _pair(pred, true)
    region = _region(trimap, pred.shape)
    amp = []
    for x in (pred, true):
        gx, gy = gauss_gradient(_min_max(x), sigma)
        amp.append(np.sqrt(gx ** 2 + gy ** 2).astype(np.float32))
    err = (amp[0] - amp[1]) ** 2
    return float(err[region].sum(dtype=np.float64))


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool -> bool mask of its largest 4-connected component (all False if none).

    Ties go to the component whose first pixel in column-major order comes first, as with
    MATLAB's ``bwconncomp`` followed by ``max``."""
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=4, ltype=cv2.CV_32S)
    if count <= 1:
        return np.zeros_like(mask, dtype=bool)
    sizes = np.bincount(labels.ravel(), minlength=count)[1:]
    flat = labels.T.ravel()  # column-major scan order
    ids, first = np.unique(flat, return_index=True)
    first_of = dict(zip(ids.tolist(), first.tolist()))
    biggest = [lab + 1 for lab in np.flatnonzero(sizes == sizes.max())]
    best = min(biggest, key=lambda lab: first_of[lab])
    return labels == best


def connectivity_error(pred: np.ndarray, true: np.ndarray, trimap: Optional[np.ndarray] = None,
                       step: float = CONN_STEP) -> float:
    """Connectivity error: sum over the region of |phi(pred) - phi(true)|.

    For thresholds t_i = i * step (i = 1..), a pixel's level l is the last threshold before it
    left the largest 4-connected component of (pred >= t_i) & (true >= t_i) (1 if it never left);
    with d = alpha - l, phi = 1 - d where d >= 0.15, else 1. Components use the whole image."""
    pred, true = _pair(pred, true)
    region = _region(trimap, pred.shape)
    steps = int(round(1.0 / step))
    level = np.full(pred.shape, -1.0, dtype=np.float32)
    for i in range(1, steps + 1):
        t = np.float32(i * step)
        omega = _largest_component((pred >= t) & (true >= t))
        level[(level == -1) & ~omega] = np.float32((i - 1) * step)
    level[level == -1] = 1.0
    phi = []
    for x in (pred, true):
        d = x - level
        phi.append(np.float32(1) - d * (d >= np.float32(CONN_CUT)))
    return float(np.abs(phi[0] - phi[1])[region].sum(dtype=np.float64))


def foreground_mse(pred_fgr: np.ndarray, true_fgr: np.ndarray, true_pha: np.ndarray) -> float:
    """Mean over the pixels with true alpha > 0 and over the 3 channels of (pred - true)^2.

    pred_fgr, true_fgr: (H, W, 3) float 0..1; true_pha: (H, W). 0.0 when no pixel has alpha > 0."""
    pred_fgr = np.asarray(pred_fgr, dtype=np.float32)
    true_fgr = np.asarray(true_fgr, dtype=np.float32)
    true_pha = np.asarray(true_pha)
    if pred_fgr.ndim != 3 or pred_fgr.shape[2] != 3 or pred_fgr.shape != true_fgr.shape:
        raise ValueError(f"foregrounds must be (H, W, 3) arrays of one shape, got {pred_fgr.shape} "
                         f"and {true_fgr.shape}")
    if true_pha.shape != pred_fgr.shape[:2]:
        raise ValueError(f"true_pha shape {true_pha.shape} differs from the foreground's {pred_fgr.shape[:2]}")
    mask = true_pha > 0
    count = int(mask.sum())
    if count == 0:
        return 0.0
    err = ((pred_fgr - true_fgr) ** 2)[mask]
    return float(err.sum(dtype=np.float64) / (3 * count))


def hair_band(true: np.ndarray, band: Tuple[float, float] = HAIR_BAND) -> np.ndarray:
    """(H, W) trimap of the pixels whose true alpha lies strictly inside ``band``: UNKNOWN there, 0 elsewhere."""
    true = np.asarray(true, np.float32)
    inside = (true > np.float32(band[0])) & (true < np.float32(band[1]))
    return np.where(inside, UNKNOWN, 0).astype(np.uint8)


def hair_band_scores(pred: np.ndarray, true: np.ndarray, band: Tuple[float, float] = HAIR_BAND) -> Dict[str, float]:
    """SAD (/ 1000) and MSE restricted to the hair band of the true alpha (``band[0] < true < band[1]``):
    {"hair_sad", "hair_mse"} (both 0.0 where the band is empty)."""
    trimap = hair_band(true, band)
    return {"hair_sad": sad(pred, true, trimap), "hair_mse": mse(pred, true, trimap)}


def quantize(x: np.ndarray) -> np.ndarray:
    """Round to the nearest multiple of 1/255 (what saving as an 8-bit PNG keeps), float32."""
    return (np.round(np.clip(x, 0.0, 1.0) * 255.0) / 255.0).astype(np.float32)


def score(pred_pha: np.ndarray, pred_fgr: Optional[np.ndarray], true_pha: np.ndarray,
          true_fgr: Optional[np.ndarray] = None, trimap: Optional[np.ndarray] = None) -> Dict[str, float]:
    """Every metric of one image, scaled as the evaluation scripts of the literature report them:
    SAD / 1000 (done by :func:`sad`), MSE, Grad / 1000, Conn / 1000, foreground MSE (NaN without
    both foregrounds)."""
    row = {"sad": sad(pred_pha, true_pha, trimap), "mse": mse(pred_pha, true_pha, trimap),
           "grad": gradient_error(pred_pha, true_pha, trimap) / 1000.0,
           "conn": connectivity_error(pred_pha, true_pha, trimap) / 1000.0, "fgr_mse": float("nan")}
    if true_fgr is not None and pred_fgr is not None:
        row["fgr_mse"] = foreground_mse(pred_fgr, true_fgr, true_pha)
    return row


def mean_scores(rows: Sequence[Dict]) -> Dict[str, float]:
    """Mean of every metric over the rows (NaN entries skipped; NaN when none is left)."""
    out = {}
    for key in METRICS:
        vals = np.array([r[key] for r in rows], dtype=np.float64)
        vals = vals[~np.isnan(vals)]
        out[key] = float(vals.mean()) if len(vals) else float("nan")
    return out
