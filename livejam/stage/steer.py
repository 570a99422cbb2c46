"""Named live controls as the MIDI control changes the performer already understands.

OSC messages and the status screen's keys steer the performer through the
same path as a knob on the keyboard: a control change enqueued on the input
queue, which the performer thread (the only owner of the performer's state)
reads. The sender's thread only computes three bytes and enqueues; it never
touches the performer. The CC numbers are the session's `[neural.controls]`
(`livejam learn` writes them), the value scales those of the controls table
(livejam/config/controls.py), so a value set here reads back the same there (to
the CC's 7-bit resolution).

One control is no knob: `chords` (a chord chart's text or file, "" for none) is parsed on
the sender's thread (a bad chart is a SteerError; the chart in use stays) and travels on
the same queue as a livejam.chart.ChartChange, which the performer thread hands over.
"""
from __future__ import annotations

from typing import Callable

from livejam.config import DaemonConfig
from livejam.config.controls import BY_NAME, CONTROLS

# the table's controls, then those that are not one CC of their own (a pitch range given as LO HI,
# the phrase-end CC of the performer's settings, a chord chart)
NAMES = tuple(c.name for c in CONTROLS) + ("range", "end_phrase", "chords")


class SteerError(ValueError):
    """A control that does not exist, is not mapped, or a value out of range: one line."""


class Steer:
    """`set(name, *values)` turns a named control into CC messages for `put(raw)`."""

    def __init__(self, config: DaemonConfig, put: Callable[[list[int]], None], channel: int = 0):
        self.cc = config.neural.controls
        self.phrase_end_cc = config.performer.phrase_end_cc
        self.pitch_span = config.neural.pitch_span
        self.put = put
        self.status = 0xB0 | channel
        self.sent = 0

    def set(self, name: str, *values) -> int:
        """Enqueue control `name`; returns the CC value sent. Raises SteerError."""
        name = name.replace("-", "_")
        if name == "chords":
            self._chart(values)
            return 0
        if name == "end_phrase":
            number, value = self.phrase_end_cc, 127
        elif name in ("range", "pitch_range", "pitch_centre"):
            nums = [self._as_float(name, v) for v in values]
            if len(nums) not in (1, 2):
                raise SteerError(f"{name}: expected CENTRE or LO HI (MIDI notes)")
            centre = nums[0] if len(nums) == 1 else (nums[0] + nums[1]) / 2
            number, value = self.cc.pitch_centre, self._knob_cc(BY_NAME["pitch_centre"], centre)
        elif name == "mode":
            mode = str(values[0]).lower() if values else ""
            if mode not in ("call", "duet", "0", "1", "0.0", "1.0"):
                raise SteerError("mode: expected call or duet (or 0/1)")
            number, value = self.cc.mode, 127 if mode in ("duet", "1", "1.0") else 0
        elif name in BY_NAME and BY_NAME[name].kind == "knob":
            number, value = getattr(self.cc, name), self._knob_cc(BY_NAME[name], self._number(name, values))
        elif name in BY_NAME:  # a trigger: reset, panic
            number, value = getattr(self.cc, name), 127
        else:
            raise SteerError(f"unknown control {name!r}; known: {', '.join(NAMES)}")
        if number < 0:
            raise SteerError(f"{name}: no CC mapped to it (set [neural.controls] or run `livejam learn`)")
        self.put([self.status, number, value])
        self.sent += 1
        return value

    def _chart(self, values) -> None:
        from livejam.chart import ChartChange, ChordChart

        if len(values) != 1 or not isinstance(values[0], str):
            raise SteerError('chords: expected one string, a chart ("Am F C G", a file) or "" for none')
        text = values[0]
        try:
            chart = ChordChart.load(text) if text.strip() else None
        except ValueError as e:
            raise SteerError(f"chords: {e}") from None
        self.put(ChartChange(chart))
        self.sent += 1

    @staticmethod
    def _knob_cc(knob, value: float) -> int:
        try:
            return knob.cc(value)
        except ValueError as e:
            raise SteerError(str(e)) from None

    def _number(self, name: str, values) -> float:
        if len(values) != 1:
            raise SteerError(f"{name}: expected one number")
        return self._as_float(name, values[0])

    @staticmethod
    def _as_float(name: str, v) -> float:
        try:
            return float(v)
        except (TypeError, ValueError):
            raise SteerError(f"{name}: {v!r} is not a number") from None
