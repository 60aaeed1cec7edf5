"""fmkeras/train/callbacks.py: the best-weights file is replaced atomically, never torn."""
import keras
import numpy as np
import pytest

from fmkeras.train.callbacks import BestWeights


class Crash(Exception):
    pass


def test_best_weights_survive_a_crash_mid_save(tmp_path):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    callback = BestWeights(str(tmp_path / "best.weights.h5"), "val_loss")
    callback.set_model(model)
    callback.on_epoch_end(0, {"val_loss": 1.0})
    saved = [w.copy() for w in model.get_weights()]
    callback.on_epoch_end(1, {"val_loss": 2.0})  # not better: nothing written
    model.set_weights([w + 1 for w in saved])
    original = model.save_weights

    def torn_save(path, overwrite=True):
        original(path, overwrite=overwrite)
        with open(path, "r+b") as fh:  # half-written temp file, then the process "dies"
            fh.truncate(100)
        raise Crash()

    model.save_weights = torn_save
    with pytest.raises(Crash):
        callback.on_epoch_end(2, {"val_loss": 0.5})
    model.save_weights = original
    fresh = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    fresh.load_weights(str(tmp_path / "best.weights.h5"))  # still the complete epoch-0 file
    for a, b in zip(fresh.get_weights(), saved):
        np.testing.assert_array_equal(a, b)
