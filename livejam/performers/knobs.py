"""The live controls' knobs: a controller value -> the sampling constraints it sets.

Pure: shared by the MIDI CC path and everything that sends CCs (OSC, the status screen's keys).
"""
from __future__ import annotations

from dataclasses import replace

from livejam.config import ControlMap
from livejam.engine.sampling import Constraints


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
