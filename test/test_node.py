"""The matting node in one process: frames -> capture -> alpha, malformed input, sizes, services,
parameters. Tiny random-weight model on 64x48 frames; the executor spins in a thread."""
import array
import os
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
pytestmark = pytest.mark.ros

from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402
from node_harness import Harness, node_fixtures, wait_for  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

from matte_ros.core.plate import plate_file  # noqa: E402
from matte_ros.core.synthetic import SceneSequence  # noqa: E402
from matte_ros.ros.fake_camera import encode_compressed  # noqa: E402
from matte_ros.ros.imaging import msg_to_alpha, rgb_to_msg  # noqa: E402

H, W = 48, 64


context, model, scene, harness = node_fixtures((H, W))


def test_capture_then_alpha_and_foreground_carry_the_input_header(harness, scene):
    plate = scene.background()
    res = harness.capture(plate)
    assert res.success, res.message
    assert res.message == "plate 64x48 averaged from 3 frames"
    assert harness.node.engine.plate_sizes() == [(H, W)]
    # the plate is latched on /matte/background (transient local)
    bg = wait_for(lambda: harness.bgs, 5)[-1]
    assert (bg.width, bg.height, bg.encoding, bg.header.frame_id) == (W, H, "rgb8", "cam")
    np.testing.assert_array_equal(np.frombuffer(bytes(bg.data), np.uint8).reshape(H, W, 3), plate)

    src, _ = scene.frame(10)
    header = harness.header("camera_optical_frame")
    msg = rgb_to_msg(src, header, "rgb8")
    alpha = harness.alpha_for(header, resend=lambda: harness.pub.publish(msg))
    assert alpha is not None, "no alpha for the frame"
    assert alpha.header.frame_id == "camera_optical_frame"
    assert (alpha.width, alpha.height, alpha.encoding, alpha.step) == (W, H, "mono8", W)
    # the published matte is the engine's result for this frame and this plate
    want = harness.engine.process(src).alpha
    np.testing.assert_allclose(msg_to_alpha(alpha), want, atol=0.5 / 255 + 1e-6)
    fgr = wait_for(lambda: next((m for m in harness.fgrs if m.header.stamp == header.stamp), None), 5)
    assert (fgr.width, fgr.height, fgr.encoding, fgr.header.frame_id) == (W, H, "rgb8", "camera_optical_frame")
    assert harness.comps == []                       # publish_composite defaults to false


def test_diagnostics_report_rates_counts_and_device(harness, scene):
    harness.capture(scene.background())
    for i in range(5):
        harness.send(scene.frame(i)[0])
        time.sleep(0.05)
    wait_for(lambda: harness.node.stats.counts["published"] >= 1, 10)

    def latest():
        d = [m for m in harness.diags if {v.key: v.value for v in m.status[0].values}["published"] != "0"]
        return d[-1] if d else None
    diag = wait_for(latest, 5)
    assert diag is not None, "no /diagnostics message with published frames"
    st = diag.status[0]
    kv = {v.key: v.value for v in st.values}
    assert st.name == "/matte_node: matting" and st.message == "matting" and st.hardware_id == "cpu (/matte_node)"
    assert kv["device"] == "cpu" and kv["plates"] == "64x48"
    assert kv["precision"] == harness.node.engine.precision and kv["precision"] in ("fp32", "bf16")   # auto
    assert kv["input_topic"] == "/image"
    assert int(kv["received"]) >= int(kv["published"]) >= 1
    assert float(kv["input_rate_hz"]) >= 0.0 and kv["latency_median_ms"] != "n/a"
    # frames are stamped when sent: each one's latency holds its engine time plus transport and waiting
    engine_ms, latency_ms = float(kv["engine_median_ms"]), float(kv["latency_median_ms"])
    assert 0.0 < engine_ms <= latency_ms < 30_000.0


@pytest.mark.parametrize("harness", [{"params": {"plate_health": True}}], indirect=True)
def test_a_stale_plate_is_reported_in_diagnostics(harness, scene):
    """The empty scene matches its plate whatever the (random-weight) model mattes: OK; another scene's
    background disagrees with the plate everywhere: WARN with the recapture hint."""
    empty = scene.background()
    assert harness.capture(empty).success

    def status(level):
        d = [m.status[0] for m in harness.diags if m.status[0].values]
        if d and {v.key: v.value for v in d[-1].values}["plate_health"] != "off" and d[-1].level == level:
            return d[-1]
        return None
    assert wait_for(lambda: status(DiagnosticStatus.OK), 10, 0.1, lambda: harness.send(empty)), \
        "no healthy plate reported while the camera sees the plate's own scene"
    other = SceneSequence(H, W, seed=11, noise=0.0).background()
    st = wait_for(lambda: status(DiagnosticStatus.WARN), 10, 0.1, lambda: harness.send(other))
    assert st is not None, "a plate of another scene was not reported stale"
    assert "plate stale" in st.message and "capture_background" in st.message


def test_nothing_is_published_before_a_plate_exists(harness, scene):
    src = scene.frame(0)[0]
    assert wait_for(lambda: harness.node.stats.counts["refused"] >= 3, 10, 0.05, lambda: harness.send(src))
    assert harness.alphas == [] and harness.fgrs == []
    diag = wait_for(lambda: harness.diags, 3)
    assert diag[-1].status[0].message.startswith("no background plate")


def _bad_messages():
    good = rgb_to_msg(np.zeros((H, W, 3), np.uint8), None, "rgb8")

    def variant(**kw):
        m = Image(height=good.height, width=good.width, encoding=good.encoding, step=good.step,
                  is_bigendian=0, data=array.array("B", bytes(good.data)))
        for k, v in kw.items():
            setattr(m, k, v)
        return m
    return {"bad step": variant(step=W * 3 - 1),
            "truncated data": variant(data=array.array("B", bytes(good.data)[: W * 3 * (H - 1)])),
            "unknown encoding": variant(encoding="rgb13"),
            "zero size": variant(width=0, height=0, step=0, data=array.array("B"))}


def test_each_malformed_message_is_dropped_and_the_node_keeps_working(harness, scene):
    harness.capture(scene.background())
    bad_stamps = []
    for n, (case, msg) in enumerate(_bad_messages().items(), start=1):
        msg.header = harness.header()
        bad_stamps.append(msg.header.stamp)
        harness.pub.publish(msg)
        assert wait_for(lambda n=n: harness.node.stats.counts["malformed"] >= n, 5), f"{case}: not counted as malformed"
    assert harness.node.stats.counts["malformed"] == 4
    assert harness.node.stats.counts["errors"] == 0
    assert not [m for m in harness.alphas if m.header.stamp in bad_stamps]
    src = scene.frame(5)[0]
    header = harness.header()
    msg = rgb_to_msg(src, header, "rgb8")
    assert harness.alpha_for(header, resend=lambda: harness.pub.publish(msg)) is not None
    assert all(w.is_alive() for w in harness.node.group.workers)


def test_size_change_is_refused_until_a_plate_of_that_size_is_captured(harness, scene):
    harness.capture(scene.background())
    big_scene = SceneSequence(64, 80, seed=3, noise=0.0)
    src = big_scene.frame(2)[0]
    header = harness.header()
    msg = rgb_to_msg(src, header, "rgb8")
    assert harness.settled()                # the capture's last frames may still be matted: not counted below
    counts = dict(harness.node.stats.counts)
    assert wait_for(lambda: harness.node.stats.counts["refused"] > counts["refused"], 5, 0.05,
                    lambda: harness.pub.publish(msg))
    assert harness.settled()                # every frame sent so far has its outcome: refused, none published
    assert harness.node.stats.counts["published"] == counts["published"]
    assert harness.alpha_for(header, timeout=0) is None
    res = harness.capture(big_scene.background())
    assert res.success and res.message == "plate 80x64 averaged from 3 frames"
    alpha = harness.alpha_for(header, resend=lambda: harness.pub.publish(msg))
    assert (alpha.width, alpha.height) == (80, 64)
    assert harness.node.engine.plate_sizes() == [(48, 64), (64, 80)]
    # the first size still works: plates are kept per resolution
    header = harness.header()
    small = rgb_to_msg(scene.frame(3)[0], header, "rgb8")
    assert harness.alpha_for(header, resend=lambda: harness.pub.publish(small)).width == W


@pytest.mark.parametrize("harness", [{"params": {"plate_timeout": 0.5}}], indirect=True)
def test_capture_before_any_frame_times_out_with_a_reason(harness):
    from std_srvs.srv import Trigger
    t0 = time.monotonic()
    first = harness.capture_cli.call_async(Trigger.Request())
    assert wait_for(lambda: harness.node.camera._capture is not None, 5)     # the first call is being served
    second = harness.call(harness.capture_cli)               # while the first one waits
    assert not second.success and second.message == "a capture is already running; wait for its answer"
    assert wait_for(first.done, 5)
    res = first.result()
    assert time.monotonic() - t0 >= 0.5     # not before its timeout
    assert not res.success
    assert res.message == ("timed out after 0.5 s with 0 of 3 frames received on /image: "
                           "is the camera publishing there?")
    assert harness.node.engine.plate_sizes() == []


@pytest.mark.parametrize("harness", [{"params": {"compressed": True}}], indirect=True)
def test_compressed_input(harness, scene):
    assert harness.node.input_topic == "/image/compressed"

    def compressed(rgb):
        data, fmt = encode_compressed(rgb, "png")
        return CompressedImage(header=harness.header(), format=fmt, data=data)
    plate = compressed(scene.background())
    res = harness.call(harness.capture_cli, lambda: harness.pub_c.publish(plate))
    assert res.success, res.message
    msg = compressed(scene.frame(7)[0])
    alpha = harness.alpha_for(msg.header, resend=lambda: harness.pub_c.publish(msg))
    assert (alpha.width, alpha.height, alpha.header.frame_id) == (W, H, "cam")
    want = harness.engine.process(scene.frame(7)[0]).alpha      # PNG is lossless: same frame, same matte
    np.testing.assert_allclose(msg_to_alpha(alpha), want, atol=0.5 / 255 + 1e-6)


@pytest.mark.parametrize("harness", [{"params": {"alpha_encoding": "32FC1", "foreground_encoding": "bgra8",
                                                 "publish_composite": True, "composite_color": [0, 0, 255]}}],
                         indirect=True)
def test_output_encodings_and_composite(harness, scene):
    harness.capture(scene.background())
    src = scene.frame(4)[0]
    header = harness.header()
    msg = rgb_to_msg(src, header, "rgb8")
    alpha = harness.alpha_for(header, resend=lambda: harness.pub.publish(msg))
    assert (alpha.encoding, alpha.step) == ("32FC1", W * 4)
    want = harness.engine.process(src, composite=(0, 0, 255))
    np.testing.assert_array_equal(msg_to_alpha(alpha), want.alpha)
    fgr = wait_for(lambda: next((m for m in harness.fgrs if m.header.stamp == header.stamp), None), 5)
    comp = wait_for(lambda: next((m for m in harness.comps if m.header.stamp == header.stamp), None), 5)
    assert fgr.encoding == "bgra8" and comp.encoding == "rgb8"
    bgra = np.frombuffer(bytes(fgr.data), np.uint8).reshape(H, W, 4)
    np.testing.assert_array_equal(bgra[..., 2::-1], want.foreground)
    np.testing.assert_array_equal(np.frombuffer(bytes(comp.data), np.uint8).reshape(H, W, 3), want.composite)


def test_runtime_parameter_changes_accepted_or_rejected_with_reason(harness, scene):
    node = harness.node
    res = node.set_parameters([Parameter("refine_mode", value="thresholding"),
                               Parameter("refine_threshold", value=0.3)])
    assert all(r.successful for r in res)
    assert harness.engine.settings()["refine_mode"] == "thresholding"
    assert harness.engine.settings()["refine_threshold"] == 0.3
    assert node.settings.refine_mode == "thresholding"
    res = node.set_parameters([Parameter("refine_sample_pixels", value=2048), Parameter("backbone_scale", value=0.25)])
    assert all(r.successful for r in res)
    assert harness.engine.settings()["refine_sample_pixels"] == 2048
    assert harness.engine.settings()["backbone_scale"] == 0.25

    res = node.set_parameters([Parameter("plate_frames", value=2), Parameter("alpha_encoding", value="32FC1")])
    assert all(r.successful for r in res)
    assert harness.capture(scene.background()).message == "plate 64x48 averaged from 2 frames"
    header = harness.header()
    msg = rgb_to_msg(scene.frame(1)[0], header, "rgb8")
    assert harness.alpha_for(header, resend=lambda: harness.pub.publish(msg)).encoding == "32FC1"

    res = node.set_parameters([Parameter("device", value="cuda")])[0]
    assert not res.successful and res.reason == "Trying to set a read-only parameter: device."
    assert node.get_parameter("device").value == "auto"
    res = node.set_parameters([Parameter("refine_mode", value="fastest")])[0]
    assert not res.successful and "refine_mode must be one of" in res.reason
    res = node.set_parameters([Parameter("backbone_scale", value=1e-9)])[0]  # within rclpy's range, not usable
    assert not res.successful and res.reason.startswith("backbone_scale must be a number in [1/64, 1/2]")
    assert harness.engine.settings()["backbone_scale"] == 0.25
    res = node.set_parameters([Parameter("refine_threshold", value=2.0)])[0]     # rclpy checks the range
    assert not res.successful and node.get_parameter("refine_threshold").value == 0.3
    assert harness.engine.settings()["refine_mode"] == "thresholding"


def test_plate_hint_when_the_frame_differs_almost_everywhere(harness, scene):
    harness.capture(scene.background())
    other = 255 - scene.frame(1)[0]
    header = harness.header()
    msg = rgb_to_msg(other, header, "rgb8")
    assert harness.alpha_for(header, resend=lambda: harness.pub.publish(msg)) is not None
    assert harness.node.camera.plate_hint_given
    assert harness.settled()                     # every resent copy has been matted or dropped
    harness.capture(scene.background())          # a new plate re-arms the hint
    assert not harness.node.camera.plate_hint_given


def test_plate_persisted_reloaded_and_cleared(context, model, scene, tmp_path):
    plate_dir = str(tmp_path / "plates")
    h = Harness(context, model, params={"plate_path": plate_dir})
    try:
        plate = scene.background()
        res = h.capture(plate)
        assert res.message == f"plate 64x48 averaged from 3 frames, saved to {plate_file(plate_dir, (H, W))}"
    finally:
        h.close()
    h = Harness(context, model, params={"plate_path": plate_dir})    # a restarted node
    try:
        assert h.node.engine.plate_sizes() == [(H, W)]
        np.testing.assert_array_equal(h.engine.background((H, W)), plate)
        # published before the client subscribed: it arrives because /matte/background is latched
        bg = wait_for(lambda: h.bgs, 5)
        np.testing.assert_array_equal(np.frombuffer(bytes(bg[-1].data), np.uint8).reshape(H, W, 3), plate)
        header = h.header()
        msg = rgb_to_msg(scene.frame(2)[0], header, "rgb8")
        assert h.alpha_for(header, resend=lambda: h.pub.publish(msg)) is not None
        res = h.call(h.clear_cli)
        assert res.success
        assert res.message == f"cleared 1 plate(s), deleted {plate_file(plate_dir, (H, W))}"
        assert os.listdir(plate_dir) == [] and not h.engine.has_background((H, W))
        late = []                                    # a late subscriber gets no stale plate after a clear
        h.client.create_subscription(Image, "/matte/background", late.append,      # depth 5: keeps both, if two
                                     QoSProfile(depth=5, durability=DurabilityPolicy.TRANSIENT_LOCAL))
        assert wait_for(lambda: h.node.camera._pub_bg.get_subscription_count() == 2, 5)   # late one matched
        new_plate = plate // 2
        assert h.capture(new_plate).success
        # reliable, in order: a stale latched plate would have come before the new one
        assert wait_for(lambda: late, 5)
        np.testing.assert_array_equal(np.frombuffer(bytes(late[0].data), np.uint8).reshape(H, W, 3), new_plate)
        h.call(h.clear_cli)
        refused = h.node.stats.counts["refused"]
        assert wait_for(lambda: h.node.stats.counts["refused"] > refused, 5, 0.05, lambda: h.pub.publish(msg))
    finally:
        h.close()


def test_bad_configuration_raises_a_clear_error(context, model):
    with pytest.raises(ValueError, match="backbone parameter is 'resnet50' but the model's backbone is 'mobilenetv2'"):
        Harness(context, model, params={"backbone": "resnet50"})
    with pytest.raises(ValueError, match="composite_image '/nonexistent.png' is not a readable image file"):
        Harness(context, model, params={"publish_composite": True, "composite_image": "/nonexistent.png"})


def test_base_model_without_refiner_mattes_and_refuses_refiner_changes(context, scene):
    from matte_ros.core.engine import MattingEngine
    from matte_ros.core.model import MattingBase
    h = Harness(context, None, engine=MattingEngine(model=MattingBase("mobilenetv2"), device="cpu"))
    try:
        assert h.capture(scene.background()).success
        header = h.header()
        msg = rgb_to_msg(scene.frame(6)[0], header, "rgb8")
        assert h.alpha_for(header, resend=lambda: h.pub.publish(msg)) is not None
        res = h.node.set_parameters([Parameter("refine_mode", value="full")])[0]
        assert not res.successful and "MattingBase, which has no refiner" in res.reason
        assert h.node.settings.refine_mode == "sampling"
    finally:
        h.close()


@pytest.mark.parametrize("harness", [{"params": {"max_rate": 4.0}}], indirect=True)
def test_max_rate_spaces_the_matted_frames(harness, scene):
    harness.capture(scene.background())
    node, starts = harness.node, []
    handle = node.camera.handle

    def timed_handle(*args):                  # when the worker starts each frame
        starts.append(time.monotonic())
        return handle(*args)
    node.camera.handle = timed_handle
    src = scene.frame(0)[0]
    received0 = node.stats.counts["received"]
    assert wait_for(lambda: len(starts) >= 4, 20, 0.02, lambda: harness.send(src))   # frames offered every ~20 ms
    gaps = np.diff(starts)
    assert gaps.min() >= 0.25 - 0.005, gaps                             # 4 Hz: at least 0.25 s apart
    assert node.stats.counts["received"] - received0 >= 2 * len(starts)  # the others were dropped, not queued
    res = node.set_parameters([Parameter("max_rate", value=0.0)])[0]   # live: unlimited again
    assert res.successful and node.settings.max_rate == 0.0


def test_missing_default_weights_name_the_parameter_to_set(monkeypatch, tmp_path):
    import matte_ros.ros.node as node_mod
    from matte_ros.ros.params import settings_from
    missing = str(tmp_path / "default.safetensors")
    monkeypatch.setattr(node_mod, "DEFAULT_WEIGHTS", missing)
    with pytest.raises(FileNotFoundError, match=f"model_path is '' and the packaged default weights {missing} do not "
                                                r"exist; set model_path to a weight file \(-p model_path:="):
        node_mod.build_engine(settings_from({"device": "cpu"}))
