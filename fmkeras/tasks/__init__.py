"""Tasks: one per kind of problem (image classification, multi-label image classification, text
classification), each owning its source loading, datasets, model building, evaluation and export signatures.

This is the one place that decides which task a data source, a Keras model or an exported
SavedModel belongs to; everything else asks the task it gets from here.

Example:
    task = task_for_source(cfg.data.source)      # ImageClassification(), MultiLabelClassification() or
                                                 # TextClassification()
    check_command(task, "lowlabel", cfg.data.source)   # ConfigError naming the command for text
"""
from __future__ import annotations

from fmkeras.data.multilabel_csv import is_multilabel_source
from fmkeras.data.text import is_text_source
from fmkeras.errors import ConfigError
from fmkeras.tasks.image import ImageClassification
from fmkeras.tasks.multilabel import MultiLabelClassification
from fmkeras.tasks.text import TextClassification
from fmkeras.transfer.heads import MULTI_LABEL_OUTPUT

TASKS = {"image": ImageClassification(), "multi_label": MultiLabelClassification(), "text": TextClassification()}


def task_for_source(spec: str):
    """The task of a `data.source` spec (`text:...` sources are text, `multilabel:...` multi-label images,
    every other one images)."""
    if is_text_source(spec):
        return TASKS["text"]
    return TASKS["multi_label" if is_multilabel_source(spec) else "image"]


def task_for_model(model):
    """The task of a Keras classifier: string inputs are text, a per-class sigmoid output multi-label images,
    the rest images."""
    if model.inputs[0].dtype == "string":
        return TASKS["text"]
    return TASKS["multi_label" if model.layers[-1].name == MULTI_LABEL_OUTPUT else "image"]


def task_for_export(metadata: dict):
    """The task of an exported SavedModel version, from its fmkeras.json (`modality`, and `task` for
    multi-label exports)."""
    if metadata.get("task") == "multi_label":
        return TASKS["multi_label"]
    return TASKS[metadata.get("modality", "image")]


def check_command(task, command: str, source: str):
    """ConfigError naming the command and the source when `task` has no such command (e.g. text pretraining)."""
    if command not in task.commands:
        supported = ", ".join(f"`fmkeras {c}`" for c in task.commands)
        instead = task.instead.get(command.split()[0]) if command.split()[0] == command else None
        raise ConfigError(f"`fmkeras {command}` supports image sources, not {task.description} ones; "
                          f"{task.description} sources work with {supported}"
                          + (f" ({instead})" if instead else "") + f". Received: data.source={source!r}")


def load_image_source(cfg, command: str):
    """The source of `cfg.data` for a command that exists for images only; ConfigError naming the command
    for a text source (not "unknown data source")."""
    task = task_for_source(cfg.data.source)
    check_command(task, command, cfg.data.source)
    return task.load_source(cfg)


__all__ = ["ImageClassification", "MultiLabelClassification", "TextClassification", "task_for_source",
           "task_for_model", "task_for_export", "check_command", "load_image_source"]
