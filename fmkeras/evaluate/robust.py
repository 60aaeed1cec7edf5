"""Robust accuracy: accuracy on adversarial copies of the test images (FGSM or PGD at epsilon).

Example:
    robust_accuracy(model, data.test, epsilon=0.1)  # {"clean_accuracy": .., "robust_accuracy": .., ...}
"""
from __future__ import annotations

import numpy as np

from fmkeras.train.adversarial import attack_batch


def robust_accuracy(model, dataset, epsilon: float, attack: str = "fgsm", steps: int = 5) -> dict:
    """Clean and adversarial accuracy of a Keras classifier on a batched (images, labels) dataset."""
    clean = robust = total = 0
    for images, labels in dataset:
        y = np.asarray(labels)
        clean += int((np.asarray(model(images, training=False)).argmax(1) == y).sum())
        adversarial = attack_batch(model, images, labels, attack, epsilon, steps)
        robust += int((np.asarray(model(adversarial, training=False)).argmax(1) == y).sum())
        total += len(y)
    return {"attack": attack, "epsilon": epsilon, "num_examples": total,
            "clean_accuracy": round(clean / max(total, 1), 4), "robust_accuracy": round(robust / max(total, 1), 4)}
