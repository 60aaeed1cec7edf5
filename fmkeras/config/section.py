"""Config sections that check themselves: `Literal[...]` choices from the annotations, ranges by name.

A section is a frozen dataclass deriving from `ConfigSection`. `validate()` checks its `Literal` fields against
their annotation (one rule for every choice), then its subsections, then the section's own `check`, and names
each field by its full dotted path (`train.schedule`).
"""
from __future__ import annotations

import dataclasses
import functools
import typing
from typing import ClassVar

from fmkeras.errors import ConfigError


@functools.lru_cache(maxsize=None)
def field_types(cls) -> dict:
    """Field name -> resolved annotation of dataclass `cls`."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def join_path(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def is_optional(kind) -> bool:
    return typing.get_origin(kind) is typing.Union and type(None) in typing.get_args(kind)


def without_none(kind):
    return [k for k in typing.get_args(kind) if k is not type(None)][0]


def check_range(path: str, value, low=None, high=None, low_open=False):
    """Raises ConfigError unless `value` (None passes) lies in [low, high] (or (low, high] if `low_open`)."""
    if value is None:
        return
    bad = (low is not None and (value <= low if low_open else value < low)) or (high is not None and value > high)
    if bad:
        lo = "" if low is None else (f"> {low}" if low_open else f">= {low}")
        hi = "" if high is None else f"<= {high}"
        raise ConfigError(f"`{path}` must be {' and '.join(x for x in (lo, hi) if x)}. Received: {path}={value!r}")


def check_size(path: str, value):
    """Raises ConfigError unless `value` is None or (height, width) positive integers."""
    if value is None:
        return
    if len(value) != 2 or not all(isinstance(v, int) and v > 0 for v in value):
        raise ConfigError(f"`{path}` must be two positive integers (height, width). Received: {path}={value!r}")


def positive_ints(values) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values)


def choices_of(kind) -> tuple:
    """The allowed values of a `Literal[...]` or `Optional[Literal[...]]` annotation; () for any other type."""
    if typing.get_origin(kind) is typing.Union:
        kind = without_none(kind)
    return typing.get_args(kind) if typing.get_origin(kind) is typing.Literal else ()


def check_choices(section, path: str):
    """Checks every `Literal[...]` field of `section` against its annotation (one rule for all choices)."""
    for name, kind in field_types(type(section)).items():
        allowed = choices_of(kind)
        value = getattr(section, name)
        if not allowed or value in allowed or (value is None and is_optional(kind)):
            continue
        full = join_path(path, name)
        listed = ", ".join(str(a) for a in allowed) + (" or null" if is_optional(kind) else "")
        raise ConfigError(f"`{full}` must be one of {listed}. Received: {full}={value!r}")


class FieldCheck:
    """What a section's `check` uses: full dotted paths and range checks on its own fields."""

    def __init__(self, section, path: str):
        self.section, self.prefix = section, path

    def path(self, name: str) -> str:
        return join_path(self.prefix, name)

    def range(self, name: str, low=None, high=None, low_open=False):
        check_range(self.path(name), getattr(self.section, name), low, high, low_open)

    def size(self, name: str):
        check_size(self.path(name), getattr(self.section, name))


class ConfigSection:
    """A frozen dataclass config section that validates itself.

    PATH: where the section sits in a command config ("train", "data.augment"), used in messages when the
    section is validated on its own.
    """
    PATH: ClassVar[str] = ""

    def check(self, c: FieldCheck):
        """The section's own ranges and rules (choices and subsections are checked before it)."""

    def validate(self, path: str = None):
        """Checks the choices of this section's fields, its subsections, then `check` (which may compare
        subsections); returns self or raises ConfigError naming the field's full dotted path."""
        path = self.PATH if path is None else path
        check_choices(self, path)
        for name in field_types(type(self)):
            value = getattr(self, name)
            if isinstance(value, ConfigSection):
                value.validate(join_path(path, name))
        self.check(FieldCheck(self, path))
        return self


def validate(cfg):
    """Checks every field's range and choices; returns `cfg` unchanged or raises ConfigError."""
    return cfg.validate()
