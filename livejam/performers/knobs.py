"""The live controls' knobs: a controller value -> the sampling constraints it sets.

Pure: shared by the MIDI CC path and everything that sends CCs (OSC, the status screen's keys).
"""
from __future__ import annotations

from dataclasses import replace

from livejam.config import ControlMap, NeuralConfig, PerformerConfig
from livejam.engine.sampling import Constraints
from livejam.performers.base import ALL_OFF_CCS


def starting_constraints(config: PerformerConfig, neural: NeuralConfig) -> Constraints:
    """The sampling constraints a session starts with, from its settings (the knobs move them later)."""
    return Constraints(
        temperature=neural.temperature, dt_temperature=neural.dt_temperature, top_p=neural.top_p,
        min_p=neural.min_p, grid=neural.grid, chord_temperature=neural.chord_temperature,
        pitch_range=(config.pitch_low, config.pitch_high), max_polyphony=config.max_polyphony,
        min_note_ms=neural.min_note_ms, max_note_ms=config.max_note_s * 1000.0, density=neural.density,
        key=neural.key if neural.key not in ("", "auto") else None, harmony=neural.harmony)


def action(controls: ControlMap, phrase_end_cc: int, number: int, value: int) -> str | None:
    """What a controller does besides the sampling knobs: "release_all", "end_phrase", a mode
    ("call", "duet"), "reset", "panic", or None."""
    if number in ALL_OFF_CCS:
        return "release_all"
    if number == phrase_end_cc and value >= 64:
        return "end_phrase"
    if number == controls.mode:
        return "duet" if value >= 64 else "call"
    if number == controls.reset and value >= 64:
        return "reset"
    if number == controls.panic and value >= 64:
        return "panic"
    return None


def turn(c: Constraints, controls: ControlMap, number: int, value: int, pitch_span: int) -> Constraints | None:
    """The constraints after knob `number` moved to `value` (0..127); None if it is no sampling knob."""
    if number == controls.temperature:
        return replace(c, temperature=0.05 + 1.45 * value / 127)
    if number == controls.density:
        return replace(c, density=(value - 64) / 32)  # 64 = as the model likes
    if number == controls.harmony:
        return replace(c, harmony=value / 127)
    if number == controls.grid:
        return replace(c, grid=value / 127)
    if number == controls.pitch_centre:
        centre = 30 + round(60 * value / 127)
        return replace(c, pitch_range=(max(0, centre - pitch_span), min(127, centre + pitch_span)))
    return None
