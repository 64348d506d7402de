"""Type-checked ``--key=value`` overrides for a reproduction's config dataclass.

Values from the command line are strings; each is parsed against the field's annotation
(int, float, bool, str, Literal[...], tuple[T, ...], optional T). A wrong key or a value
that does not parse is a :class:`ConfigError` whose message names the key and what would be
right, so the CLI can print it without a traceback.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any


class ConfigError(ValueError):
    pass


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _parse(text: str, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and text.lower() in {"none", "null", ""}:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _parse(text, arg, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"--{key}: cannot parse {text!r}")
    if origin is typing.Literal:
        for choice in args:
            if str(choice) == text:
                return choice
        raise ConfigError(f"--{key}={text}: expected one of {', '.join(map(str, args))}")
    if origin in (tuple, list):
        item_tp = args[0] if args else str
        parts = [p.strip() for p in text.strip("()[]").split(",") if p.strip()]
        values = [_parse(p, item_tp, key) for p in parts]
        return tuple(values) if origin is tuple else values
    if tp is bool:
        low = text.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ConfigError(f"--{key}={text}: expected a boolean (true/false)")
    if tp is int:
        try:
            return int(text.replace("_", ""))
        except ValueError:
            raise ConfigError(f"--{key}={text}: expected an integer, e.g. --{key}=4") from None
    if tp is float:
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"--{key}={text}: expected a number, e.g. --{key}=0.5") from None
    if tp is str:
        return text
    raise ConfigError(f"--{key}: fields of type {tp!r} cannot be set from the command line")


def _check_type(value: Any, tp: Any) -> bool:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_check_type(value, a) for a in args)
    if origin is typing.Literal:
        return value in args
    if tp is type(None):
        return value is None
    if origin in (tuple, list):
        return isinstance(value, tuple | list)
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(tp, type):
        return isinstance(value, tp)
    return True


def build_config(cls: type, preset: Mapping[str, Any], overrides: Mapping[str, str]) -> Any:
    """``cls(**preset, **parsed(overrides))`` with every key and value checked."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    values: dict[str, Any] = {}
    for key, value in preset.items():
        if key not in hints:
            raise ConfigError(f"preset sets unknown key {key!r}; valid keys: {', '.join(names)}")
        values[key] = value
    for raw_key, text in overrides.items():
        key = raw_key.replace("-", "_")
        if key not in hints:
            import difflib

            close = difflib.get_close_matches(key, names, n=1)
            hint = f" (did you mean --{close[0]}?)" if close else ""
            raise ConfigError(f"unknown key --{raw_key}{hint}; valid keys: {', '.join(names)}")
        values[key] = _parse(str(text), hints[key], raw_key)
        _check_range(key, raw_key, values[key])
    for key, value in values.items():
        if not _check_type(value, hints[key]):
            raise ConfigError(f"{key}={value!r} does not match its type {hints[key]}")
    return cls(**values)


# Valid ranges, by what a field's name says it counts (every reproduction names its fields
# this way): counts of steps, seeds, layers, ... are at least 1, learning rates and budgets
# are positive, fractions and probabilities lie in [0, 1]. Checked on values a user passes.
_COUNTS = ("steps", "seeds", "layers", "heads", "repeats", "rounds", "trials", "epochs", "draws")
_AT_LEAST_ONE = {"batch", "batch_size", "n_layer", "n_head", "d_model", "seq_len", "vocab_size"}


def _check_range(key: str, raw_key: str, value: Any) -> None:
    def scalars(v):
        return v if isinstance(v, tuple) else (v,)

    words = key.split("_")
    last = words[-1]
    for v in scalars(value):
        if isinstance(v, bool) or not isinstance(v, int | float):
            continue
        counts = key in _AT_LEAST_ONE or (last in _COUNTS and "warmup" not in words)
        if isinstance(v, int) and counts and v < 1:
            raise ConfigError(f"--{raw_key}={v}: must be at least 1")
        # a rate, not its logarithm (log2_lrs are negative by design)
        if last in ("lr", "lrs") and not words[0].startswith("log") and v <= 0:
            raise ConfigError(f"--{raw_key}={v}: a learning rate must be positive")
        if any(w in ("fraction", "dropout", "prob", "probability") for w in words):
            if not 0 <= v <= 1:
                raise ConfigError(f"--{raw_key}={v}: must lie in [0, 1]")


def describe_fields(cls: type) -> list[tuple[str, str, Any]]:
    """(name, type, default) rows for help output."""
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else None
        rows.append((f.name, getattr(hints[f.name], "__name__", str(hints[f.name])), default))
    return rows
