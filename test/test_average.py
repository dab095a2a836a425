"""Checkpoint averaging (python -m training.average)."""
import pytest
import torch

from matte_ros.core.model import MattingBase, load_checkpoint, save_checkpoint
from training.average import average_state_dicts, main


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
    assert main([str(tmp_path / "missing.pth"), "--out", out]) == 2
    assert "error" in capsys.readouterr().err
