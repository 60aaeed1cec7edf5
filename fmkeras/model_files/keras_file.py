"""Loading model files safely: inspected first, Keras' safe mode always on unless the user trusts the file.

A `.keras` file can carry Python code (a `Lambda` layer's bytecode); Keras runs it only when
`safe_mode=False`, and safe mode alone has had bypasses. Untrusted files therefore go through
`fmkeras.model_files.safe_load` (allow-listed classes, no code, no zip bombs) and are checked
against their `.sha256` sidecar when they have one, before Keras parses them. fmkeras passes
`safe_mode` per call and never calls `keras.config.enable_unsafe_deserialization()`, so trusting
one file trusts nothing else. SavedModels are loaded with `tf.saved_model.load`, which restores
graphs, not Python objects.
"""
from __future__ import annotations

import os

import keras

from fmkeras.errors import DataError
from fmkeras.model_files.safe_load import UnsafeModelError, check_keras_version, inspect_model_file
from fmkeras.model_files.weight_hashes import verify_sidecar


def load_keras_model(path: str, trust: bool = False, compile: bool = True) -> keras.Model:
    """Loads a `.keras` file; with `trust=False` it is inspected and code embedded in it is refused, not run.

    Args:
        trust: bool. Set only for files you made or trust (CLI: --trust_model). Defaults to False.
    """
    if not os.path.isfile(path):
        raise DataError(f"model file not found: {path}")
    check_keras_version()
    verify_sidecar(path)  # a modified file is refused even when trusted (WeightsError)
    if not trust:
        try:
            inspect_model_file(path)
        except UnsafeModelError as err:
            raise UnsafeModelError(f"{err}. Keras safe mode will not load it; pass --trust_model only if you "
                                   f"trust this file") from None
    try:
        return keras.saving.load_model(path, compile=compile, safe_mode=not trust)
    except ValueError as err:
        if trust or "safe_mode" not in str(err):
            raise
        raise DataError(f"{path} contains Python code (e.g. a Lambda layer) that safe mode will not run; "
                        f"pass --trust_model only if you trust this file") from None
