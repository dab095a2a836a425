"""matte_offline's flags are checked as they are parsed (before any model loads, the flag named in one
line), image headers are checked against --max-frame-pixels before any pixel is decoded, and Ctrl-C
while the program loads is one line and exit status 130."""
import os
import sys

import numpy as np
import pytest
from offline_inputs import png_declaring, scene, write_bag, write_pngs

from matte_ros.tools.offline.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")




@pytest.fixture
def folder(tmp_path):
    plate, frames = scene(10)
    write_pngs(tmp_path / "in", frames)
    write_pngs(tmp_path / "p", [plate])
    return tmp_path


def run(*args, model_path):
    return main([*map(str, args), "--checkpoint", model_path, "--device", "cpu", "--quiet"])


def one_line(capsys, *words):
    err = capsys.readouterr().err
    assert err.startswith("matte_offline: error:") and err.count("\n") == 1 and "Traceback" not in err, err
    assert all(w in err for w in words), err


@pytest.mark.parametrize("flags,words", [
    (["--bench", "0"], ["--bench", "at least 1, got 0"]),
    (["--bench", "-3"], ["--bench", "got -3"]),
    (["--fps", "0", "--format", "video"], ["--fps", "more than 0"]),
    (["--fps", "-5"], ["--fps", "got -5"]),
    (["--fps", "nan"], ["--fps", "finite"]),
    (["--fps", "inf"], ["--fps", "finite"]),
    (["--backbone-scale", "2"], ["--backbone-scale", "[1/64, 1/2]"]),
    (["--backbone-scale", "nan"], ["--backbone-scale", "finite"]),
    (["--refine-threshold", "1.5"], ["--refine-threshold", "[0, 1]"]),
    (["--refine-sample-pixels", "3"], ["--refine-sample-pixels", "in 16..100000000, got 3"]),
    (["--max-frame-pixels", "0"], ["--max-frame-pixels", "got 0"]),
    (["--max-frame-pixels", "1e9"], ["--max-frame-pixels", "invalid int value"]),
    (["--device", "gpu"], ["--device", "unknown device 'gpu'"]),
    (["--composite-bg", "300,0,0", "--output-types", "composite"], ["--composite-bg", "0..255"]),
    (["--output-types", ","], ["--output-types", "is empty"]),
])
def test_numeric_flags_are_refused_as_they_are_parsed(folder, model_path, capsys, no_engine, flags, words):
    with pytest.raises(SystemExit) as e:
        run(folder / "in", "-o", folder / "out", "--plate-frames", "1", *flags, model_path=model_path)
    assert e.value.code == 2
    one_line(capsys, *words)
    assert not (folder / "out").exists()


@pytest.mark.parametrize("plate", [["--plate-frames", "0"], ["--plate-time", "2:1"], ["--plate-time", "nan:1"],
                                   ["--plate-time", "-1:1"]])
def test_plate_flags_are_refused_as_they_are_parsed(folder, model_path, capsys, no_engine, plate):
    with pytest.raises(SystemExit) as e:
        run(folder / "in", "-o", folder / "out", *plate, model_path=model_path)
    assert e.value.code == 2
    one_line(capsys, plate[0])


@pytest.mark.parametrize("flags,words", [
    (["--plate-frames", "500"], ["--plate-frames 500 is more than the 10 frames"]),
    (["--plate-frames", "1", "--fps", "25"], ["--fps", "this run writes png"]),
    (["--plate-frames", "1", "--video-codec", "prores"], ["--video-codec", "applies to video"]),
    (["--plate-frames", "1", "--bag-storage", "mcap"], ["--bag-storage", "applies to bag"]),
    (["--plate-frames", "1", "--format", "video", "--alpha-bits", "16"], ["--alpha-bits 16", "video alpha"]),
    (["--plate-frames", "1", "--composite-bg", "0,0,255"], ["--composite-bg", "no composite"]),
    (["--plate-frames", "1", "--refine-mode", "sampling", "--refine-threshold", "0.2"], ["--refine-threshold"]),
    (["--plate-frames", "1", "--refine-mode", "full", "--refine-sample-pixels", "800"], ["--refine-sample-pixels"]),
])
def test_nonsensical_values_and_combinations_are_refused_before_the_model_loads(folder, model_path, capsys,
                                                                               no_engine, flags, words):
    assert run(folder / "in", "-o", folder / "out", *flags, model_path=model_path) == 2
    one_line(capsys, *words)
    assert not (folder / "out").exists()


# ---- image headers before pixels ------------------------------------------------------------------
@pytest.mark.parametrize("where", ["plate", "background", "composite"])
def test_a_huge_declared_image_is_refused_from_its_header(folder, model_path, capsys, no_engine, where):
    huge = folder / "huge.png"
    huge.write_bytes(png_declaring(60000, 60000))
    args = {"plate": ["--plate", huge], "background": ["--plate-folder", folder / "bg"],
            "composite": ["--plate-frames", "1", "--output-types", "composite", "--composite-bg", huge]}[where]
    if where == "background":
        write_pngs(folder / "bg", [np.zeros((64, 96, 3), np.uint8)] * 10, "b")
        os.replace(huge, folder / "bg" / "b000.png")
    assert run(folder / "in", "-o", folder / "out", *args, model_path=model_path) == 2
    one_line(capsys, "60000x60000 = 3600000000 pixels, more than --max-frame-pixels 100000000")


def test_a_huge_frame_mid_folder_fails_the_run_without_decoding_it(folder, model_path, capsys):
    (folder / "in" / "f005.png").write_bytes(png_declaring(30000, 30000))
    assert run(folder / "in", "-o", folder / "out", "--plate", folder / "p" / "f000.png",
               model_path=model_path) == 2
    one_line(capsys, "frame", "f005.png is 30000x30000", "outputs were removed")
    assert not (folder / "out").exists()


def test_opencvs_own_size_limit_is_one_line_too(folder, model_path, capsys, no_engine):
    (folder / "huge.png").write_bytes(png_declaring(60000, 60000))
    assert run(folder / "in", "-o", folder / "out", "--plate", folder / "huge.png", "--max-frame-pixels",
               str(10 ** 10), model_path=model_path) == 2
    one_line(capsys, "cannot read image", "huge.png", "OpenCV")


@pytest.mark.parametrize("compressed", [False, True])
def test_a_huge_bag_message_is_refused_from_its_header(tmp_path, model_path, capsys, compressed):
    plate, frames = scene(3)
    write_bag(str(tmp_path / "rec"), frames, compressed=compressed, huge=[2])
    assert run(tmp_path / "rec", "-o", tmp_path / "out", "--plate-frames", "1", model_path=model_path) == 2
    one_line(capsys, "message 2 on /camera/image", "60000x60000", "--max-frame-pixels")
    assert sorted(os.listdir(tmp_path)) == ["rec"]


# ---- Ctrl-C while loading ---------------------------------------------------------------------------
def test_ctrl_c_while_the_libraries_load_is_one_line(interrupt, folder, model_path):
    rc, out, err = interrupt([sys.executable, "-m", "matte_ros.tools.offline", str(folder / "in"), "-o",
                              str(folder / "out"), "--plate-frames", "1", "--checkpoint", model_path,
                              "--device", "cpu"], timeout=60)
    assert rc == 130, err
    assert err == "matte_offline: interrupted\n"
    assert not (folder / "out").exists()

