"""Evaluation: the difference-key baseline, both test-set layouts, scoring and the eval CLI."""
import csv
import math
import os

import cv2
import numpy as np
import pytest
import torch
from torch.nn import functional as F
from training_tiny import exit_code, one_line

from matte_ros.core.metrics import mean_scores as summarize
from matte_ros.core.metrics import quantize
from matte_ros.core.model import MattingRefine, save_checkpoint
from training import eval_cli
from training.baseline import closed_form, difference_key, plate_trimap
from training.evaluate import difference_key_predictor, evaluate, list_test_set, load_test_set, model_predictor


def _png(path, img):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    assert cv2.imwrite(path, img)


def _square_scene(h=24, w=32):
    """A binary square of colour (230, 20, 20) over a grey plate (51, 51, 51)."""
    pha = np.zeros((h, w), np.uint8)
    pha[6:18, 8:20] = 255
    fgr = np.zeros((h, w, 3), np.uint8)
    fgr[...] = (230, 20, 20)
    bgr = np.full((h, w, 3), 51, np.uint8)
    src = np.where(pha[..., None] > 0, fgr, bgr).astype(np.uint8)
    return src, bgr, pha, fgr


@pytest.fixture
def plates_dir(tmp_path):
    """Layout 1 inside DIR/test (as the synth command writes it): two images."""
    src, bgr, pha, fgr = _square_scene()
    for i in range(2):
        for name, img in (("src", src), ("bgr", bgr), ("pha", pha), ("fgr", fgr)):
            _png(str(tmp_path / "test" / name / f"{i:05d}.png"), img)
    return str(tmp_path)


def test_difference_key_by_hand():
    bgr = np.full((9, 9, 3), 0.2, np.float32)
    src = bgr.copy()
    src[2:7, 2:7] = (0.9, 0.2, 0.2)      # difference 0.7 -> alpha 1
    src[0, 0] = (0.2, 0.28, 0.2)         # difference = threshold 0.08 -> alpha 1/2
    pha, fgr = difference_key(src, bgr, threshold=0.08, softness=0.08, sigma=0)
    assert pha[4, 4] == 1.0 and pha[8, 8] == 0.0 and pha[0, 0] == pytest.approx(0.5, abs=1e-5)
    np.testing.assert_allclose(fgr[4, 4], (0.9, 0.2, 0.2), atol=1e-6)
    # the foreground solves src = a * fgr + (1 - a) * bgr
    np.testing.assert_allclose(pha[0, 0] * fgr[0, 0] + (1 - pha[0, 0]) * bgr[0, 0], src[0, 0], atol=1e-5)
    assert (fgr[pha == 0] == 0).all()
    with pytest.raises(ValueError, match="same|one shape"):
        difference_key(src, bgr[:5])


def test_difference_key_smoothing_removes_isolated_noise():
    rng = np.random.default_rng(0)
    bgr = rng.random((40, 40, 3)).astype(np.float32)
    src = bgr.copy()
    src[20, 20] += 0.5                    # one hot pixel, no subject
    pha, _ = difference_key(np.clip(src, 0, 1), bgr)
    assert pha.max() < 0.5


def test_plates_layout_loads_and_checks(plates_dir):
    items = list(load_test_set(plates_dir))
    assert [it.name for it in items] == ["00000", "00001"]
    it = items[0]
    assert it.src.shape == (24, 32, 3) and it.pha.shape == (24, 32) and it.trimap is None
    assert it.pha[10, 10] == 1.0 and it.pha[0, 0] == 0.0
    np.testing.assert_allclose(it.fgr[0, 0], np.array([230, 20, 20]) / 255, atol=1e-7)
    assert it.bgr[0, 0, 0] == np.float32(51 / 255)
    os.remove(os.path.join(plates_dir, "test", "bgr", "00001.png"))
    with pytest.raises(ValueError, match="lack a src or bgr"):
        list_test_set(plates_dir)
    with pytest.raises(ValueError, match="not a test set"):
        list_test_set(os.path.join(plates_dir, "test", "pha"))


def test_composite_layout_is_deterministic(tmp_path):
    _, _, pha, fgr = _square_scene()
    for i in range(4):
        _png(str(tmp_path / "fgr" / f"{i}.png"), fgr)
        _png(str(tmp_path / "pha" / f"{i}.png"), pha)
    for j, value in enumerate((10, 120, 250)):
        _png(str(tmp_path / "backgrounds" / f"b{j}.png"), np.full((48, 64, 3), value, np.uint8))
    a = list(load_test_set(str(tmp_path), seed=0))
    b = list(load_test_set(str(tmp_path), seed=0))
    plates = [int(round(it.bgr[0, 0, 0] * 255)) for it in a]
    assert plates == [int(round(it.bgr[0, 0, 0] * 255)) for it in b]
    assert sorted(plates[:3]) == [10, 120, 250] and plates[3] == plates[0]   # a permutation, then cycled
    it = a[0]
    assert it.bgr.shape == (24, 32, 3)                                      # resized to the foreground
    np.testing.assert_allclose(it.src[10, 10], it.fgr[10, 10])               # alpha 1: the foreground
    np.testing.assert_allclose(it.src[0, 0], it.bgr[0, 0])                   # alpha 0: the plate
    other = [[int(round(it.bgr[0, 0, 0] * 255)) for it in load_test_set(str(tmp_path), seed=s)] for s in range(6)]
    assert len({tuple(p) for p in other}) > 1
    os.rename(str(tmp_path / "backgrounds"), str(tmp_path / "bg"))
    with pytest.raises(ValueError, match="--backgrounds"):
        list_test_set(str(tmp_path))
    assert len(list_test_set(str(tmp_path), backgrounds=str(tmp_path / "bg"))) == 4


def test_evaluate_perfect_and_empty_predictions(plates_dir):
    # The key is exact on this scene (binary alpha, large colour difference, no smoothing): all zero.
    rows = evaluate(load_test_set(plates_dir), difference_key_predictor(sigma=0))
    for key in ("sad", "mse", "grad", "conn", "fgr_mse"):
        assert rows[0][key] == 0.0, key
    # Predicting alpha 0 everywhere: SAD = 144 pixels / 1000, MSE = 144 / 768, Conn: every square
    # pixel leaves at once (level 0) -> phi(true) = 0, phi(pred) = 1 -> 144 / 1000 after scaling.
    zero = lambda src, bgr: (np.zeros(src.shape[:2], np.float32), np.zeros_like(src))
    rows = evaluate(load_test_set(plates_dir, limit=1), zero)
    assert len(rows) == 1 and rows[0]["name"] == "00000"
    assert rows[0]["sad"] == pytest.approx(0.144) and rows[0]["mse"] == pytest.approx(144 / 768)
    assert rows[0]["conn"] == pytest.approx(0.144)
    assert rows[0]["grad"] > 0
    # With a trimap only its unknown band counts: rows 6..7 of the square, 2 x 12 pixels.
    trimap = np.zeros((24, 32), np.uint8)
    trimap[4:8] = 128
    for i in range(2):
        _png(os.path.join(plates_dir, "test", "trimap", f"{i:05d}.png"), trimap)
    rows = evaluate(load_test_set(plates_dir, limit=1), zero)
    assert rows[0]["sad"] == pytest.approx(0.024) and rows[0]["mse"] == pytest.approx(24 / 128)


def test_quantize_and_summarize():
    # 8-bit levels as MATLAB's single(k) / 255
    expected = np.array([0, 128, 255, 1], np.float32) / np.float32(255)
    np.testing.assert_array_equal(quantize(np.array([0.0, 0.5, 1.2, 1 / 255 * 0.6])), expected)
    s = summarize([{"sad": 1.0, "mse": 0.0, "grad": 2.0, "conn": 3.0, "fgr_mse": float("nan")},
                   {"sad": 3.0, "mse": 1.0, "grad": 4.0, "conn": 5.0, "fgr_mse": 0.5}])
    assert s == {"sad": 2.0, "mse": 0.5, "grad": 3.0, "conn": 4.0, "fgr_mse": 0.5}
    assert math.isnan(summarize([{"sad": 0, "mse": 0, "grad": 0, "conn": 0, "fgr_mse": float("nan")}])["fgr_mse"])


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return MattingRefine("mobilenetv2", refine_sample_pixels=320).eval()


def test_model_predictor_outputs(tiny_model):
    src = np.random.default_rng(0).random((50, 66, 3)).astype(np.float32)
    bgr = np.random.default_rng(1).random((50, 66, 3)).astype(np.float32)
    pha, fgr = model_predictor(tiny_model, "refine")(src, bgr)
    pha_c, fgr_c = model_predictor(tiny_model, "coarse")(src, bgr)
    assert pha.shape == pha_c.shape == (50, 66) and fgr.shape == fgr_c.shape == (50, 66, 3)
    with torch.no_grad():
        out = tiny_model(torch.from_numpy(src.transpose(2, 0, 1))[None], torch.from_numpy(bgr.transpose(2, 0, 1))[None])
    np.testing.assert_array_equal(pha, out.pha[0, 0].numpy())
    expected = F.interpolate(out.pha_sm, (52, 68), mode="bilinear", align_corners=False)[0, 0, :50, :66]
    np.testing.assert_array_equal(pha_c, expected.numpy())
    with pytest.raises(ValueError, match="output"):
        model_predictor(tiny_model, "middle")


def test_eval_cli_writes_csv_and_summary(plates_dir, tiny_model, tmp_path, capsys):
    out = str(tmp_path / "dk.csv")
    assert eval_cli.main(["--data", plates_dir, "--method", "difference-key", "--out", out]) == 0
    text = capsys.readouterr().out
    assert "difference-key" in text and "mean over 2 image(s)" in text
    with open(out) as f:
        rows = list(csv.DictReader(f))
    assert [r["name"] for r in rows] == ["00000", "00001"] and set(rows[0]) >= {"sad", "mse", "grad", "conn", "fgr_mse"}
    assert open(out + ".summary.txt").read().strip() == text.split("\n2 image(s)")[0].strip()

    ckpt = str(tmp_path / "m.pth")
    save_checkpoint(ckpt, tiny_model)
    out = str(tmp_path / "m.csv")
    assert eval_cli.main(["--data", plates_dir, "--checkpoint", ckpt, "--output", "coarse", "--limit", "1",
                          "--refine-mode", "full", "--out", out]) == 0
    assert "m.pth (coarse)" in capsys.readouterr().out
    assert exit_code(["eval", "--data", str(tmp_path / "nowhere"), "--method", "difference-key"]) == 2
    assert "not a test set" in one_line(capsys)


def _soft_edge_scene(h=40, w=60):
    """A red subject on the right over a grey plate, with a 9 px linear alpha ramp between them."""
    pha = np.clip((np.arange(w, dtype=np.float32) - 26) / 9, 0, 1)[None].repeat(h, axis=0)
    bgr = np.full((h, w, 3), 0.3, np.float32)
    fgr = np.broadcast_to(np.float32([0.9, 0.1, 0.1]), (h, w, 3))
    return pha[..., None] * fgr + (1 - pha[..., None]) * bgr, bgr, pha


def test_plate_trimap_bands_the_difference_edge():
    src, bgr, _ = _soft_edge_scene()
    tri = plate_trimap(src, bgr, threshold=0.08, band=5)
    row = tri[20]
    assert set(np.unique(tri)) == {0.0, 0.5, 1.0}
    # the mask edge is where the difference (0.6 * alpha) passes 0.08: column 28
    assert (row[:22] == 0).all() and (row[35:] == 1).all() and (row[24:33] == 0.5).all()
    with pytest.raises(ValueError, match="band"):
        plate_trimap(src, bgr, band=0)


@pytest.mark.slow     # PyMatting compiles its numba kernels on first use (about a minute)
def test_closed_form_recovers_a_linear_soft_edge():
    pytest.importorskip("pymatting")
    src, bgr, pha_true = _soft_edge_scene()
    pha, fgr = closed_form(src, bgr, band=8)              # the band covers the whole ramp
    assert pha.shape == pha_true.shape and pha.dtype == np.float32
    assert np.abs(pha - pha_true).mean() < 0.02
    np.testing.assert_allclose(fgr[20, 45], (0.9, 0.1, 0.1), atol=0.02)
    dk, _ = difference_key(src, bgr)
    assert np.abs(pha - pha_true).mean() < np.abs(dk - pha_true).mean()   # better than the keyer on soft edges
    empty, _ = closed_form(bgr, bgr)                                      # no subject: no unknown band, alpha 0
    assert float(empty.max()) == 0.0


@pytest.mark.slow     # PyMatting compiles its numba kernels on first use (about a minute)
def test_eval_cli_closed_form(plates_dir, tmp_path, capsys):
    pytest.importorskip("pymatting")
    out = str(tmp_path / "cf.csv")
    assert eval_cli.main(["--data", plates_dir, "--method", "closed-form", "--out", out, "--limit", "1"]) == 0
    text = capsys.readouterr().out
    assert "closed-form" in text and "mean over 1 image(s)" in text
    with open(out) as f:
        rows = list(csv.DictReader(f))
    assert float(rows[0]["sad"]) < 0.05                   # a hard square on a flat plate: nearly exact
