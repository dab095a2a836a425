"""The trainer's fast CPU options: bf16 autocast and channels_last (tiny generated data)."""
import pytest
import torch
from training_tiny import make_dataset, tiny_args

from training.config import parse_config
from training.data import collate
from training.models import training_autocast
from training.trainer import Trainer


@pytest.fixture(autouse=True)
def _restore_threads():
    n = torch.get_num_threads()          # the runs below use --threads 1
    yield
    torch.set_num_threads(n)


def test_training_autocast_dtype_per_device():
    with training_autocast(torch.device("cpu"), amp=True, bf16=True):
        y = torch.nn.functional.linear(torch.ones(2, 4), torch.ones(3, 4))
    assert y.dtype == torch.bfloat16
    with training_autocast(torch.device("cpu"), amp=True, bf16=False):   # amp is CUDA's fp16 only
        y = torch.nn.functional.linear(torch.ones(2, 4), torch.ones(3, 4))
    assert y.dtype == torch.float32


def test_bf16_channels_last_steps_track_fp32(tmp_path):
    data = make_dataset(str(tmp_path / "data"))
    losses = {}
    for name, extra in (("fp32", []), ("fast", ["--bf16", "--channels-last"])):
        torch.manual_seed(0)
        tr = Trainer(parse_config(tiny_args(data, str(tmp_path / name), "refine") + extra), log=lambda m: None)
        if extra:
            conv = next(m for m in tr.net.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3))
            assert conv.weight.is_contiguous(memory_format=torch.channels_last)
        raw = collate([tr.train_set[0], tr.train_set[1]])
        torch.manual_seed(1)
        out = tr.train_step(raw)
        assert out is not None
        losses[name] = out["total"]
    assert abs(losses["fast"] - losses["fp32"]) < 0.1 * losses["fp32"]    # same weights, same batch
