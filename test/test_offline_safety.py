"""matte_offline never writes its inputs: outputs that are, contain or lie inside an input are refused
before anything is touched, and --overwrite replaces only what the tool's manifest lists."""
import os

import pytest
from offline_inputs import (
    checksums,
    read_bag,
    scene,
    write_bag,
    write_pngs,
    write_video,
)

from matte_ros.tools.offline.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")




def cli(*args, model_path):
    return main([*map(str, args), "--checkpoint", model_path, "--device", "cpu", "--quiet"])


def refused(capsys, *words):
    err = capsys.readouterr().err
    assert err.startswith("matte_offline: error:") and err.count("\n") == 1, err
    assert all(w in err for w in words), err
    return err


def test_output_naming_the_input_bag_is_refused(tmp_path, model_path, capsys, no_engine):
    plate, frames = scene(3)
    write_bag(str(tmp_path / "rec"), frames)
    before = checksums(tmp_path)
    assert cli(tmp_path / "rec", "-o", tmp_path / "rec", "--plate-frames", "1", "--overwrite",
               model_path=model_path) == 2
    refused(capsys, f"output {tmp_path / 'rec'} is the input")
    assert checksums(tmp_path) == before and len(read_bag(str(tmp_path / "rec"))["/camera/image"]) == 3


def test_output_folder_holding_the_input_video_is_refused(tmp_path, model_path, capsys, no_engine):
    plate, frames = scene(2)
    os.makedirs(tmp_path / "vid")
    write_video(str(tmp_path / "vid" / "alpha.mp4"), frames, codec="libx264")
    before = checksums(tmp_path)
    assert cli(tmp_path / "vid" / "alpha.mp4", "-o", tmp_path / "vid", "--plate-frames", "1", "--overwrite",
               model_path=model_path) == 2
    refused(capsys, f"{tmp_path / 'vid' / 'alpha.mp4'} is the input")
    assert checksums(tmp_path) == before


def test_output_folder_around_the_input_folder_is_refused(tmp_path, model_path, capsys, no_engine):
    plate, frames = scene(2)
    write_pngs(tmp_path / "shots" / "alpha", frames)
    before = checksums(tmp_path)
    assert cli(tmp_path / "shots" / "alpha", "-o", tmp_path / "shots", "--plate-frames", "1", "--overwrite",
               model_path=model_path) == 2
    refused(capsys, "is the input")
    assert checksums(tmp_path) == before


@pytest.mark.parametrize("case", ["inside the input", "plate inside", "checkpoint inside", "symlink to input",
                                  "bag inside the input bag", "composite image inside"])
def test_every_input_is_kept_apart_from_the_outputs(tmp_path, model_path, capsys, no_engine, case):
    plate, frames = scene(2)
    write_pngs(tmp_path / "in", frames)
    write_pngs(tmp_path / "out" / "alpha", [plate], "p")
    plate_png = tmp_path / "out" / "alpha" / "p000.png"
    args = [tmp_path / "in", "-o", tmp_path / "out", "--plate", plate_png, "--overwrite"]
    if case == "inside the input":
        args = [tmp_path / "in", "-o", tmp_path / "in" / "matted", "--plate-frames", "1"]
    elif case == "checkpoint inside":
        os.makedirs(tmp_path / "m" / "alpha")
        model_path = str(tmp_path / "m" / "alpha" / "tiny.safetensors")
        os.link(tmp_path / "out" / "alpha" / "p000.png", model_path)       # a hard link: the same file
        args = [tmp_path / "in", "-o", tmp_path / "m", "--plate-frames", "1", "--overwrite"]
    elif case == "symlink to input":
        os.symlink(tmp_path / "in", tmp_path / "link")
        args = [tmp_path / "link", "-o", tmp_path / "in", "--plate-frames", "1"]
    elif case == "bag inside the input bag":
        write_bag(str(tmp_path / "rec"), frames)
        args = [tmp_path / "rec", "-o", tmp_path / "rec" / "matted", "--plate-frames", "1"]
    elif case == "composite image inside":
        args = [tmp_path / "in", "-o", tmp_path / "out", "--plate-frames", "1", "--output-types", "composite,alpha",
                "--composite-bg", plate_png, "--overwrite"]
    before = checksums(tmp_path)
    assert cli(*args, model_path=model_path) == 2
    refused(capsys, "inputs are never written")
    assert checksums(tmp_path) == before


def test_overwrite_replaces_only_what_the_manifest_lists(tmp_path, model_path, capsys):
    plate, frames = scene(2)
    write_video(str(tmp_path / "clip.mov"), frames)
    args = (tmp_path / "clip.mov", "-o", tmp_path / "out", "--plate-frames", "1", "--video-codec", "png")
    assert cli(*args, model_path=model_path) == 0
    assert sorted(os.listdir(tmp_path / "out")) == [".matte_offline.json", "alpha.mov", "foreground.mov"]
    assert cli(*args, "--overwrite", model_path=model_path) == 0
    mine = tmp_path / "out" / "foreground.mov"
    mine.write_bytes(b"a user's own file in the output's place")
    before = checksums(tmp_path / "out")
    for extra in ((), ("--overwrite",)):
        assert cli(*args, *extra, model_path=model_path) == 2
        refused(capsys, f"matte_offline did not write {mine}")
    assert checksums(tmp_path / "out") == before


def test_a_bag_not_written_by_the_tool_is_never_replaced(tmp_path, model_path, capsys):
    plate, frames = scene(2)
    write_bag(str(tmp_path / "rec"), frames)
    write_bag(str(tmp_path / "theirs"), frames)                  # somebody's recording where the output goes
    before = checksums(tmp_path / "theirs")
    assert cli(tmp_path / "rec", "-o", tmp_path / "theirs", "--plate-frames", "1", "--overwrite",
               model_path=model_path) == 2
    refused(capsys, "matte_offline did not write")
    assert checksums(tmp_path / "theirs") == before
    assert cli(tmp_path / "rec", "-o", tmp_path / "mine", "--plate-frames", "1", model_path=model_path) == 0
    assert cli(tmp_path / "rec", "-o", tmp_path / "mine", "--plate-frames", "1", "--overwrite",
               "--output-types", "alpha", model_path=model_path) == 0          # its own bag: replaced
    assert set(read_bag(str(tmp_path / "mine"))) == {"/camera/image", "/note", "/matte/alpha"}
    assert sorted(os.listdir(tmp_path)) == ["mine", "rec", "theirs"]
