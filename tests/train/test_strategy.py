"""Strategy selection, batch/LR scaling and sharding (no devices needed: TPU and clusters are mocked)."""
from __future__ import annotations

import json
from unittest import mock

import pytest
import tensorflow as tf

from fmkeras.config import DistributeConfig, RunConfig, TrainConfig, FinetuneConfig, apply_overrides
from fmkeras.errors import ConfigError
from fmkeras.train import strategy as strategy_module
from fmkeras.train.strategy import (build_strategy, resolve_strategy_name, scale_for_replicas, scaled_learning_rate,
                                    shard_dataset)


def _tf_config(workers: int) -> dict:
    return {"TF_CONFIG": json.dumps({"cluster": {"worker": [f"127.0.0.1:{2000 + i}" for i in range(workers)]},
                                     "task": {"type": "worker", "index": 0}})}


@pytest.mark.parametrize("cfg, env, gpus, expected", [
    (DistributeConfig(), {}, 0, "default"),
    (DistributeConfig(), {}, 1, "default"),
    (DistributeConfig(), {}, 2, "mirrored"),
    (DistributeConfig(), _tf_config(1), 0, "default"),
    (DistributeConfig(), _tf_config(2), 4, "multiworker"),
    (DistributeConfig(tpu="local"), _tf_config(2), 4, "tpu"),
    (DistributeConfig(), {"TPU_NAME": "my-tpu", **_tf_config(2)}, 0, "tpu"),
    (DistributeConfig(strategy="mirrored"), {"TPU_NAME": "my-tpu"}, 0, "mirrored"),
    (DistributeConfig(strategy="default"), _tf_config(3), 8, "default"),
])
def test_auto_selection_order_tpu_then_multiworker_then_mirrored(cfg, env, gpus, expected):
    assert resolve_strategy_name(cfg, environ=env, num_gpus=gpus) == expected


def test_auto_counts_visible_gpus():
    with mock.patch.object(tf.config, "list_physical_devices", return_value=["gpu0", "gpu1"]) as listed:
        assert resolve_strategy_name(DistributeConfig(), environ={}) == "mirrored"
    listed.assert_called_with("GPU")


def test_tpu_strategy_goes_through_the_cluster_resolver():
    calls = []
    fake = mock.MagicMock(num_replicas_in_sync=8)
    with mock.patch.object(tf.distribute.cluster_resolver, "TPUClusterResolver",
                           side_effect=lambda tpu: calls.append(("resolver", tpu)) or "resolver") as _, \
            mock.patch.object(tf.config, "experimental_connect_to_cluster", side_effect=lambda r: calls.append(
                ("connect", r))), \
            mock.patch.object(tf.tpu.experimental, "initialize_tpu_system", side_effect=lambda r: calls.append(
                ("init", r))), \
            mock.patch.object(tf.distribute, "TPUStrategy",
                              side_effect=lambda r: calls.append(("strategy", r)) or fake):
        assert build_strategy(DistributeConfig(strategy="tpu"), environ={"TPU_NAME": "grpc://10.0.0.2:8470"}) is fake
    assert calls == [("resolver", "grpc://10.0.0.2:8470"), ("connect", "resolver"), ("init", "resolver"),
                     ("strategy", "resolver")]


def test_tpu_and_multiworker_without_configuration_name_what_is_missing():
    with pytest.raises(ConfigError, match="distribute.tpu"):
        build_strategy(DistributeConfig(strategy="tpu"), environ={})
    with pytest.raises(ConfigError, match="TF_CONFIG"):
        build_strategy(DistributeConfig(strategy="multiworker"), environ={})
    with pytest.raises(ConfigError, match="TF_CONFIG is not a JSON"):
        resolve_strategy_name(DistributeConfig(), environ={"TF_CONFIG": "not json"}, num_gpus=0)


def test_default_strategy_has_one_replica():
    strategy = build_strategy(DistributeConfig(strategy="default"), environ={})
    assert strategy.num_replicas_in_sync == 1
    assert strategy_module.strategy_name(strategy) == "default" and strategy_module.is_chief(strategy)


def test_global_batch_and_learning_rate_scaling():
    cfg = RunConfig(train=TrainConfig(batch_size=32, learning_rate=0.01), finetune=FinetuneConfig(learning_rate=1e-4),
                    distribute=DistributeConfig(scale_learning_rate="linear"))
    scaled = scale_for_replicas(cfg, 4)
    assert scaled.train.batch_size == 128
    assert scaled.train.learning_rate == pytest.approx(0.04) and scaled.finetune.learning_rate == pytest.approx(4e-4)
    assert scaled_learning_rate(0.01, 4, "sqrt") == pytest.approx(0.02)
    assert scaled_learning_rate(0.01, 4, "none") == 0.01
    unscaled = scale_for_replicas(RunConfig(train=TrainConfig(batch_size=32)), 2)
    assert unscaled.train.batch_size == 64 and unscaled.train.learning_rate == RunConfig().train.learning_rate


def test_shard_policy_is_set_on_the_dataset():
    ds = shard_dataset(tf.data.Dataset.range(4), "data")
    assert ds.options().experimental_distribute.auto_shard_policy == tf.data.experimental.AutoShardPolicy.DATA
    assert shard_dataset(None, "off") is None


def test_config_rejects_unknown_strategy_by_field_name():
    with pytest.raises(ConfigError, match="distribute.strategy"):
        apply_overrides(RunConfig(), {"distribute.strategy": "horovod"})
    assert apply_overrides(RunConfig(), {"distribute.strategy": "multiworker"}).distribute.strategy == "multiworker"


@pytest.mark.parametrize("name, why", [("multiworker", "does not run under MultiWorkerMirroredStrategy"),
                                       ("tpu", "string ops do not run on a TPU")])
def test_text_runs_refuse_strategies_they_cannot_train_under(name, why):
    from fmkeras.tasks import TextClassification
    cfg = RunConfig(distribute=DistributeConfig(strategy=name))
    with pytest.raises(ConfigError, match=f"default or mirrored .*{why}.*distribute.strategy='{name}'"):
        TextClassification().check_strategy(cfg, name)
    TextClassification().check_strategy(cfg, "default")  # accepted
