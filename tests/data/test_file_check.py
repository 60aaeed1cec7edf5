"""fmkeras/data/file_check.py and image_folder.py: odd files converted, bad ones skipped and reported."""
import io
import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from fmkeras.config import DataConfig, ExportConfig, HeadConfig, ModelConfig, RunConfig, TrainConfig
from fmkeras.data import build_datasets, load_source
from fmkeras.data.file_check import check_image_files
from fmkeras.data.pipeline import decoded_examples
from fmkeras.errors import DataError
from tests.data.test_sources import write_png_folder

# file name -> why it must be skipped; everything else in the folder must load.
BAD = {"truncated.jpg": "cannot decode", "empty.jpg": "empty file", "text.png": "cannot decode",
       ".hidden.jpg": "hidden file"}
ODD = ("cmyk.jpg", "gray.png", "alpha.png", "sixteen.png", "anim.gif")


def _encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **kwargs)
    return out.getvalue()


def write_odd_and_bad_files(folder, size=(20, 24)):
    """Writes every odd-but-valid and every bad file kind the pipeline must handle into `folder`."""
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 255, (*size, 3), dtype=np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    good_jpeg = _encode(Image.fromarray(rgb), "JPEG", quality=90)
    files = {
        "cmyk.jpg": _encode(Image.fromarray(rgb).convert("CMYK"), "JPEG"),
        "gray.png": _encode(Image.fromarray(rgb[..., 0]), "PNG"),
        "alpha.png": _encode(Image.fromarray(np.dstack([rgb, rgb[..., :1]])), "PNG"),
        "sixteen.png": _encode(Image.fromarray(rgb[..., 0].astype(np.uint16) * 257), "PNG"),
        "anim.gif": _encode(Image.fromarray(rgb), "GIF", save_all=True,
                            append_images=[Image.fromarray(255 - rgb)]),
        "truncated.jpg": good_jpeg[: len(good_jpeg) // 2],
        "empty.jpg": b"",
        "text.png": b"hello, I am not a PNG\n",
        ".hidden.jpg": good_jpeg,
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return rgb


def test_check_names_each_undecodable_file(tmp_path):
    write_odd_and_bad_files(tmp_path)
    paths = sorted(str(p) for p in tmp_path.iterdir() if p.name not in (".hidden.jpg", "empty.jpg"))
    good, skipped = check_image_files(paths)
    reasons = {p.split("/")[-1]: r for p, r in skipped}
    assert set(reasons) == {"truncated.jpg", "text.png"}
    assert "Invalid JPEG data" in reasons["truncated.jpg"] and "Unknown image file format" in reasons["text.png"]
    assert good.sum() == len(ODD)


def test_odd_files_are_converted_to_rgb(tmp_path):
    rgb = write_odd_and_bad_files(tmp_path / "imgs" / "a")
    write_png_folder(tmp_path / "imgs", classes=("b",), per_class=2, size=(20, 24))
    cfg = DataConfig(source=f"folder:{tmp_path / 'imgs'}", validation_split=0.0, image_size=(20, 24))
    source = load_source(cfg)
    names = sorted(p.split("/")[-1] for p in source.x_train)
    assert names == sorted([*ODD, "0.png", "1.png"])
    assert {p.split("/")[-1]: r.split(":")[0] for p, r in source.skipped} == BAD
    assert build_datasets(source, cfg, batch_size=16).train.element_spec[0].shape[1:] == (20, 24, 3)
    images, _ = next(iter(decoded_examples(source, source.x_train, source.y_train, (20, 24, 3)).batch(16)))
    assert images.shape == (7, 20, 24, 3) and images.dtype == tf.uint8
    by_name = {p.split("/")[-1]: images[i].numpy().astype(np.float32) for i, p in enumerate(source.x_train)}
    # The GIF's first frame, not the second, and the alpha channel dropped.
    np.testing.assert_allclose(by_name["alpha.png"], rgb, atol=0.51)
    assert np.abs(by_name["anim.gif"] - rgb).mean() < 20  # GIF palette quantization
    np.testing.assert_allclose(by_name["gray.png"][..., 0], by_name["gray.png"][..., 2])
    np.testing.assert_allclose(by_name["sixteen.png"][..., 1], rgb[..., 0], atol=1)  # 16 -> 8 bit
    assert np.abs(by_name["cmyk.jpg"] - rgb).mean() < 20  # CMYK converted to RGB, not read as RGBA


def test_mismatched_validation_classes_name_both_dirs(tmp_path):
    write_png_folder(tmp_path / "d" / "train", classes=("a", "b"))
    write_png_folder(tmp_path / "d" / "test", classes=("a", "b"))
    write_png_folder(tmp_path / "d" / "validation", classes=("a", "x"))
    with pytest.raises(DataError, match=r"class folders differ between .*train \(a, b\) and .*validation \(a, x\)"):
        load_source(DataConfig(source=f"folder:{tmp_path / 'd'}"))


def test_validation_dir_is_the_validation_split(tmp_path):
    write_png_folder(tmp_path / "d" / "train", classes=("a", "b"), per_class=4)
    write_png_folder(tmp_path / "d" / "test", classes=("a", "b"), per_class=2)
    write_png_folder(tmp_path / "d" / "validation", classes=("a", "b"), per_class=3)
    cfg = DataConfig(source=f"folder:{tmp_path / 'd'}", validation_split=0.5, image_size=(8, 8))
    data = build_datasets(load_source(cfg), cfg, 4)
    assert (data.num_train, data.num_val, data.num_test) == (8, 6, 4)


def test_training_over_a_folder_of_bad_files_completes_and_reports_them(tmp_path):
    from fmkeras.experiment import run_training
    root = tmp_path / "imgs"
    write_png_folder(root, classes=("a", "b"), per_class=12, size=(16, 16))
    write_odd_and_bad_files(root / "a", size=(18, 14))
    write_odd_and_bad_files(root / "b", size=(18, 14))
    cfg = RunConfig(
        name="bad", run_root=str(tmp_path / "runs"),
        data=DataConfig(source=f"folder:{root}", image_size=(16, 16), validation_split=0.2),
        model=ModelConfig(backbone="cnn", backbone_options={"filters": (4,)}, head=HeadConfig()),
        train=TrainConfig(epochs=1, batch_size=8, verbose=0), export=ExportConfig(enabled=False))
    report = run_training(cfg)
    metrics = json.loads((tmp_path / "runs" / report["run_dir"].split("/")[-1] / "metrics.json").read_text())
    skipped = {(s["path"].split("/")[-2], s["path"].split("/")[-1]): s["reason"] for s in metrics["skipped"]}
    assert metrics["skipped_count"] == 2 * len(BAD) == len(skipped)
    assert {name for _, name in skipped} == set(BAD)
    assert metrics["num_train"] + metrics["num_val"] == 2 * (12 + len(ODD))
    assert np.isfinite(metrics["history"]["loss"][0])


def test_decompression_bombs_are_refused_from_the_header_without_decoding(tmp_path, monkeypatch):
    from fmkeras.data import file_check
    from reliability.corrupt_corpus import bomb_png
    (tmp_path / "bomb.png").write_bytes(bomb_png(12000))  # 144 Mpx: TF would decode it (~1.2 GB peak RSS)
    write_png_folder(tmp_path, classes=("x",), per_class=2)
    decoded = []
    original = file_check._decodable
    monkeypatch.setattr(file_check, "_decodable", lambda paths: decoded.extend(paths) or original(paths))
    paths = sorted(str(p) for p in tmp_path.rglob("*.png"))
    good, skipped = check_image_files(paths)
    assert good.tolist() == [False, True, True] and not any(p.endswith("bomb.png") for p in decoded)
    assert skipped == [(paths[0], "header declares 12000x12000 pixels, more than data.max_image_pixels=89478485 "
                                  "(refused before decoding)")]
    good, _ = check_image_files(paths, max_pixels=100)  # the 12x10 images are 120 pixels
    assert good.tolist() == [False, False, False]


def test_strict_mode_names_every_bad_file_in_one_error(tmp_path):
    root = tmp_path / "imgs"
    write_png_folder(root, classes=("a", "b"), per_class=2, size=(16, 16))
    write_odd_and_bad_files(root / "a")
    (root / "b" / "notes.txt").write_text("ignored by name, never an error")
    cfg = DataConfig(source=f"folder:{root}", bad_files="strict")
    with pytest.raises(DataError) as caught:
        load_source(cfg)
    message = str(caught.value)
    assert message.startswith(f"image folder {root} has 3 unreadable image file(s) and data.bad_files=strict")
    for name in ("truncated.jpg", "empty.jpg", "text.png"):
        assert f"{root}/a/{name} (" in message
    assert not any(name in message for name in (*ODD, "notes.txt", ".hidden.jpg", "0.png"))
    # Lenient (the default): the same folder loads, odd files converted, bad ones listed.
    source = load_source(DataConfig(source=f"folder:{root}"))
    assert len(source.x_train) == 4 + len(ODD) and len(source.skipped) == 5


def test_bomb_refused_from_header_even_without_the_decode_check(tmp_path):
    from reliability.corrupt_corpus import bomb_png
    root = write_png_folder(tmp_path / "imgs", classes=("a", "b"), per_class=2)
    (root / "a" / "bomb.png").write_bytes(bomb_png(10000))
    source = load_source(DataConfig(source=f"folder:{root}", check_files=False, max_image_pixels=50_000_000))
    assert len(source.x_train) == 4
    assert source.skipped == ((str(root / "a" / "bomb.png"), "header declares 10000x10000 pixels, more than "
                               "data.max_image_pixels=50000000 (refused before decoding)"),)


def test_symlinks_out_of_the_folder_are_refused_unless_followed(tmp_path):
    root = write_png_folder(tmp_path / "imgs", classes=("a", "b"), per_class=2)
    secret = tmp_path / "outside"
    secret.mkdir()
    (secret / "id_rsa.png").write_bytes((root / "a" / sorted(p.name for p in (root / "a").iterdir())[0]).read_bytes())
    (root / "a" / "leak.png").symlink_to(secret / "id_rsa.png")
    (root / "b" / "inside.png").symlink_to(root / "a" / sorted(p.name for p in (root / "a").iterdir())[0])
    (root / "c").symlink_to(secret, target_is_directory=True)  # a whole class folder outside
    source = load_source(DataConfig(source=f"folder:{root}"))
    assert source.class_names == ("a", "b") and len(source.x_train) == 5  # the in-folder symlink is fine
    refused = {path: reason for path, reason in source.skipped}
    assert set(refused) == {str(root / "a" / "leak.png"), str(root / "c")}
    assert all("symlink to outside the image folder" in reason for reason in refused.values())
    with pytest.raises(DataError, match="leak.png .symlink to outside"):
        load_source(DataConfig(source=f"folder:{root}", bad_files="strict"))
    followed = load_source(DataConfig(source=f"folder:{root}", follow_symlinks=True))
    assert followed.class_names == ("a", "b", "c") and len(followed.x_train) == 7


def test_files_are_judged_by_content_not_extension(tmp_path):
    root = write_png_folder(tmp_path / "imgs", classes=("a", "b"), per_class=2)
    image = Image.fromarray(np.full((24, 20, 3), 90, np.uint8))
    (root / "a" / "webp_named.png").write_bytes(_encode(image, "WEBP", lossless=True))
    # A WebP bomb named .png: 16384 x 16384 declared in its VP8X header, refused from the header.
    bomb = (b"RIFF\x00\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x00\x00\x00\x00" + (16383).to_bytes(3, "little") * 2
            + b"VP8L" + bytes(8))
    (root / "b" / "bomb.png").write_bytes(bomb)
    source = load_source(DataConfig(source=f"folder:{root}", max_image_pixels=1_000_000))
    assert str(root / "a" / "webp_named.png") in list(source.x_train)
    assert dict(source.skipped)[str(root / "b" / "bomb.png")].startswith("header declares 16384x16384 pixels")
