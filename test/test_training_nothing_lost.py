"""``python -m training {train,eval,export,synth}``: every numeric flag checked at parse time (one line
naming the flag, exit 2, nothing loaded or written), nonsensical combinations refused, inputs never
overwritten, and a run that fails writes nothing that looks finished: no eval table of NaN, no export
that failed its check, no dataset.yaml of a synthetic dataset that was not completed."""
import os

import cv2
import numpy as np
import pytest
import yaml
from training_tiny import exit_code, one_line

import training.synth
from training import eval_cli, export_cli, synth_cli
from training.__main__ import main


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
    assert exit_code(["train", "--output-dir", str(out), flag, value]) == 2
    assert one_line(capsys) == f"python -m training train: error: {message}"
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
    assert exit_code(["eval", "--data", str(test_set), "--out", str(out)] + argv) == 2
    assert one_line(capsys) == f"python -m training eval: error: {message} (see --help)"
    assert out.read_text() == "the last run's table\n"


def test_eval_refuses_nonsensical_combinations_and_outputs(test_set, tmp_path, capsys):
    base = ["--data", str(test_set)]
    (tmp_path / "dir.csv").mkdir()
    pha = test_set / "pha" / "00001.png"
    before = pha.read_bytes()
    cases = [
        (["--method", "difference-key", "--refine-mode", "full", "--precision", "bf16"],
         "python -m training eval: error: --refine-mode, --precision apply to --method model only"),
        (["--precision", "bf16", "--output", "coarse"], "python -m training eval: error: "
                                                        "--precision runs the refine output on the fast path"),
        (["--out", str(tmp_path / "dir.csv")], "python -m training eval: error: "
                                               f"--out {tmp_path / 'dir.csv'}: {tmp_path / 'dir.csv'} is a dir"),
        (["--method", "difference-key", "--out", str(pha)], "python -m training eval: error: "
                                                            f"--out {pha} would overwrite the input {pha}"),
    ]
    for extra, expected in cases:
        assert main(["eval"] + base + extra) == 2, extra
        assert one_line(capsys).startswith(expected), extra
    assert pha.read_bytes() == before


def test_eval_writes_no_table_when_a_prediction_is_not_finite(test_set, tmp_path, capsys, monkeypatch):
    out = tmp_path / "eval.csv"
    monkeypatch.setattr(eval_cli, "difference_key_predictor",
                        lambda: lambda src, bgr: (np.full(src.shape[:2], np.nan, np.float32), src))
    assert main(["eval", "--data", str(test_set), "--method", "difference-key", "--out", str(out)]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == ("python -m training eval: error: "
                                                        "00000: the predicted alpha or foreground holds NaN "
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
    assert exit_code(["export", "--format", "onnx", "--output", str(out)] + argv) == 2
    assert one_line(capsys) == f"python -m training export: error: {message} (see --help)"
    assert not out.exists()


def test_export_refuses_nonsensical_combinations_and_outputs(tiny_model_file, tmp_path, capsys):
    (tmp_path / "dir.ts").mkdir()
    before = open(tiny_model_file, "rb").read()
    ts = ["--checkpoint", tiny_model_file, "--format", "torchscript"]
    cases = [
        (ts + ["--output", str(tmp_path / "dir.ts")], "python -m training export: error: "
                                                      f"--output {tmp_path / 'dir.ts'} is a directory"),
        (ts + ["--output", tiny_model_file], "python -m training export: error: "
                                             f"--output {tiny_model_file} is the checkpoint being exported"),
        (ts + ["--output", "m.ts", "--opset", "18", "--providers", "CPUExecutionProvider"],
         "python -m training export: error: --opset, --providers apply to --format onnx only"),
        (ts + ["--output", "m.ts", "--no-check", "--tolerance", "1e-3"],
         "python -m training export: error: --tolerance apply to the check, which --no-check skips"),
    ]
    for argv, expected in cases:
        assert main(["export"] + argv) == 2, argv
        assert one_line(capsys).startswith(expected), argv
    assert open(tiny_model_file, "rb").read() == before
    assert sorted(os.listdir(tmp_path)) == ["dir.ts"]


def test_an_export_that_fails_its_check_is_not_left_behind(tiny_model_file, tmp_path, capsys, monkeypatch):
    out = tmp_path / "m.ts"
    out.write_bytes(b"the last good export")
    monkeypatch.setattr(export_cli, "compare", lambda expected, got, names, reduce: {"pha": 0.5, "fgr": 0.0})
    assert main(["export", "--checkpoint", tiny_model_file, "--format", "torchscript", "--output", str(out)]) == 1
    assert capsys.readouterr().err == ("python -m training export: error: "
                                       "the export differs from the eager model by 5.00e-01 > 1e-05; "
                                       f"{out} not written\n")
    assert out.read_bytes() == b"the last good export"
    assert sorted(os.listdir(tmp_path)) == ["m.ts"]                    # no temporary left either
    monkeypatch.undo()
    assert export_cli.main(["--checkpoint", tiny_model_file, "--format", "torchscript", "--output", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith(f"wrote {out} (")
    assert out.read_bytes()[:2] == b"PK" and sorted(os.listdir(tmp_path)) == ["m.ts"]


SMALL = ["--size", "32", "32", "--test-size", "32", "32", "--workers", "1"]


@pytest.mark.parametrize("argv, message", [
    (["--count", "0"], "python -m training synth: error: "
                       "--count 0 writes no training data: give --count N for a training dataset, or "
                       "--count 0 with --test-count N for a test-only dataset"),
    (["--count", "0", "--test-count", "0"], "python -m training synth: error: --count 0 writes no training data"),
    (["--count", "0", "--test-count", "2", "--backgrounds", "3"],
     "python -m training synth: error: --count 0 makes a test-only dataset: --backgrounds must be 0 or left out"),
    (["--count", "4", "--valid-count", "0"],
     "python -m training synth: error: "
     "--valid-count 0 leaves the training data without validation images or backgrounds"),
    (["--count", "4", "--valid-backgrounds", "0"], "python -m training synth: error: "
                                                   "--valid-backgrounds 0 leaves the training data"),
    (["--photo-share", "0.5"], "python -m training synth: error: --photo-share applies with --photos only"),
    (["--photo-share", "nan"], "python -m training synth: error: argument --photo-share: must be a finite number"),
    (["--seed", "-1"], "python -m training synth: error: argument --seed: must be at least 0, got -1"),
    (["--count", "100000"], "python -m training synth: error: argument --count: must be in 0..99999, got 100000"),
    (["--size", "64", "9000"], "python -m training synth: error: argument --size: must be in 32..8192, got 9000"),
])
def test_synth_refuses_datasets_that_cannot_be_used(argv, message, tmp_path, capsys):
    out = tmp_path / "s"
    assert exit_code(["synth", "--out", str(out)] + SMALL + argv) == 2
    assert one_line(capsys).startswith(message)
    assert not out.exists()


def test_synth_refuses_photo_folders_without_photographs_or_holding_the_output(tmp_path, capsys):
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "sub" / "notes.txt").write_text("no pictures here")
    out = tmp_path / "s"
    assert exit_code(["synth", "--out", str(out), "--photos", str(empty)] + SMALL) == 2
    assert one_line(capsys) == ("python -m training synth: error: "
                                 f"--photos {empty}: no JPEG or PNG photographs found there")
    assert exit_code(["synth", "--out", str(empty / "sub" / "s"), "--photos", str(empty)] + SMALL) == 2
    assert one_line(capsys).startswith("python -m training synth: error: "
                                        f"--out {empty / 'sub' / 's'} and --photos {empty} overlap")
    assert not out.exists() and sorted(os.listdir(empty / "sub")) == ["notes.txt"]


def test_a_test_only_dataset_holds_no_training_data(tmp_path, capsys):
    out = tmp_path / "s"
    assert synth_cli.main(["--out", str(out), "--count", "0", "--test-count", "2"] + SMALL) == 0
    assert sorted(os.listdir(out)) == ["dataset.yaml", "test"]
    assert sorted(os.listdir(out / "test" / "pha")) == ["00000.png", "00001.png"]
    assert yaml.safe_load((out / "dataset.yaml").read_text()) == {}


@pytest.mark.parametrize("stop", [OSError(28, "No space left on device", "x.png"), KeyboardInterrupt()])
def test_a_synth_run_that_stops_leaves_no_finished_dataset(stop, tmp_path, capsys, monkeypatch):
    out = tmp_path / "s"
    argv = ["--out", str(out), "--count", "4", "--test-count", "1"] + SMALL
    assert synth_cli.main(argv) == 0                       # a finished dataset of another seed first
    assert (out / "dataset.yaml").is_file() and not (out / "PARTIAL.txt").exists()
    job, calls = training.synth._job, []

    def failing(args):
        calls.append(args)
        if len(calls) == 3:
            raise stop
        return job(args)
    monkeypatch.setattr(training.synth, "_job", failing)
    code = main(["synth"] + argv + ["--seed", "5"])
    err = capsys.readouterr().err
    partial = f"{out} is partial (see {out / 'PARTIAL.txt'}; no dataset.yaml)\n"
    if isinstance(stop, KeyboardInterrupt):
        assert (code, err) == (130, f"python -m training synth: interrupted; {partial}")
    else:
        assert (code, err) == (1, f"python -m training synth: error: No space left on device: x.png; {partial}")
    assert not (out / "dataset.yaml").exists()
    assert "--seed 5" in (out / "PARTIAL.txt").read_text()
    monkeypatch.undo()
    assert exit_code(["eval", "--data", str(out), "--method", "difference-key", "--out", str(tmp_path / "e.csv")]) == 2
    assert one_line(capsys).startswith(f"python -m training eval: error: {out} is a partial synthetic dataset")
    assert synth_cli.main(argv + ["--seed", "5"]) == 0      # the same command again finishes it
    assert (out / "dataset.yaml").is_file() and not (out / "PARTIAL.txt").exists()
