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
    # Output channel per machine part (part 0 continues the human, part 1 its own part),
    # 0-based: MIDI channels 2 and 3, away from channel 1 where most keyboards play.
    channels: tuple[int, ...] = (1, 2)
    # --thru: the human's notes go to the output too, on this channel (0-based: MIDI channel 1).
    thru: bool = False
    thru_channel: int = 0


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
    folder: str = ""  # "" = the user data dir's sessions/ (~/.local/share/livejam/sessions on Linux)


# --- stage: sound, OSC, status screen (optional add-ons, off the real-time path) ---------

@dataclass(frozen=True)
class SoundConfig:
    enabled: bool = False  # --sound
    soundfont: str = ""  # "" = the first General MIDI soundfont found (Debian timgm6mb-soundfont)
    human_program: int = 0  # General MIDI program, 0-based: 0 acoustic grand piano
    machine_program: int = 4  # 4 electric piano 1
    block_size: int = 256  # frames per audio callback (smaller: lower latency, more CPU wake-ups)
    samplerate: int = 0  # 0 = the device's own rate (JACK plays only at its server's rate)
    latency: float | str = "low"  # sounddevice's: "low", "high" or seconds
    gain: float = 0.5
    queue_size: int = 1024  # notes waiting for the audio callback; overflow is counted
    device: str = ""  # output device name substring; "" = the default


@dataclass(frozen=True)
class OscConfig:
    # host:port to listen on for /livejam/... controls; "" = nothing listens. A bare port
    # binds 127.0.0.1: another address (0.0.0.0) must be asked for.
    listen: str = ""
    push_hz: float = 2.0  # status pushed to /livejam/subscribe'd clients this often (0: no push thread)


@dataclass(frozen=True)
class ScreenConfig:
    mode: str = "auto"  # auto (screen on a terminal, else plain) | screen | plain | off
    refresh_hz: float = 10.0  # a full frame costs ~6 ms of CPU here (livejam bench --screen)
    roll_seconds: float = 8.0  # how much of the past the scrolling roll shows


@dataclass(frozen=True)
class DaemonConfig:
    engine: str = "neural"  # neural | markov | echo
    seed: int | None = None
    midi: MidiConfig = field(default_factory=MidiConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    record: RecordConfig = field(default_factory=RecordConfig)
    performer: PerformerConfig = field(default_factory=PerformerConfig)
    neural: NeuralConfig = field(default_factory=NeuralConfig)
    sound: SoundConfig = field(default_factory=SoundConfig)
    osc: OscConfig = field(default_factory=OscConfig)
    screen: ScreenConfig = field(default_factory=ScreenConfig)
    # How often the main thread checks the output port and the worker threads.
    health_check_s: float = 0.5
