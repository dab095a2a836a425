"""A failed matte_offline run leaves nothing new in place, an interrupted one leaves its outputs named
partial, and inputs holding fewer frames than they declare are errors (or, when allowed, warnings)."""
import errno
import os
import sqlite3

import cv2
import pytest
from offline_inputs import (
    checksums,
    drop_bag_messages,
    read_bag,
    read_video,
    scene,
    write_bag,
    write_pngs,
    write_video,
)

from matte_ros.tools.offline import pipeline, writers
from matte_ros.tools.offline.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")


def cli(*args, model_path):
    return main([*map(str, args), "--checkpoint", model_path, "--device", "cpu", "--quiet"])


def one_line(capsys, *words):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert all(w in err for w in words), err
    return err


def interrupt_at(monkeypatch, index):
    """Ctrl-C while frame ``index`` is matted."""
    real = pipeline.matte_frame

    def matte_frame(engine, frame, *a, **k):
        if frame.index == index:
            raise KeyboardInterrupt
        return real(engine, frame, *a, **k)
    monkeypatch.setattr(pipeline, "matte_frame", matte_frame)


def fail_after(monkeypatch, obj, name, n, error):
    """obj.name raises ``error`` from its (n+1)-th call on."""
    real, calls = getattr(obj, name), [0]

    def failing(*a, **k):
        calls[0] += 1
        if calls[0] > n:
            raise error
        return real(*a, **k)
    monkeypatch.setattr(obj, name, failing)


# ---- failures leave nothing new in place ---------------------------------------------------------
def test_a_malformed_fifth_bag_message_leaves_no_bag(tmp_path, model_path, capsys):
    plate, frames = scene(10)
    write_bag(str(tmp_path / "rec"), frames, corrupt=[4])
    assert cli(tmp_path / "rec", "-o", tmp_path / "out", "--plate-frames", "1", model_path=model_path) == 2
    one_line(capsys, "message 4 on /camera/image cannot be deserialized", "outputs were removed")
    assert sorted(os.listdir(tmp_path)) == ["rec"]


def test_a_garbage_image_mid_folder_leaves_no_pngs_and_earlier_outputs_stay(tmp_path, model_path, capsys):
    plate, frames = scene(6)
    write_pngs(tmp_path / "in", frames)
    args = (tmp_path / "in", "-o", tmp_path / "out", "--plate-frames", "1", "--output-types", "alpha")
    assert cli(*args, model_path=model_path) == 0
    earlier = checksums(tmp_path / "out")
    (tmp_path / "in" / "f003.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    assert cli(*args, "--overwrite", model_path=model_path) == 2
    one_line(capsys, "f003.png", "outputs were removed")
    assert checksums(tmp_path / "out") == earlier                   # the earlier complete run, untouched
    assert sorted(os.listdir(tmp_path / "out")) == [".matte_offline.json", "alpha"]


def test_a_full_disk_under_the_png_writer_leaves_nothing(tmp_path, model_path, capsys, monkeypatch):
    plate, frames = scene(5)
    write_pngs(tmp_path / "in", frames)
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "out" / "alpha.partial" / "f002.png"))
    fail_after(monkeypatch, writers, "_write_bytes", 4, full)
    assert cli(tmp_path / "in", "-o", tmp_path / "out", "--plate-frames", "1", model_path=model_path) == 2
    one_line(capsys, "No space left on device", "f002.png", "outputs were removed")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("where", ["write", "close"])
def test_a_full_disk_under_the_sqlite3_bag_is_one_line(tmp_path, model_path, capsys, monkeypatch, where):
    from rosbags.rosbag2 import Writer
    plate, frames = scene(4)
    write_bag(str(tmp_path / "rec"), frames)
    fail_after(monkeypatch, Writer, where, 3 if where == "write" else 0,
               sqlite3.OperationalError("database or disk is full"))
    assert cli(tmp_path / "rec", "-o", tmp_path / "out", "--plate-frames", "1", model_path=model_path) == 2
    one_line(capsys, "database or disk is full", "outputs were removed")
    assert sorted(os.listdir(tmp_path)) == ["rec"]


# ---- Ctrl-C: complete files, named partial ---------------------------------------------------------
def test_ctrl_c_keeps_complete_pngs_named_partial(tmp_path, model_path, capsys, monkeypatch):
    plate, frames = scene(5)
    write_pngs(tmp_path / "in", frames)
    args = (tmp_path / "in", "-o", tmp_path / "out", "--plate-frames", "1", "--output-types", "alpha")
    interrupt_at(monkeypatch, 2)
    assert cli(*args, model_path=model_path) == 130
    err = one_line(capsys, "interrupted after 2 frames", "partial outputs", str(tmp_path / "out" / "alpha.partial"))
    assert "alpha.partial" in err
    assert sorted(os.listdir(tmp_path / "out")) == [".matte_offline.json", "alpha.partial"]
    assert all(cv2.imread(str(p)) is not None for p in (tmp_path / "out" / "alpha.partial").iterdir())
    monkeypatch.undo()
    assert cli(*args, model_path=model_path) == 2                          # the partial output is in the way
    one_line(capsys, "alpha.partial exists; pass --overwrite")
    assert cli(*args, "--overwrite", model_path=model_path) == 0
    assert sorted(os.listdir(tmp_path / "out")) == [".matte_offline.json", "alpha"]
    assert len(os.listdir(tmp_path / "out" / "alpha")) == 5


def test_ctrl_c_keeps_a_partial_video_and_bag_that_play_and_open(tmp_path, model_path, capsys, monkeypatch):
    plate, frames = scene(5)
    write_video(str(tmp_path / "clip.mov"), frames)
    write_bag(str(tmp_path / "rec"), frames)
    interrupt_at(monkeypatch, 3)
    assert cli(tmp_path / "clip.mov", "-o", tmp_path / "v", "--plate-frames", "1", "--video-codec", "png",
               "--output-types", "alpha", model_path=model_path) == 130
    one_line(capsys, "interrupted after 3 frames", "alpha.partial.mov")
    assert not (tmp_path / "v" / "alpha.mov").exists()
    assert len(read_video(str(tmp_path / "v" / "alpha.partial.mov"), "gray")) == 3
    assert cli(tmp_path / "rec", "-o", tmp_path / "b", "--plate-frames", "1", "--output-types", "alpha",
               model_path=model_path) == 130
    one_line(capsys, "interrupted after 3 frames", str(tmp_path / "b.partial"))
    assert not (tmp_path / "b").exists()
    assert len(read_bag(str(tmp_path / "b.partial" / "b"))["/matte/alpha"]) == 3


# ---- truncation ---------------------------------------------------------------------------------
def _cut_after(path, packets):
    """Cut a video file right after its ``packets``-th packet: what is left still declares every frame."""
    import av
    with av.open(path) as c:
        ends = [p.pos + p.size for p in c.demux(c.streams.video[0]) if p.size and p.pos is not None]
    with open(path, "r+b") as f:
        f.truncate(ends[packets - 1])


def _decodable(path):
    """Frames decoded before the first error."""
    import av
    n = 0
    with av.open(path) as c:
        try:
            for _ in c.decode(c.streams.video[0]):
                n += 1
        except av.FFmpegError:
            pass
    return n


@pytest.mark.parametrize("ext,codec,declared", [(".mp4", "libx264", "20"), (".mkv", "libx264", "about"),
                                                (".mov", "png", "20")])
def test_a_video_cut_short_is_an_error_unless_allowed(tmp_path, model_path, capsys, ext, codec, declared):
    plate, frames = scene(20)
    path = str(tmp_path / f"clip{ext}")
    write_video(path, frames, codec=codec)
    _cut_after(path, 7)
    held = _decodable(path)
    assert 0 < held < 20
    args = (path, "-o", tmp_path / "out", "--plate-frames", "1", "--output-types", "alpha", "--video-codec", "png")
    assert cli(*args, model_path=model_path) == 2
    err = one_line(capsys, "--allow-truncated", "outputs were removed")
    assert f"holds only {held}" in err or f"after {held} frames" in err
    assert declared in err.split("--allow-truncated")[0]
    assert not (tmp_path / "out").exists()
    assert cli(*args, "--allow-truncated", model_path=model_path) == 0
    one_line(capsys, "warning:", str(held))
    assert len(read_video(str(tmp_path / "out" / "alpha.mov"), "gray")) == held


def test_a_bag_holding_fewer_messages_than_its_metadata_is_an_error_unless_allowed(tmp_path, model_path, capsys):
    plate, frames = scene(10)
    write_bag(str(tmp_path / "rec"), frames)
    drop_bag_messages(str(tmp_path / "rec"), 6)
    args = (tmp_path / "rec", "-o", tmp_path / "out", "--plate-frames", "1", "--output-types", "alpha")
    assert cli(*args, model_path=model_path) == 2
    one_line(capsys, "declares 10 frames but holds only 6")
    assert sorted(os.listdir(tmp_path)) == ["rec"]
    assert cli(*args, "--allow-truncated", model_path=model_path) == 0
    one_line(capsys, "warning:", "declares 10 frames but holds only 6")
    assert len(read_bag(str(tmp_path / "out"))["/matte/alpha"]) == 6
