"""Shared fixtures: seeded runs, tiny real Fashion-MNIST slices, tiny configs."""
from __future__ import annotations

import fcntl
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from fmkeras.config import DataConfig, ModelConfig, RunConfig, TrainConfig, ExportConfig, HeadConfig  # noqa: E402
from fmkeras.data.idx import FASHION_MNIST_DIR, fashion_mnist_source  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    import keras
    keras.utils.set_random_seed(1234)
    yield
    # A run in mixed precision (the default recipe's `train.precision=auto` on a bfloat16 CPU) sets Keras'
    # global dtype policy; the next test in this worker builds its models in float32 again.
    keras.config.set_dtype_policy("float32")
    # A test that turned op determinism on (train.deterministic) must not change the tests after it.
    from tensorflow.python.framework import config as tf_config
    if tf_config.is_op_determinism_enabled():
        tf_config.disable_op_determinism()


def computed_once(tmp_path_factory, name: str, produce):
    """`produce(directory)` -> a JSON-able value, computed once per test session: under pytest-xdist the first
    worker that asks computes it (the others wait on a file lock, then read it) instead of each worker
    training the same model again on the same 2 cores."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return produce(str(tmp_path_factory.mktemp(name)))
    shared = tmp_path_factory.getbasetemp().parent  # this session's directory, common to its workers
    result = shared / f"{name}.json"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not result.is_file():
                directory = shared / name
                directory.mkdir()
                value = produce(str(directory))
                result.write_text(json.dumps(value))
            return json.loads(result.read_text())
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HYMENOPTERA = os.path.join(os.path.dirname(ROOT), "shared", "data", "hymenoptera")


@pytest.fixture(scope="session")
def hymenoptera():
    """The real ants-vs-bees photos in ../shared/data beside the repository. Skipped where they are absent,
    but a failure in CI (CI=true), where they are always laid out, so a wrong path cannot hide the tests."""
    if not os.path.isdir(os.path.join(HYMENOPTERA, "val")):
        message = f"{HYMENOPTERA} not found (hymenoptera_data.zip of the PyTorch transfer-learning tutorial)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return HYMENOPTERA


@pytest.fixture(scope="session")
def fashion():
    """The real Fashion-MNIST source (Debian package); the suite needs it installed."""
    if not os.path.isdir(FASHION_MNIST_DIR):
        pytest.fail(f"{FASHION_MNIST_DIR} missing: run `make install` (apt-get install dataset-fashion-mnist)")
    return fashion_mnist_source()


@pytest.fixture(scope="session")
def fashion_npz(tmp_path_factory, fashion):
    """A small .npz slice of real Fashion-MNIST: 600 train / 200 test images."""
    path = tmp_path_factory.mktemp("data") / "fashion_small.npz"
    np.savez(path, x_train=fashion.x_train[:600], y_train=fashion.y_train[:600],
             x_test=fashion.x_test[:200], y_test=fashion.y_test[:200], class_names=np.array(fashion.class_names))
    return str(path)


def tiny_config(tmp_path, **train) -> RunConfig:
    """A run config that trains the small CNN on 600 real Fashion-MNIST images in seconds."""
    return RunConfig(
        name="tiny", run_root=str(tmp_path / "runs"),
        data=DataConfig(source="fashion_mnist", limit_train=600, limit_test=200, validation_split=0.2),
        model=ModelConfig(backbone="cnn", backbone_options={"filters": (8, 16)}, head=HeadConfig(dense_units=(16,))),
        train=TrainConfig(**{"epochs": 1, "batch_size": 64, "verbose": 0, **train}),
        export=ExportConfig(base_dir=str(tmp_path / "saved_models")))
