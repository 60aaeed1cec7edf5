"""The pixel size an image file declares in its header, read without decoding any pixels.

A decompression bomb is a small file whose header claims a huge image (a 100 KB PNG of
30000x30000 pixels inflates to gigabytes). Decoders allocate from the header, so the size is
checked here, from the first bytes of the file, before any decoder sees it.

Formats: PNG (IHDR), JPEG (the SOFn frame header), GIF (logical screen and every frame's
image descriptor; the largest counts) and BMP (the DIB header). Anything else returns None
and is left to the decoder, which names the format problem itself.

Example:
    declared_size("cat.png")   # -> (640, 480) as (width, height), or None
"""
from __future__ import annotations

import struct
from typing import BinaryIO, Optional

# JPEG start-of-frame markers (all SOFn except DHT C4, JPG C8 and DAC CC).
_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_GIF_MAX_BLOCKS = 100_000  # frames + extensions walked before giving up on a GIF's header


def _png(fh: BinaryIO, head: bytes) -> Optional[tuple]:
    if len(head) < 24 or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def _jpeg(fh: BinaryIO) -> Optional[tuple]:
    fh.seek(2)
    while True:
        byte = fh.read(1)
        if not byte:
            return None
        if byte != b"\xff":
            continue  # stray byte between segments: keep scanning for the next marker
        marker = fh.read(1)
        while marker == b"\xff":  # fill bytes
            marker = fh.read(1)
        if not marker:
            return None
        code = marker[0]
        if code in (0x01, 0xD8) or 0xD0 <= code <= 0xD7:
            continue  # markers without a length
        if code in (0xD9, 0xDA):
            return None  # end of image or start of scan before any frame header
        length = fh.read(2)
        if len(length) < 2:
            return None
        if code in _SOF_MARKERS:
            frame = fh.read(5)
            if len(frame) < 5:
                return None
            height, width = struct.unpack(">HH", frame[1:5])
            return width, height
        fh.seek(struct.unpack(">H", length)[0] - 2, 1)


def _skip_sub_blocks(fh: BinaryIO) -> bool:
    while True:
        size = fh.read(1)
        if not size:
            return False
        if size == b"\0":
            return True
        fh.seek(size[0], 1)


def _gif(fh: BinaryIO, head: bytes) -> Optional[tuple]:
    if len(head) < 13:
        return None
    width, height, packed = struct.unpack("<HHB", head[6:11])
    fh.seek(13 + (3 << ((packed & 7) + 1) if packed & 0x80 else 13))
    for _ in range(_GIF_MAX_BLOCKS):  # frames may extend past the logical screen: take the largest
        kind = fh.read(1)
        if kind == b"!":
            fh.read(1)
            if not _skip_sub_blocks(fh):
                break
        elif kind == b",":
            desc = fh.read(9)
            if len(desc) < 9:
                break
            left, top, w, h, flags = struct.unpack("<HHHHB", desc)
            width, height = max(width, left + w), max(height, top + h)
            if flags & 0x80:
                fh.seek(3 << ((flags & 7) + 1), 1)
            fh.read(1)  # LZW minimum code size
            if not _skip_sub_blocks(fh):
                break
        else:
            break  # trailer, garbage or end of file: the decoder judges the rest
    return width, height


def _bmp(fh: BinaryIO, head: bytes) -> Optional[tuple]:
    if len(head) < 26:
        return None
    if struct.unpack("<I", head[14:18])[0] == 12:  # OS/2 BITMAPCOREHEADER
        return struct.unpack("<HH", head[18:22])
    width, height = struct.unpack("<ii", head[18:26])
    return abs(width), abs(height)  # a negative height means top-down rows


def declared_size(path: str) -> Optional[tuple]:
    """(width, height) the file's header declares, or None when it is no PNG/JPEG/GIF/BMP header."""
    with open(path, "rb") as fh:
        head = fh.read(32)
        if head.startswith(b"\x89PNG\r\n\x1a\n"):
            return _png(fh, head)
        if head.startswith(b"\xff\xd8"):
            return _jpeg(fh)
        if head[:6] in (b"GIF87a", b"GIF89a"):
            return _gif(fh, head)
        if head.startswith(b"BM"):
            return _bmp(fh, head)
    return None
