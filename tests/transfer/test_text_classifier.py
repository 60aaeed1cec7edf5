"""fmkeras/transfer/text_classifier.py: standardization, the wide (bag-of-n-grams) branch, round trips."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from fmkeras.config import HeadConfig, ModelConfig, RunConfig, TextConfig, apply_overrides, validate
from fmkeras.errors import ConfigError
from fmkeras.export.text_saved_model import export_text_saved_model
from fmkeras.transfer import build_text_classifier
from fmkeras.model_files.safe_load import UnsafeModelError, check_config, load_keras_model
from fmkeras.transfer.text_classifier import WIDE_VECTORIZER_LAYER, lower_and_split_punctuation

TINY = {"size": "tiny", "dim": 16, "depth": 1, "heads": 2, "mlp_dim": 32}


def _model(text: TextConfig, texts, num_classes=2, dropout=0.0):
    cfg = ModelConfig(backbone="text_transformer", backbone_options=TINY, head=HeadConfig(dropout=dropout))
    return build_text_classifier(cfg, text, np.asarray(texts), num_classes)


def test_split_punctuation_keeps_hyphenated_words_apart():
    out = lower_and_split_punctuation(tf.constant(["Real-time X11/GTK tool", "non-GUI"])).numpy()
    assert [o.decode().split() for o in out] == [["real", "time", "x11", "gtk", "tool"], ["non", "gui"]]
    # Inside tf.data (how adapt() and serving see it) the result is the same.
    ds = tf.data.Dataset.from_tensor_slices(["Real-time X11/GTK tool"]).map(lower_and_split_punctuation)
    assert next(iter(ds)).numpy().decode().split() == ["real", "time", "x11", "gtk", "tool"]
    model = _model(TextConfig(sequence_length=6, standardize="lower_and_split_punctuation"),
                   ["real-time chess", "non-GUI proxy"])
    vocab = model.get_layer("vectorize").get_vocabulary()
    assert {"real", "time", "non", "gui"} <= set(vocab) and "realtime" not in vocab


def test_wide_branch_holds_ngrams_and_round_trips_through_keras_and_saved_model(tmp_path):
    texts = ["chess game for two", "network proxy daemon", "sound mixer", "plot science data"] * 4
    model = _model(TextConfig(sequence_length=4, wide="tf_idf", wide_ngrams=2,
                              standardize="lower_and_split_punctuation"), texts, num_classes=4)
    wide = model.get_layer(WIDE_VECTORIZER_LAYER)
    assert "chess game" in wide.get_vocabulary() and "network proxy" in wide.get_vocabulary()
    # head input = pooled Transformer features (dim 16) + one value per n-gram in the wide vocabulary
    assert model.get_layer("wide_and_deep").output.shape[-1] == 16 + wide.vocabulary_size()
    x = tf.constant(["chess proxy", "sound data plot"])
    expected = model(x).numpy()
    model.save(tmp_path / "m.keras")
    # fmkeras' inspected loader (what `fmkeras evaluate` uses) accepts the registered standardize function
    loaded = load_keras_model(str(tmp_path / "m.keras"))
    np.testing.assert_allclose(loaded(x).numpy(), expected, atol=1e-6)
    unknown = {"module": "builtins", "class_name": "function", "config": "fmkeras>not_registered"}
    with pytest.raises(UnsafeModelError, match="refused function reference"):
        check_config({"standardize": unknown}, "m.keras")
    _, path = export_text_saved_model(model, str(tmp_path / "sm"), ["a", "b", "c", "d"])
    served = tf.saved_model.load(path).signatures["serving_default"](text=x)
    np.testing.assert_allclose(served["probabilities"].numpy(), expected, atol=1e-5)


def _train(model, texts, labels, epochs):
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="sparse_categorical_crossentropy",
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    ds = tf.data.Dataset.from_tensor_slices((np.asarray(texts), np.asarray(labels))).shuffle(256, seed=0).batch(32)
    return model.fit(ds, epochs=epochs, verbose=0).history["accuracy"][-1]


@pytest.mark.slow  # 14-24 s on the shared 2-core machine
def test_wide_branch_sees_words_beyond_the_transformers_sequence_length():
    # The label is the LAST word; the Transformer only sees the first 2 tokens (identical filler),
    # so only the bag-of-words branch can learn it.
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 256)
    texts = [f"a simple tool {'chess' if y else 'proxy'}" for y in labels]
    deep = _train(_model(TextConfig(sequence_length=2), texts), texts, labels, epochs=3)
    wide = _train(_model(TextConfig(sequence_length=2, wide="tf_idf"), texts), texts, labels, epochs=3)
    assert deep < 0.7 and wide > 0.95, (deep, wide)


def test_wide_options_are_validated_and_need_training_texts(tmp_path):
    with pytest.raises(ConfigError, match="text.wide"):
        validate(apply_overrides(RunConfig(), {"text.wide": "bag"}))
    with pytest.raises(ConfigError, match="text.wide_ngrams"):
        validate(apply_overrides(RunConfig(), {"text.wide_ngrams": 5}))
    with pytest.raises(ConfigError, match="text.standardize"):
        validate(apply_overrides(RunConfig(), {"text.standardize": "split"}))
    cfg = ModelConfig(backbone="text_transformer", backbone_options=TINY)
    with pytest.raises(ConfigError, match="training texts"):
        vocabulary = tmp_path / "vocabulary.txt"
        vocabulary.write_text("chess\nproxy\n")
        build_text_classifier(cfg, TextConfig(wide="tf_idf", vocabulary=str(vocabulary)), None, 2)
