"""fmkeras/tasks/multilabel.py: a multi-label run end to end through Experiment on real Fashion-MNIST mosaics
(one metrics.json layout, mAP and thresholds in `test`), its export (per-class probabilities, booleans at the
validation thresholds), the task decided for sources, models and exports, and single-label settings refused
by name."""
import dataclasses
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from fmkeras.config import apply_overrides
from fmkeras.errors import ConfigError
from fmkeras.experiment import Experiment
from fmkeras.experiment.report import REPORT_KEYS
from fmkeras.recipes import load_recipe
from fmkeras.tasks import MultiLabelClassification, task_for_export, task_for_model, task_for_source


@pytest.fixture(scope="module")
def mosaics_csv(tmp_path_factory, fashion):
    from fmkeras.data.mosaic import build_mosaics
    return build_mosaics(str(tmp_path_factory.mktemp("mosaics")), num_train=300, num_test=60, seed=0,
                         val_fraction=0.2, source=fashion)


def _config(csv_path, tmp_path, **overrides):
    """The multilabel_mosaic recipe, tiny: a 2-block CNN, 2 epochs."""
    return apply_overrides(load_recipe("multilabel_mosaic"), {
        "data.source": f"multilabel:{csv_path}", "model.backbone_options": "{filters: [8, 16]}",
        "model.head.dense_units": "[32]", "train.epochs": 2, "train.batch_size": 32, "train.verbose": 0,
        "run_root": str(tmp_path / "runs"), "export.base_dir": str(tmp_path / "saved_models"), **overrides})


@pytest.fixture(scope="module")
def run(mosaics_csv, tmp_path_factory):
    return Experiment(_config(mosaics_csv, tmp_path_factory.mktemp("run"))).run()


def test_run_writes_the_one_report_layout_with_map_and_thresholds(run):
    assert list(run) == list(REPORT_KEYS)
    with open(os.path.join(run["run_dir"], "metrics.json")) as fh:
        assert set(json.load(fh)) == set(REPORT_KEYS)
    assert (run["task"], run["modality"], run["image_shape"]) == ("multi_label_classification", "image", [56, 56, 1])
    assert (run["num_train"], run["num_val"], run["num_test"], run["evaluated_on"]) == (240, 60, 60, "test")
    test = run["test"]
    assert 0.0 < test["mAP"] <= 1.0 and test["threshold_source"] == "validation"
    assert len(test["thresholds"]) == 10 and set(test["per_class"]) == set(run["class_names"])
    assert {"micro_f1", "macro_f1", "micro_precision", "macro_recall"} <= set(test)
    assert "auc_pr" in run["history"] and "val_auc_pr" in run["history"] and "accuracy" not in run["history"]
    assert os.path.isfile(os.path.join(run["run_dir"], "plots", "test_average_precision.png"))
    with open(os.path.join(run["run_dir"], "config.json")) as fh:
        saved = json.load(fh)
    assert saved["train"]["loss"] == "binary_crossentropy" and saved["model"]["head"]["multi_label"] is True


def test_export_returns_probabilities_and_labels_at_the_validation_thresholds(run, mosaics_csv):
    from fmkeras.export import load_metadata
    from fmkeras.model_files.keras_file import load_keras_model
    path = run["export"]["path"]
    metadata = load_metadata(path)
    assert (metadata["modality"], metadata["task"], metadata["class_names"]) == ("image", "multi_label",
                                                                                 run["class_names"])
    assert metadata["thresholds"] == pytest.approx(run["test"]["thresholds"])
    assert "saved_model.pb" in metadata["files"] and task_for_export(metadata) is task_for_source(
        f"multilabel:{mosaics_csv}")
    loaded = tf.saved_model.load(path)
    folder = os.path.dirname(mosaics_csv)
    files = [os.path.join(folder, "test", f"{i:06d}.png") for i in range(5)]
    encoded = [open(f, "rb").read() for f in files]
    by_bytes = loaded.signatures["serving_default"](images=tf.constant(encoded))
    pixels = np.stack([np.asarray(Image.open(f))[..., None] for f in files])
    by_pixels = loaded.signatures["serve_pixels"](pixels=tf.constant(pixels))
    keras_model = load_keras_model(os.path.join(run["run_dir"], "model.keras"))
    expected = keras_model(pixels.astype("float32"), training=False).numpy()
    thresholds = np.asarray(metadata["thresholds"], np.float32)
    for out in (by_bytes, by_pixels):
        assert out["probabilities"].shape == (5, 10) and out["labels"].dtype == tf.bool
        np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-5)
        np.testing.assert_array_equal(out["labels"].numpy(), out["probabilities"].numpy() >= thresholds)
    assert isinstance(task_for_model(keras_model), MultiLabelClassification)


@pytest.mark.parametrize("setting, value", [("data.augment.mixup", 0.2), ("data.augment.cutmix", 1.0),
                                            ("data.labels_per_class", 5), ("data.balance", "weights"),
                                            ("data.label_noise", 0.1), ("train.adversarial", "fgsm"),
                                            ("model.head.binary", True)])
def test_single_label_settings_are_refused_by_name(mosaics_csv, tmp_path, setting, value):
    cfg = _config(mosaics_csv, tmp_path, **{setting: value})
    with pytest.raises(ConfigError, match=f"`{setting}` assumes one class per example.*Received: {setting}="):
        Experiment(cfg).run()
    assert not os.path.isdir(tmp_path / "runs")  # refused before anything is written


def test_noise_robust_losses_are_refused_and_single_label_runs_refuse_the_multi_label_loss(mosaics_csv, tmp_path):
    with pytest.raises(ConfigError, match="`train.loss` must be binary_crossentropy.*Received: train.loss='symmetric'"):
        Experiment(_config(mosaics_csv, tmp_path, **{"train.loss": "symmetric"})).run()
    from tests.conftest import tiny_config
    image = dataclasses.replace(tiny_config(tmp_path), train=dataclasses.replace(
        tiny_config(tmp_path).train, loss="binary_crossentropy"))
    with pytest.raises(ConfigError, match="`train.loss=binary_crossentropy` is for multi-label sources"):
        Experiment(image).run()


def test_commands_multi_label_runs_do_not_have_are_refused_by_name(mosaics_csv, tmp_path):
    from fmkeras.tasks import load_image_source
    with pytest.raises(ConfigError, match="`fmkeras lowlabel` supports image sources, not multi-label image ones"):
        load_image_source(_config(mosaics_csv, tmp_path), "lowlabel")
    from fmkeras.experiment.lr_find import find_learning_rate
    with pytest.raises(ConfigError, match="`fmkeras lr_find` supports image sources, not multi-label image ones"):
        find_learning_rate(_config(mosaics_csv, tmp_path), str(tmp_path / "lr"))


def test_evaluate_scores_a_finished_run_again_with_its_thresholds_picked_on_validation(run, tmp_path, capsys):
    from fmkeras.experiment.finished_runs import evaluate
    report = evaluate(run["run_dir"], out_dir=str(tmp_path))
    assert report["mAP"] == run["test"]["mAP"] and report["thresholds"] == run["test"]["thresholds"]
    assert "mAP: " in capsys.readouterr().out
    with pytest.raises(ConfigError, match="`fmkeras evaluate --tta` supports image sources, not multi-label image"):
        evaluate(run["run_dir"], out_dir=str(tmp_path), tta="flip")


def test_multi_worker_strategy_is_refused_up_front(mosaics_csv, tmp_path):
    task = task_for_source(f"multilabel:{mosaics_csv}")
    with pytest.raises(ConfigError, match="multi-label runs train under distribute.strategy=default, mirrored or "
                                          "tpu.*resolved to multiworker"):
        task.check_strategy(_config(mosaics_csv, tmp_path), "multiworker")
    task.check_strategy(_config(mosaics_csv, tmp_path), "mirrored")


def test_predict_lists_the_classes_over_the_runs_thresholds_for_run_dirs_and_exports(run, mosaics_csv, tmp_path):
    import io

    from fmkeras.predict.predictors import load_predictor, predict_files, write_predictions
    folder = os.path.join(os.path.dirname(mosaics_csv), "test")
    files = [os.path.join(folder, f"{i:06d}.png") for i in range(6)]
    thresholds = np.asarray(run["test"]["thresholds"])
    names = run["class_names"]
    for ref in (run["run_dir"], run["export"]["path"]):
        predictor = load_predictor(ref)
        assert predictor.thresholds == pytest.approx(tuple(thresholds))
        rows = predict_files(predictor, files, top_k=3)
        probabilities = predictor.predict_batch(np.stack([np.asarray(Image.open(f))[..., None] for f in files])
                                                .astype("float32")) if predictor.takes == "pixels" else \
            predictor.predict_batch(tf.constant([open(f, "rb").read() for f in files]))
        for row, p in zip(rows, probabilities):
            expected = {names[k] for k in range(len(names)) if p[k] >= thresholds[k]}
            assert {item["label"] for item in row["labels"]} == expected and row["error"] is None
            assert [item["score"] for item in row["labels"]] == sorted((item["score"] for item in row["labels"]),
                                                                       reverse=True)
        out = io.StringIO()
        write_predictions(rows, out, "csv", 3)
        lines = out.getvalue().splitlines()
        assert lines[0].split(",")[-2:] == ["labels", "error"]
        assert lines[1].split(",")[-2] == ";".join(item["label"] for item in rows[0]["labels"])
    # a bare .keras file has no thresholds beside it: 0.5 each, and said so
    bare = tmp_path / "bare.keras"
    bare.write_bytes(open(os.path.join(run["run_dir"], "model.keras"), "rb").read())
    assert load_predictor(str(bare)).thresholds == (0.5,) * len(names)
