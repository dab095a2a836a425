"""Plate upkeep functions on known answers: gain fit, motion, masks, refresh, health, settings,
and the synthetic disturbances."""
import cv2
import numpy as np
import pytest

from matte_ros.core.plate import PlateEntry
from matte_ros.core.plate.align import IDENTITY, estimate_warp, motion_extent, warp_image
from matte_ros.core.plate.upkeep import (
    PlateUpkeep,
    UpkeepSettings,
    apply_gain,
    background_mask,
    clipped_cells,
    disagreement,
    fit_exposure,
    fit_gain,
    invert_gain,
    refresh_plate,
)
from matte_ros.core.synthetic import SceneSequence
from matte_ros.core.synthetic.disturbances import DISTURBANCES, DisturbedSequence


def texture(h, w, seed=0):
    """A smooth random texture (uint8 RGB) with detail at several scales, values well inside 0..255."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    for cell in (4, 9, 23):
        small = rng.uniform(0, 1, (h // cell + 2, w // cell + 2, 3)).astype(np.float32)
        img += cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(30 + img / 3 * 190, 0, 255).astype(np.uint8)


def shifted(img, dx, dy):
    return cv2.warpAffine(img, np.float32([[1, 0, dx], [0, 1, dy]]), img.shape[1::-1], flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT)


# ---- exposure ---------------------------------------------------------------------------------
def test_fit_gain_recovers_a_known_gain_and_offset_despite_outliers():
    rng = np.random.default_rng(1)
    p = rng.uniform(0.05, 0.75, (5000, 3)).astype(np.float32)
    g, o = np.array([1.25, 0.9, 1.1], np.float32), np.array([0.02, -0.01, 0.0], np.float32)
    f = p * g + o + rng.normal(0, 0.004, p.shape).astype(np.float32)
    f[:800] = rng.uniform(0.05, 0.95, (800, 3))                 # 16 % of the pixels are a subject
    gain, offset = fit_gain(p, f)
    assert np.abs(gain - g).max() < 0.01 and np.abs(offset - o).max() < 0.005


def test_fit_gain_on_uint8_pixels_and_its_limits():
    rng = np.random.default_rng(2)
    p = rng.integers(20, 200, (3000, 3)).astype(np.uint8)
    f = np.clip(np.rint(p * 1.2), 0, 255).astype(np.uint8)
    gain, offset = fit_gain(p, f)
    assert np.allclose(gain, 1.2, atol=0.01) and np.abs(offset).max() < 0.005
    assert np.array_equal(fit_gain(p[:10], f[:10])[0], np.ones(3))          # too few pixels: identity
    assert np.array_equal(fit_gain(p, 255 - p)[0], np.ones(3))              # no gain explains an inversion
    with pytest.raises(ValueError, match="must both be"):
        fit_gain(p, f[:, :2])


WARM = np.array([1.25, 1.15, 1.05], np.float32)          # a white balance turning warmer


def warm_room(h, w, bright):
    """A warm, bright room (uint8 RGB): the texture, with red at 212..250 (clipped by WARM) on a
    random ``bright`` fraction of 5x5 px blocks, at 70..190 (not clipped) on the rest."""
    img = texture(h, w, seed=6).astype(np.float32)
    blocks = np.random.default_rng(7).random((h // 5 + 1, w // 5 + 1)) < bright
    hot = np.kron(blocks, np.ones((5, 5), bool))[:h, :w]
    t = (img[..., 0] - 30) / 190
    img[..., 0] = np.where(hot, 212 + 38 * t, 70 + 120 * t)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def exposed(img, gain):
    return np.clip(np.rint(img.astype(np.float32) * gain), 0, 255).astype(np.uint8)


def test_a_clipped_channel_is_fitted_on_its_unclipped_pixels_at_reduced_size():
    """Red clips at 255 in half the frame; the upkeep works on a copy reduced 4x, where cells that
    mix clipped and unclipped pixels look unclipped."""
    plate = warm_room(240, 320, 0.5)
    frame = exposed(plate, WARM)
    assert 0.3 < np.mean(frame[..., 0] == 255) < 0.7
    s = UpkeepSettings(exposure="frame", work_long_side=80)
    step = PlateUpkeep(plate).compensate(frame, s)
    assert np.abs(step.gain - WARM).max() < 0.015 and np.abs(step.offset).max() < 0.006 and step.exposure_note == ""
    uniform = exposed(plate, np.float32(1.3))       # a uniform exposure change clipping every channel somewhere
    assert np.abs(PlateUpkeep(plate).compensate(uniform, s).gain - 1.3).max() < 0.015


def test_a_channel_clipped_almost_everywhere_is_not_fitted_and_keeps_its_last_gain():
    plate = warm_room(240, 320, 1.0)                # red 212..250: 1.25 x that clips everywhere
    up = PlateUpkeep(plate)
    s = UpkeepSettings(exposure="frame", health=True, work_long_side=80)
    before = exposed(plate, np.float32([1.1, 1.0, 1.0]))        # unclipped: red fitted
    step = up.compensate(before, s)
    assert np.abs(step.gain - [1.1, 1.0, 1.0]).max() < 0.015 and step.exposure_note == ""
    step = up.compensate(exposed(plate, WARM), s)
    assert np.abs(step.gain[1:] - WARM[1:]).max() < 0.015        # green and blue recovered
    assert step.gain[0] == pytest.approx(1.1, abs=0.015)         # red: not a wrong gain, the last one fitted
    assert step.exposure_note.startswith("red not fitted (") and "green" not in step.exposure_note
    health = up.observe(exposed(plate, WARM), np.zeros((240, 320), np.float32), step, s)
    assert "red not fitted" in health.exposure_note and "red not fitted" in health.summary()
    fresh = PlateUpkeep(plate).compensate(exposed(plate, WARM), s)
    assert fresh.gain[0] == 1.0                                  # none fitted before: 1


def test_fit_exposure_says_why_a_channel_is_rejected():
    rng = np.random.default_rng(3)
    p = rng.integers(20, 200, (3000, 3)).astype(np.uint8)
    f = p.copy()
    f[:, 1] = 255 - p[:, 1]                                     # green follows no gain
    usable = np.ones(p.shape, bool)
    usable[:, 2] = False                                        # blue: every value may hide a clip
    fit = fit_exposure(p, f, usable)
    assert fit.rejected[0] == "" and fit.gain[0] == pytest.approx(1.0, abs=0.005)
    assert fit.rejected[1].startswith("the pixels follow no gain") and fit.gain[1] == 1.0
    assert fit.rejected[2].startswith("0 unsaturated background pixels") and fit.gain[2] == 1.0
    dark = fit_exposure(p, np.rint(p * 0.15).astype(np.uint8))          # not an exposure change: 0.15 x
    assert all(r.startswith("gain 0.1") and "outside 0.2..5" in r for r in dark.rejected)
    assert np.array_equal(dark.gain, np.ones(3))
    cells = clipped_cells(np.array([[[255, 100, 3], [100, 100, 100]], [[100, 100, 100], [100, 100, 100]]], np.uint8),
                          (1, 1))
    assert cells.tolist() == [[[True, False, True]]]


def test_apply_gain_and_its_inverse():
    img = np.array([[[0, 100, 200], [50, 128, 255]]], np.uint8)
    out = apply_gain(img, np.array([2.0, 1.0, 0.5]), np.array([0.0, 10 / 255, 0.0]))
    assert out.tolist() == [[[0, 110, 100], [100, 138, 128]]]
    g, o = invert_gain(np.array([2.0, 1.0, 0.5]), np.array([0.0, 10 / 255, 0.0]))
    assert np.allclose(g, [0.5, 1.0, 2.0]) and np.allclose(o, [0.0, -10 / 255, 0.0])


# ---- motion -----------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["translation", "homography"])
def test_a_known_shift_is_recovered_to_a_quarter_pixel_with_a_subject_masked(model):
    plate = texture(120, 160)
    frame = shifted(plate, 2.3, -1.4)
    frame[30:110, 60:100] = (200, 40, 40)                      # a subject that does not move with the camera
    mask = np.ones((120, 160), np.uint8)
    mask[24:116, 54:106] = 0
    grey = lambda x: cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).astype(np.float32)
    w = estimate_warp(grey(plate), grey(frame), "ecc", model, mask)
    assert w is not None
    assert abs(w[0, 2] - 2.3) < 0.25 and abs(w[1, 2] + 1.4) < 0.25
    assert motion_extent(w, 160, 120) == pytest.approx(np.hypot(2.3, 1.4), abs=0.3)
    aligned = warp_image(plate, w)
    inner = (slice(5, -5), slice(5, 50))
    assert np.abs(aligned[inner].astype(int) - frame[inner]).mean() < 3


def test_plate_upkeep_tracks_a_shift_at_full_size_and_declares_a_large_one_stale():
    plate = texture(240, 320, seed=3)
    up = PlateUpkeep(plate)
    s = UpkeepSettings(motion="translation", health=True, max_motion_px=6)
    step = up.compensate(shifted(plate, 3.6, 1.2), s)           # reduced to 320 px: the work image is full size
    assert abs(step.warp[0, 2] - 3.6) < 0.25 and abs(step.warp[1, 2] - 1.2) < 0.25 and not step.stale_reason
    h = up.observe(shifted(plate, 3.6, 1.2), np.zeros((240, 320), np.float32), step, s)
    assert not h.stale and h.disagreement < 0.02
    far = shifted(plate, 8.0, 0.0)
    step = up.compensate(far, s)
    assert "moved 8.0 px" in step.stale_reason and np.array_equal(step.warp, IDENTITY)
    h = up.observe(far, np.zeros((240, 320), np.float32), step, s)
    assert h.stale and "max_motion_px" in h.reason and h.disagreement > 0.3


def test_plate_upkeep_recovers_a_shift_on_a_reduced_copy():
    plate = texture(480, 640, seed=4)
    up = PlateUpkeep(plate)
    s = UpkeepSettings(motion="translation", work_long_side=160)
    step = up.compensate(shifted(plate, -2.5, 1.75), s)
    assert abs(step.warp[0, 2] + 2.5) < 0.25 and abs(step.warp[1, 2] - 1.75) < 0.25


# ---- drift ------------------------------------------------------------------------------------
def test_background_mask_keeps_a_margin_from_the_foreground():
    alpha = np.zeros((20, 30), np.float32)
    alpha[10, 15] = 0.06
    m = background_mask(alpha, 0.05, 2)
    assert m.dtype == np.uint8 and m.sum() == 20 * 30 - 25 and not m[8:13, 13:18].any()
    assert background_mask(alpha, 0.1, 2).all()
    small = background_mask(alpha, 0.05, 0, size=(15, 10))      # any foreground pixel in a 2x2 cell counts
    assert small.sum() == 149 and small[5, 7] == 0


def test_refresh_moves_only_masked_agreeing_pixels_by_the_rate():
    plate = np.full((4, 4, 3), 100.0, np.float32)
    target = np.full((4, 4, 3), 110, np.uint8)
    target[0, 0] = (200, 100, 100)                              # differs beyond the tolerance: a subject
    mask = np.ones((4, 4), np.uint8)
    mask[3, 3] = 0
    n = refresh_plate(plate, target, mask, 0.5, 0.1)
    assert n == 14
    assert np.allclose(plate[1, 1], 105) and np.allclose(plate[0, 0], 100) and np.allclose(plate[3, 3], 100)
    with pytest.raises(ValueError, match="rate"):
        refresh_plate(plate, target, mask, 0.0, 0.1)


# ---- health -----------------------------------------------------------------------------------
def test_disagreement_counts_masked_pixels_beyond_the_level():
    plate = np.full((10, 10, 3), 100, np.uint8)
    frame = plate.copy()
    frame[:3, :, 1] = 126                                       # 26 levels: disagrees
    frame[3:5, :, 0] = 125                                      # 25 levels: agrees
    mask = np.ones((10, 10), np.uint8)
    mask[:, 5:] = 0
    d, support = disagreement(plate, frame, mask)
    assert d == pytest.approx(0.3) and support == pytest.approx(0.5)
    assert np.isnan(disagreement(plate, frame, np.zeros((10, 10), np.uint8))[0])


# ---- settings ---------------------------------------------------------------------------------
def test_settings_are_checked_and_off_by_default():
    assert not UpkeepSettings().enabled
    assert UpkeepSettings(health=True).enabled and UpkeepSettings(refresh_frames=10).refresh
    for bad, match in (({"motion": "affine"}, "upkeep motion must be one of"),
                       ({"refresh_frames": -1}, "upkeep refresh_frames must be in"),
                       ({"exposure": True}, "upkeep exposure must be one of"),
                       ({"health": 1}, "upkeep health must be True or False"),
                       ({"edge_margin_px": 2.5}, "upkeep edge_margin_px must be an integer"),
                       ({"stale_fraction": float("nan")}, "upkeep stale_fraction must be a number")):
        with pytest.raises(ValueError, match=match):
            UpkeepSettings(**bad)
    assert UpkeepSettings().replace(exposure="frame").exposure


# ---- disturbances -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def scene():
    return SceneSequence(64, 96, seed=5, noise=0.0)


@pytest.mark.parametrize("kind", DISTURBANCES)
def test_disturbances_are_deterministic_and_keep_the_true_alpha(scene, kind):
    a = DisturbedSequence(scene, kind, seed=7, start=3, period=10)
    b = DisturbedSequence(scene, kind, seed=7, start=3, period=10)
    for i in (0, 2, 6, 15):
        (sa, pa), (sb, pb) = a.frame(i), b.frame(i)
        src, pha = scene.frame(i)
        assert np.array_equal(sa, sb) and np.array_equal(pa, pha) and np.array_equal(pb, pha)
        if i < 3 or kind == "none":
            assert np.array_equal(sa, src)
        else:
            assert not np.array_equal(sa, src)


def test_exposure_step_is_the_known_gain_and_camera_motion_moves_only_the_background(scene):
    seq = DisturbedSequence(scene, "exposure_step", seed=2, start=0)
    gain, offset = seq.gain(4)
    src, _ = scene.frame(4)
    expect = np.clip(np.rint(src.astype(np.float32) * gain + 255 * offset), 0, 255)
    assert np.array_equal(seq.frame(4)[0], expect.astype(np.uint8))
    assert 0.2 < np.abs(gain.mean() - 1) < 0.45
    pan = DisturbedSequence(scene, "pan", seed=2, start=0, period=10)
    assert np.hypot(*pan.shift(10)) == pytest.approx(6.0) and np.hypot(*pan.shift(5)) == pytest.approx(3.0)
    moved, pha = pan.frame(10)
    src, _ = scene.frame(10)
    assert np.array_equal(moved[pha == 1], src[pha == 1]) and not np.array_equal(moved[pha == 0], src[pha == 0])
    with pytest.raises(ValueError, match="disturbance must be one of"):
        DisturbedSequence(scene, "earthquake")


def test_an_unchanged_compensation_is_the_same_plate_and_is_prepared_once():
    plate = texture(120, 160, seed=5)
    up = PlateUpkeep(plate)
    s = UpkeepSettings(motion="translation")
    frame = shifted(plate, 1.5, 0.5)
    a = up.compensate(frame, s)
    up.observe(frame, np.zeros((120, 160), np.float32), a, s)
    b = up.compensate(frame, s)
    assert a.plate is not None and b.plate is a.plate
    entry = PlateEntry(plate, None, 0.5, "captured plate prepared", up)      # what the engine holds
    assert entry.upkept_for(a.plate, "settings") is None
    entry.keep_upkept(a.plate, "settings", "a prepared")
    assert entry.upkept_for(b.plate, "settings") == "a prepared"                # the same plate: not again
    assert entry.upkept_for(b.plate, "other settings") is None
    c = up.compensate(shifted(plate, 2.5, 0.5), s)
    assert c.plate is not a.plate and abs(c.warp[0, 2] - 2.5) < 0.25
