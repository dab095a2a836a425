"""matte_offline on rosbag2 recordings (sqlite3 and MCAP) and the image-message decoding it uses."""
import numpy as np
import pytest
from offline_inputs import NOTE_TOPIC, STAMP0, read_bag, scene, write_bag

from matte_ros.core.engine import MattingEngine
from matte_ros.tools.offline.bags import BagOutput, compressed_to_rgb, image_to_rgb, typestore
from matte_ros.tools.offline.cli import main
from matte_ros.tools.offline.frames import OfflineError
from matte_ros.tools.offline.pipeline import run
from matte_ros.tools.offline.plate import FixedPlate
from matte_ros.tools.offline.readers import open_input

TS = typestore()
ALL = ("alpha", "foreground", "composite", "error", "refinement")


pytestmark = pytest.mark.usefixtures("one_thread")


def cli(*args, model_path):
    return main([*map(str, args), "--checkpoint", model_path, "--device", "cpu", "--quiet"])


def image(encoding, h, w, data, step, bigendian=0):
    return TS.types["sensor_msgs/msg/Image"](header=TS.types["std_msgs/msg/Header"](
        stamp=TS.types["builtin_interfaces/msg/Time"](sec=0, nanosec=0), frame_id=""), height=h, width=w,
        encoding=encoding, is_bigendian=bigendian, step=step, data=np.ascontiguousarray(data, np.uint8).reshape(-1))


# ---- decoding ----------------------------------------------------------------------------------
def test_image_encodings_decode_to_rgb():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (3, 5, 3), dtype=np.uint8)
    padded = np.zeros((3, 20), np.uint8)
    padded[:, :15] = rgb.reshape(3, 15)                        # step 20 > 15: row padding
    assert np.array_equal(image_to_rgb(image("rgb8", 3, 5, padded, 20)), rgb)
    assert np.array_equal(image_to_rgb(image("bgr8", 3, 5, rgb[:, :, ::-1], 15)), rgb)
    a = np.full((3, 5, 1), 7, np.uint8)
    assert np.array_equal(image_to_rgb(image("rgba8", 3, 5, np.concatenate([rgb, a], 2), 20)), rgb)
    assert np.array_equal(image_to_rgb(image("bgra8", 3, 5, np.concatenate([rgb[:, :, ::-1], a], 2), 20)), rgb)
    grey = rgb[:, :, 0]
    assert np.array_equal(image_to_rgb(image("mono8", 3, 5, grey, 5)), np.repeat(grey[:, :, None], 3, 2))
    words = np.array([[0, 257, 65535, 128, 32896]], np.uint16)     # -> 0, 1, 255, 0 (128/257 rounds down), 128
    want = np.repeat(np.array([[0, 1, 255, 0, 128]], np.uint8)[:, :, None], 3, 2)
    assert np.array_equal(image_to_rgb(image("mono16", 1, 5, words.astype("<u2").view(np.uint8), 10)), want)
    assert np.array_equal(image_to_rgb(image("mono16", 1, 5, words.astype(">u2").view(np.uint8), 10, 1)), want)


def test_bad_images_raise_offline_errors():
    with pytest.raises(OfflineError, match="unsupported image encoding '32FC1'"):
        image_to_rgb(image("32FC1", 1, 1, np.zeros(4), 4))
    with pytest.raises(OfflineError, match="do not hold"):
        image_to_rgb(image("rgb8", 2, 2, np.zeros(6), 6))         # one row of data for two
    msg = TS.types["sensor_msgs/msg/CompressedImage"]
    with pytest.raises(OfflineError, match="could not be decoded"):
        compressed_to_rgb(msg(header=image("rgb8", 1, 1, np.zeros(3), 3).header, format="jpeg",
                              data=np.frombuffer(b"not a jpeg", np.uint8)))
    with pytest.raises(OfflineError, match="depth image"):
        compressed_to_rgb(msg(header=image("rgb8", 1, 1, np.zeros(3), 3).header, format="16UC1; compressedDepth",
                              data=np.zeros(4, np.uint8)))


# ---- whole runs --------------------------------------------------------------------------------
def engine_results(model_path, plate, frames):
    engine = MattingEngine(checkpoint=model_path, device="cpu")
    engine.set_background(plate)
    out = []
    for f in frames:
        r = engine.process(f, composite=(0, 255, 0), maps=True)
        out.append((r, (r.error, r.refinement)))
    return out


def u8(x):
    return np.rint(np.clip(x, 0, 1) * 255).astype(np.uint8)


def close(a, b, tol=1):
    return np.abs(a.astype(np.int32) - b.astype(np.int32)).max() <= tol


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_bag_to_bag_every_output_type_with_the_input_stamps(tmp_path, model_path, storage):
    plate, frames = scene(3)
    stamps = write_bag(str(tmp_path / "in"), [plate, plate] + frames, storage)
    assert cli(tmp_path / "in", "-o", tmp_path / "out", "--plate-time", "0:0.06", "--output-types", ",".join(ALL),
               model_path=model_path) == 0
    assert (tmp_path / "out" / ("out.mcap" if storage == "mcap" else "out.db3")).is_file()   # the input's storage
    got, given = read_bag(str(tmp_path / "out")), read_bag(str(tmp_path / "in"))
    assert set(got) == {"/camera/image", NOTE_TOPIC} | {f"/matte/{t}" for t in ALL}
    assert [m.data for _, m in got[NOTE_TOPIC]] == [f"n{i}" for i in range(5)]
    assert [(t, m.data.tobytes()) for t, m in got["/camera/image"]] == \
        [(t, m.data.tobytes()) for t, m in given["/camera/image"]]
    for t in ALL:
        assert [ts for ts, _ in got[f"/matte/{t}"]] == stamps
        headers = [(m.header.stamp.sec, m.header.stamp.nanosec, m.header.frame_id) for _, m in got[f"/matte/{t}"]]
        assert headers == [(STAMP0, i * 100_000_000, "camera") for i in range(5)]
    want = engine_results(model_path, plate, [plate, plate] + frames)
    for i, (r, (err, ref)) in enumerate(want):
        msg = {t: got[f"/matte/{t}"][i][1] for t in ALL}
        assert msg["alpha"].encoding == "mono8" and close(msg["alpha"].data.reshape(64, 96), u8(r.alpha))
        assert msg["foreground"].encoding == "rgb8" and close(msg["foreground"].data.reshape(64, 96, 3), r.foreground)
        assert close(msg["composite"].data.reshape(64, 96, 3), r.composite)
        assert close(msg["error"].data.reshape(64, 96), u8(err))
        assert close(msg["refinement"].data.reshape(64, 96), u8(ref))


def test_compressed_bgr8_topic_to_png_and_sixteen_bit_alpha_bag(tmp_path, model_path):
    plate, frames = scene(2)
    write_bag(str(tmp_path / "c"), [plate] + frames, "mcap", topic="/cam/compressed", compressed=True)
    assert cli(tmp_path / "c", "-o", tmp_path / "png", "--format", "png", "--plate-frames", "1",
               model_path=model_path) == 0
    assert sorted(p.name for p in (tmp_path / "png" / "alpha").iterdir()) == ["000000.png", "000001.png",
                                                                               "000002.png"]
    write_bag(str(tmp_path / "b"), [plate] + frames, "sqlite3", encoding="bgr8")
    assert cli(tmp_path / "b", "-o", tmp_path / "out", "--plate-frames", "1", "--alpha-bits", "16",
               "--bag-storage", "mcap", "--output-types", "alpha", model_path=model_path) == 0
    alphas = read_bag(str(tmp_path / "out"))["/matte/alpha"]
    want = engine_results(model_path, plate, [plate] + frames)
    for (_, m), (r, _) in zip(alphas, want):
        assert m.encoding == "mono16" and m.step == 2 * 96
        got = m.data.view("<u2").reshape(64, 96).astype(np.int64)
        assert np.abs(got - np.rint(r.alpha * 65535)).max() <= 1


def test_bag_errors_name_the_image_topics(tmp_path, model_path, capsys):
    plate, frames = scene(1)
    write_bag(str(tmp_path / "b"), [plate] + frames)
    assert cli(tmp_path / "b", "-o", tmp_path / "o", "--topic", "/other", "--plate-frames", "1",
               model_path=model_path) == 2
    err = capsys.readouterr().err
    assert "no image topic /other; its image topics: /camera/image" in err and err.count("\n") == 1
    assert cli(tmp_path / "b", "-o", tmp_path / "o", "--plate-time", "9:10", model_path=model_path) == 2
    assert "no frames of the input lie between 9.0 and 10.0 s" in capsys.readouterr().err
    write_bag(str(tmp_path / "f"), [plate], encoding="32FC1")
    assert cli(tmp_path / "f", "-o", tmp_path / "o", "--plate-frames", "1", model_path=model_path) == 2
    assert "unsupported image encoding '32FC1'" in capsys.readouterr().err


def test_several_image_topics_need_a_choice(tmp_path, model_path, capsys):
    from rosbags.rosbag2 import Writer
    plate, _ = scene(0)
    with Writer(str(tmp_path / "two"), version=9) as w:
        for topic in ("/left/image", "/right/image"):
            c = w.add_connection(topic, "sensor_msgs/msg/Image", typestore=TS)
            w.write(c, 1, TS.serialize_cdr(image("rgb8", 64, 96, plate, 288), "sensor_msgs/msg/Image"))
    assert cli(tmp_path / "two", "-o", tmp_path / "o", "--plate-frames", "1", model_path=model_path) == 2
    assert "several image topics: /left/image, /right/image; choose one with --topic" in capsys.readouterr().err
    assert cli(tmp_path / "two", "-o", tmp_path / "o", "--plate-frames", "1", "--topic", "/right/image",
               model_path=model_path) == 0
    assert len(read_bag(str(tmp_path / "o"))["/matte/alpha"]) == 1


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_ctrl_c_leaves_a_bag_that_opens(tmp_path, model_path, storage):
    plate, frames = scene(5)
    write_bag(str(tmp_path / "in"), frames, storage)
    source = open_input(str(tmp_path / "in"), passthrough=True)
    engine = MattingEngine(checkpoint=model_path, device="cpu")
    writer = BagOutput(str(tmp_path / "out"), storage, source.connections, ("alpha",))

    def interrupt_at_third(result):
        if result.frame.index == 2:
            raise KeyboardInterrupt

    stats = run(source, engine, FixedPlate(plate), writer, ("alpha",), progress=False, on_result=interrupt_at_third)
    assert stats.interrupted and stats.frames == 3
    got = read_bag(str(tmp_path / "out"))
    assert len(got["/matte/alpha"]) == 3 and len(got["/camera/image"]) == 3
