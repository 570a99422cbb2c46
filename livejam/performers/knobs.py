"""The live controls' knobs: a controller value -> the sampling constraints it sets.

Pure: shared by the MIDI CC path and everything that sends CCs (OSC, the status screen's keys).
"""
from __future__ import annotations

from dataclasses import replace

from livejam.config import ControlMap, NeuralConfig, PerformerConfig
from livejam.config.controls import KNOBS
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
    """The constraints after knob `number` moved to `value` (0..127); None if it is no sampling knob.
    The scales are the controls table's (livejam/config/controls.py); most knobs set the Constraints
    field of their name, the pitch centre moves the range around it."""
    for knob in KNOBS:
        if number != getattr(controls, knob.name):
            continue
        if knob.name == "pitch_centre":
            centre = round(knob.value(value))
            return replace(c, pitch_range=(max(0, centre - pitch_span), min(127, centre + pitch_span)))
        return replace(c, **{knob.name: knob.value(value)})
    return None
