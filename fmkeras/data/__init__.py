"""Data: sources (where examples come from), decode, augment (random transforms) and pipeline (tf.data)."""
from fmkeras.data.sources import Source, load_source
from fmkeras.data.pipeline import Datasets, build_datasets, dataset_fn
from fmkeras.data.text import is_text_source, load_text_source
from fmkeras.data.text_pipeline import TextDatasets, build_text_datasets

__all__ = ["Source", "load_source", "Datasets", "build_datasets", "dataset_fn", "is_text_source", "load_text_source",
           "TextDatasets", "build_text_datasets"]
