"""``python -m training {train,eval,export}``: every numeric flag checked at parse time (one line naming
the flag, exit 2, nothing loaded or written), nonsensical combinations refused, inputs never
overwritten, and a run that fails writes nothing: no eval table of NaN, no export that failed its check."""
import os

import cv2
import numpy as np
import pytest

from training import eval_cli, export_cli
from training.__main__ import main


def _exit_code(argv) -> int:
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.rstrip("\n")


@pytest.fixture
def test_set(tmp_path):
    """A plates-layout test set of two 24x32 images."""
    root = tmp_path / "set"
    pha = np.zeros((24, 32), np.uint8)
    pha[6:18, 8:20] = 255
    images = {"src": np.where(pha[..., None] > 0, 200, 50).astype(np.uint8).repeat(3, 2),
              "bgr": np.full((24, 32, 3), 50, np.uint8), "pha": pha}
    for name, img in images.items():
        (root / name).mkdir(parents=True)
        for i in range(2):
            assert cv2.imwrite(str(root / name / f"{i:05d}.png"), img)
    return root


@pytest.mark.parametrize("flag, value, message", [
    ("--lr-scale", "nan", "lr_scale must be a finite number, got nan"),
    ("--lr-scale", "inf", "lr_scale must be a finite number, got inf"),
    ("--grad-clip", "nan", "grad_clip must be a finite number, got nan"),
    ("--gan-weight", "inf", "gan_weight must be a finite number, got inf"),
    ("--disc-lr", "nan", "disc_lr must be a finite number, got nan"),
    ("--backbone-scale", "nan", "backbone_scale must be a finite number, got nan"),
    ("--lr-scale", "-1", "lr_scale must be > 0, got -1.0"),
])
def test_train_refuses_a_number_before_anything_starts(flag, value, message, tmp_path, capsys):
    out = tmp_path / "run"
    assert _exit_code(["train", "--output-dir", str(out), flag, value]) == 2
    assert _one_line(capsys) == f"error: {message}"
    assert not out.exists()


@pytest.mark.parametrize("argv, message", [
    (["--limit", "0"], "argument --limit: must be at least 1, got 0"),
    (["--limit", "-1"], "argument --limit: must be at least 1, got -1"),
    (["--seed", "-3"], "argument --seed: must be at least 0, got -3"),
    (["--backbone-scale", "nan"], "argument --backbone-scale: must be a finite number, got 'nan'"),
    (["--backbone-scale", "0.75"], "argument --backbone-scale: must be in 0.015625..0.5, got 0.75"),
    (["--refine-threshold", "2"], "argument --refine-threshold: must be in 0..1, got 2"),
    (["--refine-sample-pixels", "8"], "argument --refine-sample-pixels: must be at least 16, got 8"),
])
def test_eval_refuses_a_number_and_keeps_the_last_table(argv, message, test_set, tmp_path, capsys):
    out = tmp_path / "eval.csv"
    out.write_text("the last run's table\n")
    assert _exit_code(["eval", "--data", str(test_set), "--out", str(out)] + argv) == 2
    assert _one_line(capsys) == f"python -m training eval: error: {message} (see --help)"
    assert out.read_text() == "the last run's table\n"


def test_eval_refuses_nonsensical_combinations_and_outputs(test_set, tmp_path, capsys):
    base = ["--data", str(test_set)]
    (tmp_path / "dir.csv").mkdir()
    pha = test_set / "pha" / "00001.png"
    before = pha.read_bytes()
    cases = [
        (["--method", "difference-key", "--refine-mode", "full", "--precision", "bf16"],
         "error: --refine-mode, --precision apply to --method model only"),
        (["--precision", "bf16", "--output", "coarse"], "error: --precision runs the refine output on the fast path"),
        (["--out", str(tmp_path / "dir.csv")], f"error: --out {tmp_path / 'dir.csv'}: {tmp_path / 'dir.csv'} is a dir"),
        (["--method", "difference-key", "--out", str(pha)], f"error: --out {pha} would overwrite the input {pha}"),
    ]
    for extra, expected in cases:
        assert eval_cli.main(base + extra) == 2, extra
        assert _one_line(capsys).startswith(expected), extra
    assert pha.read_bytes() == before


def test_eval_writes_no_table_when_a_prediction_is_not_finite(test_set, tmp_path, capsys, monkeypatch):
    out = tmp_path / "eval.csv"
    monkeypatch.setattr(eval_cli, "difference_key_predictor",
                        lambda: lambda src, bgr: (np.full(src.shape[:2], np.nan, np.float32), src))
    assert eval_cli.main(["--data", str(test_set), "--method", "difference-key", "--out", str(out)]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == ("error: 00000: the predicted alpha or foreground holds NaN "
                                                        f"or infinity; {out} not written")
    assert not out.exists() and not (tmp_path / "eval.csv.summary.txt").exists()


@pytest.mark.parametrize("argv, message", [
    (["--tolerance", "-1"], "argument --tolerance: must be at least 0, got -1"),
    (["--tolerance", "nan"], "argument --tolerance: must be a finite number, got 'nan'"),
    (["--opset", "16"], "argument --opset: must be in 17..23, got 16"),
    (["--opset", "99"], "argument --opset: must be in 17..23, got 99"),
    (["--static", "0", "64"], "argument --static: must be in 1..16384, got 0"),
    (["--check-size", "64", "-2"], "argument --check-size: must be in 1..16384, got -2"),
    (["--backbone-scale", "inf"], "argument --backbone-scale: must be a finite number, got 'inf'"),
    (["--refine-sample-pixels", "0"], "argument --refine-sample-pixels: must be at least 16, got 0"),
])
def test_export_refuses_a_number_before_loading(argv, message, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert _exit_code(["export", "--format", "onnx", "--output", str(out)] + argv) == 2
    assert _one_line(capsys) == f"python -m training export: error: {message} (see --help)"
    assert not out.exists()


def test_export_refuses_nonsensical_combinations_and_outputs(tiny_model_file, tmp_path, capsys):
    (tmp_path / "dir.ts").mkdir()
    before = open(tiny_model_file, "rb").read()
    ts = ["--checkpoint", tiny_model_file, "--format", "torchscript"]
    cases = [
        (ts + ["--output", str(tmp_path / "dir.ts")], f"error: --output {tmp_path / 'dir.ts'} is a directory"),
        (ts + ["--output", tiny_model_file], f"error: --output {tiny_model_file} is the checkpoint being exported"),
        (ts + ["--output", "m.ts", "--opset", "18", "--providers", "CPUExecutionProvider"],
         "error: --opset, --providers apply to --format onnx only"),
        (ts + ["--output", "m.ts", "--no-check", "--tolerance", "1e-3"],
         "error: --tolerance apply to the check, which --no-check skips"),
    ]
    for argv, expected in cases:
        assert export_cli.main(argv) == 2, argv
        assert _one_line(capsys).startswith(expected), argv
    assert open(tiny_model_file, "rb").read() == before
    assert sorted(os.listdir(tmp_path)) == ["dir.ts"]


def test_an_export_that_fails_its_check_is_not_left_behind(tiny_model_file, tmp_path, capsys, monkeypatch):
    out = tmp_path / "m.ts"
    out.write_bytes(b"the last good export")
    monkeypatch.setattr(export_cli, "compare", lambda expected, got, names, reduce: {"pha": 0.5, "fgr": 0.0})
    assert export_cli.main(["--checkpoint", tiny_model_file, "--format", "torchscript", "--output", str(out)]) == 1
    assert capsys.readouterr().err == ("error: the export differs from the eager model by 5.00e-01 > 1e-05; "
                                       f"{out} not written\n")
    assert out.read_bytes() == b"the last good export"
    assert sorted(os.listdir(tmp_path)) == ["m.ts"]                    # no temporary left either
    monkeypatch.undo()
    assert export_cli.main(["--checkpoint", tiny_model_file, "--format", "torchscript", "--output", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith(f"wrote {out} (")
    assert out.read_bytes()[:2] == b"PK" and sorted(os.listdir(tmp_path)) == ["m.ts"]
