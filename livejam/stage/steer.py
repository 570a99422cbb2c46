"""Named live controls as the MIDI control changes the performer already understands.

OSC messages and the status screen's keys steer the performer through the
same path as a knob on the keyboard: a control change enqueued on the input
queue, which the performer thread (the only owner of the performer's state)
reads. The sender's thread only computes three bytes and enqueues; it never
touches the performer. The CC numbers are the session's `[neural.controls]`
(`livejam learn` writes them), the value scales the inverse of
NeuralPerformer.control's, so a value set here reads back the same there
(to the CC's 7-bit resolution).

One control is no knob: `chords` (a chord chart's text or file, "" for none) is parsed on
the sender's thread (a bad chart is a SteerError; the chart in use stays) and travels on
the same queue as a livejam.chart.ChartChange, which the performer thread hands over.
"""
from __future__ import annotations

from typing import Callable

from livejam.config import DaemonConfig

CONTROLS = ("temperature", "density", "range", "mode", "reset", "panic", "end_phrase", "harmony", "grid", "chords")


class SteerError(ValueError):
    """A control that does not exist, is not mapped, or a value out of range: one line."""


def _scale(name: str, x: float, lo: float, hi: float, top: float | None = None) -> int:
    """`x` on the CC scale lo..hi (0..127); a value outside lo..top (top: hi, or the knob's last
    value where the scale's 127 falls short of it) is refused, the sender gets /livejam/error,
    rather than being quietly clamped to the end of the knob."""
    top = hi if top is None else top
    if not lo <= x <= top:
        raise SteerError(f"{name}: {x:g} is out of range: expected {lo:g}..{top:g}")
    return max(0, min(127, round((x - lo) / (hi - lo) * 127)))


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
        if name == "temperature":  # 0.05 .. 1.5
            number, value = self.cc.temperature, _scale(name, self._number(name, values), 0.05, 1.5)
        elif name == "density":  # -2 .. +2
            number, value = self.cc.density, _scale(name, self._number(name, values), -2.0, 2.0 - 4.0 / 128, top=2.0)
        elif name in ("range", "pitch_range", "pitch_centre"):
            nums = [self._as_float(name, v) for v in values]
            if len(nums) not in (1, 2):
                raise SteerError(f"{name}: expected CENTRE or LO HI (MIDI notes)")
            centre = nums[0] if len(nums) == 1 else (nums[0] + nums[1]) / 2
            number, value = self.cc.pitch_centre, _scale(name, centre, 30.0, 90.0)
        elif name == "mode":
            mode = str(values[0]).lower() if values else ""
            if mode not in ("call", "duet", "0", "1", "0.0", "1.0"):
                raise SteerError("mode: expected call or duet (or 0/1)")
            number, value = self.cc.mode, 127 if mode in ("duet", "1", "1.0") else 0
        elif name in ("reset", "panic"):
            number, value = getattr(self.cc, name), 127
        elif name == "end_phrase":
            number, value = self.phrase_end_cc, 127
        elif name == "harmony":  # 0 (off) .. 1 (strong lean to the chord's tones)
            number, value = self.cc.harmony, _scale(name, self._number(name, values), 0.0, 1.0)
        elif name == "grid":  # 0 (off) .. 1 (strong lean of onsets to the 16th grid)
            number, value = self.cc.grid, _scale(name, self._number(name, values), 0.0, 1.0)
        else:
            raise SteerError(f"unknown control {name!r}; known: {', '.join(CONTROLS)}")
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
