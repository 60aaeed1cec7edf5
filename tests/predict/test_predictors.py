"""fmkeras/predict/predictors.py: top-k labels for image files from run dirs, .keras files, SavedModels and presets."""
import io
import json
import os
import shutil
import struct
import zlib

import numpy as np
import pytest
import tensorflow as tf

from fmkeras.data.pipeline import decoded_examples
from fmkeras.data.source import Source
from fmkeras.errors import DataError
from fmkeras.predict.predictors import find_images, load_predictor, predict_files, write_predictions
from fmkeras.experiment import run_training
from tests.conftest import tiny_config



def write_images(directory, fashion, count=6) -> list:
    """Real Fashion-MNIST test images as files: 28x28 grayscale PNGs and 42x56 RGB JPEGs (resized when predicted)."""
    os.makedirs(directory, exist_ok=True)
    paths = []
    for i, image in enumerate(fashion.x_test[:count]):
        if i % 2:
            big = tf.image.resize(tf.image.grayscale_to_rgb(tf.constant(image)), (42, 56))
            data, name = tf.io.encode_jpeg(tf.cast(big, tf.uint8), quality=95), f"img{i}.jpg"
        else:
            data, name = tf.io.encode_png(image), f"img{i}.png"
        paths.append(os.path.join(directory, name))
        tf.io.write_file(paths[-1], data)
    return paths


def png_bomb(path, width=50_000, height=50_000):
    """A tiny PNG whose header declares width x height pixels (a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = lambda kind, data: (struct.pack(">I", len(data)) + kind + data  # noqa: E731
                                + struct.pack(">I", zlib.crc32(kind + data)))
    with open(path, "wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                 + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A CNN trained 1 epoch on 600 real Fashion-MNIST images: run dir, its model.keras and its SavedModel."""
    tmp = tmp_path_factory.mktemp("predict")
    report = run_training(tiny_config(tmp))
    return report


def training_probabilities(model, paths, image_shape, crop=None) -> np.ndarray:
    """The model on the pixels the training pipeline prepares from these files (decode, crop, resize)."""
    source = Source("files", "files", ("x",), np.asarray(paths, dtype=object), np.zeros(len(paths), np.int64),
                    channels=image_shape[2])
    pixels = np.stack([x for x, _ in decoded_examples(source, source.x_train, source.y_train, image_shape,
                                                      crop=crop).as_numpy_iterator()])
    return model.predict(pixels.astype("float32"), verbose=0)


def top1(rows) -> list:
    return [row["top_k"][0]["label"] for row in rows]


def test_run_dir_keras_and_saved_model_agree_with_model_predict(tmp_path, tiny_run, fashion):
    from fmkeras.model_files.keras_file import load_keras_model
    run_dir, names = tiny_run["run_dir"], tiny_run["class_names"]
    paths = write_images(tmp_path / "images", fashion)
    model = load_keras_model(os.path.join(run_dir, "model.keras"))
    expected = training_probabilities(model, paths, (28, 28, 1))
    bare = str(tmp_path / "copy.keras")  # a .keras file outside its run: labels are class indices
    shutil.copy(os.path.join(run_dir, "model.keras"), bare)

    rows = predict_files(load_predictor(run_dir), paths, top_k=3)
    assert [row["path"] for row in rows] == paths and all(row["error"] is None for row in rows)
    assert top1(rows) == [names[i] for i in expected.argmax(1)]
    for row, probs in zip(rows, expected):
        assert [t["score"] for t in row["top_k"]] == pytest.approx(sorted(probs)[::-1][:3], abs=2e-6)
    assert top1(predict_files(load_predictor(bare), paths)) == [str(i) for i in expected.argmax(1)]
    saved = predict_files(load_predictor(tiny_run["export"]["path"]), paths)
    assert top1(saved) == top1(rows)
    for row, probs in zip(saved, expected):  # the SavedModel resizes in float, training rounds to uint8 first
        assert row["top_k"][0]["score"] == pytest.approx(probs.max(), abs=0.02)
    base = os.path.dirname(tiny_run["export"]["path"])  # a model's base path means its latest version
    assert load_predictor(base).name == tiny_run["export"]["path"]


def test_run_center_crop_is_applied(tmp_path, tiny_run, fashion):
    from fmkeras.model_files.keras_file import load_keras_model
    run_dir = str(tmp_path / "run")
    shutil.copytree(tiny_run["run_dir"], run_dir)
    with open(os.path.join(run_dir, "config.json")) as fh:
        config = json.load(fh)
    config["data"]["center_crop"] = 0.5
    with open(os.path.join(run_dir, "config.json"), "w") as fh:
        json.dump(config, fh)
    predictor = load_predictor(run_dir)
    assert predictor.crop == 0.5
    paths = write_images(tmp_path / "images", fashion)
    model = load_keras_model(os.path.join(run_dir, "model.keras"))
    cropped = training_probabilities(model, paths, (28, 28, 1), crop=0.5)
    rows = predict_files(predictor, paths, top_k=1)
    assert [r["top_k"][0]["score"] for r in rows] == pytest.approx(cropped.max(1), abs=2e-6)
    assert not np.allclose(cropped, training_probabilities(model, paths, (28, 28, 1)), atol=1e-3)


def test_bad_files_get_error_rows_and_good_files_still_predictions(tmp_path, tiny_run, fashion):
    from PIL import Image
    predictor = load_predictor(tiny_run["run_dir"])
    good = write_images(tmp_path / "good", fashion, count=3)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "notes.jpg").write_text("not an image, just text\n" * 20)
    png = tf.io.encode_png(tf.constant(fashion.x_test[0] // 3 + np.arange(28, dtype=np.uint8)[:, None, None])).numpy()
    (bad / "truncated.png").write_bytes(png[:len(png) // 2])
    (bad / "empty.png").write_bytes(b"")
    png_bomb(bad / "bomb.png")
    gif = io.BytesIO()
    Image.fromarray(fashion.x_test[3][..., 0]).save(gif, format="GIF")
    (bad / "placeholder.gif").write_bytes(gif.getvalue())
    paths = [good[0], str(bad / "notes.jpg"), str(bad / "truncated.png"), good[1], str(bad / "empty.png"),
             str(bad / "bomb.png"), str(bad / "missing.png"), str(bad / "placeholder.gif"), good[2]]

    rows = predict_files(predictor, paths, top_k=2)
    assert [row["path"] for row in rows] == paths
    errors = {os.path.basename(row["path"]): row["error"] for row in rows if row["error"]}
    assert set(errors) == {"notes.jpg", "truncated.png", "empty.png", "bomb.png", "missing.png"}, errors
    assert "header declares 50000x50000 pixels" in errors["bomb.png"]
    assert "cannot read" in errors["missing.png"]
    assert all(errors[name].startswith("cannot decode") for name in ("notes.jpg", "truncated.png", "empty.png"))
    assert all(not row["top_k"] for row in rows if row["error"])
    alone = predict_files(predictor, good, top_k=2)
    assert [rows[i]["top_k"] for i in (0, 3, 8)] == [row["top_k"] for row in alone]
    assert len(rows[7]["top_k"]) == 2  # the GIF decodes (first frame), so it is predicted


def test_find_images_recurses_folders_and_keeps_missing_paths(tmp_path):
    for name in ("a/x.JPG", "a/b/y.png", "a/notes.txt", "a/.hidden.png", "a/.git/z.png", "c.bmp"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    found = find_images([str(tmp_path / "a"), str(tmp_path / "c.bmp"), str(tmp_path / "nope.png")])
    assert found == [str(tmp_path / "a" / "x.JPG"), str(tmp_path / "a" / "b" / "y.png"), str(tmp_path / "c.bmp"),
                     str(tmp_path / "nope.png")]


def test_csv_and_json_formats():
    rows = [{"path": "a,1.jpg", "top_k": [{"label": "ant", "score": 0.9}, {"label": "bee", "score": 0.1}],
             "error": None},
            {"path": "b.jpg", "top_k": [], "error": "cannot decode: Unknown image file format"}]
    out = io.StringIO()
    write_predictions(rows, out, "csv", k=2)
    assert out.getvalue().splitlines() == ["path,label1,score1,label2,score2,error", '"a,1.jpg",ant,0.9,bee,0.1,',
                                           "b.jpg,,,,,cannot decode: Unknown image file format"]
    out = io.StringIO()
    write_predictions(rows, out, "json", k=2)
    assert json.loads(out.getvalue()) == rows and len(out.getvalue().splitlines()) == 4


def test_unknown_preset_lists_the_presets_with_a_classifier_top():
    for name in ("preset:nope", "preset:cnn", "preset:resnet50v2"):
        with pytest.raises(DataError, match=r"presets with a classifier top: preset:efficientnet_lite0$"):
            load_predictor(name)
    with pytest.raises(DataError, match="is not a run directory, a SavedModel, a .keras file or preset:NAME"):
        load_predictor("/no/such/model")


@pytest.mark.slow
def test_preset_puts_the_own_imagenet_class_in_the_top_5_on_real_photos(hymenoptera):
    """The converted ImageNet weights, end to end: hymenoptera val photos are ants (310) and bees (309)."""
    val = os.path.join(hymenoptera, "val")
    predictor = load_predictor("preset:efficientnet_lite0")
    assert predictor.class_names[309:311] == ("bee", "ant") and predictor.crop == 0.875
    paths = {"ant": find_images([os.path.join(val, "ants")]), "bee": find_images([os.path.join(val, "bees")])}
    assert len(paths["ant"]) + len(paths["bee"]) == 153
    hits = []
    for own, files in paths.items():
        rows = predict_files(predictor, files, top_k=5)
        assert all(row["error"] is None for row in rows)
        hits += [own in [t["label"] for t in row["top_k"]] for row in rows]
    assert np.mean(hits) >= 0.90, f"own class in the top 5 for only {np.mean(hits):.3f} of the photos"
