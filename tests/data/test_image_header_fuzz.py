"""Structure-aware fuzzing of fmkeras/data/image_header.py against TF's own decoder.

For each format TF's decode_image accepts, 10,000 headers are mutated where it matters (size
fields, colour-table flags, frame descriptors, bytes before a JPEG frame header, WebP chunk
kinds, plus random byte flips and cuts). Every mutant the header check lets through is then
decoded by `tf.io.decode_image`, exactly as training and serving decode: none may come out
larger than the limit. A mutant the check refuses is never decoded (that is the point).
"""
import io
import random
import struct
import zlib

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from fmkeras.data.image_header import UnreadableHeader, header_info

LIMIT = 48 * 48            # pixels; the seeds are 24x20, mutated sizes land on both sides of it
MUTANTS_PER_FORMAT = 10_000


def _encode(fmt: str, image: Image.Image, **kwargs) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **kwargs)
    return out.getvalue()


def _seeds() -> dict:
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8))
    rgba = Image.fromarray(rng.integers(0, 255, (20, 24, 4), dtype=np.uint8))
    frames = [Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)) for _ in range(2)]
    return {
        "png": [_encode("PNG", rgb)],
        "jpeg": [_encode("JPEG", rgb), _encode("JPEG", rgb, progressive=True)],
        "gif": [_encode("GIF", frames[0], save_all=True, append_images=frames[1:]),
                _encode("GIF", rgb.convert("L"))],
        "bmp": [_encode("BMP", rgb)],
        "webp": [_encode("WEBP", rgb, lossless=False), _encode("WEBP", rgb, lossless=True),
                 _encode("WEBP", rgba, lossless=False, exif=Image.Exif().tobytes())],
    }


def _dimension(rng: random.Random) -> int:
    return rng.choice((rng.randint(0, 80), rng.randint(0, 80), rng.randint(0, 2000), rng.randint(0, 65535)))


def _put(data: bytearray, offset: int, fmt: str, *values):
    if offset + struct.calcsize(fmt) <= len(data):
        struct.pack_into(fmt, data, offset, *values)


def _gif_descriptors(data: bytes) -> list:
    return [i for i in range(13, len(data) - 10) if data[i] == 0x2C and data[i - 1] in (0x00, 0x3B, 0x21)] or [13]


def _mutate(fmt: str, seed: bytes, rng: random.Random) -> bytes:
    data = bytearray(seed)
    if fmt == "png":
        _put(data, 16, ">II", _dimension(rng), _dimension(rng))
        if rng.random() < 0.9:  # libpng checks the IHDR CRC: mostly keep it right so mutants reach the decoder
            _put(data, 29, ">I", zlib.crc32(bytes(data[12:29])))
    elif fmt == "jpeg":
        sof = next(i for i in range(2, len(data) - 1) if data[i] == 0xFF and data[i + 1] in (0xC0, 0xC2))
        if rng.random() < 0.8:
            _put(data, sof + 5, ">HH", _dimension(rng), _dimension(rng))
        if rng.random() < 0.4:  # stray bytes, fill bytes or a bogus segment before the frame header
            junk = rng.choice((bytes(rng.randrange(256) & 0xFE for _ in range(rng.randint(1, 20))),
                               b"\xff" * rng.randint(1, 5),
                               b"\xff\xe5" + struct.pack(">H", rng.randint(0, 40)) + bytes(rng.randint(0, 40))))
            data[sof:sof] = junk
    elif fmt == "gif":
        _put(data, 6, "<HH", _dimension(rng), _dimension(rng))
        if rng.random() < 0.3:
            data[10] ^= 0x80  # global colour table on/off
        descriptors = _gif_descriptors(bytes(data))
        at = rng.choice(descriptors)
        _put(data, at + 1, "<HHHH", rng.randint(0, 30), rng.randint(0, 30), _dimension(rng), _dimension(rng))
        if rng.random() < 0.2:
            data[at + 9 if at + 9 < len(data) else 0] ^= 0x80  # local colour table on/off
    elif fmt == "bmp":
        width, height = _dimension(rng), _dimension(rng) * rng.choice((1, -1))
        _put(data, 18, "<ii", width, height)
        size = struct.unpack_from("<I", data, 10)[0] + (24 * width + 31) // 32 * 4 * abs(height)
        if rng.random() < 0.8 and size < 300_000:  # TF wants exactly the pixel bytes the header declares
            data = data[:size] + bytes(max(0, size - len(data)))
    elif fmt == "webp":
        kind = bytes(data[12:16])
        if kind == b"VP8X":
            data[24:27] = _dimension(rng).to_bytes(3, "little")
            data[27:30] = _dimension(rng).to_bytes(3, "little")
        elif kind == b"VP8L":
            bits = int.from_bytes(data[21:25], "little") & ~((1 << 28) - 1)
            data[21:25] = (bits | (_dimension(rng) & 0x3FFF) | ((_dimension(rng) & 0x3FFF) << 14)).to_bytes(4, "little")
        else:
            _put(data, 26, "<HH", _dimension(rng), _dimension(rng))
        if rng.random() < 0.1:
            data[12:16] = rng.choice((b"VP8 ", b"VP8L", b"VP8X", b"ALPH"))
    for _ in range(rng.choice((0, 0, 1, 2))):  # blind flips in the header
        data[rng.randrange(min(len(data), 64))] = rng.randrange(256)
    if rng.random() < 0.05:
        data = data[:rng.randint(4, len(data))]
    return bytes(data)


def _admitted(data: bytes) -> bool:
    """What the server and the data check let through to a decoder."""
    try:
        info = header_info(data)
    except UnreadableHeader:
        return False
    return info is None or info.pixels <= LIMIT


def _decoded_pixels(blobs: list) -> list:
    """(index, h*w) of every blob TF decodes, as training and serving decode (first GIF frame)."""
    def decode(i, blob):
        shape = tf.shape(tf.io.decode_image(blob, channels=0, expand_animations=False))
        return i, shape[0] * shape[1]
    ds = tf.data.Dataset.from_tensor_slices((np.arange(len(blobs)), np.asarray(blobs, dtype=object)))
    ds = ds.map(decode, num_parallel_calls=2).ignore_errors().batch(4096)
    return [(int(i), int(p)) for idx, pix in ds.as_numpy_iterator() for i, p in zip(idx, pix)]


@pytest.mark.parametrize("fmt", ["png", "jpeg", "gif", "bmp", "webp"])
def test_no_mutated_header_over_the_limit_reaches_the_decoder(fmt):
    rng = random.Random(fmt)
    seeds = _seeds()[fmt]
    assert all(header_info(seed).format == fmt and _admitted(seed) for seed in seeds)
    mutants = [_mutate(fmt, rng.choice(seeds), rng) for _ in range(MUTANTS_PER_FORMAT)]
    admitted = [m for m in mutants if _admitted(m)]
    refused = len(mutants) - len(admitted)
    # Both sides are exercised: the mutations put many sizes over the limit, many under it.
    assert refused > MUTANTS_PER_FORMAT // 10 and len(admitted) > MUTANTS_PER_FORMAT // 10, (refused, len(admitted))
    decoded = _decoded_pixels(admitted)
    sizes = {pixels for _, pixels in decoded}
    print(f"{fmt}: {refused} refused, {len(admitted)} admitted, {len(decoded)} decoded, {len(sizes)} sizes")
    assert len(sizes) > 1, "admitted mutants decoded only at the seed's size: the oracle would check little"
    over = [(i, pixels) for i, pixels in decoded if pixels > LIMIT]
    assert not over, [(admitted[i][:40], pixels) for i, pixels in over[:5]]
