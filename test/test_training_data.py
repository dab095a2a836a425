"""Dataset config parsing, start-up scanning, image reading and the compositing dataset."""
import os

import cv2
import numpy as np
import pytest
import torch
from training_tiny import make_dataset

from training.data import (
    CompositingDataset,
    ImageReadError,
    collate,
    default_data_config,
    load_data_config,
    read_image,
    scan_backgrounds,
    scan_foregrounds,
)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    make_dataset(str(d), n_train=4, n_valid=2)
    return d


def test_config_paths_are_relative_to_the_yaml(root):
    cfg = load_data_config(str(root / "data.yaml"), "tinyfp")
    assert cfg.train.layout == "fgr_pha" and cfg.train.fgr == os.path.join(str(root), "fp/train/fgr")
    assert cfg.valid.pha == os.path.join(str(root), "fp/valid/pha")
    assert cfg.bgr_valid == os.path.join(str(root), "bg/valid")
    assert load_data_config(str(root / "data.yaml"), "tiny").train.pha is None


def test_config_errors_name_the_problem(root, tmp_path):
    with pytest.raises(ValueError, match="several datasets .*--dataset"):
        load_data_config(str(root / "data.yaml"))
    with pytest.raises(ValueError, match="'nope' is not in .*it has: tiny, tinyfp"):
        load_data_config(str(root / "data.yaml"), "nope")
    (tmp_path / "bad.yaml").write_text("datasets: {x: {layout: rgba, train: a, valid: {fgr: b, pha: c}}}\n"
                                       "backgrounds: {train: a, valid: b}\n")
    with pytest.raises(ValueError, match="rgba layout takes one folder"):
        load_data_config(str(tmp_path / "bad.yaml"))


def test_default_is_the_seed_layout():
    cfg = default_data_config("/r")
    assert (cfg.train.fgr, cfg.valid.fgr) == ("/r/datasets/PhotoMatte85/train", "/r/datasets/PhotoMatte85/valid")
    assert (cfg.bgr_train, cfg.bgr_valid) == ("/r/datasets/backgrounds/train", "/r/datasets/backgrounds/valid")
    assert load_data_config(None).name == "PhotoMatte85"


def test_scan_counts_mismatches_and_unreadable(tmp_path):
    make_dataset(str(tmp_path), n_train=4)
    os.remove(tmp_path / "fp/train/pha/clip0/000.png")                      # fgr without pha
    cv2.imwrite(str(tmp_path / "fp/train/pha/clip0/009.png"), np.zeros((8, 8), np.uint8))   # pha without fgr
    (tmp_path / "fp/train/fgr/clip0/002.png").write_bytes(b"not an image")  # unreadable
    items, rep = scan_foregrounds(load_data_config(str(tmp_path / "data.yaml"), "tinyfp").train, "train")
    assert rep.count == len(items) == 2
    assert sorted(os.path.basename(p) for p in rep.unmatched) == ["000.png", "009.png"]
    assert len(rep.unreadable) == 1 and "002.png" in rep.unreadable[0][0]
    assert "2 usable" in rep.lines()[0] and any("1 unreadable" in line for line in rep.lines())
    cv2.imwrite(str(tmp_path / "rgba/train/000.png"), np.zeros((8, 8, 3), np.uint8))   # RGB: no alpha
    _, rep = scan_foregrounds(load_data_config(str(tmp_path / "data.yaml"), "tiny").train, "train")
    assert rep.count == 3 and "no alpha channel" in rep.unreadable[0][1]


def test_empty_split_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no usable backgrounds"):
        scan_backgrounds(str(tmp_path / "empty"), "backgrounds")
    with pytest.raises(ValueError, match="image folder not found"):
        scan_backgrounds(str(tmp_path / "missing"), "backgrounds")


def test_read_image_channels_and_ranges(tmp_path):
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[..., 0], rgba[..., 2], rgba[..., 3] = 255, 51, 102        # stored BGRA: B=255, R=51, A=102
    cv2.imwrite(str(tmp_path / "a.png"), rgba)
    img = read_image(str(tmp_path / "a.png"), 4)
    assert img.shape == (2, 3, 4) and np.allclose(img[0, 0], [0.2, 0, 1, 0.4])
    cv2.imwrite(str(tmp_path / "g.png"), np.full((2, 2), 65535, np.uint16))
    assert read_image(str(tmp_path / "g.png"), 1).max() == 1.0
    with pytest.raises(ImageReadError, match="alpha"):
        read_image(str(tmp_path / "g.png"), 4)


def test_samples_are_deterministic_per_epoch(root):
    cfg = load_data_config(str(root / "data.yaml"), "tiny")
    items, _ = scan_foregrounds(cfg.train, "t")
    bgrs, _ = scan_backgrounds(cfg.bgr_train, "b")
    ds = CompositingDataset(items, bgrs, 40, (0.4, 1.0), seed=5)
    a, b = ds[1], ds[1]
    assert a["pha"].shape == (1, 40, 40) and a["fgr"].shape == a["bgr"].shape == (3, 40, 40)
    assert all(torch.equal(a[k], b[k]) for k in ("pha", "fgr", "bgr"))
    ds.set_epoch(1)
    assert not torch.equal(ds[1]["bgr"], a["bgr"])
    assert 0 <= float(a["pha"].min()) and float(a["fgr"].max()) <= 1


def test_corrupt_file_mid_epoch_is_skipped_and_reported(tmp_path):
    make_dataset(str(tmp_path), n_train=3)
    cfg = load_data_config(str(tmp_path / "data.yaml"), "tiny")
    items, _ = scan_foregrounds(cfg.train, "t")
    bgrs, _ = scan_backgrounds(cfg.bgr_train, "b")
    data = open(items[1][0], "rb").read()
    with open(items[1][0], "wb") as fh:
        fh.write(data[:150])                  # the header survives, the pixels do not
    ds = CompositingDataset(items, bgrs, 32, (0.4, 1.0), seed=0, train=False)
    batch = collate([ds[0], ds[1], ds[2]])
    assert batch["pha"].shape == (3, 1, 32, 32)
    assert len(batch["skipped"]) == 1 and items[1][0] in batch["skipped"][0]


def test_all_zero_alpha_is_reported_at_the_scan_and_left_out(tmp_path):
    make_dataset(str(tmp_path), n_train=4)
    rgba = cv2.imread(str(tmp_path / "rgba/train/001.png"), cv2.IMREAD_UNCHANGED)
    rgba[..., 3] = 0
    cv2.imwrite(str(tmp_path / "rgba/train/001.png"), rgba)
    for i in (0, 2):
        cv2.imwrite(str(tmp_path / f"fp/train/pha/clip0/00{i}.png"), np.zeros((72, 64), np.uint8))
    items, rep = scan_foregrounds(load_data_config(str(tmp_path / "data.yaml"), "tiny").train, "train")
    assert rep.count == len(items) == 3 and str(tmp_path / "rgba/train/001.png") not in [i[0] for i in items]
    assert rep.empty_alpha == [str(tmp_path / "rgba/train/001.png")]
    items, rep = scan_foregrounds(load_data_config(str(tmp_path / "data.yaml"), "tinyfp").train, "train")
    assert [os.path.basename(i[0]) for i in items] == ["001.png", "003.png"]
    assert rep.lines()[1] == (f"  2 skipped, their alpha is zero everywhere: {tmp_path}/fp/train/pha/clip0/000.png; "
                              f"{tmp_path}/fp/train/pha/clip0/002.png")
    for i in (1, 3):
        cv2.imwrite(str(tmp_path / f"fp/train/pha/clip0/00{i}.png"), np.zeros((72, 64), np.uint8))
    with pytest.raises(ValueError, match="no usable train images"):
        scan_foregrounds(load_data_config(str(tmp_path / "data.yaml"), "tinyfp").train, "train")


def test_pixels_that_do_not_decode_are_found_at_the_scan(tmp_path):
    make_dataset(str(tmp_path), n_train=3)
    path = tmp_path / "rgba/train/002.png"
    path.write_bytes(path.read_bytes()[:150])          # the header survives, the pixels do not
    items, rep = scan_foregrounds(load_data_config(str(tmp_path / "data.yaml"), "tiny").train, "train")
    assert rep.count == len(items) == 2
    assert rep.unreadable[0][0] == str(path) and rep.unreadable[0][1].startswith("unreadable: cannot decode")
