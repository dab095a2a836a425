"""The node against hostile settings and input, in one process: max_rate changes, every accepted value
of every live parameter, oversized frames, frames alternating between sizes, a few hundred random
messages. Tiny random-weight model; the executor spins in a thread (node_harness)."""
import itertools
import math

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
pytestmark = pytest.mark.ros

from node_harness import Harness, node_fixtures, wait_for, zero_png  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from matte_ros.core.settings import MIN_BACKBONE_SCALE  # noqa: E402
from matte_ros.core.synthetic import SceneSequence  # noqa: E402
from matte_ros.ros.fake_camera import encode_compressed  # noqa: E402
from matte_ros.ros.imaging import ENCODINGS, msg_to_alpha, rgb_to_msg  # noqa: E402
from matte_ros.ros.params import LIVE, SPECS, check_value  # noqa: E402

H, W = 48, 64


context, model, scene, harness = node_fixtures((H, W))


def _alpha_for_new_frame(h: Harness, rgb: np.ndarray, timeout: float = 10.0):
    header = h.header()
    msg = rgb_to_msg(rgb, header, "rgb8")
    return h.alpha_for(header, timeout, resend=lambda: h.pub.publish(msg))


@pytest.mark.parametrize("harness", [{"params": {"max_rate": 1e-6, "plate_frames": 1}}], indirect=True)
def test_undoing_a_tiny_max_rate_restarts_output_at_once(harness, scene):
    node = harness.node
    # the capture's one frame is the one frame the rate lets through for 1e6 s (11.6 days): no frame
    # is sent before the capture has started, so none is used up before it
    future = harness.capture_cli.call_async(Trigger.Request())
    assert wait_for(lambda: node.camera._capture is not None, 5)
    assert wait_for(future.done, 10, 0.02, lambda: harness.send(scene.background()))
    assert future.result().success, future.result().message
    received = node.stats.counts["received"]
    src = scene.frame(1)[0]
    assert wait_for(lambda: node.stats.counts["received"] > received, 5, 0.05, lambda: harness.send(src))
    assert node.stats.in_flight() >= 1                       # held back by the rate
    assert all(r.successful for r in node.set_parameters([Parameter("max_rate", value=0.0)]))
    assert _alpha_for_new_frame(harness, scene.frame(3)[0], timeout=5.0) is not None, "output did not restart"
    assert node.stats.counts["errors"] == 0
    # a lower rate recomputes the wait from the previous frame: 1 Hz lets the next frame through within 1 s
    assert all(r.successful for r in node.set_parameters([Parameter("max_rate", value=1.0)]))
    assert _alpha_for_new_frame(harness, scene.frame(4)[0], timeout=5.0) is not None


def _draw(rng: np.random.Generator, name: str):
    """A value the node accepts for live parameter ``name``: its range's ends, uniform and log-uniform
    values across it, redrawn until ``check_value`` accepts it (so the narrower checks count)."""
    spec = SPECS[name]
    if isinstance(spec.default, bool):
        return bool(rng.integers(2))
    if spec.choices:
        return spec.choices[rng.integers(len(spec.choices))]
    lo, hi = spec.range
    while True:
        how = rng.integers(4)
        v = [lo, hi, rng.uniform(lo, hi), math.exp(rng.uniform(math.log(max(lo, 1e-9)), math.log(hi)))][how]
        v = int(round(v)) if isinstance(spec.default, int) else float(v)
        # by design a max_rate of r Hz holds the next frame back up to 1/r s: here 0 or 2 Hz and up;
        # test_undoing_a_tiny_max_rate_restarts_output_at_once covers the small rates
        if name == "max_rate" and 0 < v < 2.0:
            continue
        if check_value(name, v) is None:
            return v


def test_every_accepted_value_of_the_live_parameters_keeps_frames_coming(context, model):
    big = SceneSequence(240, 320, seed=5, noise=0.0)       # at backbone_scale 1/64 still a 5x3.75 coarse pass
    h = Harness(context, model)
    try:
        assert h.capture(big.background()).success
        rng = np.random.default_rng(13)
        for n in range(12):
            values = {name: _draw(rng, name) for name in LIVE}
            if n == 0:
                values["backbone_scale"] = MIN_BACKBONE_SCALE       # the smallest accepted scale but 0
            results = h.node.set_parameters([Parameter(k, value=v) for k, v in values.items()])
            assert all(r.successful for r in results), (values, [r.reason for r in results])
            alpha = _alpha_for_new_frame(h, big.frame(n)[0], timeout=15.0)
            assert alpha is not None, f"no frame published with {values}"
            assert alpha.encoding == values["alpha_encoding"] and (alpha.width, alpha.height) == (320, 240)
            a = msg_to_alpha(alpha)
            assert np.isfinite(a).all() and 0.0 <= a.min() and a.max() <= 1.0
            settings = h.engine.settings()
            for k in ("refine_mode", "refine_threshold", "refine_sample_pixels", "backbone_scale"):
                assert settings[k] == values[k], k
        assert h.node.stats.counts["errors"] == 0
    finally:
        h.close()


@pytest.mark.parametrize("harness", [{"params": {"compressed": True}}], indirect=True)
def test_a_compressed_decompression_bomb_is_refused_without_decoding(harness, scene):
    node = harness.node
    bomb = CompressedImage(header=harness.header(), format="png", data=zero_png(16000, 16000))
    harness.pub_c.publish(bomb)
    # decoding it would take seconds and a gigabyte; refused from its header it takes milliseconds
    assert wait_for(lambda: node.stats.counts["refused"] >= 1, 5), "the 16000x16000 PNG was not refused"
    assert node.stats.counts["malformed"] == node.stats.counts["errors"] == 0
    # and the node goes on with frames of a sane size
    data, fmt = encode_compressed(scene.background(), "png")
    plate = CompressedImage(header=harness.header(), format=fmt, data=data)
    assert harness.call(harness.capture_cli, lambda: harness.pub_c.publish(plate)).success


@pytest.mark.parametrize("harness", [{"params": {"max_frame_pixels": W * H - 1}}], indirect=True)
def test_raw_frames_over_max_frame_pixels_are_refused(harness, scene):
    node = harness.node
    src = scene.frame(0)[0]
    assert wait_for(lambda: node.stats.counts["refused"] >= 2, 5, 0.05, lambda: harness.send(src))
    assert harness.settled()
    c = node.stats.counts
    assert c["published"] == c["malformed"] == c["errors"] == 0 and c["refused"] == c["received"] - c["dropped"]


@pytest.mark.parametrize("harness", [{"params": {"plate_timeout": 1.5}}], indirect=True)
def test_capture_timeout_says_the_frames_alternate_between_sizes(harness, scene):
    other = SceneSequence(64, 80, seed=3, noise=0.0).background()
    frames = itertools.cycle([scene.background(), other])

    def send_next():            # one frame at a time, each handled before the next: a strict alternation
        harness.send(next(frames))
        harness.settled(2.0)
    res = harness.call(harness.capture_cli, send_next)
    assert not res.success
    assert res.message.startswith("timed out after 1.5 s: the frames on /image changed size ")
    assert res.message.endswith("(seen: 64x48, 80x64) and a plate needs 3 consecutive frames of one size")


# ---- fuzz: random messages through the node --------------------------------------------------
_JUNK_ENCODINGS = ["", "32FC1", "16UC3", "bayer_rggb8", "rgb13", "8UC3", "jpeg", "RGB8"]
_U32 = 2 ** 32 - 1


def _random_image(rng: np.random.Generator) -> Image:
    enc = str(rng.choice(list(ENCODINGS) + _JUNK_ENCODINGS))
    w, h = (int(rng.choice([0, 1, 2, 3, rng.integers(1, 80), 65_535, _U32])) for _ in range(2))
    bpp = int(rng.integers(0, 9))
    step = int(rng.choice([w * bpp, w * bpp + rng.integers(-3, 4), 0, _U32, rng.integers(0, 1000)]))
    step = min(max(step, 0), _U32)
    size = step * h if step * h <= 60_000 else int(rng.integers(0, 5000))
    size = max(0, size + int(rng.choice([0, 0, -1, 1, -step, rng.integers(-50, 50)])))
    data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    return Image(height=h, width=w, encoding=enc, is_bigendian=int(rng.choice([0, 1, 255])), step=step, data=data)


def _random_compressed(rng: np.random.Generator) -> CompressedImage:
    fmt = str(rng.choice(["png", "jpeg", "rgb8; jpeg compressed bgr8", "", "16UC1; compressedDepth png", "bmp"]))
    px = rng.integers(0, 256, (int(rng.integers(1, 40)), int(rng.integers(1, 40)), 3), dtype=np.uint8)
    real = cv2.imencode(str(rng.choice([".png", ".jpg"])), px)[1].tobytes()
    kind = rng.integers(0, 6)
    if kind == 0:
        data = rng.integers(0, 256, int(rng.integers(0, 2000)), dtype=np.uint8).tobytes()
    elif kind == 1:
        data = real[:int(rng.integers(0, len(real)))]                  # truncated
    elif kind == 2:                                                     # bytes flipped
        b = bytearray(real)
        for i in rng.integers(0, len(b), int(rng.integers(1, 20))):
            b[i] ^= int(rng.integers(1, 256))
        data = bytes(b)
    elif kind == 3 and real[:4] == b"\x89PNG":                          # the IHDR declares a huge size
        data = real[:16] + int(rng.integers(1, _U32)).to_bytes(4, "big") * 2 + real[24:]
    elif kind == 3:                                                     # the SOF declares a huge size
        i = real.index(b"\xff\xc0")
        data = real[:i + 5] + int(rng.integers(1, 65_536)).to_bytes(2, "big") * 2 + real[i + 9:]
    else:
        data = real
    return CompressedImage(format=fmt, data=data)


def _fuzz(h: Harness, messages, publish) -> None:
    """Publish ``messages`` one by one, each handled (or lost by best-effort transport) before the next."""
    node = h.node
    for msg in messages:
        msg.header = h.header()
        received = node.stats.counts["received"]
        publish(msg)
        wait_for(lambda received=received: node.stats.counts["received"] > received, 2.0)
        assert h.settled(10.0), "a message was never given an outcome"
        assert all(w.is_alive() for w in node.group.workers)


def _check_counters_and_alive(h: Harness, rgb: np.ndarray, publish_good) -> None:
    c = dict(h.node.stats.counts)
    assert c["received"] == sum(c[k] for k in h.node.stats.OUTCOMES), c
    assert c["errors"] == 0, f"random input reached the unexpected-error path: {c}"
    assert c["malformed"] + c["refused"] >= 100, c       # most random messages are unusable
    header = h.header()
    assert h.alpha_for(header, resend=lambda: publish_good(rgb, header)) is not None


def test_fuzz_raw_images_then_good_frames(harness, scene):
    assert harness.capture(scene.background()).success
    rng = np.random.default_rng(2024)
    messages = [_random_image(rng) for _ in range(200)]
    good = rgb_to_msg(scene.frame(1)[0], None, "rgb8")
    messages[::25] = [good] * len(messages[::25])          # usable frames among them
    _fuzz(harness, messages, harness.pub.publish)
    _check_counters_and_alive(harness, scene.frame(2)[0],
                              lambda rgb, header: harness.pub.publish(rgb_to_msg(rgb, header, "rgb8")))
    assert harness.node.stats.counts["published"] >= 2


@pytest.mark.parametrize("harness", [{"params": {"compressed": True}}], indirect=True)
def test_fuzz_compressed_images_then_good_frames(harness, scene):
    data, fmt = encode_compressed(scene.background(), "png")
    plate = CompressedImage(header=harness.header(), format=fmt, data=data)
    assert harness.call(harness.capture_cli, lambda: harness.pub_c.publish(plate)).success
    rng = np.random.default_rng(7)
    _fuzz(harness, [_random_compressed(rng) for _ in range(150)], harness.pub_c.publish)

    def publish_good(rgb, header):
        data, fmt = encode_compressed(rgb, "png")
        harness.pub_c.publish(CompressedImage(header=header, format=fmt, data=data))
    _check_counters_and_alive(harness, scene.frame(2)[0], publish_good)
