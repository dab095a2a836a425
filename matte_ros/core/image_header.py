r"""The size an image file declares in its header, read without decoding a pixel.

    image_size(data)             -> ImageSize(kind, width, height) of encoded bytes (any buffer)
    file_image_size(path)        -> the same for a file, reading its first 64 KiB (all of it only
                                    when the header lies further in: a JPEG after long metadata,
                                    a TIFF whose directory is at the end)

Formats (those OpenCV decodes whose headers are cheap to read):
    png    signature, then the IHDR chunk: width, height (big-endian u32)
    jpeg   SOI, then segments walked up to the first start-of-frame (SOF0..SOF15 but DHT, JPG, DAC)
    bmp    "BM", then the DIB header: u16 (OS/2 core header) or i32 width and height (negative: top-down)
    tiff   "II*\0" / "MM\0*", the first image directory's ImageWidth (256) and ImageLength (257)
    webp   RIFF "WEBP" with a VP8 (lossy), VP8L (lossless) or VP8X (extended) first chunk
    pnm    P1..P6: width and height as text after the magic (comments skipped)

A caller compares width x height with its pixel limit before handing the bytes to a decoder, so a
few hundred bytes that declare a 60000x60000 image never become a 10 GB allocation.
"""
from typing import NamedTuple, Sequence

__all__ = ["FORMATS", "ImageHeaderError", "ImageSize", "image_size", "file_image_size"]

FORMATS = ("png", "jpeg", "bmp", "tiff", "webp", "pnm")
_NAMES = {"png": "PNG", "jpeg": "JPEG", "bmp": "BMP", "tiff": "TIFF", "webp": "WebP", "pnm": "PNM"}
_PREFIX = 64 * 1024
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, extended, progressive, lossless; Huffman and arithmetic)
_JPEG_SOF = frozenset((0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF))


class ImageHeaderError(ValueError):
    """Data that is not one of the formats asked for, or whose header is malformed or cut short."""


class _Truncated(ImageHeaderError):
    """The data ends before the header does (a file reader may read further and try again)."""


class ImageSize(NamedTuple):
    kind: str        # a FORMATS name
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


def _u16(b, i: int, big: bool) -> int:
    return int.from_bytes(b[i:i + 2], "big" if big else "little")


def _u32(b, i: int, big: bool) -> int:
    return int.from_bytes(b[i:i + 4], "big" if big else "little")


def _png(b) -> ImageSize:
    if len(b) < 24:
        raise _Truncated("PNG data ends before its IHDR header")
    if b[12:16] != b"IHDR":
        raise ImageHeaderError("PNG data does not start with its IHDR header")
    return ImageSize("png", _u32(b, 16, True), _u32(b, 20, True))


def _jpeg(b) -> ImageSize:
    """The first start-of-frame segment, walking the segments after SOI."""
    i, n = 2, len(b)
    while i + 4 <= n:
        if b[i] != 0xFF:
            raise ImageHeaderError(f"JPEG data has no segment marker at byte {i}")
        marker = b[i + 1]
        if marker == 0xFF:                                  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:        # markers without a length
            i += 2
            continue
        if marker in (0xD9, 0xDA):                          # end of image / image data before a frame header
            raise ImageHeaderError("JPEG data has no frame header (SOF) before its image data")
        if marker in _JPEG_SOF:
            if i + 9 > n:
                break
            return ImageSize("jpeg", _u16(b, i + 7, True), _u16(b, i + 5, True))
        length = _u16(b, i + 2, True)
        if length < 2:
            raise ImageHeaderError(f"JPEG segment at byte {i} has an invalid length {length}")
        i += 2 + length
    raise _Truncated("JPEG data ends before its frame header (SOF)")


def _bmp(b) -> ImageSize:
    if len(b) < 26:
        raise _Truncated("BMP data ends before its DIB header")
    if _u32(b, 14, False) == 12:                            # OS/2 BITMAPCOREHEADER: u16 sizes
        return ImageSize("bmp", _u16(b, 18, False), _u16(b, 20, False))
    w = int.from_bytes(b[18:22], "little", signed=True)
    h = int.from_bytes(b[22:26], "little", signed=True)
    if w < 0:
        raise ImageHeaderError(f"BMP header declares a negative width {w}")
    return ImageSize("bmp", w, abs(h))


def _tiff(b) -> ImageSize:
    big = bytes(b[:2]) == b"MM"
    if _u16(b, 2, big) != 42:
        raise ImageHeaderError("TIFF data is BigTIFF or not TIFF (version is not 42)")
    ifd = _u32(b, 4, big)
    if len(b) < ifd + 2:
        raise _Truncated("TIFF data ends before its first image directory")
    count = _u16(b, ifd, big)
    if len(b) < ifd + 2 + 12 * count:
        raise _Truncated("TIFF data ends inside its first image directory")
    found = {}
    for k in range(count):
        e = ifd + 2 + 12 * k
        tag, kind = _u16(b, e, big), _u16(b, e + 2, big)
        if tag in (256, 257):
            found[tag] = _u16(b, e + 8, big) if kind == 3 else _u32(b, e + 8, big)
    if 256 not in found or 257 not in found:
        raise ImageHeaderError("TIFF image directory has no ImageWidth or ImageLength")
    return ImageSize("tiff", found[256], found[257])


def _webp(b) -> ImageSize:
    if len(b) < 30:
        raise _Truncated("WebP data ends before its first chunk's header")
    chunk = bytes(b[12:16])
    if chunk == b"VP8X":                                    # canvas size - 1, 24-bit little-endian
        return ImageSize("webp", int.from_bytes(b[24:27], "little") + 1, int.from_bytes(b[27:30], "little") + 1)
    if chunk == b"VP8L":
        if b[20] != 0x2F:
            raise ImageHeaderError("WebP lossless chunk has no signature byte 0x2f")
        bits = _u32(b, 21, False)                           # 14 bits width - 1, 14 bits height - 1
        return ImageSize("webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8 ":
        if bytes(b[23:26]) != b"\x9d\x01\x2a":
            raise ImageHeaderError("WebP lossy chunk has no VP8 start code")
        return ImageSize("webp", _u16(b, 26, False) & 0x3FFF, _u16(b, 28, False) & 0x3FFF)
    raise ImageHeaderError(f"WebP data starts with an unknown chunk {chunk!r}")


def _pnm(b) -> ImageSize:
    """Width and height: the first two numbers after the magic, comments (# to the line's end) skipped."""
    head = bytes(b[2:1024])
    numbers, i = [], 0
    while len(numbers) < 2 and i < len(head):
        c = head[i:i + 1]
        if c == b"#":
            end = head.find(b"\n", i)
            if end < 0:
                break
            i = end + 1
        elif c.isspace():
            i += 1
        elif c.isdigit():
            j = i
            while j < len(head) and head[j:j + 1].isdigit():
                j += 1
            if j == len(head):
                break
            numbers.append(int(head[i:j]))
            i = j
        else:
            raise ImageHeaderError(f"PNM header has {c!r} where its width or height should be")
    if len(numbers) < 2:
        raise _Truncated("PNM data ends before its width and height")
    return ImageSize("pnm", numbers[0], numbers[1])


def _kind(b) -> str:
    if bytes(b[:8]) == _PNG_SIGNATURE:
        return "png"
    if len(b) >= 4 and b[0] == 0xFF and b[1] == 0xD8:
        return "jpeg"
    if bytes(b[:2]) == b"BM":
        return "bmp"
    if len(b) >= 8 and bytes(b[:2]) in (b"II", b"MM"):
        return "tiff"
    if bytes(b[:4]) == b"RIFF" and bytes(b[8:12]) == b"WEBP":
        return "webp"
    if len(b) >= 3 and b[0] == ord("P") and ord("1") <= b[1] <= ord("6") and chr(b[2]).isspace():
        return "pnm"
    return ""


_READERS = {"png": _png, "jpeg": _jpeg, "bmp": _bmp, "tiff": _tiff, "webp": _webp, "pnm": _pnm}


def _listed(formats: Sequence[str]) -> str:
    names = [_NAMES[f] for f in formats]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} nor {names[-1]}"


def image_size(data, formats: Sequence[str] = FORMATS) -> ImageSize:
    """(kind, width, height) declared by the header of encoded image ``data`` (bytes, numpy, any
    buffer) in one of ``formats``; ImageHeaderError for anything else, a malformed or a cut-off header."""
    b = memoryview(data).cast("B")
    kind = _kind(b)
    if kind not in formats:
        raise ImageHeaderError(f"data is neither {_listed(formats)} (starts with {bytes(b[:8]).hex(' ')})")
    return _READERS[kind](b)


def file_image_size(path: str, formats: Sequence[str] = FORMATS) -> ImageSize:
    """image_size of the file at ``path``, reading no more of it than its header needs (OSError
    when it cannot be read)."""
    with open(path, "rb") as f:
        head = f.read(_PREFIX)
        try:
            return image_size(head, formats)
        except _Truncated:
            if len(head) < _PREFIX:
                raise
            return image_size(head + f.read(), formats)
