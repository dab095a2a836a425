"""Held-out photographs (training.heldout): the training data writer refuses them wherever they lie."""
import os
import shutil

import cv2
import numpy as np
import pytest
from training_tiny import exit_code

from training import heldout
from training.heldout import HELD_OUT_SHA256, STRESS_PHOTOS, check_training_photos, file_sha256, held_out
from training.synth import SynthSpec, write_dataset

# The model card's training folders (Debian's mate/plasma wallpapers).
TRAINING_FOLDERS = ["/usr/share/backgrounds/mate/nature"] + [
    f"/usr/share/wallpapers/{d}" for d in ("BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow",
                                          "FallenLeaf", "Grey", "Kite", "OneStandsOut", "Path", "Volna", "summer_1am")]


def _photo(path, seed):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    grid = np.random.default_rng(seed).uniform(0, 255, (4, 4, 3)).astype(np.float32)
    assert cv2.imwrite(str(path), cv2.resize(grid, (64, 48)).astype(np.uint8))
    return str(path)


def test_held_out_by_bytes_and_by_folder(tmp_path):
    secret = _photo(tmp_path / "stress" / "a.png", 1)
    copy = tmp_path / "elsewhere" / "renamed.png"
    os.makedirs(copy.parent)
    shutil.copy(secret, copy)
    ok = _photo(tmp_path / "train" / "b.png", 2)
    samples = _photo(tmp_path / "site-packages" / "lib" / "data" / "c.png", 3)
    digests = frozenset({file_sha256(secret)})
    folders = [str(tmp_path / "site-packages" / "lib" / "data")]
    assert held_out([secret, str(copy), ok, samples], digests, folders) == [secret, str(copy), samples]
    check_training_photos([ok], sha256=digests, folders=folders)
    with pytest.raises(ValueError, match="held out for the stress suite"):
        check_training_photos([ok, str(copy)], sha256=digests, folders=folders)


def test_registry_holds_every_stress_photo():
    assert len(STRESS_PHOTOS) >= 15 and set(STRESS_PHOTOS.values()) <= HELD_OUT_SHA256
    assert all(len(d) == 64 for d in HELD_OUT_SHA256)


def test_synth_refuses_held_out_photos(tmp_path, monkeypatch, capsys):
    photos = [_photo(tmp_path / "photos" / f"p{i}.png", i) for i in range(4)]
    monkeypatch.setattr(heldout, "HELD_OUT_SHA256", frozenset({file_sha256(photos[2])}))
    argv = ["--out", str(tmp_path / "out"), "--count", "1", "--test-count", "1", "--size", "48", "48",
            "--test-size", "40", "48", "--workers", "1", "--photos", str(tmp_path / "photos")]
    assert exit_code(["synth"] + argv) == 2
    err = capsys.readouterr().err
    assert "held out" in err and "p2.png" in err and len(err.strip().splitlines()) == 1
    spec = SynthSpec(count=1, valid_count=0, test_count=0, backgrounds=1, valid_backgrounds=0, size=(32, 32),
                     photos=((photos[2],), (), ()))
    with pytest.raises(ValueError, match="held out"):                       # the library refuses too
        write_dataset(str(tmp_path / "lib"), spec, log=lambda _: None)


@pytest.mark.skipif(not all(os.path.isfile(p) for p in STRESS_PHOTOS), reason="lomiri wallpapers not installed")
def test_installed_stress_photos_are_refused_and_training_folders_are_clean():
    assert set(held_out(list(STRESS_PHOTOS))) == set(STRESS_PHOTOS)
    folders = [d for d in TRAINING_FOLDERS if os.path.isdir(d)]
    if folders:
        from training.photos import find_photos
        check_training_photos(find_photos(folders))
