"""The demo: its bookkeeping against hand-computed values (no ROS), its command line, and short runs
across processes (the real node and fake camera) checking out/demo, the printed numbers, errors
from a dying child and that no child outlives the demo."""
import json
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import torch

from matte_ros.core.settings import auto_precision
from matte_ros.tools.demo_report import (
    COLUMNS,
    StampMatcher,
    alpha_u8,
    contact_sheet,
    format_summary,
    mean_quality,
    percentile,
    pick_indices,
    run_summary,
    write_json,
    write_png,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CPU_PRECISION = auto_precision(torch.device("cpu"), fast_path=True)     # the node's default on this CPU
MS = 1_000_000      # nanoseconds


# ---- matching by stamp -----------------------------------------------------------------------------
def test_matcher_joins_a_stamp_once_every_stream_has_it_in_any_order():
    m = StampMatcher(("src", "true", "alpha"))
    assert m.add("alpha", 5, "a5") is None
    assert m.add("src", 5, "s5") is None
    assert m.add("true", 6, "t6") is None
    assert m.add("true", 5, "t5") == {"alpha": "a5", "src": "s5", "true": "t5"}
    assert len(m) == 1                  # stamp 6 still waits


def test_matcher_discards_frames_older_than_a_joined_one():
    m = StampMatcher(("src", "alpha"))
    for stamp in (1, 2, 3):
        m.add("src", stamp, stamp)
    assert m.add("alpha", 2, "a2") == {"src": 2, "alpha": "a2"}
    assert len(m) == 1                  # 1 was skipped by the node and is gone; 3 waits
    assert m.add("alpha", 1, "late") is None and len(m) == 2
    assert m.add("alpha", 3, "a3") == {"src": 3, "alpha": "a3"}
    assert len(m) == 0


def test_matcher_bounds_waiting_stamps_dropping_the_oldest():
    m = StampMatcher(("src", "alpha"), max_pending=3)
    for stamp in range(5):
        m.add("src", stamp, stamp)
    assert len(m) == 3
    assert m.add("alpha", 1, "a1") is None      # 1 was evicted: its late output is the oldest entry and goes too
    assert len(m) == 3
    assert m.add("alpha", 4, "a4") == {"src": 4, "alpha": "a4"}
    assert len(m) == 0


def test_matcher_rejects_bad_streams():
    with pytest.raises(ValueError, match="distinct"):
        StampMatcher(("a", "a"))
    with pytest.raises(ValueError, match="max_pending"):
        StampMatcher(("a",), max_pending=0)
    with pytest.raises(ValueError, match="unknown stream 'x'"):
        StampMatcher(("a", "b")).add("x", 1, None)


# ---- numbers ----------------------------------------------------------------------------------------
def test_pick_indices_spreads_first_to_last():
    assert pick_indices(60, 4) == [0, 20, 39, 59]       # linspace 0, 19.67, 39.33, 59
    assert pick_indices(3, 5) == [0, 1, 2]
    assert pick_indices(10, 1) == [0]
    assert pick_indices(0, 4) == []
    with pytest.raises(ValueError):
        pick_indices(-1, 2)


def test_percentile_interpolates_linearly():
    assert percentile([40, 10, 30, 20], 50) == pytest.approx(25.0)
    assert percentile([40, 10, 30, 20], 90) == pytest.approx(37.0)     # rank 2.7: 30 + 0.7 * 10
    assert np.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def _summary():
    camera = [i * 100 * MS for i in range(-2, 12)]                      # 10 Hz, -200 .. 1100 ms
    stamps = [0, 200 * MS, 400 * MS, 600 * MS, 800 * MS]                # every other frame matted
    received = [s + d * MS for s, d in zip(stamps, (50, 50, 60, 70, 150))]
    outputs = [-200 * MS] + stamps + [1000 * MS]                        # outside the window: not counted
    quality = {"sad": 1.5, "mse": 0.25, "grad": 2.0, "conn": 1.25, "hair_sad": 0.75, "hair_mse": 0.125,
               "fgr_mse": float("nan")}
    return run_summary(stamps, received, camera, outputs, quality)


def test_summarize_counts_the_collection_window():
    s = _summary()
    assert s["frames"] == 5
    assert s["output_hz"] == pytest.approx(4 / 0.9)                     # receipts 50 .. 950 ms
    assert s["camera_hz"] == pytest.approx(10.0)                        # 9 frames over 0 .. 800 ms
    assert s["latency_ms"]["median"] == pytest.approx(60.0)
    assert s["latency_ms"]["p90"] == pytest.approx(118.0)               # rank 3.6: 70 + 0.6 * 80
    assert (s["camera_frames"], s["matted_frames"], s["dropped"]) == (9, 5, 4)
    assert s["quality"] == {"sad": 1.5, "mse": 0.25, "grad": 2.0, "conn": 1.25, "hair_sad": 0.75, "hair_mse": 0.125}
    with pytest.raises(ValueError, match=">= 2"):
        run_summary([0], [1], [0], [0], s["quality"])


def test_mean_quality_averages_every_key_over_the_frames():
    rows = [{"sad": 1.0, "mse": 0.5, "grad": 2.0, "conn": 1.0, "hair_sad": 0.25, "hair_mse": 0.125, "fgr_mse": 9.0},
            {"sad": 3.0, "mse": 0.25, "grad": 4.0, "conn": 2.0, "hair_sad": 0.75, "hair_mse": 0.375, "fgr_mse": 9.0}]
    assert mean_quality(rows) == {"sad": 2.0, "mse": 0.375, "grad": 3.0, "conn": 1.5, "hair_sad": 0.5,
                                  "hair_mse": 0.25}


def test_format_summary_prints_every_number():
    text = format_summary(_summary())
    assert "throughput  4.44 Hz of matted output (camera 10.00 Hz)" in text
    assert "median 60.0 ms, p90 118.0 ms" in text
    assert "drops       4 of 9 camera frames" in text
    assert "SAD 1.5000  MSE 0.250000  Grad 2.0000  Conn 1.2500" in text
    assert "hair band   SAD 0.7500  MSE 0.125000  where the true alpha is in 0.05..0.95" in text
    assert "mean over 5 frames" in text


# ---- images -----------------------------------------------------------------------------------------
def test_alpha_u8_rounds_and_clips():
    got = alpha_u8(np.array([[-0.1, 0.0, 0.5, 1.0, 1.2, 0.2]], np.float32))
    assert got.dtype == np.uint8 and got.tolist() == [[0, 0, 128, 255, 255, 51]]
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        alpha_u8(np.zeros((2, 2, 1)))


def test_contact_sheet_places_each_tile_under_its_title():
    h, w, tw, th, bar = 20, 40, 80, 40, 24
    red = np.zeros((h, w, 3), np.uint8)
    red[..., 0] = 255
    green = np.zeros((h, w, 3), np.uint8)
    green[..., 1] = 200
    rows = [(red, np.full((h, w), 0.5, np.float32), np.ones((h, w), np.float32), green),
            (green, np.zeros((h, w), np.float32), np.full((h, w), 0.2, np.float32), red)]
    sheet = contact_sheet(rows, tile_width=tw)
    assert sheet.shape == (bar + 2 * th, 4 * tw, 3) and sheet.dtype == np.uint8
    expect = [[(255, 0, 0), (128,) * 3, (255,) * 3, (0, 200, 0)], [(0, 200, 0), (0,) * 3, (51,) * 3, (255, 0, 0)]]
    for r in range(2):
        for c in range(4):
            tile = sheet[bar + r * th:bar + (r + 1) * th, c * tw:(c + 1) * tw]
            assert (tile == np.array(expect[r][c], np.uint8)).all(), (r, c)
    for c in range(4):      # every column has its title drawn in white on the black bar
        assert sheet[:bar, c * tw:(c + 1) * tw].max() > 200
    assert len(COLUMNS) == 4


def test_contact_sheet_rejects_bad_rows():
    img = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="at least one row"):
        contact_sheet([])
    with pytest.raises(ValueError, match="needs 4 images"):
        contact_sheet([(img, img)])
    with pytest.raises(ValueError, match="every image must be 8x8"):
        contact_sheet([(img, img, img, np.zeros((8, 9, 3), np.uint8))])
    with pytest.raises(ValueError, match="uint8"):
        contact_sheet([(img, img, img, img.astype(np.float32))])


def test_png_and_json_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    rgba = rng.integers(0, 256, (5, 7, 4), dtype=np.uint8)
    gray = rng.integers(0, 256, (5, 7), dtype=np.uint8)
    for name, img, back in (("rgb", rgb, cv2.COLOR_BGR2RGB), ("rgba", rgba, cv2.COLOR_BGRA2RGBA), ("gray", gray, None)):
        path = str(tmp_path / f"{name}.png")
        write_png(path, img)
        read = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(cv2.cvtColor(read, back) if back is not None else read, img)
    with pytest.raises(ValueError, match="uint8"):
        write_png(str(tmp_path / "f.png"), rgb.astype(np.float32))
    write_json(str(tmp_path / "m.json"), {"a": [1, 2.5], "b": {"c": "x"}})
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": [1, 2.5], "b": {"c": "x"}}
    assert sorted(os.listdir(tmp_path)) == ["gray.png", "m.json", "rgb.png", "rgba.png"]    # no temp files left


# ---- command line -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo():
    pytest.importorskip("rclpy")
    import matte_ros.tools.demo
    return matte_ros.tools.demo


def test_parse_args_defaults_and_errors(demo, capsys):
    o = demo.parse_args([])
    assert (o.width, o.height, o.frames, o.save, o.out, o.model) == (640, 480, 60, 4, os.path.join("out", "demo"), "")
    assert 1 <= o.domain_id <= 100
    assert demo.parse_args(["--domain-id", "7", "-p", "precision:=bf16"]).param == ["precision:=bf16"]
    for bad, msg in ((["--frames", "1"], "--frames must be >= 2"), (["--save", "0"], "--save must be"),
                     (["-p", "precision=bf16"], "NAME:=VALUE"), (["--domain-id", "102"], "0..101")):
        with pytest.raises(SystemExit):
            demo.parse_args(bad)
        assert msg in capsys.readouterr().err


def test_camera_settings_out_of_range_are_one_line_errors(demo, capsys):
    for bad, msg in ((["--width", "-5"], "--width must be in 32..7680, got -5"),
                     (["--rate", "0"], "--rate must be in 0.1..240, got 0"),
                     (["--timeout", "0"], "--timeout must be > 0, got 0")):
        with pytest.raises(SystemExit) as e:
            demo.parse_args(bad)
        err = capsys.readouterr().err
        assert e.value.code == 2 and err == f"matte_demo: error: {msg} (see --help)\n", err


def test_missing_default_model_says_what_to_do(monkeypatch, tmp_path):
    pytest.importorskip("rclpy")
    from matte_ros.tools import demo, demo_run
    monkeypatch.setattr(demo_run, "DEFAULT_WEIGHTS", str(tmp_path / "default.safetensors"))
    with pytest.raises(demo_run.DemoError, match=r"default model is missing .*MODEL_CARD.*--model PATH"):
        demo_run.run(demo.parse_args(["--out", str(tmp_path / "out")]))
    assert not (tmp_path / "out").exists()      # nothing started, nothing written


def test_a_broken_model_file_is_one_line_and_exit_2(demo, tmp_path, capsys):
    bad = tmp_path / "random.pth"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 2048, dtype=np.uint8).tobytes())
    assert demo.main(["--model", str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err == f"matte_demo: error: {bad} is not a PyTorch checkpoint (neither a torch.save zip archive nor a " \
                  "pickle)\n", err
    assert not (tmp_path / "out").exists()


def test_help_describes_the_demo_in_whole_sentences(demo, capsys):
    with pytest.raises(SystemExit) as e:
        demo.parse_args(["--help"])
    assert e.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert ("the fake camera and the matting node in their own processes, the plate captured automatically, a "
            "fixed number of frames matted and scored. options:") in text


# ---- across processes -----------------------------------------------------------------------------------
def _demo_cmd(model, out, domain, *extra):
    return [sys.executable, "-m", "matte_ros.tools.demo", "--model", model, "--out", str(out), "--domain-id",
            str(domain), "--width", "64", "--height", "48", "--rate", "20", "--empty-seconds", "2", "--frames", "6",
            "--save", "2", "--timeout", "60", "-p", "backbone_scale:=0.5", "-p", "refine_sample_pixels:=512",
            "-p", "plate_frames:=3", *extra]


# Set in the environment of the demos started here and so inherited by their children: processes of
# other test runs that happen to use the same ROS domain are not counted as ours.
RUN_TAG = ("MATTE_DEMO_TEST_RUN", str(os.getpid()))


@pytest.fixture
def tagged(monkeypatch):
    monkeypatch.setenv(*RUN_TAG)


def _processes_in_domain(domain: int):
    """Live processes started by this test run's demos in ROS domain ``domain`` (orphans, after the demo)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if "matte_ros." in cmd and f"ROS_DOMAIN_ID={domain}".encode() in env and "=".join(RUN_TAG).encode() in env:
            found.append(cmd)
    return found


def _run_demo(cmd, timeout=150.0):
    """Run the demo; past ``timeout`` SIGTERM it (so it stops its children) before failing."""
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        pytest.fail(f"the demo took over {timeout:g} s:\n{out}{err}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out, err


@pytest.mark.ros
@pytest.mark.slow
def test_short_demo_writes_out_demo_and_finite_metrics(tiny_model_file, tmp_path, tagged, ros_domain):
    pytest.importorskip("rclpy")
    out, domain = tmp_path / "demo", ros_domain
    rc, stdout, stderr = _run_demo(_demo_cmd(tiny_model_file, out, domain))
    assert rc == 0, stdout + stderr
    assert "capture_background: plate 64x48 averaged from 3 frames" in stdout
    assert f"6 frames of 64x48 matted by matte_node on cpu ({CPU_PRECISION})" in stdout
    for line in ("throughput", "latency     stamp -> receipt: median", "drops", "quality     SAD", "hair band   SAD"):
        assert line in stdout, stdout
    files = sorted(os.listdir(out))
    assert files == ["camera.log", "contact_sheet.png", "frame_000_alpha.png", "frame_000_composite.png",
                     "frame_000_foreground.png", "frame_005_alpha.png", "frame_005_composite.png",
                     "frame_005_foreground.png", "metrics.json", "node.log"], files
    m = json.loads((out / "metrics.json").read_text())
    numbers = [m["output_hz"], m["camera_hz"], *m["latency_ms"].values(), *m["quality"].values()]
    assert all(isinstance(x, float) and np.isfinite(x) for x in numbers), m
    assert set(m["quality"]) == {"sad", "mse", "grad", "conn", "hair_sad", "hair_mse"} and m["quality"]["mse"] >= 0
    assert m["frames"] == 6 and m["matted_frames"] >= 6 and m["dropped"] == m["camera_frames"] - m["matted_frames"]
    assert m["latency_ms"]["median"] > 0 and (m["width"], m["height"], m["device"]) == (64, 48, "cpu")
    assert cv2.imread(str(out / "contact_sheet.png")).shape == (24 + 2 * 240, 4 * 320, 3)
    assert cv2.imread(str(out / "frame_000_alpha.png"), cv2.IMREAD_UNCHANGED).shape == (48, 64)
    assert cv2.imread(str(out / "frame_000_foreground.png"), cv2.IMREAD_UNCHANGED).shape == (48, 64, 4)
    assert _processes_in_domain(domain) == []


@pytest.mark.ros
def test_a_child_that_dies_stops_the_wait_with_its_log(tmp_path, ros_domain):
    pytest.importorskip("rclpy")
    from matte_ros.tools.launcher import ChildExited, Launch, LaunchError
    launch = Launch(ros_domain, str(tmp_path), "test_launcher")
    try:
        launch.start_camera({"compressed": "gif"})
        with pytest.raises(ChildExited) as e:
            launch.wait("nothing", lambda: False, timeout=60.0)
    finally:
        codes = launch.close()
    assert codes == {"fake_camera": 1} and launch.children == []
    with pytest.raises(LaunchError, match="timed out after 0.1 s waiting for the answer"):
        launch.wait("the answer", lambda: False, timeout=0.1)
    msg = str(e.value)
    assert msg.startswith(f"fake_camera exited with code 1; the end of {tmp_path / 'camera.log'}:")
    assert "compressed must be one of '', 'png', 'jpeg', got 'gif'" in msg


@pytest.mark.ros
def test_ctrl_c_while_the_demo_starts_exits_quietly(tiny_model_file, tmp_path, interrupt, tagged, ros_domain):
    rc, out, err = interrupt(_demo_cmd(tiny_model_file, tmp_path / "demo", ros_domain))
    assert rc == 130 and err in ("", "matte_demo: interrupted\n"), err
    assert _processes_in_domain(ros_domain) == []


@pytest.mark.ros
@pytest.mark.slow
def test_sigterm_stops_the_demo_and_its_children(tiny_model_file, tmp_path, tagged, ros_domain):
    pytest.importorskip("rclpy")
    domain = ros_domain
    proc = subprocess.Popen(_demo_cmd(tiny_model_file, tmp_path, domain, "--empty-seconds", "60"), cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        end = time.monotonic() + 120
        while time.monotonic() < end and len(_processes_in_domain(domain)) < 2:
            time.sleep(0.2)
        assert len(_processes_in_domain(domain)) == 2, "node and camera did not both start"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, out + err
    assert "matte_demo: terminated (SIGTERM); the camera and the node were stopped" in err
    assert _processes_in_domain(domain) == []


def test_the_nodes_status_is_found_by_its_full_name():
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

    from matte_ros.tools.demo_run import node_status

    def status(name, device):
        return DiagnosticStatus(name=name, values=[KeyValue(key="device", value=device)])
    msg = DiagnosticArray(status=[status("/fake_camera: camera", "x"), status("/matte_node: matting", "cpu")])
    assert node_status(msg) == {"device": "cpu"}
    assert node_status(DiagnosticArray(status=[status("/left/matte_node: matting", "cuda:0")])) == {"device": "cuda:0"}
    assert node_status(DiagnosticArray(status=[status("/matte_node_2: matting", "cpu")])) == {}
