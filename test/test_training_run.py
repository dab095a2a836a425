"""End-to-end training runs on tiny generated data (CPU): every mode, two-step loading, exact resume,
non-finite losses, corrupt files, loss falling on a fixed batch."""
import os

import pytest
import torch
from training_tiny import exit_code, make_dataset, tiny_args

from matte_ros.core.model import MattingBase, MattingRefine, load_checkpoint, read_checkpoint
from training import trainer as trainer_mod
from training.config import parse_config
from training.train_cli import main
from training.trainer import Trainer


@pytest.fixture(autouse=True)
def _restore_threads():
    n = torch.get_num_threads()          # the runs below use --threads 1
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(str(tmp_path_factory.mktemp("tiny")))


def _weights_equal(a, b, keys=None):
    keys = keys if keys is not None else a.keys()
    return all(torch.equal(a[k], b[k]) for k in keys)


def test_two_step_training_every_mode(data, tmp_path):
    base_dir, ref_dir, gan_dir = (str(tmp_path / n) for n in ("base", "refine", "gan"))
    assert main(tiny_args(data, base_dir, "base", steps=2) + ["--image-every", "1"]) == 0
    for name in ("last.pth", "best.pth", "config.yaml"):
        assert os.path.isfile(os.path.join(base_dir, name))
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(os.path.join(base_dir, "logs")))
    base = read_checkpoint(os.path.join(base_dir, "last.pth"))
    assert base.config == {"arch": "MattingBase", "backbone": "mobilenetv2"}
    assert base.extra["training"]["step"] == 2 and "optimizer" in base.extra and len(base.extra["rng"]) == 1
    assert isinstance(load_checkpoint(os.path.join(base_dir, "best.pth")), MattingBase)

    # --load-base: every non-refiner tensor copied exactly, the refiner as freshly initialised
    cfg = parse_config(tiny_args(data, ref_dir, "refine") + ["--load-base", os.path.join(base_dir, "last.pth")])
    tr = Trainer(cfg, log=lambda m: None)
    torch.manual_seed(cfg.seed)
    fresh = MattingRefine("mobilenetv2", backbone_scale=0.5).state_dict()
    got = tr.net.state_dict()
    non_ref = [k for k in got if not k.startswith("refiner.")]
    assert len(non_ref) == len(base.state_dict) and _weights_equal(got, base.state_dict, non_ref)
    assert _weights_equal(got, fresh, [k for k in got if k.startswith("refiner.")])
    tr.fit()
    ref = read_checkpoint(os.path.join(ref_dir, "last.pth"))
    assert ref.config["arch"] == "MattingRefine" and ref.config["refine_mode"] == "sampling"
    assert {g["name"]: g["lr"] for g in ref.extra["optimizer"]["param_groups"]} == {
        "backbone": 5e-5, "aspp": 5e-5, "decoder": 1e-4, "refiner": 3e-4}

    # --init-weights: every tensor, refiner included
    ft = Trainer(parse_config(tiny_args(data, str(tmp_path / "ft"), "refine")
                              + ["--init-weights", os.path.join(ref_dir, "last.pth")]), log=lambda m: None)
    assert _weights_equal(ft.net.state_dict(), ref.state_dict)

    # gan from the refine checkpoint: its refiner is not taken, the discriminator state is saved
    assert main(tiny_args(data, gan_dir, "gan") + ["--load-base", os.path.join(ref_dir, "last.pth")]) == 0
    gan = read_checkpoint(os.path.join(gan_dir, "last.pth"))
    assert gan.extra["discriminator"]["config"] == {"in_channels": 4, "layers": 2, "channels": 8}
    assert "disc_optimizer" in gan.extra and gan.extra["training"]["model_type"] == "gan"
    assert isinstance(load_checkpoint(os.path.join(gan_dir, "last.pth")), MattingRefine)


def test_resume_equals_uninterrupted(data, tmp_path):
    whole, split = str(tmp_path / "whole"), str(tmp_path / "split")
    args = ["--epochs", "2"]          # 2 steps per epoch: the resume point crosses an epoch boundary
    assert main(tiny_args(data, whole, "refine", steps=3) + args) == 0
    assert main(tiny_args(data, split, "refine", steps=1) + args) == 0
    assert main(tiny_args(data, split, "refine", steps=3) + args + ["--resume", "auto"]) == 0
    a, b = read_checkpoint(os.path.join(whole, "last.pth")), read_checkpoint(os.path.join(split, "last.pth"))
    assert a.extra["training"]["step"] == b.extra["training"]["step"] == 3
    assert a.extra["training"]["epoch"] == b.extra["training"]["epoch"] == 1
    assert _weights_equal(a.state_dict, b.state_dict)


def test_nonfinite_losses_skip_then_stop(data, tmp_path, monkeypatch):
    out = str(tmp_path / "nan")
    real_loss, calls = trainer_mod.base_loss, {"n": 0}

    def flaky(*a, **k):
        calls["n"] += 1
        terms = real_loss(*a, **k)
        if calls["n"] == 2 or calls["n"] > 4:          # the second training step, then every one
            terms["total"] = terms["total"] * float("nan")
        return terms
    monkeypatch.setattr(trainer_mod, "base_loss", flaky)
    assert main(tiny_args(data, out, "base", steps=3) + ["--valid-samples", "1", "--batch-size", "2"]) == 0
    ck = read_checkpoint(os.path.join(out, "last.pth"))
    assert ck.extra["training"]["nonfinite_total"] == 1 and ck.extra["training"]["step"] == 3
    assert all(torch.isfinite(v).all() for v in ck.state_dict.values() if v.is_floating_point())
    before = open(os.path.join(out, "last.pth"), "rb").read()
    resumed = tiny_args(data, out, "base", steps=9) + ["--resume", "auto", "--max-nonfinite", "2"]
    assert exit_code(["train"] + resumed) == 1
    assert open(os.path.join(out, "last.pth"), "rb").read() == before


def test_fgr_pha_layout_and_corrupt_file_skipped(tmp_path):
    cfg_path = make_dataset(str(tmp_path / "d"), n_train=4)
    out, lines = str(tmp_path / "run"), []
    tr = Trainer(parse_config(tiny_args(cfg_path, out, "base", steps=2, dataset="tinyfp")), log=lines.append)
    assert "tinyfp train (fgr_pha): 4 usable in" in lines[0]
    good = open(tmp_path / "d/fp/train/pha/clip0/001.png", "rb").read()
    with open(tmp_path / "d/fp/train/pha/clip0/001.png", "wb") as fh:
        fh.write(good[:200])                      # broken after the start-up scan: header intact, data truncated
    tr.fit()
    st = read_checkpoint(os.path.join(out, "last.pth")).extra["training"]
    assert st["step"] == 2 and st["skipped_total"] == 1     # one epoch reads every file once
    lines.clear()
    Trainer(parse_config(tiny_args(cfg_path, str(tmp_path / "run2"), "base", dataset="tinyfp")), log=lines.append)
    assert "tinyfp train (fgr_pha): 3 usable in" in lines[0] and "1 unreadable" in lines[1]   # found at the next start


def test_orphaned_temporaries_of_a_killed_write_are_removed_at_start(data, tmp_path):
    from matte_ros.core.files import process_start_time
    out = tmp_path / "orphans"
    out.mkdir()
    killed, current, other = out / ".tmp-k2j4last.pth", out / ".tmp-9x8qbest.pth", out / "notes.tmp"
    for path in (killed, current, other):
        path.write_bytes(b"partial")
    before = process_start_time() - 60
    os.utime(killed, (before, before))            # written by an earlier run, then killed
    os.utime(other, (before, before))             # not a temporary of atomic_write: kept
    lines = []
    tr = Trainer(parse_config(tiny_args(data, str(out), "base", steps=1)), log=lines.append)
    tr.fit()
    assert not killed.exists() and current.exists() and other.exists()
    assert f"removed {killed}: the temporary file of a checkpoint write that was killed" in lines


def test_loss_falls_on_a_fixed_batch(data, tmp_path):
    from training.augment import compose_batch
    from training.data import collate
    tr = Trainer(parse_config(tiny_args(data, str(tmp_path), "base") + ["--lr-scale", "5"]), log=lambda m: None)
    raw = collate([tr.train_set[0], tr.train_set[1]])
    batch = compose_batch(raw["pha"], raw["fgr"], raw["bgr"], train=False)
    losses = []
    for _ in range(8):
        out = tr.model(batch.src, batch.bgr)
        loss = tr._losses(out, batch.pha, batch.fgr)["total"]
        losses.append(float(loss.detach()))
        assert tr._update(loss, tr.opt, tr.scaler, tr.net.parameters())
    assert losses[-1] < 0.6 * losses[0], losses


def test_ctrl_c_stops_after_the_step_and_saves(data, tmp_path, monkeypatch):
    import signal
    out = str(tmp_path / "int")
    tr = Trainer(parse_config(tiny_args(data, out, "base", steps=4)), log=lambda m: None)
    real_step = tr.train_step

    def step(raw):
        terms = real_step(raw)
        if tr.state.step == 1:                      # during the second step
            os.kill(os.getpid(), signal.SIGINT)
        return terms
    monkeypatch.setattr(tr, "train_step", step)
    before = signal.getsignal(signal.SIGINT)
    st = tr.fit()
    assert st.interrupted and st.step == 2
    assert read_checkpoint(os.path.join(out, "last.pth")).extra["training"]["step"] == 2
    assert signal.getsignal(signal.SIGINT) is before
