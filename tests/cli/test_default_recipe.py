"""A run without --recipe picks its starting recipe from the data: photos start from ImageNet transfer."""
import numpy as np
import pytest

from fmkeras.cli.resolve import resolve_config
from fmkeras.config import DataConfig, RunConfig, apply_overrides
from fmkeras.data.source import Source
from fmkeras.errors import ConfigError
from fmkeras.recipes import load_recipe
from fmkeras.experiment import with_image_size


def test_folder_without_recipe_starts_from_the_photo_recipe():
    cfg = resolve_config(fields={"data.source": "folder:/photos"})
    assert cfg.name == "efficientnet_lite0_transfer" and cfg.model.backbone == "efficientnet_lite0"
    assert cfg.model.weights == "imagenet" and cfg.finetune.freeze_batchnorm and cfg.data.source == "folder:/photos"
    # Other sources keep the default recipe; an explicit recipe always wins.
    assert resolve_config(fields={"data.source": "fashion_mnist"}).model.backbone == "cnn"
    assert resolve_config(recipe="cnn_fashion", fields={"data.source": "folder:/photos"}).model.backbone == "cnn"


def test_images_of_different_sizes_take_the_backbone_input_size():
    files = Source(name="folder:x", kind="files", class_names=("a",), x_train=np.array(["a.jpg"]),
                   y_train=np.zeros(1, np.int64))
    photo = apply_overrides(RunConfig(), {"model.backbone": "efficientnet_lite0"})
    assert with_image_size(photo, files).data.image_size == (224, 224)
    sized = apply_overrides(photo, {"data.image_size": [96, 96]})
    assert with_image_size(sized, files).data.image_size == (96, 96)  # the user's choice stays
    arrays = Source(name="npz:x", kind="arrays", class_names=("a",), x_train=np.zeros((1, 28, 28, 1), np.uint8),
                    y_train=np.zeros(1, np.int64))
    assert with_image_size(RunConfig(data=DataConfig()), arrays).data.image_size is None


def test_a_config_file_can_start_from_a_recipe(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("base: cnn_fashion_fast\ntrain: {epochs: 3}\nmodel:\n  head: {dropout: 0.2}\n")
    cfg = resolve_config(config_file=str(mine), sets=["train.batch_size=64"])
    recipe = load_recipe("cnn_fashion_fast")
    assert (cfg.name, cfg.model.backbone_options, cfg.model.head.dense_units) == (
        "cnn_fashion_fast", recipe.model.backbone_options, (256,))  # the recipe's (and its base's) values stay
    assert (cfg.train.epochs, cfg.model.head.dropout, cfg.train.batch_size) == (3, 0.2, 64)
    assert resolve_config(recipe="cnn_fashion_fast", config_file=str(mine)).train.epochs == 3  # the same recipe
    for text, flag in (("base: nosuch\n", None), ("base: cnn_fashion\n", "lenet")):
        mine.write_text(text)
        with pytest.raises(ConfigError, match=rf"config file {mine}: `base` must name a recipe \(.*cnn_fashion_fast"):
            resolve_config(recipe=flag, config_file=str(mine))


@pytest.mark.parametrize("bfloat16, gpus, expected", [
    (True, [], "cnn_fashion"),  # AMX / AVX512-BF16: the full-width net in mixed bfloat16
    (False, ["GPU:0"], "cnn_fashion"),
    (False, [], "cnn_fashion_fast"),  # float32 on the CPU: the narrower net
])
def test_the_default_recipe_follows_the_machine(monkeypatch, caplog, bfloat16, gpus, expected):
    import logging

    import tensorflow as tf

    from fmkeras import hardware
    from fmkeras.recipes import default_recipe
    monkeypatch.setattr(hardware, "cpu_has_native_bfloat16", lambda: bfloat16)
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: gpus if kind == "GPU" else [])
    assert default_recipe() == default_recipe("fashion_mnist") == expected
    assert default_recipe("folder:/photos") == "efficientnet_lite0_transfer"
    with caplog.at_level(logging.INFO, logger="fmkeras"):
        assert resolve_config(fields={"data.source": "fashion_mnist"}).name == expected
    assert f"no --recipe: starting from {expected}" in caplog.text
    assert resolve_config(recipe="cnn_fashion").name == "cnn_fashion"  # a named recipe is what runs


def test_make_targets_pass_the_recipe_only_when_one_is_named():
    import os
    import shutil
    import subprocess
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

    def dry_run(*args):
        done = subprocess.run([shutil.which("make"), "-n", *args], cwd=root, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "fmkeras train  " in dry_run("train") and "--recipe" not in dry_run("train")
    assert "fmkeras train --recipe=lenet --epochs=2" in dry_run("train", "RECIPE=lenet", "EPOCHS=2")
    assert "time_to_accuracy.py  --out benchmarks/results/time_to_accuracy.json.tmp" in dry_run(
        "bench-time-to-accuracy")
    assert ("time_to_accuracy.py --recipe=cnn_fashion --out benchmarks/results/time_to_accuracy_cnn_fashion.json"
            in dry_run("bench-time-to-accuracy", "RECIPE=cnn_fashion"))
    assert "--model_base_path=saved_models/lenet " in dry_run("serve", "RECIPE=lenet")
