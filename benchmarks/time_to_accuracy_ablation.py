"""Time-to-accuracy ablation: candidate Fashion-MNIST nets vs keras.io's Simple MNIST convnet, same process.

Builds every candidate directly in Keras on the Fashion-MNIST arrays (no fmkeras pipeline), so what is
measured is the net, the schedule and the Keras/TF execution settings (XLA, steps_per_execution,
mixed_bfloat16), not the package's data pipeline. Each candidate's fit includes a validation pass per
epoch on 6,000 held-out training images (as the reference's validation_split=0.1 and the recipe do).

Every run prints one JSON line to stderr while running; stdout is one JSON document at the end:
{"reference": {...}, "runs": [{name, fit_seconds, ratio_to_reference, test_accuracy, ...}, ...]}.
`ratio_to_reference` divides by the reference's fit time measured in this process; with
--reference_epochs < 15 the reference's time is scaled to 15 epochs from its later epochs
(`reference_fit_seconds_15ep_estimate`), a screening figure only.

Run:  python benchmarks/time_to_accuracy_ablation.py --runs candidate         (reference first, then the run)
      python benchmarks/time_to_accuracy_ablation.py --throughput --runs reference,recipe_net,recipe_net_fused_bf16
      python benchmarks/time_to_accuracy_ablation.py --no_reference --runs '' --spec 'x={"net": {...}, "epochs": 6}'
      python benchmarks/time_to_accuracy_ablation.py --list
Results of round 2 (branch fast2): benchmarks/results/time_to_accuracy_ablation2.json.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from fmkeras.backbones.cnn import FusedBatchNormalization  # noqa: E402  (the recipe's layer)
from fmkeras.config import DataConfig, TrainConfig  # noqa: E402
from fmkeras.data import load_source  # noqa: E402
from fmkeras.train.optimizers import build_optimizer  # noqa: E402
from fmkeras.train.schedules import build_schedule  # noqa: E402
from time_to_accuracy import forward_flops, reference_net  # noqa: E402  (the same net and count as the headline)


# ----------------------------------------------------------------------------------------------- models
def _act(x, kind):
    return keras.layers.Activation(kind)(x)


def _conv_bn_act(x, filters, kernel=3, strides=1, bn=True, act="relu", separable=False):
    conv = keras.layers.SeparableConv2D if separable else keras.layers.Conv2D
    x = conv(filters, kernel, strides=strides, padding="same", use_bias=not bn)(x)
    if bn == "fused":
        x = FusedBatchNormalization()(x)
    elif bn:
        x = keras.layers.BatchNormalization()(x)
    return _act(x, act)


class SpaceToDepth(keras.layers.Layer):
    def __init__(self, block=2, **kw):
        super().__init__(**kw)
        self.block = block

    def call(self, x):
        return tf.nn.space_to_depth(x, self.block)

    def compute_output_shape(self, s):
        b = self.block
        return (s[0], s[1] // b, s[2] // b, s[3] * b * b)


def build_net(spec: dict) -> keras.Model:
    """spec keys: stem (conv|s2d|none), stem_filters, filters (list per stage), convs (per stage),
    bn, act, head (flatten|gap), dense, dropout, separable, flip, residual."""
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    if spec.get("flip", True):
        x = keras.layers.RandomFlip("horizontal")(x)
    bn, act, sep = spec.get("bn", True), spec.get("act", "relu"), spec.get("separable", False)
    stem = spec.get("stem", "conv")
    if stem == "s2d":  # 28x28x1 -> 14x14x4, then convs at 14x14
        x = SpaceToDepth(2)(x)
    elif stem == "s2d4":  # 28x28x1 -> 7x7x16
        x = SpaceToDepth(4)(x)
    if spec.get("stem_filters"):
        x = _conv_bn_act(x, spec["stem_filters"], spec.get("stem_kernel", 3), spec.get("stem_strides", 1), bn, act)
        if spec.get("stem_pool"):
            x = keras.layers.MaxPooling2D()(x)
    convs = spec.get("convs", [1] * len(spec["filters"]))
    pools = spec.get("pools", [True] * len(spec["filters"]))
    for width, n, pool in zip(spec["filters"], convs, pools):
        if spec.get("residual") and n >= 2:
            x = _conv_bn_act(x, width, bn=bn, act=act, separable=sep)
            if pool:
                x = keras.layers.MaxPooling2D()(x)
            y = x
            for _ in range(n - 1):
                y = _conv_bn_act(y, width, bn=bn, act=act, separable=sep)
            x = keras.layers.Add()([x, y])
        else:
            for _ in range(n):
                x = _conv_bn_act(x, width, bn=bn, act=act, separable=sep)
            if pool:
                x = keras.layers.MaxPooling2D()(x)
    if spec.get("head", "flatten") == "gap":
        x = keras.layers.GlobalAveragePooling2D()(x)
    elif spec.get("head") == "gmp":
        x = keras.layers.GlobalMaxPooling2D()(x)
    else:
        x = keras.layers.Flatten()(x)
    # as fmkeras.transfer.heads: Dense -> Dropout per unit count, one Dropout when there is no Dense
    rate = spec.get("dropout", 0.4)
    for units in spec.get("dense", [256]):
        x = keras.layers.Dense(units, activation=act)(x)
        if rate:
            x = keras.layers.Dropout(rate)(x)
    if rate and not spec.get("dense", [256]):
        x = keras.layers.Dropout(rate)(x)
    outputs = keras.layers.Dense(10, activation="softmax", dtype="float32")(x)
    return keras.Model(inputs, outputs)


# The recipe's net today: [16, 32, 64, 128] Conv-BN-ReLU-pool (28->14->7->3->1), flatten, dense 256.
RECIPE = {"filters": [16, 32, 64, 128], "dense": [256], "dropout": 0.4}
TRAIN = {"epochs": 10, "batch": 256, "lr": 0.005, "smoothing": 0.1}

CANDIDATES = {
    "recipe_net": {"net": RECIPE},
    "recipe_net_noflip": {"net": {**RECIPE, "flip": False}},
    "recipe_net_xla": {"net": RECIPE, "jit": True},
    "recipe_net_spe": {"net": RECIPE, "spe": 32},
    "recipe_net_bf16": {"net": RECIPE, "bf16": True},
    "recipe_net_b512": {"net": RECIPE, "batch": 512, "lr": 0.008},
    "recipe_net_nobn": {"net": {**RECIPE, "bn": False}},
    # space-to-depth stem: the 28x28 layer disappears, convs run at 14x14 and below
    "s2d_32_64_128": {"net": {"stem": "s2d", "filters": [32, 64, 128], "dense": [256]}},
    "s2d_c48_96_192": {"net": {"stem": "s2d", "filters": [48, 96, 192], "dense": [256]}},
    "s2d_64_128_gap": {"net": {"stem": "s2d", "filters": [64, 128, 256], "head": "gap", "dense": []}},
    # stride-2 3x3 stem conv
    "st2_32_64_128": {"net": {"stem_filters": 32, "stem_strides": 2, "filters": [64, 128], "dense": [256]}},
    # ResNet-9 style at 14x14 / 7x7 (the DAWNBench layout, narrow)
    "res_s2d_32_64_128": {"net": {"stem": "s2d", "stem_filters": 32, "filters": [64, 128], "convs": [3, 3],
                                  "residual": True, "head": "gap", "dense": [], "dropout": 0.2}},
    "two_conv_14": {"net": {"filters": [32, 64, 128], "convs": [1, 2, 1], "dense": [256]}},
    "reference_like_bn": {"net": {"filters": [32, 64], "dense": [], "dropout": 0.5, "flip": False}},
    # round 2: TF's fused batch norm, mixed_bfloat16 (AMX), lighter regularisation for 6-8 epochs
    "recipe_net_fused": {"net": {**RECIPE, "bn": "fused"}},
    "recipe_net_fused_bf16": {"net": {**RECIPE, "bn": "fused"}, "bf16": True},
    "candidate": {"net": {**RECIPE, "bn": "fused", "dropout": 0.1}, "smoothing": 0.0, "bf16": True, "epochs": 8},
    "candidate_c1121": {"net": {**RECIPE, "convs": [1, 1, 2, 1], "bn": "fused", "dropout": 0.1}, "smoothing": 0.0,
                        "bf16": True, "epochs": 6},
}


# ------------------------------------------------------------------------------------------------ data
def load_arrays(val_fraction=0.1, seed=0):
    source = load_source(DataConfig())
    x = source.x_train.reshape(-1, 28, 28, 1)
    y = source.y_train.astype("int32")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    n_val = int(round(len(x) * val_fraction))
    val, train = order[:n_val], order[n_val:]
    x_test = source.x_test.reshape(-1, 28, 28, 1)
    return (x[train], y[train]), (x[val], y[val]), (x_test, source.y_test.astype("int32"))


def make_train_ds(x, y, batch, seed=1337):
    ds = tf.data.Dataset.from_tensor_slices((x, tf.one_hot(y, 10)))
    ds = ds.cache().shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch, drop_remainder=False).prefetch(tf.data.AUTOTUNE)


def make_eval_ds(x, y, batch=1000):
    return tf.data.Dataset.from_tensor_slices((x, tf.one_hot(y, 10))).batch(batch).cache().prefetch(2)


# ------------------------------------------------------------------------------------------------ runs
class EpochTimer(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.times, self._t = [], None

    def on_epoch_begin(self, epoch, logs=None):
        self._t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._t)


def run_reference(data, epochs):
    """The reference exactly as benchmarks/time_to_accuracy.py runs it (float32 arrays, validation_split)."""
    (xtr, ytr), (xva, yva), (xte, yte) = data
    # the reference sees all 60,000 training images and splits the last 10% off itself
    x_all = np.concatenate([xtr, xva]).astype("float32") / 255
    y_all = keras.utils.to_categorical(np.concatenate([ytr, yva]), 10)
    keras.utils.set_random_seed(1337)
    model = reference_net()
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    timer = EpochTimer()
    start = time.perf_counter()
    model.fit(x_all, y_all, batch_size=128, epochs=epochs, validation_split=0.1, verbose=0, callbacks=[timer])
    seconds = time.perf_counter() - start
    _, acc = model.evaluate(xte.astype("float32") / 255, keras.utils.to_categorical(yte, 10), verbose=0)
    later = timer.times[1:] or timer.times
    est15 = seconds if epochs == 15 else timer.times[0] + 14 * float(np.median(later))
    return {"fit_seconds": round(seconds, 1), "epochs": epochs, "test_accuracy": round(float(acc), 4),
            "epoch_seconds": [round(t, 1) for t in timer.times],
            "reference_fit_seconds_15ep_estimate": round(est15, 1),
            "forward_flops_per_image": forward_flops(model)}


def run_candidate(name, cand, data, epochs_override=None, seed=1337):
    (xtr, ytr), (xva, yva), (xte, yte) = data
    keras.utils.set_random_seed(seed)
    keras.backend.clear_session()
    if cand.get("bf16"):
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        epochs = epochs_override or cand.get("epochs", TRAIN["epochs"])
        batch = cand.get("batch", TRAIN["batch"])
        model = build_net(cand["net"])
        steps = math.ceil(len(xtr) / batch)
        tcfg = TrainConfig(optimizer=cand.get("optimizer", "adam"), learning_rate=cand.get("lr", TRAIN["lr"]),
                           schedule=cand.get("schedule", "one_cycle"), batch_size=batch,
                           one_cycle_pct_start=cand.get("pct_start", 0.25),
                           weight_decay=cand.get("weight_decay", 0.0))
        # the schedule spans the candidate's own epochs (a screening run with fewer epochs anneals early)
        optimizer = build_optimizer(tcfg, build_schedule(tcfg, steps * epochs))
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=cand.get("smoothing", TRAIN["smoothing"]))
        model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"], jit_compile=cand.get("jit", False),
                      steps_per_execution=cand.get("spe", 1))
        train = make_train_ds(xtr, ytr, batch, seed)
        val = make_eval_ds(xva, yva)
        timer = EpochTimer()
        start = time.perf_counter()
        hist = model.fit(train, validation_data=val, epochs=epochs, verbose=0, callbacks=[timer])
        seconds = time.perf_counter() - start
        _, acc = model.evaluate(make_eval_ds(xte, yte), verbose=0)
        result = {"name": name, "fit_seconds": round(seconds, 1), "epochs": epochs, "batch": batch,
                  "test_accuracy": round(float(acc), 4),
                  "best_val_accuracy": round(max(hist.history["val_accuracy"]), 4),
                  "final_val_accuracy": round(hist.history["val_accuracy"][-1], 4),
                  "epoch_seconds": [round(t, 1) for t in timer.times],
                  "train_images_per_second_later_epochs": round(
                      len(xtr) / float(np.median(timer.times[1:] or timer.times)), 1),
                  "params": model.count_params(), "forward_flops_per_image": forward_flops(model),
                  "config": {k: v for k, v in cand.items()}}
        if cand.get("tta", True):
            probs = model.predict(xte, batch_size=1000, verbose=0) + model.predict(xte[:, :, ::-1], batch_size=1000,
                                                                                     verbose=0)
            result["test_accuracy_flip_tta"] = round(float(np.mean(np.argmax(probs, 1) == yte)), 4)
        return result
    finally:
        keras.mixed_precision.set_global_policy("float32")


def throughput(name, cand, batches=20):
    """Training images per CPU-second (process time, all threads) and per wall second of `model.fit` on
    in-memory random batches, best of two ~6,000-image fits after a warm-up: the net's cost without the
    schedule, less sensitive to other jobs on a shared machine than wall time."""
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if cand.get("bf16") else "float32")
    try:
        rng = np.random.default_rng(0)
        b = cand.get("batch", 128 if name == "reference" else TRAIN["batch"])
        if name == "reference":
            model, x = reference_net(), rng.random((b * batches, 28, 28, 1), dtype=np.float32)
        else:
            model, x = build_net(cand["net"]), rng.integers(0, 255, (b * batches, 28, 28, 1)).astype("uint8")
        y = tf.one_hot(rng.integers(0, 10, b * batches), 10)
        ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(b).cache().repeat().prefetch(4)
        model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"],
                      jit_compile=cand.get("jit", False), steps_per_execution=cand.get("spe", 1))
        steps = max(20, 6000 // b)
        model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
        best = None
        for _ in range(2):
            wall, cpu = time.perf_counter(), time.process_time()
            model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            best = (wall, cpu) if best is None or wall < best[0] else best
        return {"name": name, "images_per_cpu_second": round(steps * b / best[1]),
                "images_per_wall_second": round(steps * b / best[0]),
                "forward_mflop_per_image": round(forward_flops(model) / 1e6, 2),
                "load_average": round(os.getloadavg()[0], 1), "config": cand}
    finally:
        keras.mixed_precision.set_global_policy("float32")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default="recipe_net", help="comma-separated candidate names")
    parser.add_argument("--epochs", type=int, help="override every candidate's epochs (screening)")
    parser.add_argument("--reference_epochs", type=int, default=15)
    parser.add_argument("--no_reference", action="store_true")
    parser.add_argument("--spec", action="append", default=[],
                        help='extra candidate as name=JSON, e.g. x={"net": {"filters": [32, 64]}, "epochs": 6}')
    parser.add_argument("--reference_last", action="store_true", help="run the reference after the candidates")
    parser.add_argument("--throughput", action="store_true",
                        help="only measure training images/s of the named candidates (and 'reference'), no accuracy")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    candidates = dict(CANDIDATES)
    for item in args.spec:
        key, _, text = item.partition("=")
        candidates[key] = json.loads(text)
    if args.list:
        print(json.dumps(candidates, indent=1))
        return 0
    names = [n for n in args.runs.split(",") if n]
    for item in args.spec:
        key = item.partition("=")[0]
        if key not in names:
            names.append(key)
    if args.throughput:
        rows = []
        for name in names:
            rows.append(throughput(name, candidates.get(name, {})))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        print(json.dumps({"benchmark": "time_to_accuracy_ablation --throughput", "runs": rows}, indent=1))
        return 0
    data = load_arrays()
    result = {"benchmark": "time_to_accuracy_ablation", "cpu_count": os.cpu_count(),
              "tensorflow": tf.__version__, "keras": keras.__version__,
              "load_average_before": [round(v, 2) for v in os.getloadavg()], "runs": []}

    def reference():
        result["reference"] = run_reference(data, args.reference_epochs)
        print(json.dumps({"reference": result["reference"]}), file=sys.stderr, flush=True)

    if not args.no_reference and not args.reference_last:
        reference()
    for name in names:
        run = run_candidate(name, candidates[name], data, args.epochs)
        run["load_average"] = [round(v, 2) for v in os.getloadavg()]
        result["runs"].append(run)
        print(json.dumps(run), file=sys.stderr, flush=True)
    if not args.no_reference and args.reference_last:
        reference()
    if "reference" in result:
        ref = result["reference"]["reference_fit_seconds_15ep_estimate"]
        for run in result["runs"]:
            run["ratio_to_reference"] = round(run["fit_seconds"] / ref, 3)
    result["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
