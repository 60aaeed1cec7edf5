"""One text-classification run end to end, the text twin of `experiment.run_training`.

Same run directory layout (config.json, model.keras, history.csv, metrics.json, plots/, logs/,
checkpoints/), same trainer and the same export path; only the data (texts, not pixels), the model
(strings in: TextVectorization + text backbone) and the per-example evaluation output differ.
`experiment.run_training` sends every `data.source=text:...` config here.

Example:
    report = run_text_training(load_recipe("text_debian"))
"""
from __future__ import annotations

import logging
import os

from fmkeras.config import RunConfig, to_dict
from fmkeras.data.text import load_text_source
from fmkeras.data.text_pipeline import build_text_datasets
from fmkeras.evaluate import evaluate_text_predictions, plot_history, write_json
from fmkeras.train import fit, seed_everything
from fmkeras.transfer import build_text_classifier, trainable_parameter_count

log = logging.getLogger("fmkeras")


def run_text_training(cfg: RunConfig) -> dict:
    """Trains a text classifier for `cfg`, evaluates on the test split, writes the run dir and exports."""
    from fmkeras.experiment import MODEL_FILE, export_model, make_run_dir
    seed_everything(cfg.train)
    source = load_text_source(cfg.data, cfg.text)
    data = build_text_datasets(source, cfg.data, cfg.train.batch_size)
    model = build_text_classifier(cfg.model, cfg.text, data.train_texts, len(data.class_names))
    run_dir = make_run_dir(cfg)
    write_json(os.path.join(run_dir, "config.json"), to_dict(cfg))
    result = fit(model, data, cfg.train, run_dir)
    model.save(os.path.join(run_dir, MODEL_FILE))
    plot_history(result.history, os.path.join(run_dir, "plots", "training_curves.png"))
    test_set, split = (data.test, "test") if data.test is not None else (data.val, "validation")
    test = evaluate_text_predictions(lambda x: model(x, training=False), test_set, data.class_names,
                                     os.path.join(run_dir, "plots"), prefix=split) if test_set is not None else None
    report = {
        "run_dir": run_dir, "name": cfg.name, "data": source.name, "modality": "text", "evaluated_on": split,
        "class_names": list(data.class_names), "image_shape": None,
        "vocabulary_size": model.get_layer("vectorize").vocabulary_size(),
        "num_train": data.num_train, "num_val": data.num_val, "num_test": data.num_test,
        "params": model.count_params(), "trainable_params": trainable_parameter_count(model),
        "lora_rank": cfg.model.lora_rank, "train_seconds": round(result.seconds, 2), "epochs": result.epochs,
        "history": result.history, "stopped_early": result.stopped_early, "skipped": [], "skipped_count": 0,
        "test": test,
    }
    if cfg.export.enabled:
        report["export"] = export_model(model, cfg, data.class_names, None)
    write_json(os.path.join(run_dir, "metrics.json"), report)
    return report
