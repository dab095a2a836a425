"""average_frames: the offline tool's plate average is PlateCapture's, stillness check included."""
import numpy as np
import pytest

from matte_ros.core.plate import MAX_MOVING, PlateCapture, average_frames


def still(n, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 200, (32, 48, 3)).astype(np.int16)
    return [np.clip(base + rng.integers(-3, 4, base.shape), 0, 255).astype(np.uint8) for _ in range(n)]


def test_the_average_of_still_frames_is_the_captures():
    frames = still(5)
    res = average_frames(frames)
    capture = PlateCapture(5)
    for f in frames:
        capture.add(f)
    assert res.ok and res.frames == 5 and np.array_equal(res.plate, capture.wait(0).plate)
    assert np.array_equal(res.plate, np.rint(np.mean(frames, axis=0)).astype(np.uint8))
    first = average_frames(iter(frames), limit=2)
    assert first.frames == 2 and np.array_equal(first.plate, np.rint(np.mean(frames[:2], axis=0)).astype(np.uint8))


def test_frames_that_were_not_still_give_no_plate_and_say_so():
    frames = still(4)
    frames[2][4:28, 8:40] = 255                                   # a third of the picture changed
    res = average_frames(frames)
    assert not res.ok and res.message.startswith("the scene was not still:") and res.frames == 4
    assert average_frames(frames, max_moving=1.0).ok                # the check off
    assert MAX_MOVING < 0.3


def test_no_frames_or_mixed_sizes_are_refused():
    with pytest.raises(ValueError, match="no frames"):
        average_frames([])
    with pytest.raises(ValueError, match="different sizes"):
        average_frames(still(2) + [np.zeros((16, 16, 3), np.uint8)])
