"""Checked conversion of configuration values (pure): every bad value fails with the key's name and the fix."""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping
from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


class ConfigError(ValueError):
    """A configuration value that cannot work; the message says which key and what to set."""


def as_float(name: str, value: object) -> float:
    """``float(value)`` for a finite real number (bools and strings rejected), else a ValueError naming it."""
    if isinstance(value, (bool, str, bytes)):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number, got {value!r}") from None
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return out


def as_count(name: str, value: object) -> int:
    """A non-negative integer (numpy ints accepted; floats and bools rejected: convert counts with int())."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    try:
        out = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if out < 0:
        raise ValueError(f"{name} must be >= 0, got {out}")
    return out


def _convert(default: object, value: object) -> object:
    """``value`` as the type of the field's default; bools only from bools, 0/1 or true/false words."""
    if default is None:
        return value
    if value is None:  # e.g. `key: null` in a yaml file: not "the default", and it would fail later, unnamed
        raise ValueError("null: set a value or remove the key (its default applies then)")
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        word = str(value).strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        raise ValueError(value)
    if isinstance(value, bool):  # True is an int to Python, not a count or a weight to a user
        raise ValueError(f"{value!r} is a bool")
    if isinstance(default, int):
        number = float(value) if isinstance(value, (int, float)) else float(str(value).strip())
        if not number.is_integer():  # 2.7 workers is a typo, not 2
            raise ValueError(f"{value!r} is not a whole number")
        return int(number)
    return type(default)(value)  # type: ignore[call-arg]


def require_known_keys(cls: type, data: object, section: str) -> dict[str, Any]:
    """``data`` as a plain dict after checking it is a mapping whose keys are all fields of the dataclass ``cls``."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{section} must be a mapping, got {type(data).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        raise ConfigError(f"unknown {section} keys {unknown}; valid keys are {sorted(known)}")
    return {str(k): v for k, v in data.items()}


def dataclass_from_mapping(cls: type[T], values: Mapping[str, Any] | None, section: str) -> T:
    """Build the config dataclass ``cls`` from a plain mapping: unknown keys and wrong types fail at start-up."""
    values = dict(values or {})
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{section}: unknown key(s) {unknown}; valid keys are {sorted(known)}")
    converted: dict[str, object] = {}
    for name, value in values.items():
        default = known[name].default
        try:
            converted[name] = _convert(default, value)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ConfigError(f"{section}: {name}={value!r} is not a valid {type(default).__name__} ({exc})") from exc
    return cls(**converted)
