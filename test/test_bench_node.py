"""bench_node through the shared launcher: one short measuring run, logs in files, its command line."""
import os

import pytest

pytest.importorskip("rclpy")

from matte_ros.tools import bench_node  # noqa: E402


def test_wrong_options_are_one_line(capsys):
    for argv in (["--seconds", "0"], ["--rate", "1000"]):
        with pytest.raises(SystemExit) as e:
            bench_node.main(argv)
        assert e.value.code == 2
        assert capsys.readouterr().err == ("python -m matte_ros.tools.bench_node: error: --seconds must be > 0 and "
                                           "--rate in 0.1..240 (see --help)\n")


@pytest.mark.ros
@pytest.mark.slow
def test_one_run_measures_and_logs_the_children_to_files(tiny_model_file, tmp_path, ros_domain):
    got = bench_node._listen(48, 64, rate=10.0, seconds=2.0, weights=tiny_model_file, threads=1, domain_id=ros_domain,
                             log_dir=str(tmp_path))
    assert got["received"] >= 2 and got["rate_hz"] > 0 and got["latency_recv_ms"] > 0
    assert sorted(os.listdir(tmp_path)) == ["camera.log", "node.log"]
    assert "matte_node" in (tmp_path / "node.log").read_text()     # the node's stderr landed in its log
