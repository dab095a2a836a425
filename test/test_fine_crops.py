"""Fine-structure crops for the model card: window scoring and the sheet (tiny generated test set)."""
import os

import cv2
import numpy as np

from matte_ros.core.model import MattingRefine, save_checkpoint
from training import fine_crops


def test_scores_tell_strands_from_veils():
    pha = np.zeros((64, 64), np.float32)
    pha[8:56, 8:30:4] = 0.6                      # 1 px strands at partial alpha: steep fractional edges
    pha[8:56, 36:60] = 0.5                       # a flat veil
    hair, veil = fine_crops.hair_score(pha), fine_crops.translucent_score(pha)
    assert hair[20, 8:30].sum() > 4 and hair[20, 40:56].sum() == 0
    assert veil[20, 40:56].all() and veil[20, 9:28].sum() == 0


def test_best_window_finds_the_densest_block():
    score = np.zeros((50, 70), np.float32)
    score[30:40, 50:60] = 1
    value, top, left = fine_crops.best_window(score, 10)
    assert (top, left) == (30, 50) and value == 1.0


def test_cli_writes_a_sheet_row_per_crop(tmp_path, capsys):
    pha = np.zeros((48, 64), np.uint8)
    pha[10:40, 20:22] = 150                       # a strand
    pha[10:40, 40:60] = 120                       # a veil
    src = np.full((48, 64, 3), 90, np.uint8)
    for name, img in (("src", src), ("bgr", src), ("pha", pha), ("fgr", src)):
        os.makedirs(tmp_path / "test" / name, exist_ok=True)
        assert cv2.imwrite(str(tmp_path / "test" / name / "00000.png"), img)
    ckpt = str(tmp_path / "m.pth")
    save_checkpoint(ckpt, MattingRefine("mobilenetv2", backbone_scale=0.5, refine_sample_pixels=512))
    out = str(tmp_path / "crops.png")
    assert fine_crops.main(["--data", str(tmp_path), "--checkpoints", ckpt, ckpt, "--size", "16", "--zoom", "1",
                            "--per-kind", "1", "--out", out]) == 0
    sheet = cv2.imread(out)
    assert sheet.shape == (2 * 16, 4 * 16, 3)     # hair row + veil row; frame, truth, two models
    capsys.readouterr()
    assert fine_crops.COMMAND.run(["--data", str(tmp_path / "none"), "--checkpoints", ckpt, "--out", out]) == 2
    assert capsys.readouterr().err.startswith("python -m training.fine_crops: error: ")
