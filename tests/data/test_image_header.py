"""fmkeras/data/image_header.py: declared sizes read from headers, without decoding."""
import io
import struct

import numpy as np
import pytest
from PIL import Image

from fmkeras.data.image_header import UnreadableHeader, declared_size, header_info
from reliability.corrupt_corpus import bomb_png


def _write(path, image: Image.Image, fmt: str, **kwargs):
    out = io.BytesIO()
    image.save(out, fmt, **kwargs)
    path.write_bytes(out.getvalue())
    return path


def test_sizes_of_every_supported_format(tmp_path):
    rgb = Image.fromarray(np.zeros((13, 21, 3), np.uint8))  # 21 wide, 13 high
    exif = Image.Exif()
    exif[0x010E] = "x" * 5000  # a large APP1 segment before the JPEG frame header
    files = {
        "a.png": _write(tmp_path / "a.png", rgb, "PNG"),
        "a.jpg": _write(tmp_path / "a.jpg", rgb, "JPEG", exif=exif),
        "progressive.jpg": _write(tmp_path / "p.jpg", rgb, "JPEG", progressive=True),
        "cmyk.jpg": _write(tmp_path / "c.jpg", rgb.convert("CMYK"), "JPEG"),
        "a.gif": _write(tmp_path / "a.gif", rgb, "GIF", save_all=True, append_images=[rgb]),
        "a.bmp": _write(tmp_path / "a.bmp", rgb, "BMP"),
    }
    assert {name: declared_size(str(path)) for name, path in files.items()} == {name: (21, 13) for name in files}


def test_unknown_formats_are_left_to_the_decoder_and_cut_known_ones_refused(tmp_path):
    (tmp_path / "text.jpg").write_bytes(b"not an image at all")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "cut.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF")
    assert [declared_size(str(tmp_path / n)) for n in ("text.jpg", "empty.png")] == [None] * 2
    with pytest.raises(UnreadableHeader, match="JPEG"):  # a JPEG whose size is unknown never reaches libjpeg
        declared_size(str(tmp_path / "cut.jpg"))


def test_bomb_sizes_come_from_the_header(tmp_path):
    (tmp_path / "bomb.png").write_bytes(bomb_png(30000))
    assert (tmp_path / "bomb.png").stat().st_size < 200_000
    assert declared_size(str(tmp_path / "bomb.png")) == (30000, 30000)
    # A GIF whose 1x1 logical screen hides a 40000x30000 frame: the largest extent counts.
    gif = b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
    gif += b"," + struct.pack("<HHHHB", 0, 0, 40000, 30000, 0) + b"\x02\x02\x44\x01\x00;"
    (tmp_path / "frame.gif").write_bytes(gif)
    assert declared_size(str(tmp_path / "frame.gif")) == (40000, 30000)
    jpeg = b"\xff\xd8\xff\xc0\x00\x11\x08" + struct.pack(">HH", 30000, 25000) + b"\x03" + b"\0" * 9 + b"\xff\xd9"
    (tmp_path / "bomb.jpg").write_bytes(jpeg)
    assert declared_size(str(tmp_path / "bomb.jpg")) == (25000, 30000)


def test_webp_lossy_lossless_and_extended_sizes(tmp_path):
    rgb = Image.fromarray(np.zeros((13, 21, 3), np.uint8))
    rgba = Image.fromarray(np.zeros((13, 21, 4), np.uint8))
    files = {"lossy": _write(tmp_path / "a.webp", rgb, "WEBP", lossless=False),
             "lossless": _write(tmp_path / "b.webp", rgb, "WEBP", lossless=True),
             "extended": _write(tmp_path / "c.webp", rgba, "WEBP", lossless=False, exif=Image.Exif().tobytes())}
    assert (tmp_path / "c.webp").read_bytes()[12:16] == b"VP8X"
    assert {name: declared_size(str(path)) for name, path in files.items()} == {name: (21, 13) for name in files}
    vp8x = b"RIFF\x00\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x00\x00\x00\x00" + (16383).to_bytes(3, "little") * 2
    assert header_info(vp8x).pixels == 16384 * 16384


def test_jpeg_bytes_before_the_frame_header_are_skipped_like_libjpeg_does():
    sof = b"\xff\xc0\x00\x11\x08" + struct.pack(">HH", 30000, 25000) + b"\x03" + b"\0" * 9
    jpeg = b"\xff\xd8\xff\xe0\x00\x04ab" + b"garbage libjpeg skips" + b"\xff\xff" + sof + b"\xff\xd9"
    assert header_info(jpeg).pixels == 25000 * 30000


def test_gif_frames_are_found_with_and_without_a_global_colour_table():
    for packed, table in ((0x80, b"\0\0\0\xff\xff\xff"), (0x00, b"")):
        gif = b"GIF89a" + struct.pack("<HHBBB", 1, 1, packed, 0, 0) + table
        gif += b"!\xf9\x04\x00\x00\x00\x00\x00"  # a graphic control extension first
        gif += b"," + struct.pack("<HHHHB", 0, 0, 2, 2, 0) + b"\x02\x02\x44\x01\x00"
        gif += b"," + struct.pack("<HHHHB", 5, 7, 40000, 30000, 0) + b"\x02\x02\x44\x01\x00;"
        info = header_info(gif)
        assert (info.width, info.height) == (40005, 30007), packed


def test_bmp_sizes_are_read_as_tf_reads_them():
    bmp = b"BM" + b"\0" * 12 + struct.pack("<Iii", 12, 50000, -40000)
    assert header_info(bmp).pixels == 50000 * 40000
