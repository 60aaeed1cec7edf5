"""fmkeras/recipes/*.yaml: each mirrors its reference example and runs end to end on any source."""
import numpy as np
import pytest
import tensorflow_datasets as tfds

from fmkeras import recipes
from fmkeras.config import apply_overrides
from fmkeras.errors import ConfigError, DataError
from fmkeras.experiment import run_training
from fmkeras.recipes import list_recipes, load_recipe, recipe_path

# Overrides that make each recipe tiny; the recipe's own optimizer, schedule, head and augmentation stay.
TINY = {
    "efficientnet_lite0_transfer": {"model.weights": "none", "model.input_size": "32,32", "data.image_size": None,
                                    "finetune.epochs": 0},
    "resnet50v2_transfer": {"model.weights": "none", "model.input_size": "32,32"},
    "vgg16_transfer": {"model.weights": "none", "model.input_size": "32,32"},
    "resnet18_cifar10": {"model.backbone_options": "{small_input: true, widths: [4, 8, 8, 8]}"},
    "cnn_binary": {},
    "cnn_fashion": {"model.backbone_options": "{filters: [4, 8]}"},
    "cnn_fashion_fast": {"model.backbone_options.filters": "[4, 8]"},
    "cnn_fashion_tune": {"model.backbone_options": "{filters: [4, 8]}", "finetune.epochs": 0},
    "lenet": {},
    "alexnet": {"model.input_size": "32,32", "model.backbone_options": "{filters: [8, 8, 8, 8, 8]}",
                "model.head.dense_units": "[32, 32]"},
}
SLOW = {"resnet50v2_transfer", "vgg16_transfer", "efficientnet_lite0_transfer"}


def _tiny(name, tmp_path, source, **extra):
    overrides = {"data.source": source, "train.epochs": 1, "train.steps_per_epoch": 2, "train.batch_size": 16,
                 "train.verbose": 0, "run_root": str(tmp_path / "runs"), "export.enabled": False,
                 **TINY[name], **extra}
    return apply_overrides(load_recipe(name), overrides)


def test_recipes_mirror_the_reference_examples():
    # text_debian trains on text (tests/tasks/test_text_classification.py runs it); multilabel_mosaic on mosaics
    # (tests/tasks/test_multilabel_classification.py runs it).
    assert sorted([*TINY, "text_debian", "multilabel_mosaic"]) == list_recipes()
    r50 = load_recipe("resnet50v2_transfer")
    assert (r50.model.backbone, r50.model.weights, r50.model.head.pooling, r50.model.head.dense_units) == (
        "resnet50v2", "imagenet", "flatten", (512,))
    assert (r50.train.optimizer, r50.train.learning_rate, r50.finetune.freeze_backbone) == ("adam", 1e-4, True)
    assert (r50.data.augment.shear, r50.data.augment.zoom, r50.data.augment.horizontal_flip) == (0.2, 0.2, True)
    vgg = load_recipe("vgg16_transfer").data.augment
    assert (vgg.rotation, vgg.shift, vgg.shear, vgg.zoom, vgg.horizontal_flip) == (20, 0.2, 0.2, 0.2, True)
    r18 = load_recipe("resnet18_cifar10")
    assert (r18.data.source, r18.train.optimizer, r18.train.learning_rate, r18.train.schedule,
            r18.train.warmup_steps, r18.train.batch_size) == ("tfds:cifar10", "adamw", 1e-3, "linear", 1000, 64)
    for name in ("lenet", "alexnet"):
        t = load_recipe(name).train
        assert (t.optimizer, t.learning_rate, t.momentum) == ("sgd", 1e-3, 0.9), name
    photos = load_recipe("efficientnet_lite0_transfer")
    assert (photos.model.backbone, photos.model.weights, photos.data.center_crop, photos.finetune.freeze_backbone,
            photos.finetune.freeze_batchnorm, photos.finetune.unfreeze_blocks) == (
        "efficientnet_lite0", "imagenet", 0.875, True, True, 4)
    fast, default = load_recipe("cnn_fashion_fast"), load_recipe("cnn_fashion")
    assert fast.model.backbone_options == {**default.model.backbone_options, "filters": [16, 32, 96, 256],
                                           "last_conv_valid": True}
    assert (fast.data, fast.model.head, fast.export) == (default.data, default.model.head, default.export)
    binary = load_recipe("cnn_binary")
    assert binary.model.head.binary and len(binary.data.classes) == 2
    for name in list_recipes():
        with open(recipe_path(name)) as fh:
            text = fh.read()
        assert "# Run:" in text and "# Expect:" in text, name


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n
                                  for n in sorted(set(TINY) - {"resnet18_cifar10"})])
def test_recipe_runs_on_grayscale_fashion(name, tmp_path, fashion_npz):
    report = run_training(_tiny(name, tmp_path, f"npz:{fashion_npz}"))
    assert report["image_shape"] == [28, 28, 1]
    y_test = np.load(fashion_npz)["y_test"]
    expected = int(np.isin(y_test, [0, 6]).sum()) if name == "cnn_binary" else len(y_test)  # T-shirt, Shirt
    assert report["test"]["num_examples"] == expected
    assert len(report["class_names"]) == (2 if name == "cnn_binary" else 10)
    assert all(len(v) == 1 for v in report["history"].values())


@pytest.mark.slow
def test_resnet18_cifar10_runs_on_tfds_mock_data(tmp_path, monkeypatch):
    monkeypatch.setattr("fmkeras.data.tfds_source._network_reachable", lambda *a, **k: True)
    with tfds.testing.mock_data(num_examples=48):
        report = run_training(_tiny("resnet18_cifar10", tmp_path, "tfds:cifar10"))
    assert report["data"] == "tfds:cifar10" and report["image_shape"] == [32, 32, 3]
    assert report["params"] > 0 and len(report["class_names"]) == 10


def test_resnet18_cifar10_offline_says_how_to_prepare(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    monkeypatch.setattr("fmkeras.data.tfds_source._network_reachable", lambda *a, **k: False)
    with pytest.raises(DataError, match=r"'cifar10' is not prepared in .*tfds build cifar10"):
        run_training(_tiny("resnet18_cifar10", tmp_path, "tfds:cifar10"))


def _write_recipes(directory, **texts):
    for name, text in texts.items():
        (directory / f"{name}.yaml").write_text(text)


def test_a_recipe_starts_from_its_base_and_states_only_what_it_changes(tmp_path, monkeypatch):
    monkeypatch.setattr(recipes, "RECIPE_DIR", str(tmp_path))
    _write_recipes(tmp_path,
                   parent="name: parent_run\nmodel:\n  backbone: cnn\n  backbone_options: {filters: [8, 16], "
                          "batch_norm: fused}\n  head: {dropout: 0.3}\ntrain: {epochs: 6, learning_rate: 0.005}\n",
                   child="base: parent\nmodel:\n  backbone_options: {filters: [4]}\ntrain: {epochs: 2}\n",
                   grandchild="base: child\ntrain: {learning_rate: 0.001}\n")
    cfg = load_recipe("grandchild")
    assert cfg.name == "grandchild"  # named after itself, not after a base's `name`
    assert cfg.model.backbone_options == {"filters": [4], "batch_norm": "fused"}  # merged; the list replaced
    assert (cfg.model.head.dropout, cfg.train.epochs, cfg.train.learning_rate) == (0.3, 2, 0.001)
    assert load_recipe("parent").train.epochs == 6  # the base itself is unchanged


@pytest.mark.parametrize("texts, message", [
    ({"child": "base: nosuch\n"}, r"recipe 'child' \(.*child.yaml\): `base` must name a recipe \(child\)\. "
                                  r"Received: base='nosuch'"),
    ({"child": "base: [a]\n"}, r"`base` must name a recipe .* Received: base=\['a'\]"),
    ({"a": "base: b\n", "b": "base: a\n"}, r"recipe 'b': `base` goes round in a circle: a -> b -> a"),
])
def test_a_bad_base_is_refused_naming_the_recipe(tmp_path, monkeypatch, texts, message):
    monkeypatch.setattr(recipes, "RECIPE_DIR", str(tmp_path))
    _write_recipes(tmp_path, **texts)
    with pytest.raises(ConfigError, match=message):
        load_recipe(next(iter(texts)))
