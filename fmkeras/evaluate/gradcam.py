"""Grad-CAM (Selvaraju et al. 2017) heatmaps of an fmkeras image classifier, for any conv backbone.

The classifier is a chain: input adapters -> preprocessing -> the layer named "backbone" (a feature map
(B, h, w, C)) -> head. The heatmap of class c is ReLU(sum_k alpha_k A_k) with A = the backbone's feature
map and alpha_k = the spatial mean of d score_c / d A_k, upsampled to the image and scaled to [0, 1].
When the backbone pools its map down to 1x1 (the small Fashion-MNIST CNNs: 28 -> 14 -> 7 -> 3 -> 1), a
heatmap of it would be flat; A is then the backbone's deepest inner map larger than 1x1.
`plot_gradcam` overlays it on the most confidently misclassified test images (the predicted class's map:
where the model looked when it went wrong); a run writes it to plots/<split>_gradcam.png.

Example:
    heatmaps = gradcam(model, images)            # (N, H, W) in [0, 1], for the predicted classes
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

BACKBONE_LAYER = "backbone"  # fmkeras.transfer.heads.BACKBONE_LAYER (evaluate does not import transfer)


def _split(model):
    names = [layer.name for layer in model.layers]
    if BACKBONE_LAYER not in names:
        raise ValueError(f"Grad-CAM needs a layer named {BACKBONE_LAYER!r}. Received: model {model.name!r} with "
                         f"layers {', '.join(names)}")
    at = names.index(BACKBONE_LAYER)
    return model.layers[1:at], model.layers[at], model.layers[at + 1:]


def _spatial(shape) -> bool:
    return len(shape) == 4 and shape[1] is not None and shape[2] is not None and shape[1] * shape[2] > 1


def _feature_maps(backbone, x):
    """(the map Grad-CAM weighs, the backbone's output) for `x`: the map is the backbone's output, or when
    that is 1x1 its deepest inner map larger than 1x1 (a functional backbone's layer output)."""
    inner = []
    if not _spatial(backbone.output.shape) and isinstance(backbone, keras.Model):
        inner = [layer.output for layer in backbone.layers if _spatial(layer.output.shape)]
    if not inner:
        out = backbone(x, training=False)
        return out, out
    return keras.Model(backbone.inputs, [inner[-1], backbone.output])(x, training=False)


def gradcam(model, images, class_ids=None) -> np.ndarray:
    """(N, H, W) float heatmaps in [0, 1] of `class_ids` (default: the predicted classes) for float images."""
    before, backbone, after = _split(model)
    x = tf.convert_to_tensor(images, tf.float32)
    for layer in before:
        x = layer(x, training=False)
    with tf.GradientTape() as tape:
        features, out = _feature_maps(backbone, x)
        if len(features.shape) != 4:
            raise ValueError(f"Grad-CAM needs a conv feature map from the backbone. Received: shape {features.shape}")
        tape.watch(features)
        for layer in after:
            out = layer(out, training=False)
        ids = tf.argmax(out, axis=-1) if class_ids is None else tf.convert_to_tensor(class_ids, tf.int64)
        scores = tf.gather(out, ids, batch_dims=1)
    grads = tape.gradient(scores, features)
    weights = tf.reduce_mean(grads, axis=[1, 2], keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1))[..., None]
    cam = tf.image.resize(cam, tf.shape(images)[1:3], method="bilinear")[..., 0]
    peak = tf.reduce_max(cam, axis=[1, 2], keepdims=True)
    return (cam / tf.maximum(peak, 1e-12)).numpy()


def plot_gradcam(model, images, labels, probabilities, class_names, path: str, limit: int = 12) -> str:
    """The most confidently wrong images with their Grad-CAM overlay, titled `true -> predicted (p)`."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    predictions = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predictions != labels)
    wrong = wrong[np.argsort(-probabilities[wrong, predictions[wrong]])][:limit]
    columns = 6
    rows = max(1, int(np.ceil(len(wrong) / columns)))
    fig, axes = plt.subplots(rows, columns, figsize=(2 * columns, 2.2 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    if len(wrong):
        heatmaps = gradcam(model, images[wrong].astype(np.float32), predictions[wrong])
        for ax, i, heat in zip(axes.flat, wrong, heatmaps):
            image = images[i]
            ax.imshow(image.squeeze(-1) if image.shape[-1] == 1 else image, cmap="gray")
            ax.imshow(heat, cmap="jet", alpha=0.45, vmin=0, vmax=1)
            ax.set_title(f"{class_names[labels[i]]} -> {class_names[predictions[i]]} "
                         f"({probabilities[i, predictions[i]]:.2f})", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
