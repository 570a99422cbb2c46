"""The range of every numeric setting, checked whenever a config is built (file, --set or flag alike).

A value out of range is one line and exit 2, never a deaf queue, a silent scheduler or a CPU-burning
loop. Settings are named by (section, key) so the components' modules stay free of this table.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

from livejam.config.loading import ConfigError

# Sampling temperatures above 2 flatten every head toward uniform noise (pitches, rhythm and chords
# all random): a typo, not a setting. The temperature CC and OSC span 0.05..1.5.
TEMPERATURE_MAX = 2.0

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
    ("scheduler", "realtime_priority"): (0, 99, True, True),
    ("scheduler", "output_nice"): (-20, 19, True, True),
    ("scheduler", "performer_nice"): (-20, 19, True, True),
    ("", "health_check_s"): (0.01, 60.0, True, True),
    ("midi", "thru_channel"): (0, 15, True, True),
    ("sound", "human_program"): (0, 127, True, True),
    ("sound", "machine_program"): (0, 127, True, True),
    ("sound", "block_size"): (16, 8192, True, True),
    ("sound", "samplerate"): (0, 384_000, True, True),
    ("sound", "gain"): (0.0, 10.0, True, True),
    ("sound", "queue_size"): (1, 1_000_000, True, True),
    ("osc", "push_hz"): (0.0, 50.0, True, True),
    ("screen", "refresh_hz"): (0.0, 60.0, False, True),
    ("screen", "roll_seconds"): (0.5, 600.0, True, True),
    ("performer", "phrase_end_silence_s"): (0.0, 60.0, False, True),
    ("performer", "phrase_end_cc"): (-1, 127, True, True),
    ("performer", "answer_length_ratio"): (0.0, 100.0, False, True),
    ("performer", "min_answer_s"): (0.0, 3600.0, True, True),
    ("performer", "max_answer_s"): (0.0, 3600.0, False, True),
    ("performer", "lookahead_s"): (0.0, 1.0, True, True),
    ("performer", "max_note_s"): (0.0, 3600.0, False, True),
    ("performer", "max_polyphony"): (1, 128, True, True),
    ("performer", "max_note_beats"): (0.0, 64.0, False, True),
    ("performer", "pitch_low"): (0, 127, True, True),
    ("performer", "pitch_high"): (0, 127, True, True),
    ("performer", "markov_order"): (1, 64, True, True),
    ("performer", "max_answer_events"): (1, 1_000_000, True, True),
    ("performer", "idle_wakeup_s"): (0.001, 10.0, True, True),
    ("performer", "held_key_timeout_s"): (0.0, 3600.0, False, True),
    ("neural", "temperature"): (0.0, TEMPERATURE_MAX, True, True),
    ("neural", "dt_temperature"): (0.0, TEMPERATURE_MAX, True, True),
    ("neural", "top_p"): (0.0, 1.0, False, True),
    ("neural", "min_p"): (0.0, 1.0, True, False),
    ("neural", "density"): (-4.0, 4.0, True, True),  # the CC and OSC span -2..2; 4 already floods
    ("neural", "min_note_ms"): (0.0, 10_000.0, True, True),
    ("neural", "pitch_span"): (1, 127, True, True),
    ("neural", "duet_idle_stop_s"): (0.0, 3600.0, False, True),
    ("neural", "duet_restart_s"): (0.0, 3600.0, False, True),
    ("neural", "intra_op_threads"): (1, 256, True, True),
    ("neural", "max_events_per_poll"): (1, 100_000, True, True),
    ("neural", "grid_beats"): (0.0, 16.0, True, True),
    ("neural", "harmony"): (0.0, 1.0, True, True),
    ("chords", "heard_min_pcs"): (2, 12, True, True),
    ("chords", "heard_confidence"): (0.0, 1.0, True, True),
    ("chords", "slot_beats"): (0.25, 64.0, True, True),
    ("chords", "listen_beats"): (0.0, 64.0, True, True),
    ("neural", "grid"): (0.0, 1.0, True, True),
    ("neural", "chord_temperature"): (0.0, TEMPERATURE_MAX, True, True),
    ("neural", "line_over_chords"): (0, 128, True, True),
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
    for f in dataclasses.fields(cfg.neural.controls):  # the controls table's CC numbers
        cc = getattr(cfg.neural.controls, f.name)
        if not -1 <= cc <= 127:
            raise ConfigError(f"neural.controls.{f.name}={cc}: expected a CC number 0..127, or -1 for none")
    channels = cfg.midi.channels  # empty: chosen by machine_channels
    if len(channels) > 16 or any(not 0 <= c <= 15 for c in channels):
        raise ConfigError(f"midi.channels={list(channels)!r}: expected 1-16 MIDI channels, each 0..15 "
                          "(or [] for the default)")
    if cfg.midi.thru and cfg.midi.thru_channel in cfg.midi.machine_channels:
        raise ConfigError(f"midi.thru_channel={cfg.midi.thru_channel} is a machine channel "
                          f"(midi.channels={list(cfg.midi.machine_channels)}): the human and the machine "
                          "would end each other's notes")
    if cfg.beat.click_channel in cfg.midi.machine_channels:
        raise ConfigError(f"beat.click_channel={cfg.beat.click_channel} is a machine channel "
                          f"(midi.channels={list(cfg.midi.machine_channels)})")
    latency = cfg.sound.latency  # sounddevice's: a name or seconds
    if (latency not in ("low", "high") if isinstance(latency, str) else
            isinstance(latency, bool) or not (math.isfinite(latency) and 0.0 < latency <= 10.0)):
        raise ConfigError(f"sound.latency={latency!r}: expected \"low\", \"high\" or seconds in (0, 10]")
    if cfg.performer.pitch_low > cfg.performer.pitch_high:
        raise ConfigError(f"performer.pitch_low={cfg.performer.pitch_low} is above "
                          f"performer.pitch_high={cfg.performer.pitch_high}")
    if cfg.performer.min_answer_s > cfg.performer.max_answer_s:
        raise ConfigError(f"performer.min_answer_s={cfg.performer.min_answer_s} is above "
                          f"performer.max_answer_s={cfg.performer.max_answer_s}")
