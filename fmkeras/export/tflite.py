"""TFLite export with optional quantization, measured against the float model.

quantize: `none` (float32), `dynamic` (int8 weights, float activations), `float16` (fp16 weights),
`int8` (int8 weights and activations calibrated on a representative dataset; float input/output
so callers still pass [0, 255] pixels). The converted graph is the Keras model itself: float32
pixels at the training size in, probabilities out (decode/resize stay with the caller).

Example:
    tflite_bytes = convert_tflite(model, "int8", representative=x_train[:200])
    report = compare_tflite(model, tflite_bytes, x_test, y_test)
"""
from __future__ import annotations

import os
import tempfile
import warnings

import keras
import numpy as np
import tensorflow as tf

from fmkeras.errors import ConfigError

QUANTIZE = ("none", "dynamic", "float16", "int8")


def _serving_archive(model: keras.Model, directory: str):
    """A SavedModel with one fixed-size float endpoint `serve` (what TFLite converts)."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", lambda pixels: model(pixels, training=False),
                         input_signature=[tf.TensorSpec([None, *model.input_shape[1:]], tf.float32, name="pixels")])
    archive.write_out(directory, verbose=False)


def float32_model(model: keras.Model) -> keras.Model:
    """`model` itself when every layer computes in float32, else a float32 copy with the same weights.

    A run trained under `train.precision=mixed_bfloat16` (the default recipe's `auto` on an AMX CPU) keeps float32
    weights but computes in bfloat16, and TFLite has no bfloat16 kernels: the converter fails on every Conv2D.
    The copy computes what the model computes, in float32 (the user's model is not changed)."""
    if all(layer.dtype_policy.name == "float32" for layer in model._flatten_layers()):
        return model

    def clone(layer):
        return layer.__class__.from_config({**layer.get_config(), "dtype": "float32"})

    copy = keras.models.clone_model(model, clone_function=clone, recursive=True)  # nested backbones too
    copy.set_weights(model.get_weights())
    return copy


def variables_bytes(saved_model_dir: str) -> int:
    """Bytes of a SavedModel's variables/ directory (the float weights)."""
    folder = os.path.join(saved_model_dir, "variables")
    return sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))


def convert_tflite(model: keras.Model, quantize: str = "none", representative=None,
                   saved_model_dir: str = None) -> bytes:
    """Converts `model` to a TFLite flatbuffer.

    Args:
        representative: array (N, H, W, C) of training pixels in [0, 255]; required for int8.
        saved_model_dir: where to write the intermediate float SavedModel (default: a temp dir).
    """
    if quantize not in QUANTIZE:
        raise ConfigError(f"`quantize` must be one of {', '.join(QUANTIZE)}. Received: quantize={quantize!r}")
    if quantize == "int8" and (representative is None or len(representative) == 0):
        raise ConfigError("int8 quantization needs a representative dataset of training images")
    with tempfile.TemporaryDirectory() as tmp:
        directory = saved_model_dir or tmp
        _serving_archive(float32_model(model), directory)
        converter = tf.lite.TFLiteConverter.from_saved_model(directory, signature_keys=["serve"])
        if quantize != "none":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if quantize == "int8":
            images = np.asarray(representative, np.float32)

            def calibration():
                for image in images:
                    yield [image[np.newaxis]]

            converter.representative_dataset = calibration
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        return converter.convert()


def batch_size_for(images, pixels_per_batch: int = 256 * 28 * 28) -> int:
    """Images per batch so that a batch holds about `pixels_per_batch` pixels: 256 Fashion-MNIST images, 5 photos
    at 224 px. The TFLite interpreter allocates every intermediate tensor for the whole batch, so a photo model
    run 153 images at a time took more than 10 GB."""
    height, width = np.shape(images)[1:3]
    return int(max(1, min(256, pixels_per_batch // (height * width))))


def tflite_predict(tflite_bytes: bytes, images, batch_size: int = None) -> np.ndarray:
    """Runs a converted model on float pixels (N, H, W, C); returns probabilities (N, K).

    batch_size: default `batch_size_for(images)`, which bounds the interpreter's memory.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter warns that it moves to ai-edge-litert
        interpreter = tf.lite.Interpreter(model_content=tflite_bytes)
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    outputs, size = [], None
    images = np.asarray(images, np.float32)
    batch_size = batch_size or batch_size_for(images)
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        if len(batch) != size:
            interpreter.resize_tensor_input(source["index"], list(batch.shape))
            interpreter.allocate_tensors()
            size = len(batch)
        interpreter.set_tensor(source["index"], batch)
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(target["index"]).copy())
    return np.concatenate(outputs)


def compare_tflite(model: keras.Model, tflite_bytes: bytes, images, labels) -> dict:
    """Accuracy of the TFLite model and of the float Keras model on the same labelled images."""
    images, labels = np.asarray(images, np.float32), np.asarray(labels)
    step = batch_size_for(images)
    float_pred = np.concatenate([model(images[i:i + step], training=False).numpy().argmax(1)
                                 for i in range(0, len(images), step)])
    lite_pred = tflite_predict(tflite_bytes, images).argmax(1)
    float_acc, lite_acc = float((float_pred == labels).mean()), float((lite_pred == labels).mean())
    return {"num_test_images": int(len(labels)), "float_accuracy": round(float_acc, 5),
            "tflite_accuracy": round(lite_acc, 5), "accuracy_drop_points": round(100 * (float_acc - lite_acc), 3),
            "prediction_agreement": round(float((float_pred == lite_pred).mean()), 5)}
