"""Photographs in the synthetic data: finding, the split by file, crops, the photo dataset (tiny generated images)."""
import os

import cv2
import numpy as np
import pytest
from training_tiny import exit_code

from training.photos import find_photos, photo_crop, split_photos, write_split_lists
from training.synth import SynthSpec, make_background, make_foreground, make_test_sample


def _write(path, img):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(path, img)


def _picture(i, h=48, w=64):
    """A distinct, smooth picture per i (a 4x4 grid of random colours, interpolated)."""
    grid = np.random.default_rng(i).uniform(0, 255, (4, 4, 3)).astype(np.float32)
    return np.clip(cv2.resize(grid, (w, h), interpolation=cv2.INTER_LINEAR), 0, 255).astype(np.uint8)


@pytest.fixture
def photo_dir(tmp_path):
    """Ten pictures in nested folders, one of them also as a smaller copy, plus a text file."""
    root = tmp_path / "photos"
    for i in range(10):
        _write(str(root / f"set{i % 3}" / f"p{i}.{'jpg' if i % 2 else 'png'}"), _picture(i))
    _write(str(root / "set0" / "small_p0.png"), cv2.resize(_picture(0), (32, 24), interpolation=cv2.INTER_AREA))
    (root / "notes.txt").write_text("not a photo")
    return str(root)


def test_find_photos_recursive_dedupes_links_and_rejects_missing(photo_dir, tmp_path):
    os.symlink(os.path.join(photo_dir, "set1", "p1.jpg"), os.path.join(photo_dir, "link.jpg"))
    found = find_photos([photo_dir])
    assert len(found) == 11 and all(p.endswith((".jpg", ".png")) for p in found)
    assert find_photos([photo_dir, os.path.join(photo_dir, "set1")]) == found
    with pytest.raises(FileNotFoundError, match="no such photo"):
        find_photos([str(tmp_path / "nowhere")])


def test_split_is_by_picture_deterministic_and_disjoint(photo_dir):
    found = find_photos([photo_dir])
    split = split_photos(found)
    assert split == split_photos(list(reversed(found)))
    assert [len(split[k]) for k in ("train", "valid", "test")] == [7, 1, 2]    # 10 pictures: 70 / 10 / 20 %
    used = split["train"] + split["valid"] + split["test"]
    assert len(set(used)) == 10
    assert not any(p.endswith("small_p0.png") for p in used)                  # the copy of p0 is left out ...
    assert any(p.endswith("p0.png") for p in used)                            # ... its larger original is used
    with pytest.raises(ValueError, match="split fractions"):
        split_photos(found, 0.5, 0.5)


def test_split_lists_are_written(photo_dir, tmp_path):
    split = split_photos(find_photos([photo_dir]))
    files = write_split_lists(str(tmp_path / "out"), split)
    assert [os.path.basename(f) for f in files] == ["train.txt", "valid.txt", "test.txt"]
    assert open(files[2]).read().split() == split["test"]


def test_photo_crop_whole_window_and_close_up():
    photo = np.zeros((40, 80, 3), np.uint8)
    photo[:, :40] = (200, 0, 0)     # left half red, right half blue
    photo[:, 40:] = (0, 0, 200)
    whole = photo_crop(np.random.default_rng(0), photo, 20, 40, zoom=(1.0, 1.0), jitter=0)
    assert whole.shape == (20, 40, 3) and whole.dtype == np.float32
    red = whole[..., 0] > 0.5
    assert abs(red.mean() - 0.5) < 0.05                   # the whole photo, both halves (possibly flipped)
    np.testing.assert_allclose(whole.max(), 200 / 255, atol=1e-3)
    close = [photo_crop(np.random.default_rng(s), photo, 20, 40, zoom=(0.1, 0.1), jitter=0) for s in range(20)]
    assert sum(((c[..., 0] > 0.5).mean() in (0.0, 1.0)) for c in close) >= 10   # mostly inside one half
    a, b = (photo_crop(np.random.default_rng(3), photo, 16, 16) for _ in range(2))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="zoom"):
        photo_crop(np.random.default_rng(0), photo, 8, 8, zoom=(0.0, 1.0))


def test_backgrounds_and_surfaces_come_from_the_photos(tmp_path):
    grey = tmp_path / "grey.png"
    _write(str(grey), np.full((60, 80, 3), 128, np.uint8))
    bg = make_background(0, "train", 0, (32, 32), photos=[str(grey)], photo_share=1.0)
    assert bg.shape == (40, 40, 3)
    assert bg.std() < 1.0 and 100 <= bg.mean() <= 156            # a jittered flat grey, not a procedural texture
    procedural = make_background(0, "train", 0, (32, 32))
    assert procedural.std() > 5.0
    fg = make_foreground(0, "train", 0, (48, 48), photos=[str(grey)], photo_share=1.0)
    assert fg.shape == (48, 48, 4) and fg[..., 3].max() == 255
    np.testing.assert_array_equal(make_foreground(0, "train", 0, (48, 48), photos=[str(grey)], photo_share=1.0), fg)


def test_photo_test_sample_is_consistent_up_to_jpeg(photo_dir):
    photos = split_photos(find_photos([photo_dir]))["test"]
    exact = 0
    for i in range(8):
        s = make_test_sample(4, i, (48, 64), photos)
        assert s.src.shape == s.bgr.shape == s.fgr.shape == (48, 64, 3) and s.pha.shape == (48, 64)
        a = s.pha.astype(np.float32)[..., None] / 255
        expect = np.clip(np.round(255 * (a * s.fgr / 255 + (1 - a) * s.seen)), 0, 255)
        err = np.abs(s.src.astype(np.float32) - expect)
        exact += int(err.max() <= 1)
        assert err.max() <= 1 or 0.3 < err.mean() < 10             # exact, or JPEG-compressed (q 70..95)
    assert 1 <= exact <= 7                                          # about half are compressed


def test_spec_needs_photos_in_every_used_split():
    spec = SynthSpec(count=2, valid_count=1, test_count=1, backgrounds=2, valid_backgrounds=1,
                     photos=(("a.png",), (), ("b.png",)))
    with pytest.raises(ValueError, match="valid split needs photos"):
        spec.check()
    with pytest.raises(ValueError, match="photo_share"):
        spec._replace(photos=(("a",), ("b",), ("c",)), photo_share=1.5).check()


def test_cli_photos_write_split_lists_and_keep_test_photos_out_of_training(photo_dir, tmp_path, capsys):
    out = str(tmp_path / "ds")
    rc = exit_code(["synth", "--out", out, "--count", "2", "--valid-count", "1", "--backgrounds", "2",
                         "--valid-backgrounds", "1", "--test-count", "2", "--size", "32", "32", "--test-size", "32",
                         "48", "--workers", "1", "--photos", photo_dir])
    assert rc == 0
    lists = {k: open(os.path.join(out, "photos", f"{k}.txt")).read().split() for k in ("train", "valid", "test")}
    assert lists["test"] and not set(lists["test"]) & set(lists["train"] + lists["valid"])
    assert "--photos" in open(os.path.join(out, "dataset.yaml")).readline()
    assert len(os.listdir(os.path.join(out, "test", "src"))) == 2
    assert exit_code(["synth", "--out", str(tmp_path / "x"), "--photos", str(tmp_path / "missing")]) == 2
    assert "no such photo" in capsys.readouterr().err
