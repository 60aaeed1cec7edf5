"""Transfer vs scratch on Fashion-MNIST: pretrain on classes 0-4, transfer to classes 5-9 with few labels.

1. Pretrain the small CNN supervised on Fashion-MNIST classes 0-4 (T-shirt, Trouser, Pullover, Dress, Coat).
2. On classes 5-9 (Sandal, Shirt, Sneaker, Bag, Ankle boot) keep `--labels_per_class` training images per
   class (80% train / 20% validation) and test on all 5000 test images of those classes:
   - scratch:   the same architecture from random weights,
   - transfer_staged:  the pretrained backbone (weights=<pretrain run>/model.keras) frozen while a new head
                       trains (stage 1), then the whole backbone fine-tuned at a 10x lower LR (stage 2);
   - transfer_full:    the pretrained backbone as initialisation, everything trained like scratch;
   with the same labels, epoch budget and seed. Repeated for `--seeds` label draws.
Everything goes through the public API (run_training with configs), as a user would.

Run:    python benchmarks/transfer.py [--labels_per_class 50] [--pretrain_images 15000] [--seeds 3]
Prints one JSON object; `transfer_minus_scratch` is each transfer variant's mean test-accuracy gain.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from fmkeras.config import (DataConfig, ExportConfig, FinetuneConfig, HeadConfig, ModelConfig,  # noqa: E402
                            RunConfig, TrainConfig)
from fmkeras.data.idx import fashion_mnist_source  # noqa: E402
from fmkeras.experiment import run_training  # noqa: E402

# No BatchNorm: with a few hundred steps Keras' BN moving variance (momentum 0.99, starting at 1) is still
# far from the batch variance, which would cripple the from-scratch baseline at inference, not the method.
BACKBONE = {"filters": (32, 64, 128), "batch_norm": False}
HEAD = HeadConfig(pooling="avg", dense_units=(64,), dropout=0.3)
PRETRAIN_CLASSES, TARGET_CLASSES = (0, 1, 2, 3, 4), (5, 6, 7, 8, 9)


def _subset_npz(path, source, classes, train_index, test_limit=None):
    """Writes an npz of `source` restricted to `classes` (relabelled 0..k-1)."""
    remap = {c: i for i, c in enumerate(classes)}
    test_mask = np.isin(source.y_test, classes)
    x_test, y_test = source.x_test[test_mask][:test_limit], source.y_test[test_mask][:test_limit]
    np.savez(path, x_train=source.x_train[train_index], y_train=np.vectorize(remap.get)(source.y_train[train_index]),
             x_test=x_test, y_test=np.vectorize(remap.get)(y_test),
             class_names=np.array([source.class_names[c] for c in classes]))
    return path


def _run(work, name, npz, weights=None, finetune=FinetuneConfig(), epochs=30, lr=1e-3, batch=32, val=0.2, seed=0):
    cfg = RunConfig(name=name, run_root=os.path.join(work, "runs"),
                    data=DataConfig(source=f"npz:{npz}", validation_split=val, seed=seed),
                    model=ModelConfig(backbone="cnn", weights=weights, backbone_options=BACKBONE, head=HEAD),
                    train=TrainConfig(epochs=epochs, batch_size=batch, learning_rate=lr, seed=seed, verbose=0),
                    finetune=finetune, export=ExportConfig(enabled=False))
    start = time.perf_counter()
    report = run_training(cfg)
    return report, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels_per_class", type=int, default=50)
    parser.add_argument("--pretrain_images", type=int, default=15000)
    parser.add_argument("--pretrain_epochs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30, help="few-label epochs (transfer: stage 1 + stage 2)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--work_dir", default=None)
    args = parser.parse_args()
    work = args.work_dir or tempfile.mkdtemp(prefix="fmkeras-transfer-")
    start = time.perf_counter()
    source = fashion_mnist_source()

    pre_index = np.flatnonzero(np.isin(source.y_train, PRETRAIN_CLASSES))[:args.pretrain_images]
    pre_npz = _subset_npz(os.path.join(work, "pretrain.npz"), source, PRETRAIN_CLASSES, pre_index, test_limit=2000)
    pretrain, pre_seconds = _run(work, "pretrain", pre_npz, epochs=args.pretrain_epochs, lr=2e-3, batch=128, val=0.1)
    backbone_file = os.path.join(pretrain["run_dir"], "model.keras")

    results = {"scratch": [], "transfer_staged": [], "transfer_full": []}
    stage2 = max(1, args.epochs // 3)
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        few = np.concatenate([rng.choice(np.flatnonzero(source.y_train == c), args.labels_per_class, replace=False)
                              for c in TARGET_CLASSES])
        npz = _subset_npz(os.path.join(work, f"few_{seed}.npz"), source, TARGET_CLASSES, few)
        scratch, _ = _run(work, f"scratch{seed}", npz, epochs=args.epochs, seed=seed)
        staged, _ = _run(work, f"staged{seed}", npz, weights=backbone_file, seed=seed, epochs=args.epochs - stage2,
                         finetune=FinetuneConfig(freeze_backbone=True, epochs=stage2, learning_rate=1e-4))
        full, _ = _run(work, f"full{seed}", npz, weights=backbone_file, epochs=args.epochs, seed=seed)
        results["scratch"].append(scratch["test"]["accuracy"])
        results["transfer_staged"].append(staged["test"]["accuracy"])
        results["transfer_full"].append(full["test"]["accuracy"])

    means = {k: round(statistics.mean(v), 4) for k, v in results.items()}
    print(json.dumps({
        "benchmark": "transfer_fashion_0-4_to_5-9",
        "pretrain": {"classes": list(PRETRAIN_CLASSES), "images": int(len(pre_index)), "epochs": args.pretrain_epochs,
                     "test_accuracy_on_0-4": pretrain["test"]["accuracy"], "seconds": round(pre_seconds, 1)},
        "target": {"classes": list(TARGET_CLASSES), "labels_per_class": args.labels_per_class,
                   "train_val_split": "80/20", "test_images": int(np.isin(source.y_test, TARGET_CLASSES).sum()),
                   "epochs": args.epochs, "seeds": args.seeds},
        "test_accuracy": results, "mean_test_accuracy": means,
        "transfer_minus_scratch": {k: round(means[k] - means["scratch"], 4) for k in means if k != "scratch"},
        "total_seconds": round(time.perf_counter() - start, 1), "work_dir": work,
    }, indent=2))


if __name__ == "__main__":
    main()
