"""fmkeras/data/image_header.py: declared sizes read from headers, without decoding."""
import io
import struct

import numpy as np
from PIL import Image

from fmkeras.data.image_header import declared_size
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


def test_unknown_or_cut_headers_are_left_to_the_decoder(tmp_path):
    (tmp_path / "text.jpg").write_bytes(b"not an image at all")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "cut.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF")
    assert [declared_size(str(tmp_path / n)) for n in ("text.jpg", "empty.png", "cut.jpg")] == [None] * 3


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
