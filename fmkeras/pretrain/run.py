"""`fmkeras pretrain` end to end: source -> (SimCLR | supervised) -> saved backbone + report.

Run directory: config.json, backbone.keras + backbone.json (unless `pretrain.output` points
elsewhere), history.csv, metrics.json (loss per epoch, timings, images seen).

Example:
    report = run_pretraining(apply_overrides(load_recipe("cnn_fashion", PretrainRunConfig), {"pretrain.epochs": 3}))
    # then: fmkeras train --weights=<report["backbone_path"]> (same model.backbone / backbone_options)
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import time

import keras
import tensorflow as tf

from fmkeras.config import AugmentConfig, PretrainRunConfig, to_dict, validate
from fmkeras.data import build_datasets
from fmkeras.errors import ConfigError
from fmkeras.evaluate import write_json
from fmkeras.experiment import make_run_dir
from fmkeras.pretrain.backbone_file import backbone_info, save_backbone
from fmkeras.pretrain.simclr import SimCLR, build_encoder, build_projection_head
from fmkeras.pretrain.views import two_views
from fmkeras.train import fit, restores_dtype_policy, seed_everything
from fmkeras.train.trainer import resolve_precision
from fmkeras.train.callbacks import Throughput
from fmkeras.train.optimizers import build_optimizer
from fmkeras.train.schedules import build_schedule
from fmkeras.train.trainer import _labels_for_loss
from fmkeras.tasks import load_image_source
from fmkeras.transfer import BACKBONE_LAYER, build_classifier

log = logging.getLogger("fmkeras")
BACKBONE_FILE = "backbone.keras"


def view_pairs(images: tf.data.Dataset, cfg: PretrainRunConfig) -> tf.data.Dataset:
    """Batches of images -> batches of (view1, view2), reproducible from `data.seed`, new views each epoch."""
    seeds = tf.data.Dataset.random(seed=cfg.data.seed, rerandomize_each_iteration=True)
    return tf.data.Dataset.zip((images, seeds)).map(
        lambda x, s: two_views(x, cfg.pretrain, tf.stack([s, s // 3 + 11])),
        num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def unlabeled_images(cfg: PretrainRunConfig):
    """The source's training images (labels dropped), shuffled and batched; returns (dataset, count, shape, name)."""
    source = load_image_source(cfg, "pretrain")
    data_cfg = dataclasses.replace(cfg.data, validation_split=0.0, augment=AugmentConfig(),
                                   labels_per_class=None, label_noise=0.0)
    data = build_datasets(source, data_cfg, cfg.pretrain.batch_size)
    images = data.train.map(lambda x, y: x, num_parallel_calls=tf.data.AUTOTUNE)
    return images, data.num_train, data.image_shape, source.name


def pretrain_simclr(cfg: PretrainRunConfig, run_dir: str, callbacks=()) -> tuple:
    """Contrastive pretraining; returns (backbone, report dict). `callbacks` are added to fit's."""
    p = cfg.pretrain
    images, count, image_shape, source_name = unlabeled_images(cfg)
    # Pool as the classifier head will (model.head.pooling): SimCLR then trains the features it reads.
    encoder = build_encoder(cfg.model, image_shape, cfg.model.head.pooling)
    model = SimCLR(encoder, build_projection_head(
        encoder.output_shape[-1], p.projection_units, p.projection_batch_norm), p.temperature)
    steps = math.ceil(count / p.batch_size)
    model.compile(optimizer=build_optimizer(cfg.train, build_schedule(cfg.train, steps * p.epochs, p.learning_rate)))
    throughput = Throughput(p.batch_size)
    callbacks = [throughput, keras.callbacks.TerminateOnNaN(),
                 keras.callbacks.CSVLogger(os.path.join(run_dir, "history.csv")), *callbacks]
    start = time.perf_counter()
    history = model.fit(view_pairs(images, cfg), epochs=p.epochs, callbacks=callbacks, verbose=cfg.train.verbose,
                        shuffle=False)
    report = {"data": source_name, "images": count, "image_shape": list(image_shape),
              "seconds": round(time.perf_counter() - start, 2), "epochs": throughput.epochs,
              "history": {k: [round(float(v), 5) for v in vs] for k, vs in history.history.items()}}
    return encoder.get_layer(BACKBONE_LAYER), report


def pretrain_supervised(cfg: PretrainRunConfig, run_dir: str, callbacks=()) -> tuple:
    """A classifier trained on the source's labels; returns (its backbone, report dict). `callbacks` are added to
    fit's (e.g. a wall-time stop)."""
    p = cfg.pretrain
    source = load_image_source(cfg, "pretrain")
    train_cfg = dataclasses.replace(cfg.train, epochs=p.epochs, batch_size=p.batch_size,
                                    learning_rate=p.learning_rate)
    data = build_datasets(source, cfg.data, p.batch_size)
    model = build_classifier(cfg.model, data.image_shape, len(data.class_names))
    result = fit(model, data, train_cfg, run_dir, extra_callbacks=callbacks)
    report = {"data": source.name, "images": data.num_train, "image_shape": list(data.image_shape),
              "seconds": round(result.seconds, 2), "epochs": result.epochs, "history": result.history,
              "class_names": list(data.class_names)}
    if data.test is not None:
        test = _labels_for_loss(data.test, len(data.class_names), bool(train_cfg.label_smoothing))  # one-hot if LS
        report["source_test"] = model.evaluate(test, verbose=0, return_dict=True)
    return model.get_layer(BACKBONE_LAYER), report


@restores_dtype_policy
def run_pretraining(cfg: PretrainRunConfig, callbacks=()) -> dict:
    """Pretrains `cfg.model`'s backbone by `cfg.pretrain.method`; saves it and returns the report."""
    if not isinstance(cfg, PretrainRunConfig):
        raise ConfigError(f"run_pretraining needs a PretrainRunConfig (a RunConfig with a `pretrain` section). "
                          f"Received: {type(cfg).__name__}")
    validate(cfg)
    # `auto` precision: SimCLR's projection head and NT-Xent loss need float32; supervised goes by the machine
    precision = "float32" if cfg.pretrain.method == "simclr" else resolve_precision(cfg.train.precision)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, precision=precision))
    seed_everything(cfg.train)
    run_dir = make_run_dir(cfg)
    write_json(os.path.join(run_dir, "config.json"), to_dict(cfg))
    method = cfg.pretrain.method
    backbone, report = (pretrain_simclr if method == "simclr" else pretrain_supervised)(cfg, run_dir, callbacks)
    path = cfg.pretrain.output or os.path.join(run_dir, BACKBONE_FILE)
    info = backbone_info(cfg.model, backbone, method, data=report["data"], images=report["images"],
                         pretrain=to_dict(cfg.pretrain), run_dir=run_dir)
    save_backbone(backbone, path, info)
    report = {"run_dir": run_dir, "method": method, "backbone_path": path, "backbone": info, **report}
    write_json(os.path.join(run_dir, "metrics.json"), report)
    log.info("pretrained backbone saved to %s", path)
    return report
