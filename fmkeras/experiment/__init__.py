"""Experiment: one run end to end (run directory, strategy, training loop, report, export), and the
operations on finished runs and model files (evaluate, export, TFLite)."""
from fmkeras.experiment.run import Experiment, export_model, run_training, with_image_size
from fmkeras.experiment.run_dir import MODEL_FILE, finished_run, make_run_dir, run_config

__all__ = ["Experiment", "export_model", "run_training", "with_image_size", "MODEL_FILE", "finished_run",
           "make_run_dir", "run_config"]
