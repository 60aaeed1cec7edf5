"""The run report: one `metrics.json` layout for every run, whoever made it (`fmkeras train`, the tune
retrain, a notebook) and whatever the task.

Keys (always present; `None` where a key does not apply):
- run_dir, name, task ("image_classification" | "multi_label_classification" | "text_classification"),
  modality ("image" | "text"),
  data (the source's name), evaluated_on ("test" | "validation" | None)
- class_names, image_shape ([H, W, C] or None for text), vocabulary_size (text) or None
- num_train, num_val, num_test, params, trainable_params, lora_rank
- train_seconds, epochs ([{epoch, seconds, cpu_seconds, images_per_second}]), history ({metric: [per epoch]}),
  stages (one summary per fine-tuning stage), stopped_early, resume (step checkpoints: where it resumed from,
  corrupt files skipped)
- skipped ([{path, reason}] of unreadable inputs), skipped_count
- test: accuracy, macro F1, per-class report, confusion matrix of the evaluated split (None without one);
  for multi-label runs mAP, micro/macro F1, precision and recall, subset accuracy, the per-class thresholds
  (picked on the validation split; `threshold_source`) and per-class AP/F1/threshold/support
- ensemble: members, weights, val_accuracy (text ensembles) or None
- pruning: target and measured sparsity (with train.prune_sparsity) or None
- distribute: strategy, replicas, task, global_batch_size, learning_rate, resumed_from_step, steps_run,
  global_step
- export: model_name, version, path (when export.enabled) or None
"""
from __future__ import annotations

REPORT_KEYS = ("run_dir", "name", "task", "modality", "data", "evaluated_on", "class_names", "image_shape",
               "vocabulary_size", "num_train", "num_val", "num_test", "params", "trainable_params", "lora_rank",
               "train_seconds", "epochs", "history", "stages", "stopped_early", "resume", "skipped",
               "skipped_count", "test", "ensemble", "pruning", "distribute", "export")


def run_report(**fields) -> dict:
    """The report dict in REPORT_KEYS order; ValueError for a key outside the schema or one missing."""
    unknown = sorted(set(fields) - set(REPORT_KEYS))
    missing = [key for key in REPORT_KEYS if key not in fields]
    if unknown or missing:
        raise ValueError(f"run report: unknown keys {unknown}, missing keys {missing}")
    return {key: fields[key] for key in REPORT_KEYS}
