"""PNG plots of a run: training curves, confusion matrix, misclassified test images."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_history(history: dict, path: str) -> str:
    """Loss and accuracy (or, for multi-label runs, `auc_pr`) per epoch (train and validation) side by side."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    second = "accuracy" if "accuracy" in history or "auc_pr" not in history else "auc_pr"
    for ax, metric in zip(axes, ("loss", second)):
        for key, style in ((metric, "-o"), (f"val_{metric}", "--o")):
            if key in history:
                ax.plot(range(1, len(history[key]) + 1), history[key], style, label=key)
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_confusion_matrix(counts, class_names, path: str) -> str:
    """Row-normalised confusion matrix with counts in the cells."""
    counts = np.asarray(counts)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = max(5, 0.6 * len(class_names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(class_names)), class_names, rotation=60, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if len(class_names) <= 20:
        for (i, j), value in np.ndenumerate(counts):
            ax.text(j, i, str(value), ha="center", va="center", fontsize=7,
                    color="white" if rates[i, j] > 0.5 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_image_grid(images, titles, path: str, columns: int = 6) -> str:
    """A grid of uint8 images (N, H, W, C) with a title under each."""
    count = max(len(images), 1)
    rows = int(np.ceil(count / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(2 * columns, 2.2 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, title in zip(axes.flat, images, titles):
        ax.imshow(image.squeeze(-1) if image.shape[-1] == 1 else image, cmap="gray" if image.shape[-1] == 1 else None)
        ax.set_title(title, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_misclassified(images, labels, probabilities, class_names, path: str, limit: int = 24) -> str:
    """The most confidently wrong test images, titled `true -> predicted (p)`."""
    predictions = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predictions != labels)
    wrong = wrong[np.argsort(-probabilities[wrong, predictions[wrong]])][:limit]
    titles = [f"{class_names[labels[i]]} -> {class_names[predictions[i]]} ({probabilities[i, predictions[i]]:.2f})"
              for i in wrong]
    return plot_image_grid(images[wrong], titles, path)


def plot_per_class_scores(per_class: dict, title: str, path: str) -> str:
    """Horizontal bars of each class's average precision and F1 (multi-label evaluation)."""
    names = list(per_class)
    ap = [per_class[n]["ap"] if per_class[n]["ap"] is not None else 0.0 for n in names]
    f1 = [per_class[n]["f1"] for n in names]
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(names) + 1.5))
    rows = np.arange(len(names))
    ax.barh(rows - 0.2, ap, height=0.4, label="average precision")
    ax.barh(rows + 0.2, f1, height=0.4, label="F1 at the threshold")
    ax.set_yticks(rows, names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
