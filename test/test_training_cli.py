"""``python -m training ...`` on wrong input and on Ctrl-C: one line naming the problem and a non-zero
exit code, never a traceback (unless MATTE_DEBUG=1); Ctrl-C exits 130 quietly."""
import os
import sys

import pytest
import torch
from training_tiny import exit_code, make_dataset, one_line, tiny_args

from training.__main__ import main


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(str(tmp_path_factory.mktemp("tiny")))


@pytest.fixture(autouse=True)
def _restore_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def test_train_wrong_input_is_one_line(data, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MATTE_DEBUG", raising=False)
    out = str(tmp_path / "run")
    cases = [
        (["--dataset-config", "/nonexistent.yaml"], "python -m training train: error: "
                                                    "dataset config /nonexistent.yaml does not exist"),
        (["--config", "/nonexistent.yaml"], "python -m training train: error: "
                                            "--config /nonexistent.yaml does not exist"),
        (["--batch-size", "1"], "python -m training train: error: batch_size must be at least 2"),
        (["--epochs", "x"], "python -m training train: error: argument --epochs: invalid int value: 'x' (see --help)"),
        (["--crop-size", "64"], "python -m training train: error: argument --crop-size: expected 2 arguments"),
        (["--resume", str(tmp_path / "nope.pth")], "python -m training train: error: --resume: checkpoint not found"),
    ]
    for extra, expected in cases:
        assert exit_code(["train"] + tiny_args(data, out) + extra) == 2, extra
        assert one_line(capsys).startswith(expected), extra
    (tmp_path / "c.yaml").write_text("epochs: [1\n")
    assert main(["train", "--config", str(tmp_path / "c.yaml")]) == 2
    assert one_line(capsys).startswith("python -m training train: error: "
                                        f"--config {tmp_path / 'c.yaml'} is not valid YAML")
    (tmp_path / "c.yaml").write_text("epochs: many\ncrop_size: 7\n")
    assert main(["train", "--config", str(tmp_path / "c.yaml")]) == 2
    assert one_line(capsys) == ("python -m training train: error: "
                                 f"{tmp_path / 'c.yaml'}: epochs must be int, got 'many'")
    assert not os.path.exists(out)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_train_on_cuda_without_cuda_is_one_line(data, tmp_path, capsys):
    args = tiny_args(data, str(tmp_path / "run"))
    args[args.index("--device") + 1] = "cuda"
    assert main(["train"] + args) == 2
    assert "CUDA" in one_line(capsys)


def test_other_commands_wrong_input_is_one_line(tmp_path, capsys):
    cases = [
        (["synth", "--out", str(tmp_path / "s"), "--count", "-1"],
         "python -m training synth: error: argument --count: must be in 0..99999, got -1 (see --help)"),
        (["synth", "--out", str(tmp_path / "s"), "--workers", "0"],
         "python -m training synth: error: argument --workers: must be in 1..256, got 0 (see --help)"),
        (["synth", "--out", str(tmp_path / "s"), "--size", "8"], "python -m training synth: error: argument --size"),
        (["export", "--format", "zip", "--output", "x"], "python -m training export: error: argument --format"),
        (["export", "--format", "onnx", "--output", "x", "--checkpoint", str(tmp_path / "none.pth")],
         "python -m training export: error: checkpoint not found"),
        (["eval", "--data", str(tmp_path / "nowhere"), "--method", "difference-key"],
         "python -m training eval: error: "),
        (["eval", "--data", str(tmp_path), "--limit", "x"], "python -m training eval: error: argument --limit"),
    ]
    for argv, expected in cases:
        assert exit_code(argv) == 2, argv
        assert one_line(capsys).startswith(expected), argv
    assert not (tmp_path / "s").exists()


def test_a_broken_checkpoint_is_one_line(tmp_path, capsys):
    bad = tmp_path / "empty.pth"
    bad.write_bytes(b"")
    assert main(["export", "--format", "torchscript", "--output", str(tmp_path / "m.ts"), "--checkpoint",
                 str(bad)]) == 2
    assert one_line(capsys) == f"python -m training export: error: {bad} is empty (0 bytes): not a PyTorch checkpoint"


def test_matte_debug_shows_the_traceback(monkeypatch):
    import training.synth_cli

    def broken(argv):
        raise OSError(13, "Permission denied", "/root/out")
    monkeypatch.setattr(training.synth_cli, "main", broken)
    assert main(["synth"]) == 2
    monkeypatch.setenv("MATTE_DEBUG", "1")
    with pytest.raises(PermissionError):
        main(["synth"])


def test_keyboard_interrupt_anywhere_in_a_command_is_130(monkeypatch, capsys):
    import training.synth_cli

    def interrupted(argv):
        raise KeyboardInterrupt
    monkeypatch.delenv("MATTE_DEBUG", raising=False)
    monkeypatch.setattr(training.synth_cli, "main", interrupted)
    try:
        code = main(["synth", "--out", "x"])
    except KeyboardInterrupt:
        pytest.fail("the KeyboardInterrupt left main()")
    assert code == 130
    assert capsys.readouterr().err == "python -m training synth: interrupted\n"


def test_ctrl_c_while_training_starts_exits_quietly(data, tmp_path, interrupt):
    rc, out, err = interrupt([sys.executable, "-m", "training", "train"] + tiny_args(data, str(tmp_path / "r")))
    assert rc == 130 and err in ("", "python -m training train: interrupted\n") and "Traceback" not in out, err


@pytest.mark.slow
def test_ctrl_c_while_synth_workers_render_exits_quietly(tmp_path, interrupt):
    cmd = [sys.executable, "-m", "training", "synth", "--out", str(tmp_path / "s"), "--count", "400", "--workers",
           "2", "--size", "128", "128", "--test-count", "0"]
    rc, out, err = interrupt(cmd, after=" items, ")      # rendering has begun
    assert rc == 130 and err == (f"python -m training synth: interrupted; {tmp_path / 's'} is partial (see "
                                 f"{tmp_path / 's' / 'PARTIAL.txt'}; no dataset.yaml)\n"), err
    assert (tmp_path / "s" / "PARTIAL.txt").is_file() and not (tmp_path / "s" / "dataset.yaml").exists()
