"""fmkeras/pretrain/text_mlm.py: masking, and a pretrained backbone + vocabulary a classifier starts from."""
import json
import os

import keras
import numpy as np
import tensorflow as tf

from fmkeras.config import ModelConfig, TextConfig
from fmkeras.pretrain.text_mlm import OOV_ID, mask_tokens, pretrain_text_mlm
from fmkeras.transfer import build_text_classifier

TINY = {"size": "tiny", "dim": 16, "depth": 1, "heads": 2, "mlp_dim": 32}


def test_mask_tokens_hides_only_real_tokens():
    ids = np.array([[5, 6, 7, 8, 0, 0], [1, 9, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]])
    masked, positions, targets, weights = mask_tokens(ids, np.random.default_rng(0), mask_rate=0.5, max_predictions=3)
    assert weights[0].sum() == 2 and weights[1].sum() == 1 and weights[2].sum() == 0
    for row in range(3):
        for slot in np.flatnonzero(weights[row]):
            pos = positions[row, slot]
            assert masked[row, pos] == OOV_ID and targets[row, slot] == ids[row, pos] and ids[row, pos] > OOV_ID
    assert (masked[ids == 0] == 0).all()


def test_pretrained_backbone_and_vocabulary_load_into_a_classifier(tmp_path):
    words = ["chess", "game", "network", "proxy", "daemon", "sound", "mixer", "editor", "plot", "science"]
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(words, 5)) for _ in range(256)]
    report = pretrain_text_mlm(texts, str(tmp_path), TextConfig(sequence_length=8), backbone_options=TINY,
                               epochs=2, batch_size=64, verbose=0)
    assert json.load(open(tmp_path / "pretrain.json"))["texts"] == 256 and len(report["masked_token_accuracy"]) == 2
    assert report["loss"][-1] < report["loss"][0]
    cfg = ModelConfig(backbone="text_transformer", weights=report["backbone"], backbone_options=TINY)
    model = build_text_classifier(cfg, TextConfig(sequence_length=8, vocabulary=report["vocabulary"]), None, 3)
    vocab = model.get_layer("vectorize").get_vocabulary()
    assert vocab[:2] == ["", "[UNK]"] and set(words) <= set(vocab)
    saved = keras.saving.load_model(os.path.join(tmp_path, "text_backbone.keras"))
    for a, b in zip(saved.get_weights(), model.get_layer("backbone").get_weights()):
        np.testing.assert_array_equal(a, b)
    assert model(tf.constant(["chess game"])).shape == (1, 3)
