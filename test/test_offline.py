"""matte_offline on image folders and videos: every output type read back and compared with the
engine on the same frames; the plate sources, alignment, error maps (one coarse pass per frame),
refusals and Ctrl-C."""
import os

import cv2
import numpy as np
import pytest
from offline_inputs import read_video, scene, write_pngs, write_video

from matte_ros.core.engine import MattingEngine
from matte_ros.core.model import MattingRefine, load_checkpoint
from matte_ros.core.model.traced import TracedCoarse
from matte_ros.tools.offline.cli import main
from matte_ros.tools.offline.frames import OfflineError, parse_output_types
from matte_ros.tools.offline.pipeline import bench_offline, run
from matte_ros.tools.offline.plate import FixedPlate
from matte_ros.tools.offline.readers import open_input
from matte_ros.tools.offline.writers import VideoWriter

ALL = "alpha,foreground,composite,error,refinement"


pytestmark = pytest.mark.usefixtures("one_thread")


def engine_results(model_path, plate, frames, composite=(0, 255, 0)):
    """What the engine alone gives for frames: [(alpha, foreground, composite, error, refinement)]."""
    engine = MattingEngine(checkpoint=model_path, device="cpu", backbone_scale=0.0)
    engine.set_background(plate)
    out = []
    for f in frames:
        r = engine.process(f, composite=composite, maps=True)
        out.append((r.alpha, r.foreground, r.composite, r.error, r.refinement))
    return out


def u8(x):
    return np.rint(np.clip(x, 0, 1) * 255).astype(np.uint8)


def close(a, b, tol=1):
    return np.abs(a.astype(np.int32) - b.astype(np.int32)).max() <= tol


def cli(*args, model_path):
    return main([*map(str, args), "--checkpoint", model_path, "--device", "cpu", "--quiet"])


def test_output_types_parse_with_published_names():
    assert parse_output_types("fgr, pha,err") == ("alpha", "foreground", "error")
    with pytest.raises(OfflineError, match="unknown output type 'matte'"):
        parse_output_types("alpha,matte")


def test_error_and_refinement_maps_cost_no_second_coarse_pass(tmp_path, model_path, monkeypatch):
    """The maps come from the frame's own coarse pass: the coarse pass (traced on the CPU) runs once per frame."""
    plate, frames = scene(3)
    write_pngs(tmp_path / "in", frames)
    write_pngs(tmp_path / "plate", [plate], "p")
    runs = []
    forward = TracedCoarse.__call__
    monkeypatch.setattr(TracedCoarse, "__call__", lambda self, x: runs.append(x.shape) or forward(self, x))
    assert cli(tmp_path / "in", "-o", tmp_path / "out", "--plate", tmp_path / "plate" / "p000.png",
               "--output-types", "alpha,error,refinement", model_path=model_path) == 0
    assert len(runs) == len(frames)
    assert sorted(n for n in os.listdir(tmp_path / "out") if not n.startswith(".")) == ["alpha", "error", "refinement"]


def test_image_folder_every_output_type_matches_the_engine(tmp_path, model_path):
    plate, frames = scene(3)
    write_pngs(tmp_path / "in", frames)
    write_pngs(tmp_path / "plate", [plate], "p")
    assert cli(tmp_path / "in", "-o", tmp_path / "out", "--plate", tmp_path / "plate" / "p000.png",
               "--output-types", ALL, model_path=model_path) == 0
    want = engine_results(model_path, plate, frames)
    for i, (alpha, fgr, comp, err, ref) in enumerate(want):
        read = lambda t, i=i: cv2.imread(str(tmp_path / "out" / t / f"f{i:03d}.png"), cv2.IMREAD_UNCHANGED)
        assert close(read("alpha"), u8(alpha))
        fg = read("foreground")
        assert fg.shape == (64, 96, 4)                                        # RGBA: alpha as 4th channel
        assert close(cv2.cvtColor(fg, cv2.COLOR_BGRA2RGBA)[:, :, :3], fgr) and close(fg[:, :, 3], u8(alpha))
        assert close(cv2.cvtColor(read("composite"), cv2.COLOR_BGR2RGB), comp)
        assert close(read("error"), u8(err)) and close(read("refinement"), u8(ref))
        assert set(np.unique(read("refinement"))) <= {0, 255}


def test_sixteen_bit_alpha_and_per_frame_backgrounds(tmp_path, model_path):
    plate, frames = scene(2)
    plates = [plate, np.ascontiguousarray(plate[:, ::-1])]        # a different plate for the second frame
    write_pngs(tmp_path / "in", frames)
    write_pngs(tmp_path / "bg", plates, "b")
    assert cli(tmp_path / "in", "-o", tmp_path / "out", "--plate-folder", tmp_path / "bg", "--alpha-bits", "16",
               "--output-types", "alpha", model_path=model_path) == 0
    for i in range(2):
        got = cv2.imread(str(tmp_path / "out" / "alpha" / f"f{i:03d}.png"), cv2.IMREAD_UNCHANGED)
        alpha = engine_results(model_path, plates[i], [frames[i]])[0][0]
        assert got.dtype == np.uint16
        assert np.abs(got.astype(np.int64) - np.rint(alpha * 65535)).max() <= 1


def test_video_in_png_codec_video_out_matches_the_engine(tmp_path, model_path):
    plate, frames = scene(3)
    write_video(str(tmp_path / "clip.mov"), [plate, plate] + frames)
    decoded = read_video(str(tmp_path / "clip.mov"))
    assert cli(tmp_path / "clip.mov", "-o", tmp_path / "out", "--plate-frames", "2", "--video-codec", "png",
               "--output-types", ALL, model_path=model_path) == 0
    want = engine_results(model_path, decoded[0], decoded)            # the plate: the mean of two equal frames
    got = {t: read_video(str(tmp_path / "out" / f"{t}.mov"), "rgba" if t == "foreground" else
                         ("rgb24" if t == "composite" else "gray")) for t in ALL.split(",")}
    assert all(len(v) == 5 for v in got.values())
    for i, (alpha, fgr, comp, err, ref) in enumerate(want):
        assert close(got["alpha"][i], u8(alpha)) and close(got["foreground"][i][:, :, 3], u8(alpha))
        assert close(got["foreground"][i][:, :, :3], fgr) and close(got["composite"][i], comp)
        assert close(got["error"][i], u8(err)) and close(got["refinement"][i], u8(ref))


def test_h264_video_out_is_close_to_the_engine(tmp_path, model_path):
    plate, frames = scene(2)
    write_video(str(tmp_path / "clip.mov"), frames)
    write_pngs(tmp_path / "p", [plate])
    assert cli(tmp_path / "clip.mov", "-o", tmp_path / "out", "--plate", tmp_path / "p" / "f000.png",
               "--output-types", "alpha", model_path=model_path) == 0
    got = read_video(str(tmp_path / "out" / "alpha.mp4"), "gray")
    want = engine_results(model_path, plate, frames)
    assert len(got) == 2
    for g, (alpha, *_) in zip(got, want):                           # lossy: small mean difference
        assert np.abs(g.astype(np.float32) - u8(alpha)).mean() < 3.0


# colour tolerance (mean |difference| in levels): ProRes 4444 keeps full chroma, VP9 here stores 4:2:0
@pytest.mark.parametrize("codec,ext,decoder,tol", [("prores", ".mov", "prores", 2.0),
                                                   ("vp9", ".webm", "libvpx-vp9", 6.0)])
def test_alpha_capable_codecs_keep_the_foregrounds_alpha(tmp_path, model_path, codec, ext, decoder, tol):
    plate, frames = scene(2)
    write_video(str(tmp_path / "clip.mov"), [plate] + frames)
    assert cli(tmp_path / "clip.mov", "-o", tmp_path / "out", "--plate-frames", "1", "--video-codec", codec,
               model_path=model_path) == 0
    import av
    want = engine_results(model_path, read_video(str(tmp_path / "clip.mov"))[0], [plate] + frames)
    ctx = av.CodecContext.create(decoder, "r")          # FFmpeg's native VP9 decoder drops the alpha plane
    with av.open(str(tmp_path / "out" / f"foreground{ext}")) as c:
        got = [f.to_ndarray(format="rgba") for p in c.demux(c.streams.video[0]) for f in ctx.decode(p)]
    assert len(got) == 3
    for g, (alpha, fgr, *_) in zip(got, want):            # lossy: small mean differences
        assert np.abs(g[:, :, 3].astype(np.float32) - u8(alpha)).mean() < 2.0
        assert np.abs(g[:, :, :3].astype(np.float32) - fgr).mean() < tol


def test_errors_are_one_line(tmp_path, model_path, capsys):
    plate, frames = scene(1)
    write_pngs(tmp_path / "in", frames)
    write_pngs(tmp_path / "small", [plate[:32, :48]])
    (tmp_path / "bad.png").write_bytes(b"not a png")
    cases = [
        (["--plate", tmp_path / "small" / "f000.png"], "is 48x32 but the frames of"),
        (["--plate", tmp_path / "bad.png"], "cannot read image"),
        (["--plate", tmp_path / "missing.png"], "cannot read image"),
        (["--plate-time", "0:1"], "no timestamps"),
    ]
    for extra, message in cases:
        assert cli(tmp_path / "in", "-o", tmp_path / "out", *extra, model_path=model_path) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err and err.startswith("matte_offline: error:")
    assert cli(tmp_path / "nothing", "-o", tmp_path / "out", "--plate-frames", "1", model_path=model_path) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "clip.mp4").write_bytes(b"\x00" * 100)
    assert cli(tmp_path / "clip.mp4", "-o", tmp_path / "out", "--plate-frames", "1", model_path=model_path) == 2
    assert "cannot read video" in capsys.readouterr().err


def test_existing_outputs_are_refused_unless_overwrite(tmp_path, model_path, capsys):
    plate, frames = scene(1)
    write_pngs(tmp_path / "in", frames)
    args = (tmp_path / "in", "-o", tmp_path / "out", "--plate-frames", "1")
    assert cli(*args, model_path=model_path) == 0
    assert cli(*args, model_path=model_path) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert cli(*args, "--overwrite", model_path=model_path) == 0
    assert sorted(os.listdir(tmp_path / "out" / "alpha")) == ["f000.png"]
    stranger = tmp_path / "out" / "alpha" / "old.png"            # not written by matte_offline: never removed
    cv2.imwrite(str(stranger), np.zeros((4, 4), np.uint8))
    assert cli(*args, "--overwrite", model_path=model_path) == 2
    assert f"matte_offline did not write {stranger}" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path / "out" / "alpha")) == ["f000.png", "old.png"]


def test_ctrl_c_leaves_a_playable_video(tmp_path, model_path):
    plate, frames = scene(5)
    write_video(str(tmp_path / "clip.mov"), frames)
    source = open_input(str(tmp_path / "clip.mov"))
    engine = MattingEngine(checkpoint=model_path, device="cpu")
    writer = VideoWriter(str(tmp_path / "out"), ("alpha",), "h264", 10.0, source.size)

    def interrupt_at_second(result):
        if result.frame.index == 1:
            raise KeyboardInterrupt

    stats = run(source, engine, FixedPlate(plate), writer, ("alpha",), progress=False, on_result=interrupt_at_second)
    assert stats.interrupted and stats.frames == 2
    assert len(read_video(str(tmp_path / "out" / "alpha.mp4"), "gray")) == 2


def test_align_option_runs_end_to_end(tmp_path, model_path):
    plate, frames = scene(2, 128, 192)
    write_pngs(tmp_path / "in", frames)
    write_pngs(tmp_path / "p", [plate])
    for method in ("--align", "--align=ecc"):                    # the default method, and one named
        assert cli(tmp_path / "in", "-o", tmp_path / "out", "--plate", tmp_path / "p" / "f000.png", method,
                   "--overwrite", model_path=model_path) == 0
        assert sorted(os.listdir(tmp_path / "out" / "alpha")) == ["f000.png", "f001.png"]


def test_averaged_plate_frames_must_be_still(tmp_path, model_path, capsys):
    """--plate-frames averages with the node's stillness check: a subject walking through fails the
    run with one line saying so, unless --plate-max-moving allows it."""
    plate, frames = scene(3)
    walking = [plate.copy() for _ in range(3)]
    for i, f in enumerate(walking):
        f[10:50, 10 + 25 * i:40 + 25 * i] = (250, 20, 20)        # a red block crossing the empty scene
    write_pngs(tmp_path / "in", walking + frames)
    assert cli(tmp_path / "in", "-o", tmp_path / "out", "--plate-frames", "3", model_path=model_path) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--plate-frames: the scene was not still" in err and "--plate-max-moving" in err
    assert not os.path.exists(tmp_path / "out")
    assert cli(tmp_path / "in", "-o", tmp_path / "out", "--plate-frames", "3", "--plate-max-moving", "1",
               model_path=model_path) == 0


def test_bench_reports_both_rates_on_the_same_frames(tmp_path, model_path):
    plate, frames = scene(3)
    write_pngs(tmp_path / "in", frames)
    source = open_input(str(tmp_path / "in"))
    engine = MattingEngine(checkpoint=model_path, device="cpu")
    from matte_ros.tools.offline.writers import PngWriter
    r = bench_offline(source, engine, lambda: FixedPlate(plate), lambda: PngWriter(str(tmp_path / "out"), ("alpha",)),
                      ("alpha",), frames=2)
    assert r["frames"] == 2 and r["offline_fps"] > 0 and r["engine_fps"] > 0
    assert r["ratio"] == pytest.approx(r["offline_fps"] / r["engine_fps"])
    assert sorted(os.listdir(tmp_path / "out" / "alpha")) == ["f000.png", "f001.png"]


def test_model_file_loads_as_refine(model_path):
    assert isinstance(load_checkpoint(model_path), MattingRefine)


@pytest.mark.slow
def test_sigint_to_the_command_closes_the_video(tmp_path, model_path):
    import re
    import signal
    import subprocess
    import sys
    import time
    plate, frames = scene(4)
    write_video(str(tmp_path / "long.mov"), [plate] + frames * 150)         # 601 frames: seconds of work
    out = tmp_path / "out" / "alpha.partial.mov"                   # moved to alpha.mov only when the run completes
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "matte_ros.tools.offline", str(tmp_path / "long.mov"), "-o",
                             str(tmp_path / "out"), "--plate-frames", "1", "--video-codec", "png", "--output-types",
                             "alpha", "--checkpoint", model_path, "--device", "cpu", "--quiet"],
                            stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline and not (out.exists() and out.stat().st_size > 20_000):
        time.sleep(0.05)                                 # frames are being written: the mov has no index yet
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    n = int(re.search(r"interrupted after (\d+) frames", err).group(1))
    assert 0 < n < 601 and str(out) in err and not (tmp_path / "out" / "alpha.mov").exists()
    assert len(read_video(str(out), "gray")) == n                  # the index was written: the file plays
