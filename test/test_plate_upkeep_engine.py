"""Plate upkeep inside MattingEngine: off changes nothing, exposure and motion compensation undo
known disturbances, health rises when the plate is wrong, a still subject is never burned in."""
import numpy as np
import pytest
import torch
from torch import nn

from matte_ros.core.engine import MattingEngine, UpkeepSettings
from matte_ros.core.synthetic import SceneSequence
from matte_ros.core.synthetic.disturbances import DisturbedSequence


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class DiffKey(nn.Module):
    """Known-answer stand-in for the network: pha = min(1, 4 * max_c |src - bgr|), fgr = src."""

    def forward(self, src, bgr):
        return (src - bgr).abs().amax(dim=1, keepdim=True).mul(4).clamp(0, 1), src


@pytest.fixture(scope="module")
def scene():
    return SceneSequence(96, 128, seed=3, noise=0.0)


def diffkey_engine(**upkeep):
    return MattingEngine(model=DiffKey(), device="cpu", upkeep=UpkeepSettings(**upkeep) if upkeep else None)


def test_upkeep_off_is_the_engine_as_before(scene):
    src, _ = scene.frame(7)
    plain, off = diffkey_engine(), MattingEngine(model=DiffKey(), device="cpu", upkeep=UpkeepSettings())
    for eng in (plain, off):
        eng.set_background(scene.background())
    a, b = plain.process(src), off.process(src)
    assert np.array_equal(a.alpha, b.alpha) and b.plate_health is None
    assert off.plate_health((96, 128)) is None and off.maintained_background((96, 128)) is None
    with pytest.raises(ValueError, match="upkeep must be an UpkeepSettings"):
        off.configure(upkeep={"exposure": True})


@pytest.mark.parametrize("mode", ["frame", "plate"])
def test_exposure_compensation_undoes_a_known_gain(scene, mode):
    seq = DisturbedSequence(scene, "exposure_step", seed=4, start=1)
    results = {}
    for name, up in (("off", {"health": True}), ("on", {"exposure": mode, "health": True})):
        eng = diffkey_engine(**up)
        eng.set_background(seq.background())
        for i in range(4):
            src, pha = seq.frame(i)
            res = eng.process(src)
        results[name] = (res, pha)
    off, pha = results["off"]
    on, _ = results["on"]
    gain, offset = seq.gain(3)
    assert np.allclose(on.plate_health.gain, gain, atol=0.02) and np.allclose(on.plate_health.offset, offset, atol=0.01)
    bg = pha == 0
    assert off.alpha[bg].mean() > 0.5 and on.alpha[bg].mean() < 0.05
    assert off.plate_health.stale and off.plate_health.disagreement > 0.9
    assert off.plate_difference > 0.9 and on.plate_difference < 0.3      # measured after compensation
    assert not on.plate_health.stale and on.plate_health.disagreement < 0.05
    src, _ = seq.frame(3)                   # DiffKey's foreground is its input: the camera's frame either way
    assert np.abs(on.foreground.astype(int) - src).max() <= 2


def test_motion_compensation_follows_a_pan_and_health_flags_a_wrong_plate(scene):
    seq = DisturbedSequence(scene, "pan", seed=5, start=0, period=8)
    eng = diffkey_engine(motion="translation", health=True)
    eng.set_background(seq.background())
    for i in range(10):
        src, pha = seq.frame(i)
        res = eng.process(src)
    assert res.plate_health.motion_px == pytest.approx(6.0, abs=0.25)
    assert res.alpha[pha == 0].mean() < 0.1 and not res.plate_health.stale
    eng.set_background(np.ascontiguousarray(seq.background()[::-1]))       # not this scene's plate
    res = eng.process(src)
    assert res.plate_health.stale and eng.plate_health((96, 128)).stale


def test_refresh_follows_a_slow_light_change():
    scene = SceneSequence(96, 128, seed=6, noise=0.0)
    seq = DisturbedSequence(scene, "light_change", seed=1, start=0, period=60)
    # DiffKey's alpha is 4 x the difference: "confident background" must allow for the drift it sees
    eng = diffkey_engine(exposure="frame", refresh_frames=4, health=True, background_alpha=0.3)
    still = diffkey_engine(exposure="frame", health=True, background_alpha=0.3)
    for e in (eng, still):
        e.set_background(seq.background())
    for i in range(70):
        src, pha = seq.frame(i)
        res, ref = eng.process(src), still.process(src)
    bg = pha == 0
    assert res.alpha[bg].mean() < 0.6 * ref.alpha[bg].mean()
    assert res.plate_health.background > ref.plate_health.background + 0.05    # more of the room is clean background
    # the maintained plate moved towards the room under the new light (in the captured plate's exposure)
    gain, offset = np.array(res.plate_health.gain), np.array(res.plate_health.offset)
    now = (seq.background_at(69).astype(np.float32) / 255 - offset) / gain * 255
    kept, captured = eng.maintained_background((96, 128)), seq.background()
    assert np.abs(kept - now)[bg].mean() < 0.75 * np.abs(captured - now)[bg].mean()   # the rest: beyond the tolerance


def test_a_still_subject_is_never_burned_into_the_plate():
    """The packaged model, a person standing still for 80 frames, refresh at its fastest (every frame
    moves the plate half way to what it sees): the matte does not decay and the plate stays empty."""
    scene = SceneSequence(96, 128, seed=2)
    seq = DisturbedSequence(scene, "none", still_at=60)
    eng = MattingEngine(device="cpu", upkeep=UpkeepSettings(exposure="frame", refresh_frames=2, health=True))
    plate = seq.background()
    eng.set_background(plate)
    sads = []
    for i in range(80):
        src, pha = seq.frame(i)
        sads.append(np.abs(eng.process(src).alpha - pha).sum() / 1000)
    assert np.mean(sads[-10:]) <= np.mean(sads[:10]) * 1.1 + 0.01
    kept = eng.maintained_background((96, 128)).astype(np.int16)
    subject = pha > 0.9
    assert np.abs(kept[subject] - plate[subject]).max(axis=1).mean() < 4   # noise-level change under the subject


def test_bench_upkeep_prints_both_tables_and_refuses_bad_arguments(capsys):
    from matte_ros.core.cli import run_cli
    from matte_ros.tools.bench_upkeep import main
    assert main(["--size", "64x48", "--frames", "4", "--kinds", "none,pan", "--timing-sizes", "64x48",
                 "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "| none | upkeep off |" in out and "| pan | ideal |" in out and "| pan | on + refresh |" in out
    assert "| motion translation |" in out and "preparing a changed plate" in out
    assert run_cli("bench_upkeep", lambda: main(["--kinds", "earthquake"])) == 2
    assert "unknown disturbance(s) earthquake" in capsys.readouterr().err
