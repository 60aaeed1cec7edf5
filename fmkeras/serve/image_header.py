"""Decompression bombs in predict requests, refused from their headers before any decoding.

A 100-byte PNG can claim 60000 x 60000 pixels; decoding it would allocate gigabytes. Each
encoded image's size is read by the parser training data uses (`fmkeras.data.image_header`):
an image over `max_pixels`, an image of a decodable format whose size cannot be read, or a
request whose images add up to more than `max_request_pixels` is refused. Bytes of no image
format the decoder accepts pass through: the decoder rejects them with a 400 of its own.
"""
from __future__ import annotations

from fmkeras.data.image_header import UnreadableHeader, header_info


def check_image_sizes(images, max_pixels: int, name: str, max_request_pixels: int = None) -> int:
    """Raises ValueError naming the first image over `max_pixels` (or unreadable), or when all images
    together exceed `max_request_pixels`; returns the total pixels declared."""
    total = 0
    for index, data in enumerate(images.ravel() if hasattr(images, "ravel") else images):
        if not isinstance(data, bytes):
            continue
        try:
            info = header_info(data)
        except UnreadableHeader as err:
            raise ValueError(f"input '{name}' image {index}: {err}; refused before decoding") from None
        if info is None:
            continue
        if info.pixels > max_pixels:
            raise ValueError(f"input '{name}' image {index} is {info.height}x{info.width} pixels"
                             f"{'' if info.pixels == info.width * info.height else f' ({info.pixels} over its frames)'}"
                             f"; the limit is {max_pixels} pixels")
        total += info.pixels
        if max_request_pixels is not None and total > max_request_pixels:
            raise ValueError(f"input '{name}': images 0..{index} add up to {total} pixels; the limit per request "
                             f"is {max_request_pixels} pixels (serve.max_request_pixels)")
    return total
