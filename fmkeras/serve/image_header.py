"""Image dimensions read from file headers, to refuse decompression bombs before decoding.

A 100-byte PNG can claim 60000 x 60000 pixels; decoding it would allocate gigabytes. The
server reads the size from the header (PNG, GIF, BMP, JPEG) and rejects images above a limit.
Unknown formats pass through: the decoder rejects them with a 400 of its own.
"""
from __future__ import annotations

import struct


def _jpeg_size(data: bytes):
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if 0xD0 <= marker <= 0xD9 or marker == 0x01:  # markers without a length
            i += 2
            continue
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return height, width
        i += 2 + length
    return None


def image_size(data: bytes):
    """(height, width) claimed by an encoded image's header, or None if unknown/unreadable."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return height, width
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return height, width
    if data[:2] == b"BM" and len(data) >= 26:
        width, height = struct.unpack("<ii", data[18:26])
        return abs(height), abs(width)
    if data[:3] == b"\xff\xd8\xff":
        return _jpeg_size(data)
    return None


def check_image_sizes(images, max_pixels: int, name: str):
    """Raises ValueError naming the first image whose header claims more than `max_pixels`."""
    for index, data in enumerate(images.ravel() if hasattr(images, "ravel") else images):
        size = image_size(data) if isinstance(data, bytes) else None
        if size is not None and size[0] * size[1] > max_pixels:
            raise ValueError(f"input '{name}' image {index} is {size[0]}x{size[1]} pixels; the limit is "
                             f"{max_pixels} pixels")
