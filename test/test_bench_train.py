"""The training benchmark (fp32 vs bf16 autocast + channels_last) on tiny sizes."""
import math

import pytest

from training import bench_train


def test_bench_mode_times_both_settings_on_the_same_batches():
    r = bench_train.bench_mode("base", steps=1, warmup=0, batch=2, side=64)
    assert set(r["median_s"]) == {"fp32", "fast"} and all(v > 0 for v in r["median_s"].values())
    assert r["speedup"] == pytest.approx(r["median_s"]["fp32"] / r["median_s"]["fast"])
    fp32, fast = r["losses"]["fp32"][0], r["losses"]["fast"][0]
    assert math.isfinite(fp32) and abs(fast - fp32) < 0.1 * fp32       # same weights, same batch: bf16 tracks fp32
    text = bench_train.format_report([r])
    assert text.splitlines()[1].split()[:4] == ["base", "2", "x", "64"]


def test_bench_cli_rejects_bad_arguments(capsys):
    assert bench_train.main(["--steps", "0"]) == 2
    assert "error" in capsys.readouterr().err
