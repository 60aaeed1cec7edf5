"""LoRA vs full fine-tuning of a pretrained ViT: trainable parameters, accuracy and time.

Pretrains a small ViT on Fashion-MNIST classes 0-4 (T-shirt .. Coat), saves its backbone, then
transfers it to classes 5-9 (Sandal .. Ankle boot) twice from the same weights: full fine-tuning
(every weight trains) and LoRA (`model.lora_rank`, only the adapters and the new head train).
Same data, epochs and seed. Must hold: LoRA trains <= 10% of full fine-tuning's parameters
(exit status 1 otherwise).

Run: python benchmarks/lora.py [--rank 4] [--epochs 3] [--images 2000]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


from fmkeras.config import DataConfig, ExportConfig, HeadConfig, ModelConfig, RunConfig, TrainConfig  # noqa: E402
from fmkeras.experiment import MODEL_FILE, run_training  # noqa: E402
from fmkeras.model_files.keras_file import load_keras_model  # noqa: E402

VIT = {"patch_size": 7, "dim": 128, "depth": 2, "heads": 4, "mlp_dim": 256}


def config(work: str, name: str, classes, images: int, epochs: int, weights=None, rank=0, lr=1e-3) -> RunConfig:
    return RunConfig(
        name=name, run_root=os.path.join(work, "runs"),
        data=DataConfig(source="fashion_mnist", classes=tuple(classes), limit_train=images, limit_test=1000),
        model=ModelConfig(backbone="vit", weights=weights, backbone_options=VIT, lora_rank=rank, head=HeadConfig()),
        train=TrainConfig(epochs=epochs, batch_size=64, learning_rate=lr, optimizer="adamw", schedule="cosine",
                          verbose=0),
        export=ExportConfig(enabled=False))


def summary(report: dict) -> dict:
    return {"test_accuracy": report["test"]["accuracy"], "trainable_params": report["trainable_params"],
            "total_params": report["params"], "train_seconds": report["train_seconds"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rank", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--images", type=int, default=2000, help="training images per stage")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="fmkeras-bench-lora-")
    pre = run_training(config(work, "pretrain", range(5), args.images * 2, args.epochs, lr=2e-3))
    backbone_path = os.path.join(work, "vit_backbone.keras")
    load_keras_model(os.path.join(pre["run_dir"], MODEL_FILE)).get_layer("backbone").save(backbone_path)
    full = run_training(config(work, "full", range(5, 10), args.images, args.epochs, backbone_path, 0, lr=5e-4))
    lora = run_training(config(work, "lora", range(5, 10), args.images, args.epochs, backbone_path, args.rank,
                               lr=2e-3))
    result = {
        "benchmark": "lora_vs_full_finetuning", "backbone": {"name": "vit", **VIT},
        "pretrain": {"classes": pre["class_names"], "test_accuracy": pre["test"]["accuracy"]},
        "transfer_classes": full["class_names"], "num_train": full["num_train"], "num_test": full["num_test"],
        "epochs": args.epochs, "lora_rank": args.rank,
        "full_finetuning": summary(full), "lora": summary(lora),
        "lora_trainable_fraction": round(lora["trainable_params"] / full["trainable_params"], 4),
    }
    result["lora_trains_at_most_10_percent"] = result["lora_trainable_fraction"] <= 0.10
    print(json.dumps(result, indent=2))
    return 0 if result["lora_trains_at_most_10_percent"] else 1


if __name__ == "__main__":
    sys.exit(main())
