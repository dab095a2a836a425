"""The capture service against what happens while it waits, in one process: a clear of the plates
during the capture, a frame that arrived before the call. Tiny random-weight model on 64x48 frames."""
import os

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
pytestmark = pytest.mark.ros

from node_harness import Harness, node_fixtures, wait_for  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from matte_ros.core.plate import load_plates, plate_file  # noqa: E402

H, W = 48, 64

context, model, scene, harness = node_fixtures((H, W))


def _latched(h: Harness) -> np.ndarray:
    return np.frombuffer(bytes(h.bgs[-1].data), np.uint8).reshape(H, W, 3)


def test_clearing_the_plates_during_a_capture_keeps_the_captured_plate(context, model, scene, tmp_path):
    """The clear answers at once and removes the old plate (memory and disk); the capture asked for
    before it goes on and its plate is the one installed, stored and latched afterwards."""
    plate_dir = str(tmp_path / "plates")
    stored = plate_file(plate_dir, (H, W))
    h = Harness(context, model, params={"plate_path": plate_dir})
    try:
        old, new = scene.background() // 2, scene.background()
        assert h.capture(old).success
        future = h.capture_cli.call_async(Trigger.Request())
        camera = h.node.camera
        assert wait_for(lambda: camera._capture is not None and not camera._capture.done, 10)   # waiting for frames
        cleared = h.call(h.clear_cli, timeout=10)
        assert not future.done()                    # the clear did not end the capture
        assert (cleared.success, cleared.message) == (True, f"cleared 1 plate(s), deleted {stored}")
        assert not h.engine.has_background((H, W)) and os.listdir(plate_dir) == []
        assert wait_for(future.done, 20, 0.02, lambda: h.send(new))
        res = future.result()
        assert res.success and res.message == f"plate 64x48 averaged from 3 frames, saved to {stored}"
        np.testing.assert_array_equal(h.engine.background((H, W)), new)
        plates, problems = load_plates(plate_dir)
        assert problems == [] and list(plates) == [(H, W)]
        np.testing.assert_array_equal(plates[(H, W)], new)
        assert wait_for(lambda: h.bgs and np.array_equal(_latched(h), new), 5)
    finally:
        h.close()


@pytest.mark.parametrize("harness", [{"params": {"plate_frames": 1, "max_rate": 0.01}}], indirect=True)
def test_a_frame_that_arrived_before_the_call_is_not_part_of_the_plate(harness, scene):
    node, subject, empty = harness.node, scene.frame(5)[0], scene.background()
    # max_rate 0.01 Hz: after one frame the worker waits 100 s, so the next frame stays in the mailbox
    harness.send(subject)
    assert wait_for(lambda: node.stats.counts["refused"] == 1, 10)      # matted: no plate yet
    harness.send(subject)                           # arrives now, before the call
    assert wait_for(lambda: node.stats.counts["received"] == 2, 10)
    future = harness.capture_cli.call_async(Trigger.Request())
    assert wait_for(lambda: node.camera._capture is not None, 10)
    assert all(r.successful for r in node.set_parameters([Parameter("max_rate", value=0.0)]))   # wake the worker
    assert harness.settled()                        # the waiting frame was taken: refused, not averaged
    assert node.camera._capture.count == 0 and not future.done()
    assert wait_for(future.done, 20, 0.02, lambda: harness.send(empty))
    assert future.result().success, future.result().message
    np.testing.assert_array_equal(harness.engine.background((H, W)), empty)
