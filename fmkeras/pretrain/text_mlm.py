"""Masked-token pretraining of the text Transformer on unlabeled text (BERT's objective, small).

Hides up to `max_predictions` tokens per text (`mask_rate` of its tokens, at least one) behind the
OOV id and trains the backbone + a softmax over the vocabulary to recover them, on texts that need
no labels: e.g. every Debian package description, ~60k of them, of which the labeled task uses a few
thousand. Writes `text_backbone.keras` and `vocabulary.txt`; a classifier then starts from them with
`model.weights=DIR/text_backbone.keras` and `text.vocabulary=DIR/vocabulary.txt` (same token ids).

Run: python -m fmkeras.pretrain.text_mlm --out=runs/text_pretrain [--epochs=3]   (or `make text-pretrain`)
"""
from __future__ import annotations

import dataclasses
import json
import os
import time

import keras
import numpy as np
import tensorflow as tf

from fmkeras.backbones import get_backbone
from fmkeras.config import TextConfig
from fmkeras.transfer.text_classifier import build_vectorizer, write_vocabulary
from fmkeras.transfer.weights import build_backbone

OOV_ID = 1  # TextVectorization's [UNK]; doubles as the [MASK] token
BACKBONE_FILE = "text_backbone.keras"
VOCABULARY_FILE = "vocabulary.txt"


@keras.saving.register_keras_serializable(package="fmkeras")
class GatherPositions(keras.layers.Layer):
    """features (N, L, D), positions (N, P) -> the features at those positions (N, P, D)."""

    def call(self, features, positions):
        return tf.gather(features, tf.cast(positions, tf.int32), batch_dims=1)

    def compute_mask(self, inputs, mask=None):
        return None


def mask_tokens(ids: np.ndarray, rng: np.random.Generator, mask_rate: float, max_predictions: int) -> tuple:
    """Returns (masked ids, positions (N, P), target ids (N, P), weights (N, P)); weight 0 pads unused slots."""
    masked = ids.copy()
    positions = np.zeros((len(ids), max_predictions), np.int32)
    targets = np.zeros((len(ids), max_predictions), np.int64)
    weights = np.zeros((len(ids), max_predictions), np.float32)
    for row, tokens in enumerate(ids):
        candidates = np.flatnonzero(tokens > OOV_ID)
        if not len(candidates):
            continue
        count = min(max_predictions, max(1, int(round(len(candidates) * mask_rate))))
        chosen = rng.choice(candidates, count, replace=False)
        positions[row, :count], targets[row, :count], weights[row, :count] = chosen, tokens[chosen], 1.0
        masked[row, chosen] = OOV_ID
    return masked, positions, targets, weights


def build_mlm_model(backbone: keras.Model, vocab_size: int) -> keras.Model:
    ids = keras.Input(backbone.input_shape[1:], dtype="int64", name="token_ids")
    positions = keras.Input((None,), dtype="int32", name="positions")
    features = GatherPositions(name="gather")(backbone(ids), positions)
    logits = keras.layers.Dense(vocab_size, name="token_logits", dtype="float32")(features)
    return keras.Model([ids, positions], logits, name="text_mlm")


def pretrain_text_mlm(texts, out_dir: str, text: TextConfig = TextConfig(), backbone: str = "text_transformer",
                      backbone_options: dict = None, epochs: int = 3, batch_size: int = 128,
                      learning_rate: float = 1e-3, mask_rate: float = 0.15, max_predictions: int = 4,
                      seed: int = 1337, verbose: int = 2, vocabulary_texts=None) -> dict:
    """Pretrains `backbone` on `texts` (unlabeled); writes the backbone and vocabulary into `out_dir`.

    `text` and `backbone_options` must be what the classifier will use (same sequence length, size).
    vocabulary_texts: the texts the vocabulary is learned from (default `texts`); passing the labeled
    task's training texts keeps the task's words in a `text.max_tokens`-sized vocabulary.
    Returns {"backbone": path, "vocabulary": path, "masked_token_accuracy": [...per epoch], ...}.
    """
    keras.utils.set_random_seed(seed)
    os.makedirs(out_dir, exist_ok=True)
    texts = np.asarray(texts, dtype=str)
    vocabulary_texts = texts if vocabulary_texts is None else np.asarray(vocabulary_texts, dtype=str)
    vectorizer = build_vectorizer(dataclasses.replace(text, vocabulary=None), vocabulary_texts)
    vocab_size = vectorizer.vocabulary_size()
    ids = np.concatenate([vectorizer(tf.constant(chunk)).numpy()
                          for chunk in np.array_split(texts, 1 + len(texts) // 4096)])
    net = build_backbone(get_backbone(backbone), (text.sequence_length,), None,
                         {"vocab_size": vocab_size, **(backbone_options or {})})
    model = build_mlm_model(net, vocab_size)
    steps = epochs * int(np.ceil(len(texts) / batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(0.0, steps, warmup_target=learning_rate,
                                                      warmup_steps=min(200, steps // 10))
    model.compile(keras.optimizers.AdamW(schedule, weight_decay=0.01),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    rng = np.random.default_rng(seed)
    history, start = [], time.perf_counter()
    for epoch in range(epochs):  # a fresh masking every epoch (dynamic masking, as in RoBERTa)
        masked, positions, targets, weights = mask_tokens(ids, rng, mask_rate, max_predictions)
        ds = tf.data.Dataset.from_tensor_slices(((masked, positions), targets, weights))
        ds = ds.shuffle(len(texts), seed=seed + epoch).batch(batch_size).prefetch(tf.data.AUTOTUNE)
        result = model.fit(ds, epochs=1, verbose=verbose)
        history.append({k: float(v[-1]) for k, v in result.history.items()})
    net.save(os.path.join(out_dir, BACKBONE_FILE))
    write_vocabulary(vectorizer, os.path.join(out_dir, VOCABULARY_FILE))
    report = {"backbone": os.path.join(out_dir, BACKBONE_FILE), "vocabulary": os.path.join(out_dir, VOCABULARY_FILE),
              "texts": int(len(texts)), "vocabulary_size": int(vocab_size), "epochs": epochs,
              "seconds": round(time.perf_counter() - start, 2),
              "masked_token_accuracy": [round(h["accuracy"], 4) for h in history],
              "loss": [round(h["loss"], 4) for h in history]}
    with open(os.path.join(out_dir, "pretrain.json"), "w") as fh:
        json.dump(report, fh, indent=2)
    return report


def main(argv=None) -> int:
    import argparse
    from fmkeras.config import apply_overrides, parse_override
    from fmkeras.data.debian_packages import all_descriptions
    from fmkeras.data.text import load_text_source
    from fmkeras.recipes import load_recipe
    parser = argparse.ArgumentParser(description="Masked-token pretraining on all Debian package descriptions "
                                     "(minus the labeled test split of the text_debian recipe).")
    parser.add_argument("--out", default="runs/text_pretrain")
    parser.add_argument("--recipe", default="text_debian", help="recipe whose text/backbone settings to match")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--set", action="append", default=[])
    args = parser.parse_args(argv)
    cfg = apply_overrides(load_recipe(args.recipe), dict(parse_override(item) for item in args.set))
    labeled = load_text_source(cfg.data, cfg.text)
    texts = all_descriptions(exclude=() if labeled.x_test is None else labeled.x_test)
    report = pretrain_text_mlm(texts, args.out, cfg.text, cfg.model.backbone, cfg.model.backbone_options,
                               epochs=args.epochs, seed=cfg.train.seed, vocabulary_texts=labeled.x_train)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
