"""Gradual magnitude pruning (Zhu & Gupta 2017, "To prune, or not to prune") as a Keras callback.

TF Model Optimization's pruning wrappers do not support Keras 3 models, so this is written here: the
kernels of every Conv/Dense layer (the output layer included) are masked to their largest-magnitude
weights; the target sparsity follows s_t = s_f * (1 - (1 - p)^3) (`polynomial`, p = progress from
`prune_begin` to `prune_end`, fractions of the training steps) or jumps to s_f at `prune_begin`
(`constant`). Masks are recomputed every `prune_frequency` optimizer steps and re-applied after every
batch, so an update cannot revive a pruned weight. They live in the callback, not in the model: a
saved/exported model holds plain layers whose pruned weights are exactly 0 (nothing to strip; gzip
and TFLite shrink). A later stage (fine-tuning) starts from the zeros it finds, so masks are kept.

Example:
    callbacks = [GradualPruning(0.75, total_steps=steps * epochs)]
"""
from __future__ import annotations

import keras
import numpy as np

from fmkeras.backbones.layer_tree import all_layers

PRUNABLE = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D, keras.layers.Dense)


def prunable_kernels(model: keras.Model) -> list:
    """The kernels gradual pruning masks: every Conv/Dense layer's `kernel` (biases and BN stay dense)."""
    return [layer.kernel for layer in all_layers(model)
            if isinstance(layer, PRUNABLE) and getattr(layer, "kernel", None) is not None]


def target_sparsity(step: int, final: float, total_steps: int, schedule: str = "polynomial",
                    begin: float = 0.0, end: float = 0.75) -> float:
    """The sparsity to reach by optimizer step `step` (begin/end are fractions of `total_steps`)."""
    first, last = begin * total_steps, max(end * total_steps, begin * total_steps + 1)
    if step < first:
        return 0.0
    if schedule == "constant":
        return final
    progress = min(1.0, (step - first) / (last - first))
    return final * (1.0 - (1.0 - progress) ** 3)


def magnitude_mask(weights: np.ndarray, sparsity: float) -> np.ndarray:
    """1 for the largest-|w| (1 - sparsity) of `weights`, 0 for the rest (ties go to the pruned side)."""
    count = int(round(sparsity * weights.size))
    if count <= 0:
        return np.ones_like(weights)
    threshold = np.partition(np.abs(weights).ravel(), count - 1)[count - 1]
    return (np.abs(weights) > threshold).astype(weights.dtype)


def sparsity_report(model: keras.Model) -> dict:
    """Fraction of exact zeros over the prunable kernels, overall and per kernel path."""
    kernels = prunable_kernels(model)
    values = [np.asarray(k.numpy()) for k in kernels]
    total = sum(v.size for v in values)
    return {"sparsity": round(float(sum((v == 0).sum() for v in values) / max(total, 1)), 4),
            "pruned_weights": int(sum((v == 0).sum() for v in values)), "prunable_weights": int(total),
            "per_kernel": {k.path: round(float((v == 0).mean()), 4) for k, v in zip(kernels, values)}}


class GradualPruning(keras.callbacks.Callback):
    """Prunes `model`'s Conv/Dense kernels to `final_sparsity` along the schedule while it trains."""

    def __init__(self, final_sparsity: float, total_steps: int, schedule: str = "polynomial", begin: float = 0.0,
                 end: float = 0.75, frequency: int = 100):
        super().__init__()
        self.final_sparsity, self.total_steps, self.schedule = final_sparsity, int(total_steps), schedule
        self.begin, self.end, self.frequency = begin, end, max(1, int(frequency))
        self.kernels, self.masks, self.sparsity = [], [], 0.0

    def on_train_begin(self, logs=None):
        self.kernels = prunable_kernels(self.model)
        # Zeros already there (an earlier stage's pruning) stay pruned.
        self.masks = [(np.asarray(k.numpy()) != 0).astype(np.float32) for k in self.kernels]
        self.sparsity = 0.0

    def _step(self) -> int:
        return int(self.model.optimizer.iterations)

    def on_train_batch_end(self, batch, logs=None):
        step = self._step()
        wanted = target_sparsity(step, self.final_sparsity, self.total_steps, self.schedule, self.begin, self.end)
        if wanted > self.sparsity and (step % self.frequency == 0 or wanted >= self.final_sparsity):
            self.update_masks(wanted)
        for kernel, mask in zip(self.kernels, self.masks):
            if mask.min() == 0:
                kernel.assign(kernel * mask)

    def update_masks(self, sparsity: float):
        """Recomputes every kernel's mask to `sparsity` (never un-pruning a weight)."""
        self.masks = [magnitude_mask(np.asarray(k.numpy()) * m, sparsity) * m for k, m in zip(self.kernels, self.masks)]
        self.sparsity = sparsity

    def prune_to_final(self):
        """One-shot pruning of the current weights to the final sparsity (after the best weights are restored)."""
        self.kernels = prunable_kernels(self.model)
        self.masks = [magnitude_mask(np.asarray(k.numpy()), self.final_sparsity) * (np.asarray(k.numpy()) != 0)
                      for k in self.kernels]
        for kernel, mask in zip(self.kernels, self.masks):
            kernel.assign(kernel * mask)
        self.sparsity = self.final_sparsity
