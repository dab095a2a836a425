"""Checkpoint averaging (python -m training.average)."""
import os

import pytest
import torch

from matte_ros.core.model import MattingBase, load_checkpoint, save_checkpoint
from training.average import COMMAND, average_state_dicts, main


def test_average_of_state_dicts_known_values():
    a = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3)}
    b = {"w": torch.tensor([3.0, 6.0]), "n": torch.tensor(5)}
    out = average_state_dicts([a, b])
    assert torch.equal(out["w"], torch.tensor([2.0, 4.0])) and int(out["n"]) == 5   # counters from the last
    with pytest.raises(ValueError, match="other tensors"):
        average_state_dicts([a, {"w": a["w"]}])
    with pytest.raises(ValueError, match="shape"):
        average_state_dicts([a, {"w": torch.zeros(3), "n": a["n"]}])


def test_cli_writes_the_mean_model(tmp_path, capsys):
    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        paths.append(str(tmp_path / f"m{seed}.pth"))
        save_checkpoint(paths[-1], MattingBase("mobilenetv2"))
    out = str(tmp_path / "avg.pth")
    assert main(paths + ["--out", out]) == 0
    m0, m1, avg = (load_checkpoint(p).state_dict() for p in paths + [out])
    k = "decoder.conv1.weight" if "decoder.conv1.weight" in avg else next(k for k in avg if k.endswith("weight"))
    assert torch.allclose(avg[k], (m0[k] + m1[k]) / 2)
    capsys.readouterr()
    assert COMMAND.run([str(tmp_path / "missing.pth"), "--out", out]) == 2
    assert capsys.readouterr().err.startswith("python -m training.average: error: ")


def test_cli_refuses_to_overwrite_an_input(tmp_path, capsys):
    paths = [str(tmp_path / f"m{i}.pth") for i in range(2)]
    for p in paths:
        save_checkpoint(p, MattingBase("mobilenetv2"))
    before = [open(p, "rb").read() for p in paths]
    alias = tmp_path / "sub" / ".." / "m1.pth"          # the same file by another name
    (tmp_path / "sub").mkdir()
    assert COMMAND.run(paths + ["--out", str(alias)]) == 2
    assert capsys.readouterr().err == f"python -m training.average: error: --out {alias} would overwrite the input " \
                                      f"{paths[1]}\n"
    assert [open(p, "rb").read() for p in paths] == before
    assert sorted(os.listdir(tmp_path)) == ["m0.pth", "m1.pth", "sub"]     # no temporary left either
