"""fmkeras/evaluate/tta.py and `fmkeras evaluate --tta`: deterministic views, averaged probabilities."""
import json

import numpy as np
import pytest
import tensorflow as tf

from fmkeras.evaluate.tta import augmented_views, tta_predict, tta_views


def test_views_are_the_image_its_mirror_and_one_pixel_shifts():
    image = np.zeros((1, 5, 5, 1), np.float32)
    image[0, 2, 1, 0] = 255.0  # one bright pixel at row 2, column 1
    views = [v.numpy()[0, ..., 0] for v in augmented_views(image, 10)]
    assert len(views) == 10
    np.testing.assert_array_equal(views[0], image[0, ..., 0])
    assert views[1][2, 3] == 255.0  # mirrored: column 1 -> 3
    assert views[2][2, 2] == 255.0 and views[4][2, 0] == 255.0  # shifted right, left
    assert views[6][3, 1] == 255.0 and views[8][1, 1] == 255.0  # shifted down, up
    assert all(v.sum() == 255.0 for v in views)  # a shift moves the pixel, never duplicates it


def test_tta_averages_the_probabilities_of_the_views():
    def left_heavy(x):  # class 0 if the left half is brighter: not mirror-invariant
        left = tf.reduce_mean(x[:, :, :2], axis=[1, 2, 3])
        right = tf.reduce_mean(x[:, :, 3:], axis=[1, 2, 3])
        p = tf.cast(left > right, tf.float32)
        return tf.stack([p, 1 - p], axis=1)
    image = np.zeros((2, 5, 5, 1), np.float32)
    image[:, :, 0] = 200.0
    np.testing.assert_allclose(left_heavy(image).numpy(), [[1, 0], [1, 0]])
    np.testing.assert_allclose(tta_predict(left_heavy, "flip")(image).numpy(), [[0.5, 0.5], [0.5, 0.5]])


@pytest.mark.parametrize("bad", ["mirror", 1, 11, "0"])
def test_bad_tta_modes_are_refused(bad):
    with pytest.raises(ValueError, match="`tta` must be flip or an integer 2..10"):
        tta_views(bad)


def test_evaluate_cli_reports_accuracy_with_and_without_tta(tmp_path, capsys):
    import dataclasses

    from fmkeras.cli.flags import FLAGS
    from fmkeras.cli.main import main
    from fmkeras.experiment import run_training
    from tests.conftest import tiny_config
    cfg = tiny_config(tmp_path, epochs=1)
    cfg = dataclasses.replace(cfg, export=dataclasses.replace(cfg.export, enabled=False))
    run_dir = run_training(cfg)["run_dir"]
    FLAGS.unparse_flags()
    try:
        assert main(FLAGS(["fmkeras", "evaluate", f"--model={run_dir}", "--tta=4"])) == 0
    finally:
        FLAGS.unparse_flags()
    printed = capsys.readouterr().out
    with open(f"{run_dir}/eval/report.json") as fh:
        report = json.load(fh)
    tta = report["tta"]
    assert tta["views"] == 4 and tta["accuracy_without_tta"] == report["accuracy"]
    assert 0.0 <= tta["accuracy"] <= 1.0 and f"with TTA (4, 4 views): {tta['accuracy']}" in printed


def test_a_run_exporting_a_tta_signature_reports_its_test_accuracy_with_and_without(tmp_path):
    import dataclasses

    from fmkeras.evaluate.metrics import classification_report, predict_dataset
    from fmkeras.experiment import run_training
    from fmkeras.model_files.keras_file import load_keras_model
    from fmkeras.data import build_datasets, load_source
    from tests.conftest import tiny_config
    cfg = tiny_config(tmp_path, epochs=2)
    cfg = dataclasses.replace(cfg, export=dataclasses.replace(cfg.export, tta="flip"))
    report = run_training(cfg)
    tta = report["test"]["tta"]
    assert (tta["mode"], tta["views"], tta["accuracy_without_tta"]) == ("flip", 2, report["test"]["accuracy"])
    model = load_keras_model(f"{report['run_dir']}/model.keras")
    test = build_datasets(load_source(cfg.data), cfg.data, 64).test
    probabilities, labels, _ = predict_dataset(tta_predict(lambda x: model(x, training=False), "flip"), test)
    assert tta["accuracy"] == classification_report(probabilities, labels, report["class_names"])["accuracy"]
    assert "serve_pixels_tta" in json.load(open(f"{report['export']['path']}/fmkeras.json"))["signatures"]


def test_text_runs_refuse_export_tta(tmp_path):
    from fmkeras.config import RunConfig, apply_overrides
    from fmkeras.errors import ConfigError
    from fmkeras.tasks import TextClassification
    cfg = apply_overrides(RunConfig(), {"data.source": "text:debian", "export.tta": "flip"})
    with pytest.raises(ConfigError, match="`export.tta` augments images.*Received: export.tta='flip'"):
        TextClassification().check_config(cfg)
