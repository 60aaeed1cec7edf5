"""Data: sources (where examples come from), decode, augment (random transforms) and pipeline (tf.data)."""
from fmkeras.data.sources import Source, load_source
from fmkeras.data.pipeline import Datasets, build_datasets, dataset_fn

__all__ = ["Source", "load_source", "Datasets", "build_datasets", "dataset_fn"]
