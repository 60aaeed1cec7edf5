"""`fmkeras lr_find` on a config: its task's data and model, the LR range test (fmkeras.train.lr_find),
JSON + PNG written to a directory.

Example:
    report = find_learning_rate(load_recipe("cnn_fashion"), "runs/lr_find")
    report["suggested_learning_rate"]
"""
from __future__ import annotations

from fmkeras.config import RunConfig
from fmkeras.tasks import check_command, task_for_source
from fmkeras.train.lr_find import lr_range_test
from fmkeras.train.trainer import _labels_for_loss, restores_dtype_policy, seed_everything


@restores_dtype_policy
def find_learning_rate(cfg: RunConfig, out_dir: str, steps: int = 200, min_lr: float = 1e-7,
                       max_lr: float = 1.0) -> dict:
    """Builds `cfg`'s data and model, runs the range test, writes lr_find.json + lr_find.png to `out_dir`.
    Returns the JSON dict plus the written paths."""
    task = task_for_source(cfg.data.source)
    check_command(task, "lr_find", cfg.data.source)
    task.check_config(cfg)
    seed_everything(cfg.train)
    source = task.load_source(cfg)
    cfg = task.prepare(cfg, source)
    data = task.build_datasets(source, cfg)
    model = task.build_model(cfg, data)
    train = _labels_for_loss(data.train, len(data.class_names), bool(cfg.train.label_smoothing))
    result = lr_range_test(model, train, cfg.train, min_lr=min_lr, max_lr=max_lr, steps=steps)
    return {**result.to_dict(), **result.save(out_dir)}
