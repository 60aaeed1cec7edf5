"""Resume on (train.backup_every_steps > 0, the step-indexed stream) trains as well as resume off.

The two pipelines draw different, equally random data orders from the same seed, so single tiny
runs differ by seed noise: the FGSM and ViT tests once saw a few points either way (measured
sweeps in docs/reliability.md and benchmarks/RESULTS.md). On a task small runs converge on
(sklearn digits) the noise is small, so equal quality is checkable: a stream that repeated
batches, skipped examples, misaligned labels or reused augmentation seeds would fall behind here.
"""
import numpy as np
import pytest
from sklearn.datasets import load_digits

from fmkeras.config import AugmentConfig, DataConfig, HeadConfig, ModelConfig, TrainConfig
from fmkeras.data import build_datasets
from fmkeras.data.arrays import array_source
from fmkeras.train import fit, seed_everything
from fmkeras.transfer import build_classifier

SEEDS = (1, 2, 3)


def _digits():
    digits = load_digits()
    images = (digits.images * (255 / 16)).astype(np.uint8)[..., None]  # 8x8, 0..16 -> 0..255
    return array_source(images[:1400], digits.target[:1400], images[1400:], digits.target[1400:])


def _test_accuracy(source, tmp_path, seed: int, every: int) -> float:
    data_cfg = DataConfig(source="npz:digits", validation_split=0.2, seed=seed,
                          augment=AugmentConfig(shift=0.1))
    train_cfg = TrainConfig(epochs=4, batch_size=32, learning_rate=3e-3, seed=seed, deterministic=True,
                            backup_every_steps=every, verbose=0)
    seed_everything(train_cfg)
    data = build_datasets(source, data_cfg, train_cfg.batch_size)
    model = build_classifier(ModelConfig(backbone="cnn", backbone_options={"filters": (16,), "batch_norm": False},
                                         head=HeadConfig(pooling="flatten")), data.image_shape, 10)
    result = fit(model, data, train_cfg, str(tmp_path / f"{every}-{seed}"))
    assert result.resume["enabled"] == bool(every)
    correct = total = 0
    for images, labels in data.test:
        correct += int(np.sum(np.argmax(model(images, training=False), -1) == labels.numpy()))
        total += len(labels)
    return correct / total


@pytest.mark.slow
def test_step_indexed_stream_matches_epoch_pipeline_accuracy_over_seeds(tmp_path):
    source = _digits()
    epoch = [_test_accuracy(source, tmp_path, s, 0) for s in SEEDS]
    stream = [_test_accuracy(source, tmp_path, s, 5) for s in SEEDS]
    print({"epoch_pipeline": epoch, "stream": stream})
    assert min(epoch) > 0.8 and min(stream) > 0.8, (epoch, stream)
    assert abs(np.mean(stream) - np.mean(epoch)) < 0.03, (epoch, stream)
