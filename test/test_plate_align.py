"""The plate's one aligner (core/plate/align.py), used by upkeep and by matte_offline --align: every
method recovers a known camera motion of a textured plate, to its measured accuracy; a plate with
nothing to match is left as it is; the frame's pixels stand in where the warped plate does not reach."""
import cv2
import numpy as np
import pytest
from offline_inputs import scene

from matte_ros.core.plate import ALIGN_METHODS, DEFAULT_METHOD, align, estimate_warp
from matte_ros.tools.bench_align import corner_error, true_warp

GRID = np.float32([[x, y] for x in range(40, 300, 40) for y in range(40, 220, 40)]).reshape(-1, 1, 2)


def moved(plate, warp):
    h, w = plate.shape[:2]
    return cv2.warpPerspective(plate, warp, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


@pytest.mark.parametrize("method, px", [("orb", 2.5), ("sift", 0.5), ("orb+ecc", 0.25), ("ecc", 0.25)])
def test_a_camera_shift_is_undone(method, px):
    plate, _ = scene(0, 240, 320)
    frame = moved(plate, true_warp(320, 240, 3, -2, 0.0))
    inner = (slice(20, -20), slice(20, -20))
    before = np.abs(plate[inner].astype(int) - frame[inner]).mean()
    result = align(plate, frame, method)
    assert result.warp is not None
    shift = cv2.perspectiveTransform(GRID, result.warp) - GRID
    assert np.abs(shift - [3, -2]).max() < px
    assert np.abs(result.plate[inner].astype(int) - frame[inner]).mean() < before / 4


def test_the_default_follows_a_large_motion_that_ecc_alone_misses():
    plate, _ = scene(0, 240, 320)
    truth = true_warp(320, 240, 15, 10, 2.0)
    frame = moved(plate, truth)
    assert DEFAULT_METHOD == "orb+ecc"
    assert corner_error(align(plate, frame, DEFAULT_METHOD).warp, truth, 320, 240) < 0.6
    assert corner_error(align(plate, frame, "ecc").warp, truth, 320, 240) > 1.0       # None counts as inf


def test_nothing_to_match_leaves_the_plate_and_the_frame_fills_what_the_plate_misses():
    flat = np.full((120, 160, 3), 128, np.uint8)
    for method in ALIGN_METHODS:
        result = align(flat, flat, method)
        assert result.warp is None and result.plate is flat
    plate, _ = scene(0, 240, 320)
    frame = moved(plate, true_warp(320, 240, 12, 0, 0.0))
    frame[:, :12] = (255, 0, 255)                                # what the plate cannot show
    result = align(plate, frame, "orb+ecc")
    assert np.array_equal(result.plate[:, :11], frame[:, :11])


def test_estimate_warp_checks_its_arguments_and_ignores_a_masked_subject():
    plate, _ = scene(0, 120, 160)
    grey = cv2.cvtColor(plate, cv2.COLOR_RGB2GRAY)
    with pytest.raises(ValueError, match="alignment method must be one of"):
        estimate_warp(grey, grey, "akaze")
    with pytest.raises(ValueError, match="motion model must be one of"):
        estimate_warp(grey, grey, "ecc", "affine")
    frame = cv2.cvtColor(moved(plate, true_warp(160, 120, 2, 1, 0.0)), cv2.COLOR_RGB2GRAY)
    frame[30:100, 50:110] = 250                                  # a subject that does not move with the camera
    mask = np.ones_like(grey)
    mask[24:106, 44:116] = 0
    w = estimate_warp(grey, frame, "ecc", "translation", mask)
    assert abs(w[0, 2] - 2) < 0.25 and abs(w[1, 2] - 1) < 0.25
    assert estimate_warp(grey, frame, "ecc", "translation", np.zeros_like(grey)) is None   # no background seen
