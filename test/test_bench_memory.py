"""bench_memory: the resident memory of the node's imports and of the engine per camera."""
import pytest

from matte_ros.tools import bench_memory


def test_the_table_shows_each_steps_share():
    assert bench_memory.table([("python", 10.0), ("torch", 310.4)]) == [
        "| step | resident MiB | added MiB |", "|---|---|---|", "| python | 10 |  |", "| torch | 310 | +300 |"]


def test_wrong_options_are_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        bench_memory.main(["--cameras", "0"])
    assert e.value.code == 2
    assert capsys.readouterr().err.startswith("python -m matte_ros.tools.bench_memory: error: --width must be")


@pytest.mark.slow
def test_engine_footprint_grows_with_each_cameras_buffers():
    steps = bench_memory.engine_footprint(64, 48, cameras=2, threads=1)
    assert [label for label, _ in steps] == ["imports", "engine loaded (packaged weights)",
                                             "camera 1: plate and 3 frames at 64x48",
                                             "camera 2: plate and 3 frames at 64x48"]
    assert all(mib > 0 for _, mib in steps) and steps[1][1] > steps[0][1]
