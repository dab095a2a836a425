"""The training benchmark (fp32 vs bf16 autocast + channels_last) on tiny sizes."""
import math

import pytest

from training import bench_train


def test_bench_mode_times_both_settings_on_the_same_batches():
    r = bench_train.bench_mode("base", steps=1, warmup=0, batch=2, side=64)
    assert set(r["median_s"]) == {"fp32", "fast"} and all(v > 0 for v in r["median_s"].values())
    fp32, fast = r["losses"]["fp32"][0], r["losses"]["fast"][0]
    assert math.isfinite(fp32) and abs(fast - fp32) < 0.1 * fp32       # same weights, same batch: bf16 tracks fp32
    text = bench_train.format_report([r])
    assert text.splitlines()[1].split()[:4] == ["base", "2", "x", "64"]


def test_medians_leave_out_the_warmup_and_the_speedup_is_fp32_over_fast(monkeypatch):
    # step times chosen so that a median with the warm-up step or an inverted ratio gives other numbers
    seconds = {"fp32": iter([9.0, 3.0, 4.0, 2.0]), "fast": iter([9.0, 1.0, 1.0, 2.0])}
    order = []

    def step(self, raw, seed):
        name = "fast" if self.fast else "fp32"
        order.append(name)
        return next(seconds[name]), 0.5
    monkeypatch.setattr(bench_train._Runner, "step", step)
    r = bench_train.bench_mode("base", steps=3, warmup=1, batch=1, side=32)
    assert r["median_s"] == {"fp32": 3.0, "fast": 1.0}
    assert r["steps_per_s"] == {"fp32": pytest.approx(1 / 3), "fast": 1.0} and r["speedup"] == 3.0
    assert r["losses"] == {"fp32": [0.5] * 3, "fast": [0.5] * 3}
    assert order == ["fp32", "fast", "fast", "fp32"] * 2        # who goes first alternates
    assert "    3.00x" in bench_train.format_report([r])


def test_bench_cli_rejects_bad_arguments(capsys):
    with pytest.raises(SystemExit) as e:
        bench_train.main(["--steps", "0"])
    assert e.value.code == 2
    assert capsys.readouterr().err == ("python -m training.bench_train: error: argument --steps: must be at least 1, "
                                       "got 0 (see --help)\n")
