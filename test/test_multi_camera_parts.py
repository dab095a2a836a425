"""The pieces of a node matting several cameras, without ROS: fair turns, camera names, per-camera plates."""
import threading
import time

import numpy as np
import pytest
from node_harness import tiny_model

from matte_ros.core.engine import MattingEngine, NoBackgroundError
from matte_ros.core.synthetic import SceneSequence
from matte_ros.ros import names
from matte_ros.ros.camera import plate_dir_of
from matte_ros.ros.cameras import worker_plan
from matte_ros.ros.params import check_value
from matte_ros.ros.scheduler import FairTurns


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def one_turn(turns):
    """A worker's turn: take (without waiting) and finish the frame at once."""
    turn = turns.take(0)
    if turn is not None:
        turns.done(turn[0])
    return turn


def test_the_camera_waiting_longest_goes_first_with_its_newest_frame():
    clock = Clock()
    turns = FairTurns(["a", "b", "c"], clock)
    assert not turns.put("b", "b1")
    clock.t += 1
    assert not turns.put("a", "a1")
    clock.t += 1
    assert turns.put("a", "a2")               # a1 not taken yet: replaced (dropped)
    assert turns.waiting() == 2
    assert one_turn(turns) == ("b", "b1", 100.0)  # b waits since 100, a since 101
    assert one_turn(turns) == ("a", "a2", 102.0)
    assert one_turn(turns) is None                # nothing waits; c never published and held no one back


def test_a_fast_camera_does_not_starve_a_slow_one():
    clock = Clock()
    turns = FairTurns(["fast", "slow"], clock)
    served = []
    for i in range(20):
        clock.t += 0.01
        turns.put("fast", i)
        if i == 3:
            turns.put("slow", "s")
        served.append(one_turn(turns)[0])
        clock.t += 0.01
        turns.put("fast", i + 100)              # the fast camera has a newer frame before every turn
    assert "slow" in served and served.index("slow") <= 5


def test_a_waiting_camera_keeps_its_place_when_a_newer_frame_replaces_its_frame():
    clock = Clock()
    turns = FairTurns(["a", "b"], clock)
    turns.put("a", "a1")
    clock.t = 101.0
    turns.put("b", "b1")
    assert one_turn(turns)[:2] == ("a", "a1")
    clock.t = 101.5
    turns.put("a", "a2")
    clock.t = 102.0
    assert turns.put("b", "b2")                 # b1 replaced: b has waited since 101, a since 101.5
    key, frame, arrived = one_turn(turns)
    assert (key, frame, arrived) == ("b", "b2", 102.0)     # the newest frame, with its own arrival time
    assert one_turn(turns)[:2] == ("a", "a2")


def test_interval_holds_a_camera_back_and_lets_the_others_go():
    clock = Clock()
    turns = FairTurns(["a", "b"], clock)
    turns.set_interval(0.5)
    turns.put("a", 1)
    assert one_turn(turns)[:2] == ("a", 1)
    clock.t += 0.1
    turns.put("a", 2)
    turns.put("b", 1)
    assert one_turn(turns)[:2] == ("b", 1)        # a's turn is not due for 0.4 s
    assert one_turn(turns) is None
    clock.t += 0.4
    assert one_turn(turns)[:2] == ("a", 2)


def test_a_camera_being_matted_is_not_handed_to_a_second_worker():
    clock = Clock()
    turns = FairTurns(["a", "b"], clock)
    turns.put("a", "a1")
    clock.t += 1
    turns.put("b", "b1")
    assert turns.take(0)[:2] == ("a", "a1")     # worker 1 mattes a1
    clock.t += 1
    turns.put("a", "a2")                        # a's next frame arrives meanwhile
    assert turns.take(0)[:2] == ("b", "b1")     # worker 2: b, not a second frame of a
    assert turns.take(0) is None                # a2 waits for a1 to finish
    turns.done("a")
    assert turns.take(0)[:2] == ("a", "a2")


@pytest.mark.parametrize("threads,cameras,parallel,plan", [
    (2, 1, True, (1, 2)),       # one camera: one worker on every thread, as a node always had
    (2, 2, True, (2, 1)),       # two cameras on 2 threads: two frames at once, one thread each
    (4, 2, True, (2, 2)),
    (2, 4, True, (2, 1)),       # at most one worker per thread
    (3, 2, True, (2, 1)),
    (4, 3, False, (1, 4)),      # CUDA: one frame at a time
    (0, 2, True, (1, 1))])
def test_worker_plan_splits_the_threads_between_one_worker_per_camera(threads, cameras, parallel, plan):
    assert worker_plan(threads, cameras, parallel) == plan


def test_take_waits_for_a_frame_and_close_ends_it():
    turns = FairTurns(["a"])
    threading.Timer(0.05, turns.put, ("a", "x")).start()
    got = turns.take(5.0)
    assert got is not None and got[:2] == ("a", "x")
    threading.Timer(0.05, turns.close).start()
    t = time.monotonic()
    assert turns.take(5.0) is None and time.monotonic() - t < 2.0
    with pytest.raises(KeyError):
        turns.put("nobody", 1)


@pytest.mark.parametrize("text,expected", [("", ()), ("left,right", ("left", "right")),
                                           ("[left, right]", ("left", "right")),
                                           ("/robot/left robot/right/", ("robot/left", "robot/right"))])
def test_camera_namespaces(text, expected):
    assert names.camera_namespaces(text) == expected
    assert check_value("cameras", text) is None


@pytest.mark.parametrize("text,reason", [("left,left", "more than once"), ("left,2nd", "'2nd' is not a ROS"),
                                         ("a-b", "not a ROS namespace")])
def test_bad_camera_lists_are_refused_with_the_reason(text, reason):
    with pytest.raises(ValueError, match=reason):
        names.camera_namespaces(text)
    assert reason in check_value("cameras", text)


def test_each_camera_has_the_names_of_a_node_in_its_namespace():
    for name in (names.ALPHA, names.IMAGE, names.BACKGROUND, names.CAPTURE_SERVICE, names.CLEAR_SERVICE):
        assert "/" + names.in_camera(name, "left") == names.resolve(name, "/left")
    assert names.in_camera(names.DIAGNOSTICS, "left") == "/diagnostics"
    assert plate_dir_of("/var/plates", "robot/left") == "/var/plates/robot_left"
    assert plate_dir_of("", "left") == ""
    # the node's own camera '' (no cameras parameter): the node's own names and plate_path
    for name in (names.ALPHA, names.CAPTURE_SERVICE):
        assert names.in_camera(name, "") == name
    assert plate_dir_of("/var/plates", "") == "/var/plates"


def test_engines_with_own_plates_share_the_network_and_keep_their_own_plates():
    scene = SceneSequence(48, 64, seed=3, noise=0.0)
    other = SceneSequence(48, 64, seed=9, noise=0.0)
    base = MattingEngine(model=tiny_model(), device="cpu")
    left, right = base.with_own_plates(), base.with_own_plates()
    assert left.model is base.model and right.model is base.model
    left.set_background(scene.background())
    right.set_background(other.background())
    assert base.plate_sizes() == [] and left.plate_sizes() == right.plate_sizes() == [(48, 64)]
    assert np.array_equal(left.background((48, 64)), scene.background())
    assert np.array_equal(right.background((48, 64)), other.background())
    frame = scene.frame(5)[0]
    with pytest.raises(NoBackgroundError):
        base.process(frame)
    base.set_background(scene.background())
    assert np.array_equal(left.process(frame).alpha, base.process(frame).alpha)     # its own plate, the one network
    assert not np.allclose(right.process(frame).alpha, left.process(frame).alpha, atol=1e-3)
    assert right.clear_background() == 1 and left.plate_sizes() == [(48, 64)]
    with pytest.raises(NoBackgroundError):
        right.process(frame)


def test_engines_with_own_plates_matte_at_the_same_time_on_the_cpu_with_the_results_of_one_at_a_time():
    scenes = [SceneSequence(64, 96, seed=s, noise=0.0) for s in (3, 9)]
    base = MattingEngine(model=tiny_model(), device="cpu")
    assert base.parallel_frames
    twins = [base.with_own_plates() for _ in scenes]
    assert twins[0]._lock is not twins[1]._lock
    for twin, scene in zip(twins, scenes):
        twin.set_background(scene.background())
    frames = [[scene.frame(i)[0] for i in range(4, 10)] for scene in scenes]
    alone = [[twin.process(f).alpha for f in fs] for twin, fs in zip(twins, frames)]
    together = [None, None]

    def run(k):
        together[k] = [twins[k].process(f).alpha for f in frames[k]]
    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(alone, together):
        assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_the_node_own_camera_keeps_the_lines_of_a_one_camera_node_and_the_others_say_which():
    from matte_ros.ros.camera import LINES
    where = {"topic": "/image", "service": "/matte_node/capture_background", "camera": "/matte_node"}
    left = {"topic": "/left/image", "service": "/left/matte_node/capture_background", "camera": "/left/matte_node"}

    def own(line, **values):
        return LINES[line][0].format(**where, **values)

    def several(line, **values):
        return LINES[line][1].format(**left, **values)
    assert own("no_plate") == ("no background plate yet, nothing is published: with the scene empty, call "
                               "/matte_node/capture_background (std_srvs/srv/Trigger)")
    assert own("plate_differs", difference=0.93, limit=0.6).startswith(
        "the frame differs from the plate in 93% of its pixels (more than plate_warn_difference 60%): ")
    assert own("cleared", message="cleared 1 plate(s)") == "clear_background: cleared 1 plate(s)"
    assert own("frame_error", error="KeyError: 1") == "frame dropped by an unexpected error: KeyError: 1"
    assert several("cleared", message="cleared 1 plate(s)") == "/left/matte_node/clear_background: cleared 1 plate(s)"
    assert several("capture_failed", message="no frames") == "/left/matte_node/capture_background failed: no frames"
    assert several("frame_error", error="E: 1") == "frame on /left/image dropped by an unexpected error: E: 1"
