"""core/image_header: the size of every format OpenCV writes, read from the header alone, against the
size the image was made with; headers that lie, are cut short or are no image."""
import struct
import time

import cv2
import numpy as np
import pytest
from offline_inputs import png_declaring

from matte_ros.core.image_header import ImageHeaderError, file_image_size, image_size

W, H = 47, 31


def encoded(ext: str, params=()) -> bytes:
    yy, xx = np.mgrid[0:H, 0:W]
    img = np.stack([xx * 5, yy * 7, xx + yy], axis=2).astype(np.uint8)
    img = img[:, :, 0] if ext == ".pgm" else img
    ok, buf = cv2.imencode(ext, img, list(params))
    assert ok
    return buf.tobytes()


@pytest.mark.parametrize("ext,params,kind", [
    (".png", (), "png"), (".jpg", (), "jpeg"), (".jpg", (cv2.IMWRITE_JPEG_PROGRESSIVE, 1), "jpeg"),
    (".bmp", (), "bmp"), (".tif", (), "tiff"), (".tif", (cv2.IMWRITE_TIFF_COMPRESSION, 1), "tiff"),
    (".webp", (cv2.IMWRITE_WEBP_QUALITY, 80), "webp"), (".webp", (cv2.IMWRITE_WEBP_QUALITY, 101), "webp"),
    (".ppm", (), "pnm"), (".pgm", (), "pnm")])
def test_every_format_declares_the_size_it_was_made_with(ext, params, kind, tmp_path):
    data = encoded(ext, params)
    assert image_size(data) == (kind, W, H)
    assert image_size(np.frombuffer(data, np.uint8)).pixels == W * H          # any buffer
    path = tmp_path / f"x{ext}"
    path.write_bytes(data)
    assert file_image_size(str(path)) == (kind, W, H)


def test_headers_beyond_the_first_64_kib_are_read_from_the_rest_of_the_file(tmp_path):
    jpg = encoded(".jpg")
    comment = b"\xff\xfe" + (2 + 65000).to_bytes(2, "big") + bytes(65000)      # before the frame header
    (tmp_path / "long.jpg").write_bytes(jpg[:2] + comment + comment + jpg[2:])
    assert file_image_size(str(tmp_path / "long.jpg")) == ("jpeg", W, H)
    big_endian_tiff = (b"MM\x00*" + (8 + 100_000).to_bytes(4, "big") + bytes(100_000) +       # directory at the end
                       (2).to_bytes(2, "big") + struct.pack(">HHII", 256, 4, 1, 70000) +
                       struct.pack(">HHIHH", 257, 3, 1, 5, 0) + bytes(4))
    (tmp_path / "far.tif").write_bytes(big_endian_tiff)
    assert file_image_size(str(tmp_path / "far.tif")) == ("tiff", 70000, 5)


def test_a_huge_declared_size_is_read_without_decoding():
    t = time.perf_counter()
    assert image_size(png_declaring(60000, 60000)) == ("png", 60000, 60000)
    assert time.perf_counter() - t < 0.05
    bmp = bytearray(encoded(".bmp"))
    bmp[18:26] = struct.pack("<ii", 30000, -30000)                  # top-down rows: negative height
    assert image_size(bytes(bmp)) == ("bmp", 30000, 30000)


@pytest.mark.parametrize("data,reason", [
    (b"GIF89a" + bytes(30), "neither PNG, JPEG, BMP, TIFF, WebP nor PNM"),
    (b"\x89PNG\r\n\x1a\n" + bytes(16), "IHDR"),
    (b"\x89PNG\r\n\x1a\n", "ends before its IHDR"),
    (b"\xff\xd8\xff\xda" + bytes(20), "no frame header"),
    (b"\xff\xd8\xff\xe0" + bytes(20), "invalid length"),
    (b"RIFF\x00\x00\x00\x00WEBPVP8Q" + bytes(20), "unknown chunk"),
    (b"MM\x00+" + bytes(20), "BigTIFF"),
    (b"P6\n# a comment\n12 x", "where its width"),
])
def test_what_is_no_image_or_a_broken_header_is_refused(data, reason):
    with pytest.raises(ImageHeaderError, match=reason):
        image_size(data)


def test_formats_can_be_restricted():
    with pytest.raises(ImageHeaderError, match="neither PNG nor JPEG"):
        image_size(encoded(".bmp"), ("png", "jpeg"))
    assert image_size(encoded(".png"), ("png", "jpeg")) == ("png", W, H)
