"""matte_ros.core.metrics against values derived by hand and against the definitions of the
MATLAB evaluation code (float32 alphas, thresholds i * 0.1, 4-connectivity, 0.15 cut)."""
import math

import numpy as np
import pytest

from matte_ros.core.metrics import (
    _gauss_kernels,
    _largest_component,
    connectivity_error,
    foreground_mse,
    gauss_gradient,
    gradient_error,
    mse,
    sad,
)


def test_sad_and_mse_by_hand():
    pred = np.array([[0.0, 0.5], [1.0, 0.25]])
    true = np.array([[1.0, 0.5], [0.0, 0.75]])
    # |d| = 1, 0, 1, 0.5 -> sum 2.5; d^2 = 1, 0, 1, 0.25 -> mean 2.25 / 4
    assert sad(pred, true) == pytest.approx(2.5 / 1000)
    assert mse(pred, true) == pytest.approx(2.25 / 4)
    trimap = np.array([[128, 0], [255, 128]], dtype=np.uint8)  # unknown: (0,0) and (1,1)
    assert sad(pred, true, trimap) == pytest.approx(1.5 / 1000)
    assert mse(pred, true, trimap) == pytest.approx(1.25 / 2)
    assert mse(pred, true, np.zeros((2, 2), np.uint8)) == 0.0


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="one shape"):
        sad(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="trimap shape"):
        mse(np.zeros((2, 2)), np.zeros((2, 2)), np.zeros((3, 3), np.uint8))
    with pytest.raises(ValueError, match="finite"):
        gradient_error(np.full((2, 2), np.nan), np.zeros((2, 2)))


def test_gradient_kernel_size_and_norm():
    g, dg = _gauss_kernels(1.4)
    # halfsize = ceil(1.4 * sqrt(-2 ln(sqrt(2 pi) * 1.4 * 0.01))) = ceil(3.62) = 4
    assert len(g) == len(dg) == 9
    assert (np.outer(g, dg) ** 2).sum() == pytest.approx(1.0)
    assert dg[4] == 0 and dg[3] == pytest.approx(-dg[5])  # odd derivative, symmetric Gaussian


def _reference_grad(img, sigma=1.4):
    """Direct 2-D evaluation of the definition: 9x9 kernel hx[i, j] = g(i) * dg(j) normalised
    to unit L2 norm, true convolution, replicated borders."""
    half = 4
    gauss = lambda x: math.exp(-x * x / (2 * sigma * sigma)) / (sigma * math.sqrt(2 * math.pi))
    hx = np.array([[gauss(i) * (-j * gauss(j) / sigma ** 2) for j in range(-half, half + 1)]
                   for i in range(-half, half + 1)])
    hx /= math.sqrt((hx ** 2).sum())
    H, W = img.shape
    gx, gy = np.zeros((H, W)), np.zeros((H, W))
    for y in range(H):
        for x in range(W):
            for i in range(-half, half + 1):
                for j in range(-half, half + 1):
                    # conv: out(y, x) = sum h(i, j) img(y - i, x - j); replicate outside
                    v = img[min(max(y - i, 0), H - 1), min(max(x - j, 0), W - 1)]
                    gx[y, x] += hx[i + half, j + half] * v
                    gy[y, x] += hx[j + half, i + half] * v
    return gx, gy


def test_gauss_gradient_matches_direct_definition():
    rng = np.random.default_rng(0)
    img = rng.random((7, 11))
    gx, gy = gauss_gradient(img)
    rx, ry = _reference_grad(img)
    np.testing.assert_allclose(gx, rx, atol=1e-12)
    np.testing.assert_allclose(gy, ry, atol=1e-12)


def test_gradient_error_of_a_step_edge():
    step = np.zeros((6, 10))
    step[:, 5:] = 1.0
    # true is constant -> its gradient is 0; the step varies along x only -> gy = 0, so
    # Grad = sum gx^2, and gx equals the 1-D response: sum_i g(i) * sum_{j <= x-5} dg(j), normalised.
    g, dg = _gauss_kernels(1.4)
    col = np.array([g.sum() * sum(dg[j + 4] for j in range(-4, 5) if x - j >= 5) for x in range(10)])
    expected = 6 * float((col.astype(np.float32).astype(np.float64) ** 2).sum())
    assert gradient_error(step, np.zeros((6, 10))) == pytest.approx(expected, rel=1e-6)
    # min-max normalisation: a half-height step and the transposed image give the same value
    assert gradient_error(0.5 * step, np.full((6, 10), 0.3)) == pytest.approx(expected, rel=1e-6)
    assert gradient_error(step.T, np.zeros((10, 6))) == pytest.approx(expected, rel=1e-6)
    assert gradient_error(step, step) == 0.0
    # only the unknown region counts: columns 0 and 9 are flat (far from the edge, replicate border)
    trimap = np.zeros((6, 10), np.uint8)
    trimap[:, 4:6] = 128
    assert gradient_error(step, np.zeros((6, 10)), trimap) == pytest.approx(
        6 * float((col[4:6].astype(np.float32).astype(np.float64) ** 2).sum()), rel=1e-6)


def test_connectivity_error_by_hand():
    # Common mask at every threshold: only pixel 0 -> levels (1, 0, 0, 0); d = alpha - level;
    # phi(pred) = (1, 1, 0, 1), phi(true) = (1, 0, 1, 1) -> Conn = 2.
    assert connectivity_error(np.array([[1.0, 0.0, 1.0, 0.0]]), np.array([[1.0, 1.0, 0.0, 0.0]])) == 2.0
    # Pixel 2 leaves at t = 0.3 (level 0.2), pixel 1 at t = 0.6 (level 0.5):
    # pred d = (0, 0, 0) -> phi 1; true d = (0, 0, 0.3) -> phi (1, 1, 0.7): Conn = 0.3.
    assert connectivity_error(np.array([[1.0, 0.5, 0.2]]), np.array([[1.0, 0.5, 0.5]])) == pytest.approx(0.3, abs=1e-6)
    # Below the 0.15 cut nothing counts: pixel 1 leaves at 0.2 (level 0.1), d = 0.1 and 0.14.
    assert connectivity_error(np.array([[1.0, 0.2]]), np.array([[1.0, 0.24]])) == 0.0
    same = np.random.default_rng(1).random((5, 5))
    assert connectivity_error(same, same) == 0.0


def test_connectivity_threshold_compares_in_float32():
    # 153/255 is exactly 0.6. MATLAB: single(153)/255 >= 0.6 holds, so the pixel stays in the
    # component through t = 0.6 and its level is 0.6: pred d = 0 -> phi 1; true d = 0.4 -> phi 0.6.
    # In float64 (153/255 < 6 * 0.1) the level would be 0.5 and Conn 0.5.
    pred = np.array([[1.0, 153 / 255]])
    true = np.array([[1.0, 1.0]])
    assert 153 / 255 < 6 * 0.1
    assert connectivity_error(pred, true) == pytest.approx(0.4, abs=1e-6)
    assert connectivity_error(pred.astype(np.float32), true) == pytest.approx(0.4, abs=1e-6)
    # every k/255 gives the same float32 whether divided in float64 or in float32
    k = np.arange(256)
    assert (np.float32(k / 255.0) == k.astype(np.float32) / np.float32(255)).all()


def test_connectivity_uses_4_neighbours_and_the_trimap():
    # A diagonal pair is two components under 4-connectivity: the larger one (3 pixels) wins.
    true = np.array([[1, 0, 0], [0, 1, 1], [0, 1, 0]], dtype=float)
    pred = true.copy()
    pred[0, 0] = 0.0
    mask = _largest_component(true > 0)
    assert mask.sum() == 3 and not mask[0, 0]
    # pixel (0, 0): level 0 (left the largest component at once); true d = 1 -> phi 0, pred phi 1
    assert connectivity_error(pred, true) == pytest.approx(1.0)
    trimap = np.zeros((3, 3), np.uint8)
    trimap[1:, 1:] = 128
    assert connectivity_error(pred, true, trimap) == 0.0


def test_largest_component_ties_go_to_the_first_in_column_major_order():
    mask = np.array([[0, 0, 1, 1], [1, 0, 0, 0], [1, 0, 0, 0]], dtype=bool)
    # components {(1,0), (2,0)} and {(0,2), (0,3)} both have 2 pixels; column-major the
    # first one starts at index 1, the second at index 6.
    np.testing.assert_array_equal(_largest_component(mask), [[0, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0]])
    assert not _largest_component(np.zeros((2, 2), bool)).any()


def test_foreground_mse_counts_alpha_above_zero():
    true_pha = np.array([[0.0, 0.5], [1.0, 0.0]])
    true_fgr = np.zeros((2, 2, 3))
    pred_fgr = np.zeros((2, 2, 3))
    pred_fgr[0, 0] = 1.0          # alpha 0: ignored
    pred_fgr[0, 1] = [0.5, 0, 0]  # 0.25 over 3 channels
    pred_fgr[1, 0] = [0, 0.5, 0.5]  # 0.5
    assert foreground_mse(pred_fgr, true_fgr, true_pha) == pytest.approx(0.75 / 6)
    assert foreground_mse(pred_fgr, true_fgr, np.zeros((2, 2))) == 0.0
    with pytest.raises(ValueError):
        foreground_mse(pred_fgr[..., :2], true_fgr[..., :2], true_pha)


def _bfs_largest(mask):
    """Plain flood fill, 4-neighbours; the largest component, ties to the first pixel met in a
    column-major scan (MATLAB's bwconncomp order)."""
    H, W = mask.shape
    seen = np.zeros_like(mask, dtype=bool)
    best = []
    for x in range(W):
        for y in range(H):
            if mask[y, x] and not seen[y, x]:
                comp, stack = [], [(y, x)]
                seen[y, x] = True
                while stack:
                    cy, cx = stack.pop()
                    comp.append((cy, cx))
                    for ny, nx in ((cy - 1, cx), (cy + 1, cx), (cy, cx - 1), (cy, cx + 1)):
                        if 0 <= ny < H and 0 <= nx < W and mask[ny, nx] and not seen[ny, nx]:
                            seen[ny, nx] = True
                            stack.append((ny, nx))
                if len(comp) > len(best):
                    best = comp
    out = np.zeros_like(mask, dtype=bool)
    for p in best:
        out[p] = True
    return out


def _reference_conn(pred, true):
    """The connectivity error written out step by step with Python floats for the levels."""
    pred = np.float32(np.round(pred * 255)) / np.float32(255)
    true = np.float32(np.round(true * 255)) / np.float32(255)
    level = np.full(pred.shape, -1.0)
    for i in range(1, 11):
        t = np.float32(i * 0.1)
        omega = _bfs_largest((pred >= t) & (true >= t))
        level[(level == -1) & ~omega] = (i - 1) * 0.1
    level[level == -1] = 1.0
    total = 0.0
    for y in range(pred.shape[0]):
        for x in range(pred.shape[1]):
            phis = []
            for a in (pred[y, x], true[y, x]):
                d = np.float32(a - np.float32(level[y, x]))
                phis.append(1.0 - float(d) if d >= np.float32(0.15) else 1.0)
            total += abs(phis[0] - phis[1])
    return total


def test_connectivity_matches_a_flood_fill_reference():
    rng = np.random.default_rng(3)
    for _ in range(3):
        # blobby 8-bit alphas: smoothed noise, so components split and merge across thresholds
        base = rng.random((14, 17))
        base = (base + np.roll(base, 1, 0) + np.roll(base, 1, 1)) / 3
        true = np.round(np.clip((base - 0.3) * 2.5, 0, 1) * 255) / 255
        pred = np.round(np.clip(true + rng.normal(0, 0.15, true.shape), 0, 1) * 255) / 255
        assert connectivity_error(pred, true) == pytest.approx(_reference_conn(pred, true), rel=1e-6, abs=1e-6)


def test_hair_band_scores_count_only_fractional_true_alpha():
    from matte_ros.core.metrics import hair_band, hair_band_scores
    true = np.array([[0.0, 0.04, 0.05, 0.5], [0.94, 0.95, 1.0, 0.2]], np.float32)
    pred = np.array([[0.5, 0.5, 0.5, 0.0], [0.5, 0.5, 0.5, 0.6]], np.float32)
    band = hair_band(true)
    np.testing.assert_array_equal(band, [[0, 0, 0, 128], [128, 0, 0, 128]])     # 0.05 and 0.95 excluded
    s = hair_band_scores(pred, true)
    # band pixels: 0.5 (err 0.5), 0.94 (err 0.44), 0.2 (err 0.4)
    assert s["hair_sad"] == pytest.approx((0.5 + 0.44 + 0.4) / 1000, rel=1e-6)
    assert s["hair_mse"] == pytest.approx((0.25 + 0.44 ** 2 + 0.16) / 3, rel=1e-6)
    assert hair_band_scores(pred, np.zeros_like(true)) == {"hair_sad": 0.0, "hair_mse": 0.0}
