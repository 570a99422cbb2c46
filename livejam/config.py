"""Frozen config dataclasses and their loading from dicts / TOML.

One generic loader serves every component (daemon, model, training): a dict is
turned into a frozen dataclass, recursively, with unknown keys and wrong types
rejected, so a typo in a TOML file or on the command line is an error and not a
silently ignored setting.
"""
from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


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
        try:
            data = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except (IsADirectoryError, PermissionError, UnicodeDecodeError) as e:
            raise ConfigError(f"config file {path} cannot be read: {type(e).__name__}") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
    base = to_dict(cls())
    for key, value in data.items():
        base = merge(base, [key], value) if not isinstance(value, dict) else _deep(base, [key], value)
    for text in overrides:
        keys, value = parse_override(text)
        base = merge(base, keys, value)
    return from_dict(cls, base)


def _deep(base: dict[str, Any], path: list[str], table: dict[str, Any]) -> dict[str, Any]:
    for key, value in table.items():
        if isinstance(value, dict):
            base = _deep(base, path + [key], value)
        else:
            base = merge(base, path + [key], value)
    return base


# --- daemon config ---------------------------------------------------------------
# Appended below the generic loader: the settings of `livejam run` / `simulate`.
# Performer settings live with the performer (livejam/performer.py) and are
# nested here as the [performer] table.
from dataclasses import dataclass, field  # noqa: E402

from livejam.neural import NeuralConfig  # noqa: E402
from livejam.performer import PerformerConfig  # noqa: E402


import math  # noqa: E402

# Range of every numeric setting of `livejam run`/`simulate`: (section, key) ->
# (low, high, low inclusive, high inclusive); None = unbounded. Checked when a
# config is built (file, --set or flag alike): a value out of range is one line
# and exit 2, never a deaf queue, a silent scheduler or a CPU-burning loop.
# Performer and neural settings are checked here by name, so their modules
# stay free of this table.
RANGES: dict[tuple[str, str], tuple[float | None, float | None, bool, bool]] = {
    ("midi", "echo_window_s"): (0.0, 10.0, True, True),
    ("midi", "queue_size"): (1, 1_000_000, True, True),
    ("scheduler", "late_drop_s"): (0.0, 10.0, False, True),
    ("scheduler", "spin_s"): (0.0, 0.1, True, True),
    ("scheduler", "watchdog_s"): (0.0, 3600.0, False, True),
    ("scheduler", "gil_switch_interval_s"): (0.0, 1.0, False, True),
    ("", "health_check_s"): (0.01, 60.0, True, True),
    ("performer", "phrase_end_silence_s"): (0.0, 60.0, False, True),
    ("performer", "phrase_end_cc"): (-1, 127, True, True),
    ("performer", "answer_length_ratio"): (0.0, 100.0, False, True),
    ("performer", "min_answer_s"): (0.0, 3600.0, True, True),
    ("performer", "max_answer_s"): (0.0, 3600.0, False, True),
    ("performer", "lookahead_s"): (0.0, 1.0, True, True),
    ("performer", "max_note_s"): (0.0, 3600.0, False, True),
    ("performer", "max_polyphony"): (1, 128, True, True),
    ("performer", "pitch_low"): (0, 127, True, True),
    ("performer", "pitch_high"): (0, 127, True, True),
    ("performer", "markov_order"): (1, 64, True, True),
    ("performer", "max_answer_events"): (1, 1_000_000, True, True),
    ("performer", "idle_wakeup_s"): (0.001, 10.0, True, True),
    ("performer", "held_key_timeout_s"): (0.0, 3600.0, False, True),
    ("neural", "temperature"): (0.0, 10.0, True, True),
    ("neural", "dt_temperature"): (0.0, 10.0, True, True),
    ("neural", "top_p"): (0.0, 1.0, False, True),
    ("neural", "min_p"): (0.0, 1.0, True, False),
    ("neural", "density"): (-10.0, 10.0, True, True),
    ("neural", "min_note_ms"): (0.0, 10_000.0, True, True),
    ("neural", "pitch_span"): (1, 127, True, True),
    ("neural", "duet_idle_stop_s"): (0.0, 3600.0, False, True),
    ("neural", "duet_restart_s"): (0.0, 3600.0, False, True),
    ("neural", "intra_op_threads"): (1, 256, True, True),
    ("neural", "max_events_per_poll"): (1, 100_000, True, True),
    ("neural", "grid_beats"): (0.0, 16.0, True, True),
}


def check_ranges(cfg: Any) -> None:
    """Raise ConfigError (one line) for the first setting of a DaemonConfig out of range."""
    for (section, key), (lo, hi, lo_in, hi_in) in RANGES.items():
        obj = getattr(cfg, section) if section else cfg
        if not hasattr(obj, key):
            continue
        v = getattr(obj, key)
        name = f"{section}.{key}" if section else key
        bad = isinstance(v, float) and not math.isfinite(v)
        bad = bad or (lo is not None and (v < lo if lo_in else v <= lo))
        bad = bad or (hi is not None and (v > hi if hi_in else v >= hi))
        if bad:
            span = f"{'[' if lo_in else '('}{lo}, {hi}{']' if hi_in else ')'}"
            raise ConfigError(f"{name}={v!r} is out of range: expected a value in {span}")
    channels = cfg.midi.channels
    if not channels or len(channels) > 16 or any(not 0 <= c <= 15 for c in channels):
        raise ConfigError(f"midi.channels={list(channels)!r}: expected 1-16 MIDI channels, each 0..15")
    if cfg.performer.pitch_low > cfg.performer.pitch_high:
        raise ConfigError(f"performer.pitch_low={cfg.performer.pitch_low} is above "
                          f"performer.pitch_high={cfg.performer.pitch_high}")
    if cfg.performer.min_answer_s > cfg.performer.max_answer_s:
        raise ConfigError(f"performer.min_answer_s={cfg.performer.min_answer_s} is above "
                          f"performer.max_answer_s={cfg.performer.max_answer_s}")
    if cfg.engine not in ("neural", "markov", "echo"):
        raise ConfigError(f"engine={cfg.engine!r}: expected neural, markov or echo")


@dataclass(frozen=True)
class MidiConfig:
    backend: str = "auto"  # auto | default | alsa | jack | coremidi | winmm
    input: str = ""  # substring of an input port to connect to; "" = virtual port "livejam in"
    output: str = ""  # substring of an output port; "" = virtual port "livejam out"
    client_name: str = "livejam"
    ignore_sysex: bool = True
    ignore_active_sensing: bool = True
    # An input identical to something we sent within this window is our own echo.
    echo_window_s: float = 0.1
    queue_size: int = 4096  # MIDI callback -> performer thread; overflow is counted
    # Output channel per machine part (part 0 continues the human, part 1 its own part).
    channels: tuple[int, ...] = (0, 1)


@dataclass(frozen=True)
class SchedulerConfig:
    late_drop_s: float = 0.030  # a note-on later than this is dropped with its note-off
    spin_s: float = 0.001  # sleep until this long before an event, then spin
    watchdog_s: float = 8.0  # a machine note held longer is ended
    # Python's GIL switch interval while the daemon runs. The default 5 ms let a
    # CPU-busy thread hold the scheduler ~5 ms late at p99; 0.5 ms measured ~0.8 ms
    # (tools/bench_engine.py).
    gil_switch_interval_s: float = 0.0005


@dataclass(frozen=True)
class RecordConfig:
    enabled: bool = True
    folder: str = "~/.local/share/livejam/sessions"


@dataclass(frozen=True)
class DaemonConfig:
    engine: str = "neural"  # neural | markov | echo
    seed: int | None = None
    midi: MidiConfig = field(default_factory=MidiConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    record: RecordConfig = field(default_factory=RecordConfig)
    performer: PerformerConfig = field(default_factory=PerformerConfig)
    neural: NeuralConfig = field(default_factory=NeuralConfig)
    # How often the main thread checks the output port and the worker threads.
    health_check_s: float = 0.5

    def __post_init__(self) -> None:
        check_ranges(self)
