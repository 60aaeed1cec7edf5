"""fmkeras/export/tflite.py + `fmkeras export --format=tflite`: small, and as accurate as the float model."""
import json
import os

import keras
import numpy as np
import pytest

from fmkeras.config import DataConfig, HeadConfig, ModelConfig, RunConfig, TrainConfig
from fmkeras.errors import ConfigError, DataError
from fmkeras.experiment import run_training
from fmkeras.model_files.keras_file import load_keras_model
from fmkeras.export.tflite import convert_tflite, tflite_predict
from fmkeras.transfer import build_classifier
from tests.cli.test_cli import run_in_process


@pytest.mark.slow
def test_int8_tflite_is_under_0_3x_float_variables_within_1_point(tmp_path):
    """A CNN trained on 8,000 real Fashion-MNIST images (~87% test accuracy), int8 via the CLI."""
    cfg = RunConfig(
        name="lite", run_root=str(tmp_path / "runs"),
        data=DataConfig(source="fashion_mnist", limit_train=8000, limit_test=2000, validation_split=0.05),
        model=ModelConfig(backbone_options={"filters": (16, 32), "batch_norm": False},
                          head=HeadConfig(pooling="flatten", dense_units=(64,))),
        train=TrainConfig(epochs=3, batch_size=64, learning_rate=2e-3, verbose=0))
    run_dir = run_training(cfg)["run_dir"]
    assert run_in_process("export", f"--run_dir={run_dir}", "--format=tflite", "--quantize=int8") == 0
    report = json.loads(open(os.path.join(run_dir, "tflite", "model_int8.json")).read())
    assert report["tflite_bytes"] == os.path.getsize(os.path.join(run_dir, "tflite", "model_int8.tflite"))
    assert report["calibration_images"] == 200 and report["num_test_images"] == 2000
    # A well-trained float model to compare int8 against (0.849-0.87 over runs: training is not bit-reproducible
    # across thread schedules, so 0.85 exactly failed one CI run on 2026-11-23).
    assert report["float_accuracy"] >= 0.83, report
    assert report["size_ratio"] <= 0.3, report
    assert report["accuracy_drop_points"] <= 1.0, report


def test_a_mixed_bfloat16_model_converts_through_a_float32_copy():
    # the default recipe trains in mixed_bfloat16 on CPUs with AMX; TFLite has no bfloat16 kernels
    from fmkeras.export.tflite import float32_model
    cfg = ModelConfig(backbone="cnn", backbone_options={"filters": [8, 16], "batch_norm": "fused", "pool_first": True},
                      head=HeadConfig(pooling="flatten", dense_units=[16]))
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = build_classifier(cfg, (28, 28, 1), 10)
    finally:
        keras.config.set_dtype_policy("float32")
    assert model.get_layer("backbone").get_layer("block1_conv1").compute_dtype == "bfloat16"
    copy = float32_model(model)
    assert {layer.dtype_policy.name for layer in copy._flatten_layers()} == {"float32"}
    assert model.get_layer("backbone").get_layer("block1_conv1").compute_dtype == "bfloat16"  # unchanged
    images = np.random.default_rng(0).integers(0, 256, (16, 28, 28, 1)).astype("float32")
    np.testing.assert_allclose(copy(images).numpy(), model(images).numpy(), atol=0.02)
    probabilities = tflite_predict(convert_tflite(model), images)
    np.testing.assert_allclose(probabilities, copy(images).numpy(), atol=1e-5)


def test_dynamic_and_float16_shrink_and_agree(fashion):
    model = build_classifier(ModelConfig(backbone_options={"filters": (8, 16)},
                                         head=HeadConfig(pooling="flatten", dense_units=(32,))), (28, 28, 1), 10)
    images = fashion.x_test[:64].astype("float32")
    expected = model(images, training=False).numpy()
    plain = convert_tflite(model, "none")
    np.testing.assert_allclose(tflite_predict(plain, images), expected, atol=1e-5)
    for quantize, ratio in (("dynamic", 0.35), ("float16", 0.6)):
        small = convert_tflite(model, quantize)
        assert len(small) < ratio * len(plain), (quantize, len(small), len(plain))
        assert (tflite_predict(small, images).argmax(1) == expected.argmax(1)).mean() >= 0.95
    with pytest.raises(ConfigError, match="needs a representative dataset"):
        convert_tflite(model, "int8")
    with pytest.raises(ConfigError, match="`quantize` must be one of"):
        convert_tflite(model, "int4")


def test_keras_files_with_code_load_only_when_trusted(tmp_path):
    inputs = keras.Input((3,))
    path = str(tmp_path / "lambda.keras")
    keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs)).save(path)
    with pytest.raises(DataError, match="pass --trust_model only if you trust this file"):
        load_keras_model(path)
    assert load_keras_model(path, trust=True)(np.ones((1, 3))).numpy().tolist() == [[2.0, 2.0, 2.0]]
    with pytest.raises(DataError, match="safe mode"):  # trusting one file did not switch safe mode off globally
        load_keras_model(path)
