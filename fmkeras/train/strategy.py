"""tf.distribute strategy selection, global batch size, learning-rate scaling and dataset sharding.

`--strategy=auto` picks, in order: TPU when a TPU resolver is configured (`distribute.tpu` or
$TPU_NAME), multi-worker when TF_CONFIG names more than one worker, mirrored when more than one
GPU is visible, else the default (single-device) strategy. `train.batch_size` is per replica.

TPU: `distribute.tpu` is what `tf.distribute.cluster_resolver.TPUClusterResolver(tpu=...)` takes:
a TPU name (Cloud TPU node), a `grpc://host:8470` address, or `local` on a TPU VM. The strategy
connects to the cluster, initializes the TPU system and returns `tf.distribute.TPUStrategy`.

Example:
    strategy = build_strategy(cfg.distribute)
    cfg = scale_for_replicas(cfg, strategy.num_replicas_in_sync)
    with strategy.scope():
        model = build_classifier(cfg.model, shape, classes)
"""
from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import os

import tensorflow as tf

from fmkeras.config import DistributeConfig, RunConfig
from fmkeras.errors import ConfigError

log = logging.getLogger("fmkeras")
SHARD_POLICIES = {"auto": "AUTO", "data": "DATA", "file": "FILE", "off": "OFF"}


def tf_config_workers(environ=None) -> int:
    """How many chief + worker tasks TF_CONFIG's cluster names (0 if TF_CONFIG is unset)."""
    text = (environ if environ is not None else os.environ).get("TF_CONFIG")
    if not text:
        return 0
    try:
        cluster = json.loads(text).get("cluster", {})
    except (json.JSONDecodeError, AttributeError):
        raise ConfigError(f"TF_CONFIG is not a JSON object with a `cluster`: {text[:200]!r}") from None
    return len(cluster.get("chief", [])) + len(cluster.get("worker", []))


def tpu_address(cfg: DistributeConfig, environ=None) -> str:
    """The configured TPU (distribute.tpu, else $TPU_NAME), or '' when none is configured."""
    return cfg.tpu or (environ if environ is not None else os.environ).get("TPU_NAME", "")


def resolve_strategy_name(cfg: DistributeConfig, environ=None, num_gpus: int = None) -> str:
    """`cfg.strategy`, or for `auto` the strategy this machine's configuration asks for."""
    if cfg.strategy != "auto":
        return cfg.strategy
    if tpu_address(cfg, environ):
        return "tpu"
    if tf_config_workers(environ) > 1:
        return "multiworker"
    if num_gpus is None:
        num_gpus = len(tf.config.list_physical_devices("GPU"))
    return "mirrored" if num_gpus > 1 else "default"


def _tpu_strategy(address: str):
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=address)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def build_strategy(cfg: DistributeConfig, environ=None):
    """The tf.distribute.Strategy `cfg` selects (see the module docstring for `auto`)."""
    name = resolve_strategy_name(cfg, environ)
    if name == "default":
        strategy = tf.distribute.get_strategy()
    elif name == "mirrored":
        strategy = mirrored_strategy(tuple(cfg.devices))
    elif name == "multiworker":
        if tf_config_workers(environ) < 1:
            raise ConfigError("`distribute.strategy=multiworker` needs TF_CONFIG naming the cluster and this task")
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    elif name == "tpu":
        address = tpu_address(cfg, environ)
        if not address:
            raise ConfigError("`distribute.strategy=tpu` needs `distribute.tpu` (TPU name, grpc:// address or "
                              "local) or $TPU_NAME")
        strategy = _tpu_strategy(address)
    else:
        raise ConfigError(f"`distribute.strategy` must be one of auto, default, mirrored, multiworker, tpu. "
                          f"Received: distribute.strategy={name!r}")
    log.info("strategy %s with %d replica(s)", name, strategy.num_replicas_in_sync)
    return strategy


@functools.lru_cache(maxsize=None)
def mirrored_strategy(devices: tuple = ()) -> tf.distribute.MirroredStrategy:
    """One MirroredStrategy per device list and process. A second instance over the same devices reuses
    the first one's collective keys, and all-reducing sparse gradients (a text model's embedding) then
    fails with "Shape mismatch in the collective instance" (seen with two runs in one process)."""
    return tf.distribute.MirroredStrategy(devices=list(devices) or None)


def strategy_name(strategy) -> str:
    """A short name of a strategy instance, as written in the run report."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return "multiworker"
    if isinstance(strategy, tf.distribute.MirroredStrategy):
        return "mirrored"
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return "tpu"
    return "default"


def needs_custom_loop(strategy) -> bool:
    """Keras 3 `model.fit` does not run under MultiWorkerMirroredStrategy (keras-team/keras#20585)."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def scaled_learning_rate(learning_rate: float, replicas: int, rule: str) -> float:
    """`learning_rate` x replicas (linear), x sqrt(replicas) (sqrt) or unchanged (none)."""
    factor = {"none": 1.0, "linear": float(replicas), "sqrt": math.sqrt(replicas)}.get(rule)
    if factor is None:
        raise ConfigError(f"`distribute.scale_learning_rate` must be one of none, linear, sqrt. "
                          f"Received: distribute.scale_learning_rate={rule!r}")
    return learning_rate * factor


def scale_for_replicas(cfg: RunConfig, replicas: int) -> RunConfig:
    """`cfg` with the global batch (per-replica batch x replicas) and scaled stage learning rates."""
    rule = cfg.distribute.scale_learning_rate
    train = dataclasses.replace(cfg.train, batch_size=cfg.train.batch_size * replicas,
                                learning_rate=scaled_learning_rate(cfg.train.learning_rate, replicas, rule))
    finetune = dataclasses.replace(cfg.finetune, learning_rate=scaled_learning_rate(
        cfg.finetune.learning_rate, replicas, rule))
    return dataclasses.replace(cfg, train=train, finetune=finetune)


def shard_dataset(ds, policy: str):
    """`ds` with tf.data's AutoShardPolicy set (how a multi-worker job splits the input); None stays None."""
    if ds is None:
        return None
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = getattr(
        tf.data.experimental.AutoShardPolicy, SHARD_POLICIES[policy])
    return ds.with_options(options)


def is_chief(strategy) -> bool:
    """True on the task that owns the run directory: the chief, or worker 0 in a chief-less cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    if task_type is None or task_type == "chief":
        return True
    return task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()


def task_label(strategy) -> str:
    """`worker-1`-style name of this task ('' on a single host)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if getattr(resolver, "task_type", None) is None:
        return ""
    return f"{resolver.task_type}-{resolver.task_id}"
