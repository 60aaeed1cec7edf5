"""fmkeras: transfer learning with foundation (pretrained) models in TensorFlow/Keras 3.

The data flow is the package layout: data -> backbones -> transfer -> train -> evaluate -> export -> serve;
`tasks` holds what is particular to images or texts, `experiment` runs one run end to end.

Python API (imported on first use, so `import fmkeras` stays light):
    fmkeras.image_data(source, batch_size, **data_options)      -> train / val / test datasets
    fmkeras.ImageClassifier(backbone, class_names, ...)           -> fit (in stages), evaluate, predict, export
    fmkeras.ImageClassifier.from_preset("efficientnet_lite0", class_names)
    fmkeras.Experiment(cfg).run()                                 -> what `fmkeras train` does for a config
"""
__version__ = "0.1.0"

_LAZY = {"ImageClassifier": "fmkeras.tasks.image_classifier", "image_data": "fmkeras.tasks.image_classifier",
         "Experiment": "fmkeras.experiment", "run_training": "fmkeras.experiment"}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fmkeras' has no attribute {name!r}")


__all__ = sorted(_LAZY)
