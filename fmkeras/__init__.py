"""fmkeras: transfer learning with foundation (pretrained) models in TensorFlow/Keras 3.

The data flow is the package layout: data -> backbones -> transfer -> train -> evaluate ->
export -> serve, with `config` describing a run and `experiment` running one end to end.
"""
__version__ = "0.1.0"
