"""Loading model files safely: Keras' safe mode is always on unless the user trusts the file.

A `.keras` file can carry Python code (a `Lambda` layer's bytecode); Keras runs it only when
`safe_mode=False`. fmkeras passes `safe_mode` per call and never calls
`keras.config.enable_unsafe_deserialization()`, so trusting one file trusts nothing else.
SavedModels are loaded with `tf.saved_model.load`, which restores graphs, not Python objects.
"""
from __future__ import annotations

import os

import keras

from fmkeras.errors import DataError


def load_keras_model(path: str, trust: bool = False) -> keras.Model:
    """Loads a `.keras` file; with `trust=False` code embedded in it is refused, not run.

    Args:
        trust: bool. Set only for files you made or trust (CLI: --trust_model). Defaults to False.
    """
    if not os.path.isfile(path):
        raise DataError(f"model file not found: {path}")
    try:
        return keras.saving.load_model(path, safe_mode=not trust)
    except ValueError as err:
        if trust or "safe_mode" not in str(err):
            raise
        raise DataError(f"{path} contains Python code (e.g. a Lambda layer) that safe mode will not run; "
                        f"pass --trust_model only if you trust this file") from None
