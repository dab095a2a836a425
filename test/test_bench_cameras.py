"""bench_cameras: one node for N cameras against N nodes; its options, one short run."""
import os

import pytest

pytest.importorskip("rclpy")

from matte_ros.tools import bench_cameras  # noqa: E402


@pytest.mark.parametrize("argv", [["--cameras", "1"], ["--seconds", "0"], ["--rate", "500"]])
def test_wrong_options_are_one_line(capsys, argv):
    with pytest.raises(SystemExit) as e:
        bench_cameras.main(argv)
    assert e.value.code == 2
    assert capsys.readouterr().err == ("python -m matte_ros.tools.bench_cameras: error: --cameras must be 2..16, "
                                       "--seconds > 0 and --rate in 0.1..240 (see --help)\n")


@pytest.mark.ros
@pytest.mark.slow
def test_one_node_for_two_cameras_then_one_node_each(tiny_model_file, tmp_path, ros_domain, capsys):
    lines = bench_cameras.compare(2, 64, 48, rate=5.0, seconds=2.0, threads=2, weights=tiny_model_file,
                                  domain_id=ros_domain, log_dir=str(tmp_path))
    assert len(lines) == 3 and "1 process, 2 thread(s)" in lines[0] and "2 processes, 1 thread(s) each" in lines[1]
    assert lines[2].startswith("one process / 2 processes: memory x")
    assert sorted(os.listdir(tmp_path)) == ["each_camera_cam0.log", "each_camera_cam1.log", "each_node_cam0.log",
                                            "each_node_cam1.log", "one_camera_cam0.log", "one_camera_cam1.log",
                                            "one_node.log"]
    assert "/cam1/matte_node/capture_background: plate 64x48" in (tmp_path / "one_node.log").read_text()
    for line in lines[:2]:
        assert "cam0" in line and "cam1" in line and "(0 frames)" not in line
