"""fmkeras/config/fields.py and section.py: loading, typed overrides, the tuple parser and validation messages."""
import json

import pytest

from fmkeras.config import (RunConfig, apply_overrides, from_dict, load_config, parse_override, to_dict,
                            validate)
from fmkeras.errors import ConfigError


def test_defaults_validate_and_round_trip():
    cfg = validate(RunConfig())
    assert from_dict(RunConfig, to_dict(cfg)) == cfg


def test_overrides_are_typed_by_field():
    cfg = apply_overrides(RunConfig(), {"train.epochs": "3", "train.learning_rate": "1e-4",
                                        "data.image_size": "32,32", "data.augment.horizontal_flip": "true",
                                        "data.source": "folder:/tmp/x"})
    assert cfg.train.epochs == 3 and isinstance(cfg.train.epochs, int)
    assert cfg.train.learning_rate == pytest.approx(1e-4)
    assert cfg.data.image_size == (32, 32)
    assert cfg.data.augment.horizontal_flip is True
    assert cfg.data.source == "folder:/tmp/x"


def test_override_sets_one_key_of_a_mapping_field():
    base = apply_overrides(RunConfig(), {"model.backbone_options": "{filters: [32, 64], pool_first: true}"})
    cfg = apply_overrides(base, {"model.backbone_options.filters": "[16, 32, 64]",
                                 "model.backbone_options.extra.depth": "2"})
    assert cfg.model.backbone_options == {"filters": [16, 32, 64], "pool_first": True, "extra": {"depth": 2}}
    assert base.model.backbone_options == {"filters": [32, 64], "pool_first": True}  # the original is untouched
    with pytest.raises(ConfigError, match=r"`model.backbone_options.filters.first`: `filters` is \[32, 64\], not a mapping"):
        apply_overrides(base, {"model.backbone_options.filters.first": "16"})


@pytest.mark.parametrize("key,value,fragment", [
    ("train.epocs", 3, "unknown config field `train.epocs`"),
    ("train.epochs", 0, "`train.epochs` must be >= 1. Received: train.epochs=0"),
    ("train.optimizer", "lamb", "`train.optimizer` must be one of adam, adamw, sgd. Received: train.optimizer='lamb'"),
    ("train.epochs", "three", "`train.epochs` must be of type int"),
    ("data.validation_split", 1.5, "`data.validation_split` must be >= 0.0 and <= 0.9"),
    ("data.source", "s3://bucket", "`data.source` must be fashion_mnist or start with"),
    ("data.image_size", "32", "`data.image_size` must be two positive integers"),
    ("model.head.pooling", "sum", "`model.head.pooling` must be one of avg, max, flatten"),
])
def test_bad_values_name_field_value_and_allowed(key, value, fragment):
    with pytest.raises(ConfigError) as err:
        apply_overrides(RunConfig(), {key: value})
    assert fragment in str(err.value)


def test_unknown_field_in_file_lists_allowed(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"train": {"epochs": 2, "bogus": 1}}))
    with pytest.raises(ConfigError, match=r"unknown config field `train.bogus`; allowed fields of `train`: .*epochs"):
        load_config(str(path))


def test_yaml_file_loads_nested(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: demo\ntrain:\n  epochs: 2\nmodel:\n  head:\n    dense_units: [64, 32]\n")
    cfg = load_config(str(path))
    assert (cfg.name, cfg.train.epochs, cfg.model.head.dense_units) == ("demo", 2, (64, 32))


def test_exponent_without_a_dot_is_a_number_in_files_lists_and_search_spaces(tmp_path):
    # PyYAML (YAML 1.1) alone reads `1e-4` as the string "1e-4": a list or a tune.space range then held text.
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  learning_rate: 3e-4\ntext:\n  linear_l2: [1e-6, 1E-1, 0.5]\n"
                    "tune:\n  space:\n    train.learning_rate: {min: 1e-5, max: 1e-2, sampling: log}\n")
    cfg = load_config(str(path))
    assert cfg.train.learning_rate == 3e-4 and cfg.text.linear_l2 == (1e-6, 0.1, 0.5)
    assert cfg.tune.space["train.learning_rate"] == {"min": 1e-5, "max": 1e-2, "sampling": "log"}
    cfg = apply_overrides(cfg, {"text.linear_l2": "[3e-7, 1e-5]", "tune.space": '{"train.weight_decay": [0, 1e-4]}'})
    assert cfg.text.linear_l2 == (3e-7, 1e-5) and cfg.tune.space == {"train.weight_decay": [0, 1e-4]}
    assert apply_overrides(cfg, {"name": "1e5x"}).name == "1e5x"  # not a number: stays text


def test_invalid_yaml_and_missing_file_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml is not valid YAML"):
        load_config(str(bad))
    with pytest.raises(ConfigError, match="config file not found: .*nope.yaml"):
        load_config(str(tmp_path / "nope.yaml"))


def test_parse_override_requires_equals():
    assert parse_override("train.epochs=3") == ("train.epochs", "3")
    with pytest.raises(ConfigError, match="section.field=value"):
        parse_override("train.epochs")


def test_bad_files_and_max_image_pixels_are_validated_and_settable():
    from fmkeras.config import validate
    cfg = apply_overrides(RunConfig(), {"data.bad_files": "strict", "data.max_image_pixels": "1000"})
    assert validate(cfg).data.bad_files == "strict" and cfg.data.max_image_pixels == 1000
    with pytest.raises(ConfigError, match=r"`data.bad_files` must be one of skip, strict. Received: data.bad_files='x'"):
        validate(apply_overrides(RunConfig(), {"data.bad_files": "x"}))
    with pytest.raises(ConfigError, match=r"data.max_image_pixels"):
        validate(apply_overrides(RunConfig(), {"data.max_image_pixels": "0"}))
    with pytest.raises(ConfigError, match=r"`data.bad_files=strict` needs `data.check_files=true`"):
        validate(apply_overrides(RunConfig(), {"data.bad_files": "strict", "data.check_files": "false"}))


@pytest.mark.parametrize("text,expected", [
    ("fox,box", ("fox", "box")),  # the old parser read every `x` as a separator: ('fo', 'bo')
    ("224x224", (224, 224)),
    ("224,224", (224, 224)),
    ("32 X 48", (32, 48)),
    ("0, 6", (0, 6)),
])
def test_tuple_text_splits_on_x_only_for_sizes(text, expected):
    assert apply_overrides(RunConfig(), {"data.classes": text}).data.classes == expected


@pytest.mark.parametrize("text", ["224x224", "224,224", "224 x 224", "[224, 224]"])
def test_image_size_spellings(text):
    assert apply_overrides(RunConfig(), {"data.image_size": text}).data.image_size == (224, 224)


def test_choices_come_from_the_literal_annotation():
    import dataclasses
    from typing import Literal, Optional

    from fmkeras.config import ConfigSection, TrainConfig
    from fmkeras.config.section import choices_of, field_types

    assert choices_of(field_types(TrainConfig)["optimizer"]) == ("adam", "adamw", "sgd")

    @dataclasses.dataclass(frozen=True)
    class Toy(ConfigSection):
        PATH = "toy"
        mode: Literal["a", "b"] = "a"
        size: Optional[Literal[1, 3]] = None

    assert Toy(size=3).validate().size == 3
    with pytest.raises(ConfigError, match=r"^`toy.mode` must be one of a, b. Received: toy.mode='c'$"):
        Toy(mode="c").validate()
    with pytest.raises(ConfigError, match=r"^`toy.size` must be one of 1, 3 or null. Received: toy.size=2$"):
        from_dict(Toy, {"size": "2"}).validate()  # the text "2" is coerced to the Literal's type, int
