"""The stress suite (training/stress*.py): reproducible scenes, calibrated camouflage, held-out
subject families, band metrics against hand-computed answers, the cache and the command."""
import os

import cv2
import numpy as np
import pytest
from training_tiny import exit_code

from matte_ros.core.synthetic import HELD_OUT_FAMILIES, TRAINING_FAMILIES
from training import stress_cli
from training.stress import SuiteSpec, ensure_suite, format_markdown, stress_scores
from training.stress_scenes import CAMOUFLAGE_LEVELS, CATEGORIES, _subject_kind, band_trimap, make_stress_sample

TINY = SuiteSpec(seed=3, count=1, size=(48, 64))


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("stress_photos")
    out = []
    for i in range(3):
        grid = np.random.default_rng(i).uniform(0, 255, (6, 8, 3)).astype(np.float32)
        img = cv2.resize(grid, (160, 120), interpolation=cv2.INTER_CUBIC)
        img += np.random.default_rng(10 + i).normal(0, 12, img.shape).astype(np.float32)   # some texture
        out.append(str(root / f"p{i}.png"))
        assert cv2.imwrite(out[-1], np.clip(img, 0, 255).astype(np.uint8))
    return out


def _files(root):
    out = {}
    for folder, _, names in os.walk(root):
        for name in names:
            with open(os.path.join(folder, name), "rb") as f:
                out[os.path.relpath(os.path.join(folder, name), root)] = f.read()
    return out


def test_default_suite_has_every_category_with_24_images():
    spec = SuiteSpec()
    assert spec.count >= 24 and spec.categories == tuple(CATEGORIES)
    assert {"camouflage-0.03", "camouflage-0.06", "camouflage-0.12", "wall", "hair", "translucent", "thin", "motion",
            "shadow", "exposure", "shift", "jpeg", "mixed"} == set(CATEGORIES)


def test_same_seed_same_bytes_and_the_cache_is_reused_or_renewed(tmp_path, photos):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    ensure_suite(a, TINY, photos, log=lambda _: None)
    ensure_suite(b, TINY, photos, log=lambda _: None)
    first = _files(a)
    assert first == _files(b) and len(first) == 1 + 5 * len(CATEGORIES)
    stamp = os.stat(os.path.join(a, "mixed", "src", "00000.png")).st_mtime_ns
    ensure_suite(a, TINY, photos, log=lambda _: None)                        # cached: nothing rewritten
    assert os.stat(os.path.join(a, "mixed", "src", "00000.png")).st_mtime_ns == stamp
    messages = []
    ensure_suite(a, TINY._replace(seed=4), photos, log=messages.append)      # another seed: generated anew
    assert messages and _files(a).keys() == first.keys() and _files(a) != first
    ensure_suite(a, TINY, photos[:2], log=messages.append)                    # other photographs: anew
    assert _files(a)["manifest.yaml"] != first["manifest.yaml"]


@pytest.mark.parametrize("level", CAMOUFLAGE_LEVELS)
def test_camouflage_levels_are_the_stated_contrast(level, photos):
    for i in range(4):
        s = make_stress_sample(0, f"camouflage-{level}", i, (96, 128), photos)
        inside = s.pha > 127
        got = np.abs(s.fgr.astype(np.float64) - s.bgr.astype(np.float64))[inside].mean() / 255
        assert 0.8 * level < got < 1.25 * level, (i, got)


def test_wall_is_smooth_and_its_subject_close(photos):
    for i in range(3):
        s = make_stress_sample(0, "wall", i, (96, 128), photos)
        assert np.abs(np.diff(s.bgr.astype(np.float64), axis=1)).mean() < 2.0      # a plain wall, not a photo
        inside = s.pha > 127
        got = np.abs(s.fgr.astype(np.float64) - s.bgr.astype(np.float64))[inside].mean() / 255
        assert 0.03 < got < 0.1, got


def test_half_of_each_category_comes_from_held_out_families():
    rng = np.random.default_rng(0)
    assert all(_subject_kind(("shadow",), i, rng)["kind"] in HELD_OUT_FAMILIES for i in range(0, 24, 2))
    assert all(_subject_kind(("shadow",), i, rng)["kind"] in TRAINING_FAMILIES for i in range(1, 24, 2))
    assert {_subject_kind(("hair",), i, rng)["kind"] for i in range(3)} == {"person", "animal"}
    assert _subject_kind(("thin",), 0, rng)["kind"] == "furniture"


def test_band_trimap_hand_computed():
    pha = np.zeros((7, 7), np.uint8)
    pha[3, 3] = 100                                   # one fractional pixel, no solid subject
    tri = band_trimap(pha, radius=1)
    expect = np.zeros((7, 7), np.uint8)
    expect[2:5, 3] = expect[3, 2:5] = 128            # dilated by 1 px (OpenCV's 3x3 ellipse is a cross)
    np.testing.assert_array_equal(tri, expect)
    pha = np.zeros((7, 7), np.uint8)
    pha[:, 4:] = 255                                 # a hard edge between columns 3 and 4
    tri = band_trimap(pha, radius=0)
    assert (tri[:, 3:5] == 128).all() and (tri[:, :3] == 0).all() and (tri[:, 5:] == 255).all()


def test_band_metrics_hand_computed():
    true = np.zeros((4, 4), np.float32)
    true[:, 2:] = 1.0
    trimap = np.zeros((4, 4), np.uint8)
    trimap[:, 1:3] = 128                             # the band: columns 1 and 2 (8 pixels)
    pred = true.copy()
    pred[0, 1] = 0.5                                 # inside the band: error 0.5
    pred[3, 0] = 0.25                                # outside it: error 0.25
    s = stress_scores(pred, true, trimap)
    assert s["band_sad"] == pytest.approx(0.5 / 1000)
    assert s["band_mse"] == pytest.approx(0.25 / 8)
    assert s["sad"] == pytest.approx(0.75 / 1000)
    assert s["mse"] == pytest.approx((0.25 + 0.0625) / 16)
    assert s["band_grad"] > 0 and s["band_conn"] >= 0
    exact = stress_scores(true, true, trimap)
    assert all(v == 0 for v in exact.values())
    outside = true.copy()
    outside[3, 0] = 0.25
    s = stress_scores(outside, true, np.full((4, 4), 128, np.uint8) * (np.arange(4) >= 2))
    assert s["band_sad"] == 0 and s["sad"] > 0


def test_markdown_marks_the_best_per_category_and_column():
    a = {"mixed": {"band_sad": 1.0, "band_mse": 0.01, "band_grad": 2.0, "band_conn": 1.0, "sad": 3.0, "mse": 0.02}}
    b = {"mixed": {"band_sad": 2.0, "band_mse": 0.005, "band_grad": 1.0, "band_conn": 1.0, "sad": 4.0, "mse": 0.01}}
    text = format_markdown({"A": a, "B": b}, 24)
    row_a = next(line for line in text.splitlines() if line.startswith("| mixed | A |"))
    row_b = next(line for line in text.splitlines() if line.startswith("| mixed | B |"))
    assert row_a.count("**") == 2 * 3 and "**1.000**" in row_a and "**3.000**" in row_a    # SAD, Conn (tie), SAD
    assert "**0.00500**" in row_b and "**1.000**" in row_b


def test_command_runs_a_tiny_suite_and_fails_in_one_line_without_photos(tmp_path, photos, monkeypatch, capsys):
    monkeypatch.setattr(stress_cli, "stress_photos", lambda folder=None: photos)
    out = tmp_path / "r" / "stress.csv"
    os.makedirs(out.parent)
    argv = ["--suite", "stress", "--data", str(tmp_path / "suite"), "--method", "difference-key", "--count", "1",
            "--size", "48", "64", "--categories", "wall", "jpeg", "--out", str(out)]
    assert exit_code(["eval"] + argv) == 0
    table = (tmp_path / "r" / "stress.md").read_text()
    assert "| wall | difference-key |" in table and "| jpeg | difference-key |" in table
    assert len(out.read_text().splitlines()) == 3
    monkeypatch.setattr(stress_cli, "stress_photos", lambda folder=None: [])
    capsys.readouterr()
    assert exit_code(["eval"] + argv + ["--regenerate"]) == 2
    err = capsys.readouterr().err.strip()
    assert "lomiri-wallpapers" in err and len(err.splitlines()) == 1
