"""Hyperparameter search over fine-tuning choices with keras-tuner (see search.py)."""
from fmkeras.tune.hypermodel import FinetuneHyperModel, TextHyperModel, hypermodel_for
from fmkeras.tune.search import build_tuner, project_dir, run_search
from fmkeras.tune.space import declare_space, trial_config

__all__ = ["FinetuneHyperModel", "TextHyperModel", "build_tuner", "declare_space", "hypermodel_for", "project_dir",
           "run_search", "trial_config"]
