"""imaging: every encoding against hand-built messages, malformed messages, compressed and output images."""
import sys
import time
import types

import cv2
import numpy as np
import pytest

pytest.importorskip("sensor_msgs.msg")
from node_harness import zero_png  # noqa: E402
from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from matte_ros.ros import imaging  # noqa: E402
from matte_ros.ros.imaging import (  # noqa: E402
    ENCODINGS,
    FrameTooLargeError,
    ImageFormatError,
    alpha_to_msg,
    compressed_size,
    compressed_to_rgb,
    foreground_to_msg,
    image_to_rgb,
    msg_to_alpha,
    rgb_to_msg,
)

# 2 x 3 RGB test picture: red, green, blue / white, black, grey
RGB = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]],
                [[255, 255, 255], [0, 0, 0], [7, 130, 201]]], np.uint8)


def message(pixels: np.ndarray, encoding: str, pad: int = 0, bigendian: bool = False) -> Image:
    """Image from (H, W, bytes per pixel) bytes, each row followed by ``pad`` junk bytes (0xEE)."""
    h = pixels.shape[0]
    rows = pixels.reshape(h, -1).view(np.uint8)
    data = np.full((h, rows.shape[1] + pad), 0xEE, np.uint8)
    data[:, :rows.shape[1]] = rows
    return Image(height=h, width=pixels.shape[1], encoding=encoding, is_bigendian=int(bigendian),
                 step=data.shape[1], data=data.tobytes())


def base(arr):
    return np.frombuffer(arr, np.uint8)


@pytest.fixture
def no_bridge(monkeypatch):
    monkeypatch.setattr(imaging, "_bridge", lambda: None)


@pytest.mark.parametrize("pad", [0, 5])
def test_colour_encodings_known_answers(pad):
    alpha = np.array([[1, 2, 3], [4, 5, 6]], np.uint8)[..., None]
    cases = {"rgb8": RGB, "bgr8": RGB[..., ::-1], "rgba8": np.concatenate([RGB, alpha], 2),
             "bgra8": np.concatenate([RGB[..., ::-1], alpha], 2)}
    for enc, px in cases.items():
        msg = message(np.ascontiguousarray(px), enc, pad)
        out = image_to_rgb(msg)
        assert out.dtype == np.uint8 and out.shape == (2, 3, 3), enc
        np.testing.assert_array_equal(out, RGB, err_msg=enc)
        if enc in ("rgb8", "rgba8"):             # zero-copy: a view of the message's own buffer
            assert np.shares_memory(out, base(msg.data)), enc
            assert out.strides[0] == msg.step


@pytest.mark.parametrize("pad", [0, 3])
def test_mono_encodings_known_answers(pad):
    mono = np.array([[0, 17, 255], [128, 1, 254]], np.uint8)
    out = image_to_rgb(message(mono[..., None], "mono8", pad))
    np.testing.assert_array_equal(out, np.repeat(mono[..., None], 3, axis=2))
    # 16 bit: rounded to v / 257 (65535 -> 255); odd padding makes rows unaligned
    v16 = np.array([[0, 128, 129], [257 * 100, 65535, 257 * 200 + 129]], np.uint16)
    want = np.array([[0, 0, 1], [100, 255, 201]], np.uint8)
    for big in (False, True):
        px = v16.astype(">u2" if big else "<u2")[..., None]
        out = image_to_rgb(message(px, "mono16", pad, bigendian=big))
        np.testing.assert_array_equal(out, np.repeat(want[..., None], 3, axis=2), err_msg=f"bigendian={big}")
    wrong = image_to_rgb(message(v16.astype("<u2")[..., None], "mono16", pad, bigendian=True))
    assert wrong[0, 1, 0] == 128             # the flag is honoured: 0x0080 read as 0x8000 = 32768 -> 128


def bt601(y, u, v):
    """ITU-R BT.601 video range YCbCr -> RGB, the reference the YUV paths must match."""
    c, d, e = 1.164 * (y - 16), u - 128, v - 128
    rgb = np.array([c + 1.596 * e, c - 0.813 * e - 0.391 * d, c + 2.018 * d])
    return np.clip(np.round(rgb), 0, 255)


@pytest.mark.parametrize("pad", [0, 4])
def test_yuv422_known_colours(pad):
    # pairs (Y0, U, Y1, V): black/white, grey pair, red-ish chroma, blue-ish chroma
    pairs = [(16, 128, 235, 128), (126, 128, 130, 128), (81, 90, 82, 240), (41, 240, 60, 110)]
    uyvy = np.array([[[u, y0, v, y1] for y0, u, y1, v in pairs]], np.uint8).reshape(1, 8, 2)
    yuyv = np.array([[[y0, u, y1, v] for y0, u, y1, v in pairs]], np.uint8).reshape(1, 8, 2)
    want = np.array([[bt601(y, u, v) for y0, u, y1, v in pairs for y in (y0, y1)]])
    assert want[0, 0].tolist() == [0, 0, 0] and want[0, 1].tolist() == [255, 255, 255]
    for enc, px in (("uyvy", uyvy), ("yuv422", uyvy), ("yuyv", yuyv), ("yuv422_yuy2", yuyv)):
        out = image_to_rgb(message(np.concatenate([px, px]), enc, pad))
        assert out.shape == (2, 8, 3), enc
        assert np.abs(out[0].astype(int) - want[0]).max() <= 2, enc
        np.testing.assert_array_equal(out[0], out[1])


def test_every_listed_encoding_is_decoded():
    bpp = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1, "mono16": 2}
    for enc in ENCODINGS:
        px = np.zeros((2, 4, bpp.get(enc, 2)), np.uint8)
        assert image_to_rgb(message(px, enc, 1)).shape == (2, 4, 3), enc


def test_malformed_messages_are_refused_with_a_reason(no_bridge):
    good = message(RGB, "rgb8")
    cases = {
        "step": Image(height=2, width=3, encoding="rgb8", step=8, data=bytes(18)),
        "truncated": Image(height=2, width=3, encoding="rgb8", step=9, data=bytes(17)),
        "zero size": Image(height=0, width=3, encoding="rgb8", step=9, data=b""),
        "unsupported encoding '8UC3'": Image(height=2, width=3, encoding="8UC3", step=9, data=bytes(18)),
        "unsupported encoding ''": Image(height=2, width=3, encoding="", step=9, data=bytes(18)),
        "odd width": Image(height=2, width=3, encoding="yuyv", step=6, data=bytes(12)),
        "step 5 is smaller": Image(height=2, width=3, encoding="mono16", step=5, data=bytes(12)),
    }
    cases["zero size (0x2)"] = Image(height=2, width=0, encoding="mono8", step=0, data=b"")
    for reason, msg in cases.items():
        with pytest.raises(ImageFormatError, match=reason.split(" (")[0] if "(" in reason else reason):
            image_to_rgb(msg)
    assert isinstance(ImageFormatError("x"), ValueError)
    image_to_rgb(good)
    longer = Image(height=2, width=3, encoding="rgb8", step=9, data=bytes(good.data) + b"\0\0")
    np.testing.assert_array_equal(image_to_rgb(longer), RGB)          # trailing bytes are ignored


def test_cv_bridge_used_only_when_it_round_trips(monkeypatch):
    class WorkingBridge:
        def imgmsg_to_cv2(self, msg, desired_encoding):
            assert desired_encoding == "rgb8"
            enc = "rgb8" if msg.encoding == "8UC3" else msg.encoding
            return image_to_rgb(Image(height=msg.height, width=msg.width, encoding=enc, step=msg.step,
                                      data=msg.data)).copy()

    class BrokenBridge(WorkingBridge):                 # the PyPI ROS 1 port fails like this on numpy 2
        def imgmsg_to_cv2(self, msg, desired_encoding):
            raise AttributeError("'numpy.ndarray' object has no attribute 'tostring'")

    msg = message(RGB, "8UC3", 2)
    for cls, works in ((WorkingBridge, True), (BrokenBridge, False)):
        monkeypatch.setitem(sys.modules, "cv_bridge", types.SimpleNamespace(CvBridge=cls))
        imaging._bridge.cache_clear()
        try:
            assert (imaging._bridge() is not None) == works
            if works:
                np.testing.assert_array_equal(image_to_rgb(msg), RGB)
            else:
                with pytest.raises(ImageFormatError, match="unsupported encoding"):
                    image_to_rgb(msg)
        finally:
            imaging._bridge.cache_clear()


def test_compressed_round_trips():
    yy, xx = np.mgrid[0:32, 0:48]
    smooth = np.stack([xx * 5, yy * 7, (xx + yy) * 3], axis=2).astype(np.uint8)
    ok, png = cv2.imencode(".png", smooth[..., ::-1])
    np.testing.assert_array_equal(compressed_to_rgb(CompressedImage(format="png", data=png.tobytes())), smooth)
    ok, jpg = cv2.imencode(".jpg", smooth[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    out = compressed_to_rgb(CompressedImage(format="rgb8; jpeg compressed bgr8", data=jpg.tobytes()))
    assert out.shape == (32, 48, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - smooth).mean() < 2.0        # lossy, but colours in the right channels
    assert out[:, -1, 0].mean() > 200 and out[-1, :, 1].mean() > 150    # red grows with x, green with y
    for fmt, data, reason in (("jpeg", b"", "no data"), ("jpeg", b"not an image", "could not be decoded"),
                              ("16UC1; compressedDepth png", png.tobytes(), "depth")):
        with pytest.raises(ImageFormatError, match=reason):
            compressed_to_rgb(CompressedImage(format=fmt, data=data))


def test_alpha_messages():
    header = Header(frame_id="cam")
    header.stamp.sec, header.stamp.nanosec = 12, 345
    alpha = np.array([[0.0, 0.25, 1.0], [-0.1, 1.5, 0.502]], np.float32)
    m = alpha_to_msg(alpha, header)
    assert (m.encoding, m.height, m.width, m.step) == ("mono8", 2, 3, 3)
    assert m.header.frame_id == "cam" and (m.header.stamp.sec, m.header.stamp.nanosec) == (12, 345)
    assert list(m.data) == [0, 64, 255, 0, 255, 128]               # rounded and saturated
    assert msg_to_alpha(m).dtype == np.float32 and msg_to_alpha(m).shape == (2, 3)
    np.testing.assert_allclose(msg_to_alpha(m), np.array([[0, 64, 255], [0, 255, 128]]) / 255, atol=1e-7)
    f = alpha_to_msg(alpha, header, "32FC1")
    assert (f.encoding, f.step, f.is_bigendian) == ("32FC1", 12, int(sys.byteorder == "big"))
    np.testing.assert_array_equal(msg_to_alpha(f), alpha)
    big = Image(height=2, width=3, encoding="32FC1", is_bigendian=1, step=12, data=alpha.astype(">f4").tobytes())
    np.testing.assert_array_equal(msg_to_alpha(big), alpha)
    with pytest.raises(ValueError, match="alpha encoding"):
        alpha_to_msg(alpha, header, "mono16")
    with pytest.raises(ValueError, match="alpha"):
        alpha_to_msg(alpha[None], header)
    with pytest.raises(ImageFormatError, match="mono8 or 32FC1"):
        msg_to_alpha(message(RGB, "rgb8"))


def test_foreground_and_rgb_messages():
    alpha = np.array([[0.0, 0.5, 1.0], [0.2, 0.4, 0.6]], np.float32)
    m = foreground_to_msg(RGB, Header())
    assert (m.encoding, m.step) == ("rgb8", 9) and bytes(m.data) == RGB.tobytes()
    m = foreground_to_msg(RGB, Header(), "bgra8", alpha=alpha)
    assert (m.encoding, m.step) == ("bgra8", 12)
    px = np.frombuffer(m.data, np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(px[..., :3], RGB[..., ::-1])
    np.testing.assert_array_equal(px[..., 3], [[0, 128, 255], [51, 102, 153]])
    np.testing.assert_array_equal(image_to_rgb(m), RGB)
    m = rgb_to_msg(RGB, Header(), "bgr8")
    assert bytes(m.data) == np.ascontiguousarray(RGB[..., ::-1]).tobytes()
    np.testing.assert_array_equal(image_to_rgb(rgb_to_msg(RGB[:, ::-1], Header())), RGB[:, ::-1])
    for call in (lambda: foreground_to_msg(RGB, Header(), "bgra8"),
                 lambda: foreground_to_msg(RGB, Header(), "bgra8", alpha=alpha[:1]),
                 lambda: foreground_to_msg(RGB, Header(), "rgba8"),
                 lambda: foreground_to_msg(RGB.astype(np.float32), Header()),
                 lambda: rgb_to_msg(RGB, Header(), "mono8"), lambda: rgb_to_msg(RGB[..., 0], Header())):
        with pytest.raises(ValueError):
            call()


def test_output_messages_survive_serialisation():
    """The data is stored without the generated setter: it must still read back and serialise."""
    alpha = np.random.default_rng(0).random((5, 7)).astype(np.float32)
    for m in (rgb_to_msg(RGB, Header(frame_id="f")), alpha_to_msg(alpha, Header()),
              alpha_to_msg(alpha, Header(), "32FC1"), foreground_to_msg(RGB, Header(), "bgra8", alpha=alpha[:2, :3])):
        back = deserialize_message(serialize_message(m), Image)
        assert (back.encoding, back.height, back.width, back.step) == (m.encoding, m.height, m.width, m.step)
        assert bytes(back.data) == bytes(m.data) and len(m.data) == m.step * m.height
    back = deserialize_message(serialize_message(rgb_to_msg(RGB, Header())), Image)
    np.testing.assert_array_equal(image_to_rgb(back), RGB)


def _jpeg(width: int, height: int) -> bytes:
    yy, xx = np.mgrid[0:height, 0:width]
    ok, jpg = cv2.imencode(".jpg", np.stack([xx, yy, xx + yy], axis=2).astype(np.uint8))
    return jpg.tobytes()


def _with_sof_size(jpg: bytes, width: int, height: int) -> bytes:
    """``jpg`` with the size fields of its (first) SOF0 segment replaced."""
    i = jpg.index(b"\xff\xc0")
    return jpg[:i + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + jpg[i + 9:]


def test_compressed_size_reads_the_png_and_jpeg_headers_without_decoding():
    ok, png = cv2.imencode(".png", np.zeros((31, 47, 3), np.uint8))
    assert compressed_size(png.tobytes()) == ("png", 47, 31)
    assert compressed_size(png) == ("png", 47, 31)                  # any buffer: numpy, bytes, array.array
    jpg = _jpeg(45, 29)
    assert compressed_size(jpg) == ("jpeg", 45, 29)
    ok, prog = cv2.imencode(".jpg", np.zeros((20, 30, 3), np.uint8), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    assert compressed_size(prog.tobytes()) == ("jpeg", 30, 20)     # SOF2
    # a 60 kB comment segment and fill bytes before the frame header are walked over
    comment = b"\xff\xfe" + (2 + 60000).to_bytes(2, "big") + bytes(60000)
    padded = jpg[:2] + b"\xff\xff" + comment + jpg[2:]
    assert compressed_size(padded) == ("jpeg", 45, 29)
    np.testing.assert_array_equal(compressed_to_rgb(CompressedImage(format="jpeg", data=padded)),
                                  compressed_to_rgb(CompressedImage(format="jpeg", data=jpg)))
    assert compressed_size(zero_png(16000, 16000)) == ("png", 16000, 16000)
    for data, reason in ((b"GIF89a" + bytes(30), "neither PNG nor JPEG"),
                         (png.tobytes()[:8] + bytes(16), "IHDR"),
                         (b"\xff\xd8\xff\xda" + bytes(20), "no frame header"),        # image data before SOF
                         (b"\xff\xd8\xff\xe0\x00\x01" + bytes(20), "invalid length"),
                         (b"\xff\xd8" + bytes(10), "no segment marker")):
        with pytest.raises(ImageFormatError, match=reason):
            compressed_size(data)


def test_a_decompression_bomb_is_refused_from_its_header_before_decoding():
    bomb = CompressedImage(format="png", data=zero_png(16000, 16000))      # 250 kB that decode to 256 MB
    t = time.perf_counter()
    with pytest.raises(FrameTooLargeError, match="16000x16000 = 256000000 pixels is larger than the limit of "
                                                 "33177600 pixels"):
        compressed_to_rgb(bomb, max_pixels=7680 * 4320)
    assert time.perf_counter() - t < 1.0                 # decoding it takes seconds and a gigabyte
    huge = CompressedImage(format="jpeg", data=_with_sof_size(_jpeg(40, 30), 40000, 40000))
    with pytest.raises(FrameTooLargeError, match="40000x40000"):
        compressed_to_rgb(huge, max_pixels=7680 * 4320)
    # a frame within the limit decodes; the limit counts pixels (width x height)
    small = CompressedImage(format="png", data=zero_png(40, 30))
    assert compressed_to_rgb(small, max_pixels=1200).shape == (30, 40, 3)
    with pytest.raises(FrameTooLargeError):
        compressed_to_rgb(small, max_pixels=1199)
    with pytest.raises(ImageFormatError, match=r"declares a zero size \(40x0\)"):
        compressed_to_rgb(CompressedImage(format="jpeg", data=_with_sof_size(_jpeg(40, 30), 40, 0)))


def test_truncated_or_corrupt_compressed_data_is_malformed_not_an_opencv_error():
    png = zero_png(40, 30)
    for data in (png[:40], png[:-20], png[:33] + bytes(len(png) - 33), _jpeg(40, 30)[:300]):
        try:
            out = compressed_to_rgb(CompressedImage(format="png", data=data))
        except ImageFormatError as e:
            assert "could not be decoded" in str(e)
        else:       # a decoder may fill in a cut-off tail; then the size is the declared one
            assert out.shape == (30, 40, 3)


def test_raw_frames_over_the_pixel_limit_are_refused_before_conversion():
    msg = message(RGB, "rgb8")
    assert image_to_rgb(msg, max_pixels=6).shape == (2, 3, 3)
    with pytest.raises(FrameTooLargeError, match="rgb8 image of 3x2 = 6 pixels is larger than the limit of 5"):
        image_to_rgb(msg, max_pixels=5)
    # a header declaring a huge frame over a few bytes: refused for its size, not reported as truncated
    liar = Image(height=100_000, width=100_000, encoding="rgb8", step=300_000, data=bytes(10))
    with pytest.raises(FrameTooLargeError, match="100000x100000"):
        image_to_rgb(liar, max_pixels=33_177_600)
    with pytest.raises(ImageFormatError, match="truncated"):
        image_to_rgb(liar)
