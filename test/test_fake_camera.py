"""The synthetic camera (matte_ros.ros.fake_camera): frame schedule, encoding, and the running node."""
import threading

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
pytestmark = pytest.mark.ros

from node_harness import context_fixture, wait_for  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from matte_ros.core.synthetic import SceneSequence  # noqa: E402
from matte_ros.core.synthetic.disturbances import DisturbedSequence  # noqa: E402
from matte_ros.ros.fake_camera import FakeCamera, camera_info, encode_compressed, scene_frame  # noqa: E402
from matte_ros.ros.imaging import compressed_to_rgb, image_to_rgb, msg_to_alpha  # noqa: E402


def test_empty_scene_first_then_the_subject():
    scene = SceneSequence(48, 64, seed=1, noise=0.0)
    for n in range(3):
        src, pha = scene_frame(scene, n, empty_frames=3)
        assert src.shape == (48, 64, 3) and src.dtype == np.uint8
        assert pha.shape == (48, 64) and pha.max() == 0.0
        np.testing.assert_array_equal(src, scene.background())      # noise 0: the clean plate
    src, pha = scene_frame(scene, 3, empty_frames=3)
    want_src, want_pha = scene.frame(0)                               # the subject starts at scene frame 0
    np.testing.assert_array_equal(src, want_src)
    np.testing.assert_array_equal(pha, want_pha)
    assert pha.max() > 0.5
    assert (scene_frame(scene, 0, empty_frames=0)[1] == scene.frame(0)[1]).all()


def test_empty_frames_carry_sensor_noise():
    scene = SceneSequence(48, 64, seed=1, noise=0.02)
    a, b = scene_frame(scene, 0, 5)[0], scene_frame(scene, 1, 5)[0]
    assert not np.array_equal(a, b)
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 15


def test_compressed_round_trip():
    rgb = SceneSequence(48, 64, seed=2, noise=0.0).frame(0)[0]
    data, fmt = encode_compressed(rgb, "png")
    assert fmt == "rgb8; png compressed bgr8"
    np.testing.assert_array_equal(compressed_to_rgb(CompressedImage(format=fmt, data=data)), rgb)  # lossless
    data, fmt = encode_compressed(rgb, "jpeg")
    back = compressed_to_rgb(CompressedImage(format=fmt, data=data))
    assert back.shape == rgb.shape and np.abs(back.astype(int) - rgb.astype(int)).mean() < 8
    with pytest.raises(ValueError, match="png or jpeg"):
        encode_compressed(rgb, "webp")


context = context_fixture()


def test_node_publishes_frames_and_true_alpha_with_matching_headers(context):
    cam = FakeCamera(context=context, parameter_overrides=[
        Parameter("width", value=64), Parameter("height", value=48), Parameter("rate", value=50.0),
        Parameter("empty_seconds", value=0.5), Parameter("frame_id", value="cam_test"),
        Parameter("compressed", value="png")])
    sub = rclpy.create_node("fake_camera_listener", context=context)
    frames, alphas, packed = [], [], []
    subs = [sub.create_subscription(Image, "image", frames.append, 100),
            sub.create_subscription(Image, "/fake_camera/alpha_true", alphas.append, 100),
            sub.create_subscription(CompressedImage, "image/compressed", packed.append, 100)]
    # the camera publishes only once spun: spin after its publishers matched the listener, so that
    # the listener gets every frame from the first (reliable, depth 100)
    pubs = (cam._pub, cam._pub_alpha, cam._pub_c)
    assert wait_for(lambda: all(p.get_subscription_count() > 0 for p in pubs)
                    and all(r.get_publisher_count() > 0 for r in subs), 10)
    ex = SingleThreadedExecutor(context=context)
    ex.add_node(cam)
    ex.add_node(sub)
    t = threading.Thread(target=ex.spin, daemon=True)
    t.start()
    by_stamp = {}

    def subject_matched():          # an alpha showing the subject with its frame and compressed copy
        by_stamp.update({_stamp(m): m for m in list(frames)})
        packed_stamps = {_stamp(c) for c in list(packed)}
        return [a for a in list(alphas) if msg_to_alpha(a).max() > 0.5 and _stamp(a) in by_stamp
                and _stamp(a) in packed_stamps]
    try:
        assert cam.empty_frames == 25
        assert wait_for(subject_matched, 60), f"{len(frames)} frames, {len(alphas)} alphas, {len(packed)} compressed"
    finally:
        ex.shutdown()
        t.join(5)
        cam.destroy_node()
        sub.destroy_node()
    matched = [(a, by_stamp[_stamp(a)]) for a in alphas if _stamp(a) in by_stamp]
    for a, f in matched:
        assert a.header.frame_id == f.header.frame_id == "cam_test"
        assert (a.width, a.height, a.encoding) == (64, 48, "32FC1")
        assert (f.width, f.height, f.encoding) == (64, 48, "rgb8")
    # the first 25 frames are the empty scene, later ones show the subject
    empty = next(i for i, a in enumerate(alphas) if msg_to_alpha(a).max() > 0.0)
    assert 0 < empty <= 25 and msg_to_alpha(alphas[-1]).max() > 0.5
    # the compressed copy decodes to the raw frame with the same header
    c = next(c for c in reversed(packed) if _stamp(c) in by_stamp)
    np.testing.assert_array_equal(compressed_to_rgb(c), image_to_rgb(by_stamp[_stamp(c)]))


def _stamp(msg):
    return msg.header.stamp.sec, msg.header.stamp.nanosec


def test_bad_compressed_option_is_refused(context):
    with pytest.raises(ValueError, match="compressed must be one of '', 'png', 'jpeg', got 'gif'"):
        FakeCamera(context=context, parameter_overrides=[Parameter("compressed", value="gif")])


def test_disturbance_parameters_put_the_scene_through_the_disturbance(context):
    params = [Parameter("width", value=64), Parameter("height", value=48), Parameter("seed", value=4),
              Parameter("disturbance", value="exposure_step"), Parameter("disturbance_start", value=2)]
    cam = FakeCamera(context=context, parameter_overrides=params)
    try:
        want = DisturbedSequence(SceneSequence(48, 64, seed=4, noise=0.01), "exposure_step", seed=4, start=2)
        for i in (0, 5):
            src, pha = scene_frame(cam.scene, i, 0)
            want_src, want_pha = want.frame(i)
            np.testing.assert_array_equal(src, want_src)
            np.testing.assert_array_equal(pha, want_pha)
        assert not np.array_equal(scene_frame(cam.scene, 5, 0)[0], SceneSequence(48, 64, seed=4).frame(5)[0])
    finally:
        cam.destroy_node()
    with pytest.raises(ValueError, match="disturbance must be one of 'none', 'exposure_step'"):
        FakeCamera(context=context, parameter_overrides=[Parameter("disturbance", value="earthquake")])


def test_camera_info_is_a_centred_pinhole_with_60_degrees_across():
    info = camera_info(64, 48, Header(frame_id="cam"))
    f = info.k[0]
    assert info.header.frame_id == "cam" and (info.width, info.height) == (64, 48)
    assert np.isclose(2 * np.degrees(np.arctan(32 / f)), 60.0)
    assert list(info.k) == [f, 0.0, 31.5, 0.0, f, 23.5, 0.0, 0.0, 1.0] and list(info.d) == [0.0] * 5


def test_waits_for_the_plate_however_long_it_takes(context):
    cam = FakeCamera(context=context, namespace="/wait", parameter_overrides=[
        Parameter("width", value=64), Parameter("height", value=48), Parameter("rate", value=50.0),
        Parameter("empty_seconds", value=0.1), Parameter("wait_for_plate", value=True)])
    peer = rclpy.create_node("plate_publisher", context=context, namespace="/wait")
    alphas, infos = [], []
    peer.create_subscription(Image, "/wait/fake_camera/alpha_true", alphas.append, 200)
    peer.create_subscription(CameraInfo, "/wait/camera_info", infos.append, 200)
    plate_pub = peer.create_publisher(Image, "matte/background",
                                      QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
    ex = SingleThreadedExecutor(context=context)
    ex.add_node(cam)
    ex.add_node(peer)
    t = threading.Thread(target=ex.spin, daemon=True)
    t.start()
    try:
        # ten times empty_seconds and still empty: no plate yet
        assert wait_for(lambda: len(alphas) >= 10 * cam.empty_frames + 5, 20)
        assert cam.subject_from is None and all(msg_to_alpha(a).max() == 0.0 for a in list(alphas))
        assert infos and infos[-1].header.frame_id == "fake_camera"
        plate_pub.publish(Image(height=48, width=64, encoding="rgb8", step=192, data=bytes(48 * 192)))
        assert wait_for(lambda: cam.subject_from is not None, 10)
        start = cam.subject_from
        assert wait_for(lambda: msg_to_alpha(alphas[-1]).max() > 0.5, 10)   # then the subject enters
        assert cam.count >= start + cam.empty_frames
    finally:
        ex.shutdown()
        t.join(5)
        cam.destroy_node()
        peer.destroy_node()
