"""The pixel size an image declares in its header, read without decoding any pixels.

A decompression bomb is a small file whose header claims a huge image (a 100 KB PNG of
30000x30000 pixels inflates to gigabytes). Decoders allocate from the header, so the size is
read here, from the bytes, before any decoder sees them. Training data (file_check.py) and the
server (serve/image_header.py) both use this one parser.

Every format `tf.io.decode_image` accepts is recognised by the magic bytes TF and its libraries
route on (so a WebP named `.png` is judged as WebP): PNG (IHDR), JPEG (the first SOFn frame
header, found the way libjpeg finds it: stray bytes between segments are skipped), GIF (logical
screen and every frame's image descriptor), BMP (the 32-bit sizes TF's BMP decoder reads) and
WebP (lossy VP8, lossless VP8L, extended VP8X). A recognised format whose size cannot be read
raises UnreadableHeader: it is refused rather than handed to a decoder unchecked. Anything else
returns None and is left to the decoder, which rejects it.

Example:
    declared_size("cat.png")     # -> (640, 480) as (width, height), or None
    header_info(data).pixels     # pixels a decoder would allocate for this image
"""
from __future__ import annotations

import dataclasses
import mmap
import struct
from typing import Optional

# JPEG start-of-frame markers (all SOFn except DHT C4, JPG C8 and DAC CC).
_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_GIF_MAX_BLOCKS = 100_000  # frames + extensions walked before refusing a GIF


class UnreadableHeader(ValueError):
    """The data starts like an image format the decoder accepts, but its size cannot be read."""


@dataclasses.dataclass(frozen=True)
class HeaderInfo:
    """format: png|jpeg|gif|bmp|webp; width x height: the largest extent; pixels: what decoding allocates
    (for a GIF the larger of its extent and the sum of its frames, each frame being inflated on its own)."""
    format: str
    width: int
    height: int
    pixels: int


def _png(d) -> tuple:
    if len(d) < 24 or bytes(d[12:16]) != b"IHDR":
        raise UnreadableHeader("PNG without an IHDR chunk first")
    return struct.unpack(">II", d[16:24])


def _jpeg(d) -> tuple:
    """Walks segments like libjpeg's next_marker: bytes before a 0xFF are skipped, 0xFF fill is skipped."""
    i, n = 2, len(d)
    while True:
        i = d.find(b"\xff", i)
        if i < 0:
            raise UnreadableHeader("JPEG without a frame header")
        while i < n and d[i] == 0xFF:
            i += 1
        if i >= n:
            raise UnreadableHeader("JPEG without a frame header")
        code = d[i]
        i += 1
        if code == 0x01 or 0xD0 <= code <= 0xD7:
            continue  # markers without a length
        if code in (0xD8, 0xD9, 0xDA):
            raise UnreadableHeader("JPEG scan or end before any frame header")
        if i + 2 > n:
            raise UnreadableHeader("JPEG segment cut short")
        length = (d[i] << 8) | d[i + 1]
        if length < 2:
            raise UnreadableHeader("JPEG segment with a bad length")
        if code in _SOF_MARKERS:
            if i + 7 > n:
                raise UnreadableHeader("JPEG frame header cut short")
            height, width = struct.unpack(">HH", d[i + 3:i + 7])
            return width, height
        i += length


def _skip_sub_blocks(d, i: int) -> int:
    n = len(d)
    while i < n:
        size = d[i]
        i += 1
        if size == 0:
            return i
        i += size
    raise UnreadableHeader("GIF data cut short")


def _gif(d) -> tuple:
    if len(d) < 13:
        raise UnreadableHeader("GIF without a logical screen descriptor")
    width, height, packed = struct.unpack("<HHB", d[6:11])
    pixels = width * height
    frames = 0
    i = 13 + ((3 << ((packed & 7) + 1)) if packed & 0x80 else 0)
    for _ in range(_GIF_MAX_BLOCKS):  # frames may extend past the logical screen: every descriptor counts
        kind = d[i] if i < len(d) else None
        if kind == 0x21:  # extension
            i = _skip_sub_blocks(d, i + 2)
        elif kind == 0x2C:  # image descriptor
            if i + 10 > len(d):
                raise UnreadableHeader("GIF image descriptor cut short")
            left, top, w, h, flags = struct.unpack("<HHHHB", d[i + 1:i + 10])
            width, height = max(width, left + w), max(height, top + h)
            frames += w * h
            i += 10 + ((3 << ((flags & 7) + 1)) if flags & 0x80 else 0)
            i = _skip_sub_blocks(d, i + 1)  # +1: LZW minimum code size
        else:
            break  # trailer, garbage or end of data: giflib stops reading frames here too
    else:
        raise UnreadableHeader(f"GIF with more than {_GIF_MAX_BLOCKS} blocks")
    return width, height, max(width * height, pixels, frames)


def _bmp(d) -> tuple:
    if len(d) < 26:
        raise UnreadableHeader("BMP header cut short")
    width, height = struct.unpack("<ii", d[18:26])  # TF's BMP decoder reads these whatever the header kind
    return abs(width), abs(height)  # a negative height means top-down rows


def _webp(d) -> tuple:
    if len(d) < 30:
        raise UnreadableHeader("WebP header cut short")
    chunk = bytes(d[12:16])
    if chunk == b"VP8X":  # extended: canvas size, 24 bits each, minus one
        return 1 + int.from_bytes(d[24:27], "little"), 1 + int.from_bytes(d[27:30], "little")
    if chunk == b"VP8L":  # lossless: signature 0x2f, then 14-bit width-1 and height-1
        if d[20] != 0x2F:
            raise UnreadableHeader("WebP lossless without its signature")
        bits = int.from_bytes(d[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 ":  # lossy: 3-byte frame tag, start code 9d 01 2a, 14-bit sizes
        if bytes(d[23:26]) != b"\x9d\x01\x2a":
            raise UnreadableHeader("WebP lossy without its start code")
        width, height = struct.unpack("<HH", d[26:30])
        return width & 0x3FFF, height & 0x3FFF
    raise UnreadableHeader(f"WebP with an unknown first chunk {chunk!r}")


def header_info(data) -> Optional[HeaderInfo]:
    """The size an encoded image declares (bytes or an mmap), None for formats the decoder does not accept.

    Raises UnreadableHeader for a PNG/JPEG/GIF/BMP/WebP whose size cannot be read.
    """
    head = bytes(data[:16])
    if head.startswith(b"\x89PNG"):
        fmt, size = "png", _png(data)
    elif head.startswith(b"\xff\xd8\xff"):
        fmt, size = "jpeg", _jpeg(data)
    elif head.startswith(b"GIF"):  # giflib checks only these three bytes
        fmt, size = "gif", _gif(data)
    elif head.startswith(b"BM"):
        fmt, size = "bmp", _bmp(data)
    elif head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        fmt, size = "webp", _webp(data)
    else:
        return None
    width, height = size[:2]
    return HeaderInfo(fmt, width, height, size[2] if len(size) > 2 else width * height)


def file_header_info(path: str) -> Optional[HeaderInfo]:
    """header_info of a file, mapped rather than read (a GIF's frames are walked in place)."""
    with open(path, "rb") as fh:
        if len(fh.read(2)) < 2:
            return None
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            return header_info(mapped)


def declared_size(path: str) -> Optional[tuple]:
    """(width, height) the file's header declares, or None when it is no format the decoder accepts.

    Raises UnreadableHeader when it looks like one but its size cannot be read.
    """
    info = file_header_info(path)
    return None if info is None else (info.width, info.height)
