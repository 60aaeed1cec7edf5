"""Distributed training in subprocesses: 2 logical CPUs (mirrored) and 2 workers on 127.0.0.1 (multi-worker).

Logical devices must be configured before TensorFlow initializes, and each multi-worker task is its own
process, so every test here runs Python in subprocesses with bounded timeouts.
"""
from __future__ import annotations

import glob
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "2"}

MIRRORED_SCRIPT = textwrap.dedent("""
    import json, os, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from fmkeras.config import DataConfig, HeadConfig, ModelConfig, TrainConfig
    from fmkeras.data import build_datasets, load_source
    from fmkeras.train import fit
    from fmkeras.train.distributed_loop import fit_distributed
    from fmkeras.transfer import build_classifier

    npz, out = sys.argv[1], sys.argv[2]
    # shuffle_buffer=1: every path sees the same batch order (each distributed copy reseeds its shuffle).
    data_cfg = DataConfig(source="npz:" + npz, limit_train=256, validation_split=0.25, shuffle_buffer=1)
    model_cfg = ModelConfig(backbone="cnn", backbone_options={"filters": (4, 8), "batch_norm": False},
                            head=HeadConfig(dense_units=(8,)))
    train_cfg = TrainConfig(epochs=3, batch_size=32, optimizer="sgd", learning_rate=0.1, verbose=0)

    def curve(strategy, loop, tag):
        keras.utils.set_random_seed(7)
        data = build_datasets(load_source(data_cfg), data_cfg, train_cfg.batch_size)
        with strategy.scope():
            model = build_classifier(model_cfg, data.image_shape, len(data.class_names))
        run_dir = os.path.join(out, tag)
        if loop:
            result = fit_distributed(model, data, train_cfg, run_dir, strategy, os.path.join(run_dir, "backup"))
        else:
            with strategy.scope():
                result = fit(model, data, train_cfg, run_dir)
        return result.history

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    curves = {"replicas": mirrored.num_replicas_in_sync,
              "one_device": curve(tf.distribute.get_strategy(), False, "one"),
              "mirrored_fit": curve(mirrored, False, "mirrored_fit"),
              "mirrored_loop": curve(mirrored, True, "mirrored_loop")}
    # The user path: `fmkeras train --strategy=mirrored` runs experiment.run_training under the strategy.
    from fmkeras.config import DistributeConfig, ExportConfig, RunConfig
    from fmkeras.experiment import run_training
    report = run_training(RunConfig(
        name="mirrored", run_dir=os.path.join(out, "run"), data=data_cfg, model=model_cfg,
        train=TrainConfig(epochs=1, batch_size=16, learning_rate=0.01, verbose=0), export=ExportConfig(enabled=False),
        distribute=DistributeConfig(strategy="mirrored", devices=("CPU:0", "CPU:1"), scale_learning_rate="linear")))
    curves["run_training"] = report["distribute"]
    print(json.dumps(curves))
""")


def _free_ports(count: int) -> list:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_mirrored_two_logical_cpus_gives_one_device_loss_curve(tmp_path, fashion_npz):
    proc = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT, fashion_npz, str(tmp_path)], env=ENV,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    curves = json.loads(proc.stdout.strip().splitlines()[-1])
    assert curves["replicas"] == 2
    one = curves["one_device"]
    assert one["loss"][-1] < one["loss"][0]  # it trains: the curve has a shape worth comparing
    run = curves["run_training"]
    assert (run["strategy"], run["replicas"], run["global_batch_size"]) == ("mirrored", 2, 32)
    assert run["learning_rate"] == pytest.approx(0.02)  # scale_learning_rate=linear over 2 replicas
    for name in ("mirrored_fit", "mirrored_loop"):
        for key in ("loss", "val_loss", "val_accuracy"):
            np.testing.assert_allclose(curves[name][key], one[key], rtol=1e-4, atol=1e-5,
                                       err_msg=f"{name} {key}")


TEXT_MIRRORED_SCRIPT = textwrap.dedent("""
    import json, os, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    import numpy as np
    from fmkeras.config import (DataConfig, DistributeConfig, ExportConfig, ModelConfig, RunConfig, TextConfig,
                                TrainConfig)
    from fmkeras.data.text import load_text_source
    from fmkeras.data.text_pipeline import build_text_datasets
    from fmkeras.experiment import MODEL_FILE, run_training
    from fmkeras.experiment.loops import Loop
    from fmkeras.tasks import TextClassification
    from fmkeras.train.strategy import build_strategy
    from fmkeras.transfer import build_text_classifier

    csv_path, out = sys.argv[1], sys.argv[2]
    data_cfg = DataConfig(source="text:" + csv_path, validation_split=0.25, shuffle_buffer=1)
    model_cfg = ModelConfig(backbone="text_transformer", backbone_options={
        "size": "tiny", "dim": 16, "depth": 1, "heads": 2, "mlp_dim": 32, "dropout": 0.0})
    text_cfg = TextConfig(max_tokens=100, sequence_length=8, wide="tf_idf")
    train_cfg = TrainConfig(epochs=3, batch_size=32, optimizer="sgd", learning_rate=0.05, verbose=0)

    def curve(strategy, tag):
        keras.utils.set_random_seed(7)
        data = build_text_datasets(load_text_source(data_cfg, text_cfg), data_cfg, train_cfg.batch_size)
        with strategy.scope():
            model = build_text_classifier(model_cfg, text_cfg, data.train_texts, len(data.class_names))
        cfg = RunConfig(data=data_cfg, model=model_cfg, text=text_cfg, train=train_cfg)
        return TextClassification()._fit_one(model, data, cfg, os.path.join(out, tag), Loop(strategy), None).history

    mirrored = build_strategy(DistributeConfig(strategy="mirrored", devices=("CPU:0", "CPU:1")))
    assert build_strategy(DistributeConfig(strategy="mirrored", devices=("CPU:0", "CPU:1"))) is mirrored
    result = {"one_device": curve(tf.distribute.get_strategy(), "one"), "mirrored": curve(mirrored, "mirrored")}
    # The user path: `fmkeras train --data=text:... --strategy=mirrored` with an ensemble and a linear member.
    report = run_training(RunConfig(
        name="text_mirrored", run_dir=os.path.join(out, "run"), data=data_cfg, model=model_cfg,
        text=TextConfig(max_tokens=100, sequence_length=8, linear_member=True),
        train=TrainConfig(epochs=2, batch_size=16, learning_rate=3e-3, verbose=0),
        export=ExportConfig(base_dir=os.path.join(out, "sm")),
        distribute=DistributeConfig(strategy="mirrored", devices=("CPU:0", "CPU:1"))))
    texts = tf.constant(["comet orbit near the planet", "bake the flour with butter"])
    saved = keras.saving.load_model(os.path.join(report["run_dir"], MODEL_FILE), safe_mode=True)
    served = tf.saved_model.load(report["export"]["path"]).signatures["serving_default"]
    result["served_matches_saved"] = bool(np.allclose(served(text=texts)["probabilities"].numpy(),
                                                      saved(texts).numpy(), atol=1e-5))
    result["run_training"] = {"distribute": report["distribute"], "test": report["test"]["accuracy"],
                              "members": [m["kind"] for m in report["ensemble"]["members"]]}
    print(json.dumps(result))
""")


@pytest.mark.slow
def test_text_runs_train_under_mirrored_two_logical_cpus_like_one_device(tmp_path):
    from tests.tune.test_text_search import write_topics_csv
    data = write_topics_csv(str(tmp_path / "topics.csv"), per_class=40, test_per_class=10)
    proc = subprocess.run([sys.executable, "-c", TEXT_MIRRORED_SCRIPT, data, str(tmp_path)], env=ENV,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    one = result["one_device"]
    assert one["loss"][-1] < one["loss"][0]
    for key in ("loss", "val_loss", "val_accuracy"):  # texts tokenized in the pipeline, the core fitted: same curve
        np.testing.assert_allclose(result["mirrored"][key], one[key], rtol=1e-4, atol=1e-5, err_msg=key)
    run = result["run_training"]
    assert (run["distribute"]["strategy"], run["distribute"]["replicas"], run["distribute"]["global_batch_size"]) == (
        "mirrored", 2, 32)
    assert run["members"] == ["text_transformer", "tfidf_logistic_regression"] and run["test"] > 0.8
    assert result["served_matches_saved"]


def _launch_workers(config: str, run_dir: str, log_dir: str, attempt: str) -> list:
    ports = _free_ports(2)
    procs = []
    for index in range(2):
        tf_config = {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]}, "task": {"type": "worker",
                                                                                      "index": index}}
        log = open(os.path.join(log_dir, f"{attempt}-worker{index}.log"), "w")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "fmkeras", "train", f"--config={config}", f"--run_dir={run_dir}"],
            env={**ENV, "TF_CONFIG": json.dumps(tf_config)}, stdout=log, stderr=subprocess.STDOUT))
    return procs


def _logs(log_dir: str) -> str:
    return "\n".join(f"== {p}\n" + open(p).read()[-2500:] for p in sorted(glob.glob(os.path.join(log_dir, "*.log"))))


def _backup_step(run_dir: str) -> int:
    """The step of the backup a restart would restore (0 if none), from CheckpointManager's state file."""
    state = os.path.join(run_dir, "backup", "checkpoint")
    if not os.path.isfile(state):
        return 0
    line = [x for x in open(state).read().splitlines() if x.startswith("model_checkpoint_path")]
    return int(line[0].split("ckpt-")[1].strip('"')) if line else 0


@pytest.mark.slow
def test_multiworker_killed_worker_restart_resumes_from_backup_and_workers_agree(tmp_path, fashion_npz):
    """2 workers on 127.0.0.1; kill worker 1 after a backup; restart both; the step counter continues.
    The CNN has BatchNorm: its moving statistics are averaged over the workers at each epoch end."""
    steps_per_epoch, epochs = 8, 3  # 256 images / (16 per replica x 2 replicas)
    config = tmp_path / "mw.yaml"
    config.write_text(yaml.safe_dump({
        "name": "mw",
        "data": {"source": f"npz:{fashion_npz}", "limit_train": 256, "limit_test": 64, "validation_split": 0.25},
        "model": {"backbone": "cnn", "backbone_options": {"filters": [4, 8]},
                  "head": {"dense_units": [8]}},
        "train": {"epochs": epochs, "batch_size": 16, "verbose": 1},
        "export": {"enabled": False},
        "distribute": {"strategy": "multiworker", "backup_every_steps": 3}}))
    run_dir, logs = str(tmp_path / "run"), str(tmp_path / "logs")
    os.makedirs(logs)

    procs = _launch_workers(str(config), run_dir, logs, "first")
    try:
        deadline = time.monotonic() + 180
        while _backup_step(run_dir) == 0:
            assert time.monotonic() < deadline, "no backup within 180 s\n" + _logs(logs)
            assert all(p.poll() is None for p in procs), "a worker exited before the first backup\n" + _logs(logs)
            time.sleep(0.1)
        procs[1].send_signal(signal.SIGKILL)
        procs[1].wait(timeout=30)
        try:  # the survivor either fails on the lost peer or blocks in a collective: stop it too
            procs[0].wait(timeout=10)
        except subprocess.TimeoutExpired:
            procs[0].kill()
            procs[0].wait(timeout=30)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    killed_at = _backup_step(run_dir)
    assert 0 < killed_at < steps_per_epoch * epochs
    assert not os.path.exists(os.path.join(run_dir, "metrics.json")), "run finished before the kill"

    procs = _launch_workers(str(config), run_dir, logs, "restart")
    try:
        for p in procs:
            assert p.wait(timeout=240) == 0, _logs(logs)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    reports = [json.load(open(os.path.join(d, "metrics.json")))
               for d in (run_dir, os.path.join(run_dir, "workers", "worker-1"))]
    for report in reports:
        dist = report["distribute"]
        assert dist["strategy"] == "multiworker" and dist["replicas"] == 2 and dist["global_batch_size"] == 32
        assert dist["resumed_from_step"] == killed_at  # continued from the backup, not from step 0
        assert dist["global_step"] == steps_per_epoch * epochs
        assert dist["steps_run"] == steps_per_epoch * epochs - killed_at
        assert len(report["history"]["loss"]) == epochs  # epochs before the kill come from the backup
    assert reports[0]["history"] == reports[1]["history"]
    for name in ("history.csv", "checkpoints/best.weights.h5", "logs/train", "plots/training_curves.png"):
        assert os.path.exists(os.path.join(run_dir, name)), name  # the single-host callbacks' files
    assert not os.path.exists(os.path.join(run_dir, "backup")), "backup kept after a completed run"

    import keras
    import fmkeras.transfer  # noqa: F401  (registers the model's custom layers)
    models = [keras.models.load_model(os.path.join(d, "model.keras"), compile=False)
              for d in (run_dir, os.path.join(run_dir, "workers", "worker-1"))]
    for a, b in zip(models[0].get_weights(), models[1].get_weights()):
        np.testing.assert_array_equal(a, b)
