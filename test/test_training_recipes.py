"""The training recipes (training/recipes/gpu.sh, cpu.sh) and what they rest on: the photographs that travel
(.ci/gpu_photos.py), the stress suite read from a folder of copies, the training-only wheel list, the
fp16 candidate export of training.average. The slow tests run both recipes end to end on this CPU at a
tiny budget."""
import importlib.util
import os
import shutil
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import torch
from safetensors import safe_open

from matte_ros.core.model import MattingRefine, load_checkpoint, save_checkpoint
from training import heldout
from training.__main__ import main as training_main
from training.average import main as average_main
from training.heldout import file_sha256, stress_photos
from training.photos import split_photos
from training.stress import SuiteSpec, suite_manifest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_FILES, MAX_BYTES = 8, 16 * 2 ** 20          # what comes back from the GPU machine


def _ci_module(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, ".ci", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _photo(path, seed, size=(120, 160)):
    """A picture of its own (a random 4x4 colour grid, upscaled) as JPEG or PNG."""
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    grid = np.random.default_rng(seed).uniform(0, 255, (4, 4, 3)).astype(np.float32)
    assert cv2.imwrite(str(path), cv2.resize(grid, size[::-1], interpolation=cv2.INTER_LINEAR).astype(np.uint8))
    return str(path)


@pytest.fixture
def suite_photos(tmp_path, monkeypatch):
    """Two 'held-out' photographs standing in for STRESS_PHOTOS (in the order b, a)."""
    a, b = _photo(tmp_path / "pkg" / "a.png", 1), _photo(tmp_path / "pkg" / "b.png", 2)
    monkeypatch.setattr(heldout, "STRESS_PHOTOS", {b: file_sha256(b), a: file_sha256(a)})
    monkeypatch.setattr(heldout, "library_sample_dirs", lambda: [])
    return a, b


def test_stress_photos_from_a_folder_are_the_suites_own_in_its_order(tmp_path, suite_photos):
    a, b = suite_photos
    carried = tmp_path / "carried"
    os.makedirs(carried / "sub")
    shutil.copy(a, carried / "x.png")
    shutil.copy(b, carried / "sub" / "y.png")
    assert stress_photos() == [b, a]
    found = stress_photos(str(carried))
    assert found == [str(carried / "sub" / "y.png"), str(carried / "x.png")]
    spec = SuiteSpec(count=1, size=(32, 32))
    assert [p["sha256"] for p in suite_manifest(spec, found)["photos"]] == \
        [p["sha256"] for p in suite_manifest(spec, stress_photos())["photos"]]
    _photo(carried / "intruder.jpg", 3)
    with pytest.raises(ValueError, match="intruder.jpg is not one of the stress suite's photographs"):
        stress_photos(str(carried))
    with pytest.raises(ValueError, match="no such folder"):
        stress_photos(str(tmp_path / "missing"))


def test_stress_command_refuses_other_photographs_in_one_line(tmp_path, suite_photos, capsys):
    folder = tmp_path / "carried"
    _photo(folder / "mine.png", 4)
    code = training_main(["eval", "--suite", "stress", "--photos", str(folder), "--data", str(tmp_path / "suite"),
                          "--method", "difference-key", "--count", "1", "--size", "48", "64",
                          "--categories", "wall", "--out", str(tmp_path / "s.csv")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "not one of the stress suite's photographs" in err, err
    assert not os.path.exists(tmp_path / "suite")


def test_gpu_photos_copies_one_file_per_picture_and_keeps_the_split(tmp_path, monkeypatch):
    gp = _ci_module("gpu_photos")
    roots = [str(tmp_path / "nature"), str(tmp_path / "wallpapers" / "Kite")]
    big = _photo(tmp_path / "wallpapers" / "Kite" / "contents" / "images" / "2560x1600.jpg", 10, (240, 320))
    screenshot = tmp_path / "wallpapers" / "Kite" / "contents" / "screenshot.jpg"
    cv2.imwrite(str(screenshot), cv2.resize(cv2.imread(big), (160, 120), interpolation=cv2.INTER_AREA))
    originals = [big] + [_photo(tmp_path / "nature" / f"p{i}.jpg", 20 + i) for i in range(4)]
    copies = gp.copy_training(roots, str(tmp_path / "out" / "train"))
    names = sorted(os.path.basename(p) for p in copies)
    assert names == ["Kite-contents-images-2560x1600.jpg"] + [f"nature-p{i}.jpg" for i in range(4)]
    assert sorted(file_sha256(p) for p in copies) == sorted(file_sha256(p) for p in originals)  # bytes unchanged
    want, got = split_photos(originals + [str(screenshot)]), split_photos(copies)
    for k in want:
        assert sorted(map(file_sha256, want[k])) == sorted(map(file_sha256, got[k])), k
    monkeypatch.setattr(heldout, "HELD_OUT_SHA256", frozenset({file_sha256(originals[2])}))
    with pytest.raises(ValueError, match="held out for the stress suite"):
        gp.copy_training(roots, str(tmp_path / "out" / "train"))
    stress = gp.copy_stress(str(tmp_path / "out" / "stress"), {originals[1]: file_sha256(originals[1]),
                                                               str(tmp_path / "absent.jpg"): "0" * 64})
    assert [os.path.basename(p) for p in stress] == ["p0.jpg"]
    with pytest.raises(ValueError, match="lomiri-wallpapers"):
        gp.copy_stress(str(tmp_path / "out" / "stress"), {originals[1]: "0" * 64})


def test_wheel_list_only_brings_the_training_packages(capsys):
    wl = _ci_module("gpu_wheel_list")
    assert wl.main([os.path.join(REPO, "requirements.txt"), os.path.join(REPO, ".ci", "gpu-machine.txt"),
                    "--only", "kornia"]) == 0
    assert sorted(capsys.readouterr().out.split()) == ["kornia-rs==0.2.0", "kornia==0.9.0"]


def test_average_exports_fp16_safetensors_and_names_the_steps(tmp_path, capsys):
    paths, weights = [], []
    for step in (25, 50):
        torch.manual_seed(step)
        model = MattingRefine("mobilenetv2", 0.5)
        weights.append(model.state_dict()["refiner.conv1.weight"].clone())
        paths.append(str(tmp_path / f"s{step}.pth"))
        save_checkpoint(paths[-1], model, training={"step": step})
    out = str(tmp_path / "candidate.safetensors")
    assert average_main(paths + ["--out", out]) == 0
    assert "at step(s) 25, 50 ->" in capsys.readouterr().out
    with safe_open(out, "pt") as f:
        w = f.get_tensor("refiner.conv1.weight")
    assert w.dtype == torch.float16
    assert torch.allclose(w.float(), (weights[0] + weights[1]) / 2, atol=1e-3)


def _tiny_photos(folder, n=4):
    return [_photo(os.path.join(folder, f"p{i}.jpg"), 100 + i, (150, 200)) for i in range(n)]


TINY_TRAINING = {"RECIPE_COUNT": "4", "RECIPE_SIZE": "64", "RECIPE_LOADERS": "0", "RECIPE_BATCH": "2",
                 "RECIPE_IMAGE": "64", "RECIPE_CROP_MIN": "48", "RECIPE_PIXELS": "1000",
                 "RECIPE_CHECKPOINT_EVERY": "2", "RECIPE_KEEP": "3", "PYTHONDONTWRITEBYTECODE": "1"}


@pytest.mark.slow
def test_gpu_recipe_end_to_end_at_a_tiny_budget(tmp_path):
    installed = [p for p in heldout.STRESS_PHOTOS if os.path.isfile(p)][:3]
    if not installed:
        pytest.skip("the stress suite's photographs are not installed (apt-get install lomiri-wallpapers ...)")
    for p in installed:
        os.makedirs(tmp_path / "stress", exist_ok=True)
        shutil.copy(p, tmp_path / "stress")
    _tiny_photos(str(tmp_path / "train"))
    out, wheels = tmp_path / "out", tmp_path / "wheels"
    os.makedirs(wheels)
    env = dict(os.environ, **TINY_TRAINING, OUT=str(out), GPU_PYTHON=sys.executable, GPU_WHEELS=str(wheels),
               GPU_SECONDS="300", CUDA_VISIBLE_DEVICES="", PIP_NO_INDEX="1", RECIPE_PHOTOS=str(tmp_path / "train"),
               RECIPE_STRESS_PHOTOS=str(tmp_path / "stress"), RECIPE_WORK=str(tmp_path / "work"), RECIPE_CPUS="1",
               RECIPE_MINUTES="0.1", RECIPE_TRAIN_FLAGS="--threads 1", RECIPE_STRESS_COUNT="2",
               RECIPE_STRESS_SIZE="64 96", RECIPE_STRESS_CATEGORIES="wall hair jpeg")
    start = time.monotonic()
    proc = subprocess.run([os.path.join(REPO, "training", "recipes", "gpu.sh")], cwd=str(tmp_path), env=env,
                          text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=400)
    log = proc.stdout[-4000:]
    assert proc.returncode == 0, log
    files = sorted(os.listdir(out))
    assert files == ["card.txt", "data.txt", "model.safetensors", "setup.txt", "stress.md", "stress.txt",
                     "summary.txt", "train.txt"], files
    assert len(files) <= MAX_FILES and all(os.path.getsize(out / f) < MAX_BYTES for f in files)
    model = load_checkpoint(str(out / "model.safetensors"))
    assert isinstance(model, MattingRefine)
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        assert f.get_tensor("refiner.conv1.weight").dtype == torch.float16
    table = (out / "stress.md").read_text()
    for category in ("wall", "hair", "jpeg"):
        assert f"| {category} | model (model.safetensors) |" in table, table
    card = (out / "card.txt").read_text()
    steps = int(next(line for line in card.splitlines() if line.startswith("steps: ")).split()[1])
    assert steps >= 1 and "--max-minutes 0.1" in card and "GPU_SECONDS=300" in card, card
    assert "| wall | difference-key |" in card and "--hard-scenes 0.5" in card and "--init-weights" in card
    verdicts = (out / "summary.txt").read_text().splitlines()[1:]
    assert [v.split()[0] for v in verdicts] == ["setup", "data", "train", "stress"], verdicts
    assert all(v.split()[1] == "passed" for v in verdicts), verdicts
    assert time.monotonic() - start < 300


@pytest.mark.slow
def test_cpu_recipe_makes_data_continues_and_exports(tmp_path):
    _tiny_photos(str(tmp_path / "photos"))
    (tmp_path / "photos.txt").write_text(f"# tiny\n{tmp_path / 'photos'}\n")
    run = tmp_path / "run"
    env = dict(os.environ, **TINY_TRAINING, PY=sys.executable, RECIPE_RUN=str(run), RECIPE_DATA=str(tmp_path / "data"),
               RECIPE_PHOTO_LIST=str(tmp_path / "photos.txt"), RECIPE_TEST_COUNT="1", RECIPE_TEST_SIZE="64 64",
               RECIPE_WORKERS="1", RECIPE_MINUTES="0.05", RECIPE_VALID_EVERY="4", RECIPE_VALID_SAMPLES="2")
    logs = []
    for _ in range(2):
        proc = subprocess.run([os.path.join(REPO, "training", "recipes", "cpu.sh")], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
        assert proc.returncode == 0, proc.stdout[-4000:]
        logs.append(proc.stdout)
    assert "making" in logs[0] and "a new run from matte_ros/weights/default.safetensors" in logs[0]
    assert "making" not in logs[1] and "resumed" in logs[1] and "continuing" in logs[1]
    steps = [int(log.split(" is at step ")[1].split()[0]) for log in logs]
    assert 1 <= steps[0] < steps[1], steps
    assert f"record the {steps[1]} steps in the model card" in logs[1]
    assert isinstance(load_checkpoint(str(run / "candidate.safetensors")), MattingRefine)
    assert 1 <= len(os.listdir(run / "kept")) <= 3
    assert "default.safetensors (sha256 " in (run / "started-from.txt").read_text()
