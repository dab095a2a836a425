"""Two CPU processes with gloo (torch.multiprocessing driving the trainer exactly as torchrun would):
the replicas stay equal and only rank 0 writes checkpoints."""
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from training_tiny import make_dataset, tiny_args


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, world: int, port: int, args, out: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    from training import distributed as D
    from training.config import parse_config
    from training.trainer import Trainer
    cfg = parse_config(args)
    ctx = D.setup(cfg.device)
    try:
        tr = Trainer(cfg, ctx, log=lambda m: None)
        tr.fit()
        sd = {k: v.clone() for k, v in tr.net.state_dict().items()}
        if tr.disc_net is not None:
            sd.update({"disc." + k: v.clone() for k, v in tr.disc_net.state_dict().items()})
        torch.save(sd, os.path.join(out, f"rank{rank}.pt"))
    finally:
        D.teardown(ctx)


@pytest.mark.slow
def test_two_gloo_processes_keep_replicas_equal(tmp_path):
    data = make_dataset(str(tmp_path / "d"), n_train=8)
    run = str(tmp_path / "run")
    os.makedirs(run)
    args = tiny_args(data, run, "gan", steps=2)
    mp.spawn(_rank, args=(2, _free_port(), args, str(tmp_path)), nprocs=2, join=True)
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert a.keys() == b.keys()
    params = [k for k in a if not k.rsplit(".", 1)[-1].startswith(("running_", "num_batches"))]
    assert all(torch.equal(a[k], b[k]) for k in params)
    from matte_ros.core.model import read_checkpoint
    ck = read_checkpoint(os.path.join(run, "last.pth"))
    assert ck.extra["training"]["world_size"] == 2 and len(ck.extra["rng"]) == 2
    assert ck.extra["training"]["step"] == 2
    # the weights trained: they differ from the seeded initial weights
    torch.manual_seed(0)
    from matte_ros.core.model import MattingRefine
    init = MattingRefine("mobilenetv2", backbone_scale=0.5).state_dict()
    assert not torch.equal(init["decoder.conv4.weight"], a["decoder.conv4.weight"])
