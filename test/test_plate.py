"""Plate averaging and persistence (matte_ros.core.plate): pure, no ROS."""
import os
import threading

import cv2
import numpy as np
import pytest

from matte_ros.core.plate import MAX_MOVING, PlateCapture, load_plates, plate_file, remove_plates, save_plate, thumbnail
from matte_ros.core.synthetic import SceneSequence


def _frame(value, h=6, w=8):
    return np.full((h, w, 3), value, np.uint8)


def test_average_of_the_next_n_frames_rounds_to_nearest():
    cap = PlateCapture(3)
    assert not cap.add(_frame(10))
    assert not cap.add(_frame(11))
    assert cap.count == 2 and not cap.done
    assert cap.add(_frame(13))            # (10 + 11 + 13) / 3 = 11.33 -> 11
    res = cap.wait(0)
    assert res.ok and res.frames == 3
    assert res.plate.dtype == np.uint8 and res.plate.shape == (6, 8, 3)
    assert (res.plate == 11).all()
    assert res.message == "plate 8x6 averaged from 3 frames"


def test_average_is_per_pixel_and_exact_at_half():
    a = np.zeros((2, 2, 3), np.uint8)
    b = np.zeros((2, 2, 3), np.uint8)
    a[0, 0] = (0, 100, 255)
    b[0, 0] = (1, 200, 255)
    cap = PlateCapture(2)
    cap.add(a)
    cap.add(b)
    plate = cap.wait(0).plate
    # 0.5 rounds half to even (numpy rint), 150 and 255 exact, untouched pixels stay 0
    assert plate[0, 0].tolist() == [0, 150, 255]
    assert plate[1:, :].max() == 0 and plate[0, 1].max() == 0


def test_frames_after_completion_do_not_change_the_plate():
    cap = PlateCapture(1)
    assert cap.add(_frame(50))
    assert cap.add(_frame(200))
    assert (cap.wait(0).plate == 50).all()


def test_size_change_restarts_the_average():
    cap = PlateCapture(2)
    cap.add(_frame(100, 6, 8))
    cap.add(_frame(20, 4, 4))              # camera switched mode: start over at 4x4
    assert cap.restarts == 1 and cap.count == 1 and not cap.done
    cap.add(_frame(30, 4, 4))
    res = cap.wait(0)
    assert res.plate.shape == (4, 4, 3) and (res.plate == 25).all()


def test_bad_arguments_raise_value_error():
    with pytest.raises(ValueError, match="at least 1"):
        PlateCapture(0)
    with pytest.raises(ValueError, match="uint8"):
        PlateCapture(1).add(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        PlateCapture(1).add(np.zeros((4, 4), np.uint8))


def test_wait_times_out_then_cancel_wakes_a_waiting_thread():
    cap = PlateCapture(5)
    assert cap.wait(0.01) is None
    got = []
    t = threading.Thread(target=lambda: got.append(cap.wait(5.0)))
    t.start()
    cap.add(_frame(1))
    cap.cancel("no frames within 1.0 s")
    t.join(2.0)
    assert not t.is_alive()
    assert not got[0].ok and got[0].frames == 1 and got[0].message == "no frames within 1.0 s"
    cap.cancel("again")                    # a second cancel keeps the first result
    assert cap.wait(0).message == "no frames within 1.0 s"


def test_save_and_load_round_trip_per_resolution(tmp_path):
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    odd = rng.integers(0, 256, (7, 5, 3), dtype=np.uint8)
    d = str(tmp_path / "plates")
    assert save_plate(d, small) == os.path.join(d, "plate_64x48.png")
    save_plate(d, odd)
    plates, problems = load_plates(d)
    assert problems == []
    assert sorted(plates) == [(7, 5), (48, 64)]
    np.testing.assert_array_equal(plates[(48, 64)], small)   # PNG is lossless, RGB order kept
    np.testing.assert_array_equal(plates[(7, 5)], odd)
    # the file holds the RGB content in OpenCV's BGR order, so other tools see true colours
    np.testing.assert_array_equal(cv2.imread(plate_file(d, (48, 64)))[:, :, ::-1], small)
    assert not [n for n in os.listdir(d) if n.startswith(".tmp-")]


def test_load_skips_bad_files_with_a_reason(tmp_path):
    d = tmp_path
    (d / "plate_10x10.png").write_bytes(b"not a png")
    cv2.imwrite(str(d / "plate_20x10.png"), np.zeros((4, 4, 3), np.uint8))    # name says 20x10
    cv2.imwrite(str(d / "notes.png"), np.zeros((4, 4, 3), np.uint8))          # not a plate name
    save_plate(str(d), _frame(9, 3, 2))
    plates, problems = load_plates(str(d))
    assert list(plates) == [(3, 2)]
    assert len(problems) == 2
    assert "plate_10x10.png: not a readable image" in problems[0]
    assert "image is 4x4, the name says 20x10" in problems[1]


def test_missing_directory_holds_no_plates(tmp_path):
    assert load_plates(str(tmp_path / "nowhere")) == ({}, [])
    assert remove_plates(str(tmp_path / "nowhere")) == []


def test_remove_one_size_or_all(tmp_path):
    d = str(tmp_path)
    save_plate(d, _frame(1, 4, 6))
    save_plate(d, _frame(2, 8, 6))
    (tmp_path / "keep.txt").write_text("x")
    assert remove_plates(d, (4, 6)) == [plate_file(d, (4, 6))]
    assert remove_plates(d, (4, 6)) == []
    assert remove_plates(d) == [plate_file(d, (8, 6))]
    assert sorted(os.listdir(d)) == ["keep.txt"]


def test_thumbnail_is_the_grey_mean_of_4x4_cells():
    frame = np.zeros((8, 12, 3), np.uint8)
    frame[:4, :4] = (30, 60, 90)            # grey 60 in the top-left cell
    frame[4:, 8:10] = 120                   # half of the bottom-right cell
    t = thumbnail(frame)
    assert t.shape == (2, 3) and t.dtype == np.float32
    np.testing.assert_allclose(t, [[60, 0, 0], [0, 0, 60]], atol=0.01)
    assert thumbnail(np.zeros((6, 9, 3), np.uint8)).shape == (2, 3)     # sizes round up


def _capture(frames, **kwargs):
    cap = PlateCapture(len(frames), **kwargs)
    for f in frames:
        cap.add(f)
    return cap.wait(0)


def test_noisy_frames_of_a_still_scene_make_a_plate():
    scene = SceneSequence(48, 64, seed=3, noise=0.03)           # sensor noise sigma 7.6 levels
    frames = [scene.background() for _ in range(10)]
    assert not np.array_equal(frames[0], frames[1])
    res = _capture(frames)
    assert res.ok, res.message
    assert np.abs(res.plate.astype(int) - SceneSequence(48, 64, seed=3, noise=0.0).background()).mean() < 2


def test_someone_walking_through_fails_the_capture():
    scene = SceneSequence(48, 64, seed=3, noise=0.01)
    frames = [scene.frame(n * 6)[0] for n in range(10)]       # the subject walks while frames are averaged
    res = _capture(frames)
    assert not res.ok and res.plate is None and res.frames == 10
    assert res.message.startswith("the scene was not still: ")
    assert "capture again with the scene empty and nothing moving" in res.message
    moved = int(res.message.split(": ")[1].split("%")[0])
    assert moved > 100 * MAX_MOVING


def test_a_small_moving_patch_is_allowed_up_to_max_moving():
    frames = []
    for n in range(4):
        f = np.full((40, 40, 3), 100, np.uint8)
        f[8 * n:8 * n + 4, 0:4] = 250      # a light in a new 4x4 cell each frame: 4 of 100 cells differ from frame 0
        frames.append(f)
    assert _capture(frames, max_moving=0.05).ok
    res = _capture(frames, max_moving=0.02)
    assert not res.ok and "4% of the picture changed while the 4 frames were averaged (at most 2% may)" in res.message
    assert _capture([_frame(0), _frame(255)], max_moving=1.0).ok       # check off
    with pytest.raises(ValueError, match="max_moving"):
        PlateCapture(2, max_moving=1.5)
