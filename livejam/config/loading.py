"""Loading frozen config dataclasses from dicts / TOML, for every component.

One generic loader serves the daemon, the model and training: a dict is turned
into a frozen dataclass, recursively, with unknown keys and wrong types
rejected, so a typo in a TOML file or on the command line is an error and not a
silently ignored setting. Range checks live in each dataclass's __post_init__.
"""
from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
MAX_CONFIG_BYTES = 1 << 20  # a config is a page of settings; anything bigger is not one


class ConfigError(ValueError):
    """A config key is unknown or a value has the wrong type."""


def _check_type(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        if dataclasses.is_dataclass(value):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {type(value).__name__}")
        return from_dict(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_type(value, arg, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{where}: {value!r} is not one of {typing.get_args(tp)}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{where}: expected {len(args)} items, got {len(value)}")
            return tuple(_check_type(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item_tp = args[0] if args else Any
        return tuple(_check_type(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {type(value).__name__}")
        return dict(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}")
    return value


def from_dict(cls: type[T], data: dict[str, Any], where: str = "") -> T:
    """Build dataclass `cls` from `data`; unknown keys and wrong types raise ConfigError."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(
            f"unknown config key(s) {', '.join(prefix + k for k in unknown)}; "
            f"known: {', '.join(sorted(fields))}"
        )
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _check_type(value, hints[name], f"{where}.{name}" if where else name)
    return cls(**kwargs)


def to_dict(obj: Any) -> dict[str, Any]:
    """Plain dict of a (nested) dataclass, with tuples as lists: ready for JSON/TOML."""

    def conv(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        return v

    return conv(obj)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse a CLI override `a.b=value`; the value is read as TOML (so 1, 0.5, true, "x" work)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key=value")
    key, raw = text.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare word: take it as a string
    except RecursionError:
        raise ConfigError(f"override {key.strip()}: the value is nested too deeply") from None
    return key.strip().split("."), value


def merge(base: dict[str, Any], path: list[str], value: Any) -> dict[str, Any]:
    """Return a copy of nested dict `base` with `path` set to `value`."""
    out = dict(base)
    node = out
    for key in path[:-1]:
        child = node.get(key)
        node[key] = dict(child) if isinstance(child, dict) else {}
        node = node[key]
    node[path[-1]] = value
    return out


def load(cls: type[T], path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> T:
    """Load `cls` from an optional TOML file, then apply `key=value` overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        data = _read_toml(Path(path))
    base = to_dict(cls())
    for key, value in data.items():
        base = merge(base, [key], value) if not isinstance(value, dict) else _deep(base, [key], value)
    for text in overrides:
        keys, value = parse_override(text)
        base = merge(base, keys, value)
    return from_dict(cls, base)


def _read_toml(path: Path) -> dict[str, Any]:
    """A config file's TOML, or ConfigError in one line: not there, not a regular file (a FIFO would
    block the start, a folder or a symlink loop was once ignored), too big, unreadable, invalid,
    or nested past what the parser's recursion takes."""
    try:
        info = path.stat()
        if not path.is_file():
            raise ConfigError(f"config file {path} is not a regular file")
        if info.st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"config file {path} is {info.st_size} bytes: more than {MAX_CONFIG_BYTES}")
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        why = getattr(e, "strerror", None) or type(e).__name__
        raise ConfigError(f"config file {path} cannot be read: {why}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
    except RecursionError:
        raise ConfigError(f"config file {path} is nested too deeply") from None


def _deep(base: dict[str, Any], path: list[str], table: dict[str, Any]) -> dict[str, Any]:
    for key, value in table.items():
        if isinstance(value, dict):
            base = _deep(base, path + [key], value)
        else:
            base = merge(base, path + [key], value)
    return base
