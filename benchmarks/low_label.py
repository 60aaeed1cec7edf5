"""Low-label transfer on real Fashion-MNIST: 600 labels (60 per class, 1%) from scratch vs SimCLR.

One run: (1) SimCLR-pretrain the CNN on all 60k training images (labels unused), (2) train the
same classifier on the same 600 labelled images with the same budget from scratch, as a linear
probe on the frozen pretrained backbone, and fine-tuning the pretrained backbone; test on the
10k test images. Goal: fine-tune beats scratch by >= 8 points, whole run <= 30 min on
2 CPU cores. Wall times are measured, not assumed; the machine may be shared, so the JSON also
records the load average.

The classifier head flattens the last 3x3 feature map (`--pooling flatten`, every mode: same model)
and SimCLR pools its features the same way, with a BatchNorm projection head. Measured on a
SimCLR backbone (5 epochs): a 600-label logistic probe on flattened features 0.834 vs 0.806 on
averaged ones; fine-tune 0.828 vs scratch 0.817 with flatten (0.817 vs 0.813 with avg).

Oracle ceiling (`--ceiling`, off by default so the default run's budget is unchanged): after the three
arms above, the SAME backbone (filters, pooling, preprocessing) is pretrained SUPERVISED on the other
training images (every training image except the 600 labelled ones) WITH their labels, for as many epochs
as SimCLR completed and stopped before SimCLR's pretraining wall time, then linear-probed and fine-tuned
on the same 600 labels with the same low-label recipe and tested on the same 10k test images. It uses
labels SSL may not use, so it is not a candidate for the goal: it is an upper bound on what any
pretraining of this backbone on these images, with this budget, can give (`ceiling_gain_points` = oracle
fine-tune minus scratch). Its time is reported apart and not counted in the 30-minute budget.
Measured (defaults + --ceiling, 2 shared cores): scratch 0.8167, SimCLR probe 0.8172 / fine-tune 0.8321,
oracle (10 supervised epochs, 5.7 min vs SimCLR's 11.8) probe 0.8698 / fine-tune 0.8488: +5.3 / +3.2 points,
so even labelled pretraining of this backbone does not reach +8 in this protocol.

Photo protocol (`--protocol photos`): a real ImageNet-pretrained network on real photos. hymenoptera
(ants vs bees) with k = 2, 5, 10 and all labelled training photos per class, `--draws` label draws each
(data.seed = draw), no extra validation labels (validation_split 0; the recipe's epochs, with more steps per
epoch when there are few photos, so that every run takes at least 60 optimizer steps), tested on all of val/
(153 photos):
- pretrained: the efficientnet_lite0_transfer recipe (ImageNet weights, head then top blocks);
- scratch: the same backbone and budget from random weights.
SimCLR is not run in this protocol: pretraining EfficientNet-Lite0 contrastively at 224 px on 244 photos
does not fit the 2-core budget (and 244 images are far too few for it). Mean, spread (min-max) and std of
each arm per k, plus a PNG of the curve (`--plot`). Target: at 10 labels per class the pretrained model
is >= 0.85 while scratch stays near chance (0.5).

Run: python benchmarks/low_label.py [--pretrain-epochs 8] [--filters 32,64,128] [--probe-epochs 10 --finetune-epochs 30]
     [--ceiling [--ceiling-epochs N] [--ceiling-minutes M]]
     python benchmarks/low_label.py --protocol photos [--data DIR] [--shots 2,5,10,0] [--draws 3] [--plot FILE.png]
Smoke sizes (tests): --limit-train 300 --limit-test 100 --labels-per-class 5
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from fmkeras.config import apply_overrides  # noqa: E402
from fmkeras.config import (AugmentConfig, DataConfig, ExportConfig, FinetuneConfig, HeadConfig,  # noqa: E402
                            ModelConfig, PretrainConfig, PretrainRunConfig, RunConfig, TrainConfig)
from fmkeras.data import load_source  # noqa: E402
from fmkeras.data.labels import per_class_indices  # noqa: E402
from fmkeras.data.pipeline import train_val_indices  # noqa: E402  (the split build_datasets makes)
from fmkeras.experiment.low_label import compare_low_label  # noqa: E402
from fmkeras.experiment import run_training  # noqa: E402
from fmkeras.pretrain import run_pretraining  # noqa: E402
from fmkeras.recipes import load_recipe  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402

BUDGET_MINUTES = 30
GOAL_POINTS = 0.08
PHOTOS = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data",
                                       "hymenoptera"))
PHOTO_RECIPE, PHOTO_TARGET, MIN_STEPS = "efficientnet_lite0_transfer", 0.85, 60


class StopBeforeDeadline(keras.callbacks.Callback):
    """Stops pretraining when another epoch as long as the slowest so far would pass `seconds`.

    The machine is shared, so epoch times vary 2x; the time budget, not the epoch count, is fixed.
    """

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds, self.start, self.slowest = seconds, time.perf_counter(), 0.0
        self.epoch_start = self.start

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        self.slowest = max(self.slowest, now - self.epoch_start)
        if now - self.start + self.slowest > self.seconds:
            self.model.stop_training = True


def configs(args, run_root: str) -> tuple:
    """(pretraining config, low-label config) sharing the model."""
    model = ModelConfig(backbone="cnn", backbone_options={"filters": args.filters},
                        head=HeadConfig(pooling=args.pooling))
    pretrain = PretrainRunConfig(
        name="simclr", run_root=run_root, model=model,
        data=DataConfig(validation_split=0.0, limit_train=args.limit_train, limit_test=args.limit_test),
        train=TrainConfig(optimizer="adam", schedule="cosine", warmup_steps=100, verbose=0, seed=args.seed),
        pretrain=PretrainConfig(method="simclr", epochs=args.pretrain_epochs, batch_size=256,
                                learning_rate=args.pretrain_lr, temperature=args.temperature,
                                projection_units=args.projection, projection_batch_norm=True,
                                erase_prob=args.erase_prob),
        export=ExportConfig(enabled=False))
    low = RunConfig(
        name="low_label", run_root=run_root, model=model,
        data=DataConfig(validation_split=0.0, labels_per_class=args.labels_per_class, limit_train=args.limit_train,
                        limit_test=args.limit_test, augment=AugmentConfig(horizontal_flip=True)),
        train=TrainConfig(epochs=args.probe_epochs or args.epochs, batch_size=64, learning_rate=args.learning_rate,
                          schedule="cosine", verbose=0, seed=args.seed),
        # --finetune-epochs > 0: LP-FT (probe_epochs frozen, then finetune_epochs unfrozen at finetune_lr);
        # scratch and probe then train probe_epochs + finetune_epochs epochs.
        finetune=FinetuneConfig(freeze_backbone=bool(args.finetune_epochs), epochs=args.finetune_epochs,
                                learning_rate=args.finetune_lr, freeze_batchnorm=False),
        export=ExportConfig(enabled=False))
    return pretrain, low


def oracle_source(low: RunConfig, path: str) -> int:
    """Writes the training images the low-label runs do NOT label, with their labels, to `path` (.npz, no test
    split: the oracle never sees the test images); returns how many."""
    source = load_source(low.data)
    train_idx, _ = train_val_indices(source, low.data)
    labelled = train_idx[per_class_indices(source.y_train[train_idx], low.data.labels_per_class, low.data.seed,
                                           source.class_names)]
    others = np.setdiff1d(train_idx, labelled)
    np.savez(path, x_train=source.x_train[others], y_train=source.y_train[others],
             class_names=np.asarray(source.class_names))
    return len(others)


def oracle_ceiling(args, pretrain: PretrainRunConfig, low: RunConfig, run_root: str, epochs: int,
                   seconds: float) -> dict:
    """Supervised pretraining of the same backbone on the other labelled training images (at most `epochs`,
    stopped before `seconds`), then probe + fine-tune on the low-label set. An upper bound, not an SSL result."""
    path = os.path.join(run_root, "oracle_source.npz")
    images = oracle_source(low, path)
    cfg = dataclasses.replace(
        pretrain, name="oracle_supervised",
        data=DataConfig(source=f"npz:{path}", validation_split=0.0, augment=AugmentConfig(horizontal_flip=True)),
        pretrain=PretrainConfig(method="supervised", epochs=epochs, batch_size=256, learning_rate=args.pretrain_lr))
    start = time.perf_counter()
    trained = run_pretraining(cfg, callbacks=[StopBeforeDeadline(seconds)])
    pretrain_seconds = time.perf_counter() - start
    low_report = compare_low_label(low, trained["backbone_path"], modes=("probe", "finetune"),
                                   run_dir=os.path.join(run_root, "oracle_low_label"))
    results = low_report["results"]
    epochs_from = "--ceiling-epochs" if args.ceiling_epochs else "as many as SimCLR ran"
    seconds_from = "--ceiling-minutes" if args.ceiling_minutes else "SimCLR's pretraining wall time"
    return {"probe": results["probe"]["test_accuracy"], "finetune": results["finetune"]["test_accuracy"],
            "epochs": len(trained["epochs"]), "max_epochs": epochs, "max_seconds": round(seconds, 1),
            "seconds": round(pretrain_seconds, 1), "images": images, "labels_used": images,
            "final_train_loss": round(trained["history"]["loss"][-1], 4),
            "final_train_accuracy": round(trained["history"]["accuracy"][-1], 4),
            "wall_seconds": {"pretrain": round(pretrain_seconds, 1),
                             **{m: r["train_seconds"] for m, r in results.items()},
                             "total": round(time.perf_counter() - start, 1)},
            "recipe": f"supervised cross-entropy on {images} labelled training images (all but the low-label "
                      f"ones), batch 256, adam lr {args.pretrain_lr} cosine, horizontal flips, same backbone; "
                      f"max {epochs} epochs ({epochs_from}), stopped before {seconds:.0f} s ({seconds_from})",
            "note": "uses labels self-supervised pretraining may not use: an upper bound on what any pretraining "
                    "of this backbone can give, not a candidate for the goal; not counted in the 30-minute budget"}


def low_label_budget(args) -> str:
    if args.finetune_epochs:
        total = (args.probe_epochs or args.epochs) + args.finetune_epochs
        return (f"batch 64, adam cosine, horizontal flips; scratch and probe {total} epochs at lr "
                f"{args.learning_rate}; fine-tune LP-FT: {args.probe_epochs or args.epochs} epochs backbone frozen "
                f"at lr {args.learning_rate}, then {args.finetune_epochs} unfrozen at lr {args.finetune_lr}")
    return (f"{args.epochs} epochs, batch 64, adam lr {args.learning_rate} cosine, horizontal flips, "
            f"same for every mode")


def photo_run(data: str, shots: int, draw: int, pretrained: bool, run_root: str, num_classes: int = 2) -> dict:
    """One low-label run of the photo recipe (shots 0 = every labelled photo); returns its test accuracy.

    With few photos an epoch is one small step, so the epochs get `train.steps_per_epoch` steps (batches
    repeat) until a run takes at least MIN_STEPS steps; every labelled photo trains as the recipe says.
    """
    recipe = load_recipe(PHOTO_RECIPE)
    overrides = {"data.source": f"folder:{data}", "data.validation_split": 0.0, "data.seed": draw,
                 "data.labels_per_class": shots or None, "train.seed": draw, "train.verbose": 0,
                 "run_root": run_root, "export.enabled": False}
    steps = math.ceil(shots * num_classes / recipe.train.batch_size) if shots else None
    if steps and steps * recipe.train.epochs < MIN_STEPS:
        overrides["train.steps_per_epoch"] = math.ceil(MIN_STEPS / recipe.train.epochs)
    if not pretrained:  # the same budget, everything trainable from random weights
        overrides.update({"model.weights": "none", "finetune.freeze_backbone": False, "finetune.epochs": 0,
                          "train.epochs": recipe.train.epochs + recipe.finetune.epochs})
    report = run_training(apply_overrides(recipe, overrides))
    keras.backend.clear_session()  # 24 runs in one process: drop each run's graphs and models
    return {"accuracy": report["test"]["accuracy"], "num_train": report["num_train"],
            "train_seconds": report["train_seconds"]}


def _summary(values: list) -> dict:
    return {"mean": round(statistics.mean(values), 4), "std": round(statistics.pstdev(values), 4),
            "min": min(values), "max": max(values), "runs": values}


def plot_photo_curve(result: dict, path: str):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.5))
    shots = result["shots"]
    labels = [str(k) if k else "all" for k in shots]
    for arm, style in (("pretrained", "o-"), ("scratch", "s--")):
        means = [result["accuracy"][arm][str(k)]["mean"] for k in shots]
        lows = [m - result["accuracy"][arm][str(k)]["min"] for m, k in zip(means, shots)]
        highs = [result["accuracy"][arm][str(k)]["max"] - m for m, k in zip(means, shots)]
        ax.errorbar(range(len(shots)), means, yerr=[lows, highs], fmt=style, capsize=3, label=arm)
    ax.axhline(0.5, color="grey", lw=0.8, ls=":", label="chance")
    ax.set(xticks=range(len(shots)), xticklabels=labels, xlabel="labelled photos per class",
           ylabel="accuracy on val/ (153 photos)", ylim=(0.3, 1.0), title="hymenoptera: ImageNet transfer vs scratch")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def photo_protocol(args) -> dict:
    """Pretrained vs scratch on real photos at k labels per class, `args.draws` label draws each."""
    start = time.perf_counter()
    accuracy, seconds = {"pretrained": {}, "scratch": {}}, {"pretrained": 0.0, "scratch": 0.0}
    with tempfile.TemporaryDirectory() as run_root:
        for shots in args.shots:
            for arm in accuracy:
                runs = [photo_run(args.data, shots, draw, arm == "pretrained", run_root) for draw in range(args.draws)]
                accuracy[arm][str(shots)] = _summary([r["accuracy"] for r in runs])
                seconds[arm] += sum(r["train_seconds"] for r in runs)
    ten = str(10) if 10 in args.shots else None
    report = {"benchmark": "low_label_photos", "data": args.data, "recipe": PHOTO_RECIPE, "shots": args.shots,
              "shots_note": "labelled photos per class (0 = all)", "draws": args.draws, "accuracy": accuracy,
              "simclr": "not run: contrastive pretraining of EfficientNet-Lite0 at 224 px on 244 photos does not "
                        "fit the 2-core budget",
              "train_seconds": {k: round(v, 1) for k, v in seconds.items()},
              "wall_seconds": round(time.perf_counter() - start, 1),
              "target": {"pretrained_at_10_per_class": PHOTO_TARGET, "scratch": "near chance (0.5)"}}
    if ten:
        report["meets_target"] = bool(accuracy["pretrained"][ten]["mean"] >= PHOTO_TARGET)
    if args.plot:
        plot_photo_curve(report, args.plot)
        report["plot"] = args.plot
    return report


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--protocol", choices=("fashion", "photos"), default="fashion")
    parser.add_argument("--data", default=PHOTOS, help="photos protocol: folder with train/<class>, val/<class>")
    parser.add_argument("--shots", type=lambda s: [int(v) for v in s.split(",")], default=[2, 5, 10, 0],
                        help="photos protocol: labelled photos per class (0 = all)")
    parser.add_argument("--draws", type=int, default=3, help="photos protocol: label draws per k")
    parser.add_argument("--plot", default=None, help="photos protocol: PNG of the curve")
    parser.add_argument("--pretrain-epochs", type=int, default=10, help="maximum; the cosine schedule spans it")
    parser.add_argument("--pretrain-minutes", type=float, default=21.0, help="stop pretraining before this")
    parser.add_argument("--pretrain-lr", type=float, default=2e-3)
    parser.add_argument("--temperature", type=float, default=0.2)
    parser.add_argument("--filters", type=lambda s: tuple(int(v) for v in s.split(",")), default=(32, 64, 128))
    parser.add_argument("--pooling", default="flatten", choices=("avg", "max", "flatten"))
    parser.add_argument("--projection", type=lambda s: tuple(int(v) for v in s.split(",")), default=(256, 128))
    parser.add_argument("--erase-prob", type=float, default=0.0)
    parser.add_argument("--probe-epochs", type=int, default=0, help="LP-FT: frozen-backbone epochs (0 = plain)")
    parser.add_argument("--finetune-epochs", type=int, default=0, help="LP-FT: unfrozen epochs after the probe")
    parser.add_argument("--finetune-lr", type=float, default=5e-4)
    parser.add_argument("--epochs", type=int, default=40, help="epochs of every low-label run")
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--ceiling", action="store_true",
                        help="also run the supervised-pretraining oracle ceiling (uses labels; an upper bound)")
    parser.add_argument("--ceiling-epochs", type=int, default=0, help="oracle epochs (0 = as many as SimCLR ran)")
    parser.add_argument("--ceiling-minutes", type=float, default=0.0,
                        help="stop oracle pretraining before this (0 = SimCLR's pretraining wall time)")
    parser.add_argument("--labels-per-class", type=int, default=60)
    parser.add_argument("--limit-train", type=int, default=None, help="smoke runs: use only N training images")
    parser.add_argument("--limit-test", type=int, default=None, help="smoke runs: test on only N images")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.protocol == "photos":
        report = photo_protocol(args)
        print(json.dumps(report, indent=2))
        return report
    start = time.perf_counter()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as run_root:
        pretrain_cfg, low_cfg = configs(args, run_root)
        pretrained = run_pretraining(pretrain_cfg, callbacks=[StopBeforeDeadline(60 * args.pretrain_minutes)])
        pretrain_seconds = time.perf_counter() - start
        low = compare_low_label(low_cfg, pretrained["backbone_path"], modes=("scratch", "probe", "finetune"),
                                run_dir=os.path.join(run_root, "low_label"))
        wall = time.perf_counter() - start
        load_end = os.getloadavg()
        oracle = oracle_ceiling(args, pretrain_cfg, low_cfg, run_root, args.ceiling_epochs or len(pretrained["epochs"]),
                                60 * args.ceiling_minutes or pretrain_seconds) if args.ceiling else None
    accuracy = {mode: r["test_accuracy"] for mode, r in low["results"].items()}
    gain = accuracy["finetune"] - accuracy["scratch"]
    report = {
        "benchmark": "low_label", "data": f"fashion_mnist (Debian IDX), test split {args.limit_test or 10000} images",
        "labels": low["results"]["scratch"]["labels"], "labels_per_class": args.labels_per_class,
        "budget": {"cpu_cores": os.cpu_count(), "max_minutes": BUDGET_MINUTES,
                   "backbone": f"cnn filters={list(args.filters)}, head pooling={args.pooling}",
                   "pretrain": f"SimCLR {len(pretrained['epochs'])} of max {args.pretrain_epochs} epochs "
                               f"(stopped before {args.pretrain_minutes} min) x {pretrained['images']} unlabeled images, "
                               f"batch 256, T={args.temperature}, lr {args.pretrain_lr} cosine, projection "
                               f"{list(args.projection)} with BatchNorm, erase_prob {args.erase_prob}",
                   "low_label_training": low_label_budget(args)},
        "test_accuracy": accuracy,
        "finetune_gain_over_scratch_points": round(100 * gain, 2),
        "probe_gain_over_scratch_points": round(100 * (accuracy["probe"] - accuracy["scratch"]), 2),
        "simclr_final_loss": pretrained["history"]["loss"][-1],
        "simclr_contrastive_accuracy": pretrained["history"]["contrastive_accuracy"][-1],
        "wall_seconds": {"pretrain": round(pretrain_seconds, 1),
                         **{m: r["train_seconds"] for m, r in low["results"].items()}, "total": round(wall, 1)},
        "load_average_start_end": [round(load_before[0], 2), round(load_end[0], 2)],
        "goal": {"min_gain_points": 100 * GOAL_POINTS, "max_minutes": BUDGET_MINUTES},
        "meets_goal": bool(gain >= GOAL_POINTS and wall <= 60 * BUDGET_MINUTES),
        "verdict": (f"goal met: +{100 * gain:.1f} points" if gain >= GOAL_POINTS else
                    f"goal NOT met: fine-tune gains {100 * gain:+.1f} points over scratch, short of "
                    f"+{100 * GOAL_POINTS:.0f}") + f", {wall / 60:.1f} of {BUDGET_MINUTES} minutes",
    }
    if oracle:
        report["oracle_supervised_pretrain"] = oracle
        report["ceiling_gain_points"] = round(100 * (oracle["finetune"] - accuracy["scratch"]), 2)
        report["ceiling_probe_gain_points"] = round(100 * (oracle["probe"] - accuracy["scratch"]), 2)
        report["load_average_end_with_ceiling"] = round(os.getloadavg()[0], 2)
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
