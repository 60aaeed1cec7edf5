"""The generic config machinery: typed fields from dicts, files and `--set` items.

Values are converted to the field's annotated type; sections check themselves (fmkeras.config.section). A
command config (`RunConfig`, `TuneRunConfig`, ...) is registered with `command_config` so that a section of
another command is named as such: left out when a shared file (a recipe, an old run's config.json) carries it,
refused when set by name.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import typing
from typing import Any

import yaml

from fmkeras.config.section import field_types, validate, without_none
from fmkeras.errors import ConfigError

log = logging.getLogger(__name__)


class _YamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that `1e-4` is a float as in YAML 1.2 (PyYAML, a YAML 1.1 parser,
    reads it as the string "1e-4" and only `1.0e-4` as a number)."""


_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                   |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                   |\.[0-9_]+(?:[eE][-+][0-9]+)?
                   |[-+]?\.(?:inf|Inf|INF)
                   |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def yaml_load(text: str):
    """Parses YAML like `yaml.safe_load`, reading `1e-4` as a number (config files, `--set` values)."""
    return yaml.load(text, Loader=_YamlLoader)


# ------------------------------------------------------------------------------------ command configs

COMMAND_CONFIGS: list = []  # registered in order: RunConfig (train) first, so shared sections name `fmkeras train`


def command_config(cls):
    """Class decorator: registers a command's config (it needs a `COMMAND` such as "fmkeras tune")."""
    COMMAND_CONFIGS.append(cls)
    return cls


def section_owner(name: str):
    """The first registered command config holding top-level field `name`, or None."""
    return next((c for c in COMMAND_CONFIGS if name in field_types(c)), None)


def _foreign_section_error(cls, key: str, value=None) -> ConfigError:
    owner = section_owner(key.split(".")[0])
    received = "" if value is None else f" Received: {key}={value!r}"
    return ConfigError(f"{key} is a setting of `{owner.COMMAND}`, not of `{cls.COMMAND}`.{received}")


# ---------------------------------------------------------------------------------------- conversion

_SIZE = re.compile(r"\s*(\d+)\s*[xX]\s*(\d+)\s*")  # 224x224: the only text split on `x`


def parse_tuple_text(text: str) -> list:
    """`224x224` -> [224, 224]; otherwise comma-separated items, each read as YAML (`fox,box` -> [fox, box])."""
    size = _SIZE.fullmatch(text)
    items = size.groups() if size else text.split(",")
    return [yaml_load(v) for v in items if v.strip()]


def _coerce(value: Any, kind: Any, path: str) -> Any:
    """Converts a YAML/JSON/flag value to the field's declared type, or raises naming `path`."""
    if typing.get_origin(kind) is typing.Union:  # Optional[X]
        if value is None:
            return None
        kind = without_none(kind)
    if typing.get_origin(kind) is typing.Literal:  # the value is checked by check_choices; here only its type
        kind = type(typing.get_args(kind)[0])
    if dataclasses.is_dataclass(kind):
        if isinstance(value, kind):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"`{path}` must be a mapping. Received: {path}={value!r}")
        return from_dict(kind, value, prefix=path + ".")
    try:
        return _coerce_plain(value, kind)
    except (TypeError, ValueError):
        name = getattr(kind, "__name__", str(kind))
        raise ConfigError(f"`{path}` must be of type {name}. Received: {path}={value!r}") from None


def _coerce_plain(value: Any, kind: Any) -> Any:
    if kind is bool:
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
            return value.lower() in ("true", "1")
        if not isinstance(value, bool):
            raise TypeError
        return value
    if kind is tuple:
        if isinstance(value, str):
            value = parse_tuple_text(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value]  # a lone number is a one-item list; validation judges its length
        if not isinstance(value, (list, tuple)):
            raise TypeError
        return tuple(value)
    if kind is dict:
        if not isinstance(value, dict):
            raise TypeError
        return dict(value)
    if kind is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise TypeError
        return int(value)
    if kind is float:
        if isinstance(value, bool):
            raise TypeError
        return float(value)
    if kind is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise TypeError
        return str(value)
    return value


def _unknown_field(cls, full: str, prefix: str) -> ConfigError:
    return ConfigError(f"unknown config field `{full}`; allowed fields of `{prefix.rstrip('.') or 'config'}`: "
                       f"{', '.join(sorted(field_types(cls)))}")


def from_dict(cls, values: dict, prefix: str = ""):
    """Builds config `cls` from a (nested) dict, rejecting unknown fields by name.

    For a command config, sections of other commands (e.g. `tune` for `RunConfig`: a shared recipe, an older
    run's config.json) are left out; a key no command knows is an error.
    """
    if values is None:
        values = {}
    types = field_types(cls)
    if not prefix and cls in COMMAND_CONFIGS:
        left_out = sorted(k for k in values if k not in types and section_owner(k) is not None)
        if left_out:
            log.debug("%s config: left out %s (settings of other commands)", cls.COMMAND, ", ".join(left_out))
        values = {k: v for k, v in values.items() if k not in left_out}
    unknown = sorted(set(values) - set(types))
    if unknown:
        raise _unknown_field(cls, prefix + unknown[0], prefix)
    return cls(**{k: _coerce(v, types[k], prefix + k) for k, v in values.items()})


def to_dict(cfg) -> dict:
    """A plain JSON-serialisable dict of a config (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def _replace_path(cfg, parts: list, value: Any, full: str):
    types = field_types(type(cfg))
    head = parts[0]
    if head not in types:
        if len(parts) == len(full.split(".")) and type(cfg) in COMMAND_CONFIGS and section_owner(head):
            raise _foreign_section_error(type(cfg), full, value)
        raise _unknown_field(type(cfg), full, full[: len(full) - len(".".join(parts))])
    if len(parts) == 1:
        return dataclasses.replace(cfg, **{head: _coerce(value, types[head], full)})
    child = getattr(cfg, head)
    if isinstance(child, dict):  # a free-form mapping (e.g. model.backbone_options): set one key of a copy
        return dataclasses.replace(cfg, **{head: _coerce(_set_key(child, parts[1:], value, full), types[head], full)})
    if not dataclasses.is_dataclass(child):
        raise ConfigError(f"`{full}`: `{head}` is not a group of fields")
    return dataclasses.replace(cfg, **{head: _replace_path(child, parts[1:], value, full)})


def _set_key(mapping: dict, parts: list, value: Any, full: str) -> dict:
    """A copy of `mapping` with the nested key `parts` set to `value` (missing levels become mappings)."""
    out = dict(mapping)
    if len(parts) == 1:
        out[parts[0]] = value
        return out
    child = out.get(parts[0], {})
    if not isinstance(child, dict):
        raise ConfigError(f"`{full}`: `{parts[0]}` is {child!r}, not a mapping of keys")
    out[parts[0]] = _set_key(child, parts[1:], value, full)
    return out


def apply_overrides(cfg, overrides: dict):
    """Returns `cfg` with dotted-path overrides applied and validated, e.g. {"train.epochs": 3}.

    A text value is read as YAML first (`"3"` -> 3, `"[8, 16]"` -> a list); the field's type decides the rest.
    """
    for key, value in overrides.items():
        if isinstance(value, str) and value.strip():
            try:
                value = yaml_load(value)
            except yaml.YAMLError:
                pass  # not YAML: keep the text, the field's type decides
        cfg = _replace_path(cfg, key.split("."), value, key)
    return validate(cfg)


def parse_override(text: str) -> tuple:
    """Parses one `--set` item `a.b=value` into (path, value)."""
    if "=" not in text:
        raise ConfigError(f"override must look like `section.field=value`. Received: {text!r}")
    key, value = text.split("=", 1)
    return key.strip(), value


def deep_merge(base: dict, extra: dict) -> dict:
    """`base` with `extra` laid over it: nested mappings merge key by key, any other value replaces."""
    merged = dict(base)
    for key, value in extra.items():
        merged[key] = deep_merge(merged[key], value) if isinstance(value, dict) and isinstance(
            merged.get(key), dict) else value
    return merged


def load_config_file(path: str) -> dict:
    """Reads a YAML or JSON config file into a dict."""
    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path}")
    with open(path) as fh:
        text = fh.read()
    try:
        values = json.loads(text) if path.endswith(".json") else yaml_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise ConfigError(f"config file {path} is not valid {'JSON' if path.endswith('.json') else 'YAML'}: "
                          f"{str(err).splitlines()[0]}") from None
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return values
