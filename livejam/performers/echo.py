"""A trivial performer that plays back what it hears after a fixed delay.

Not a musical engine: it is the "immediate echo path" the benchmark uses to
measure the engine's own input-to-output overhead, and a known-output
performer for end-to-end tests. Implements the Performer protocol.
"""
from __future__ import annotations

from livejam.events import TimedNote
from livejam.performers.base import PerformerBase


class EchoPerformer(PerformerBase):
    def __init__(self, delay_s: float = 0.0, transpose: int = 0):
        self.delay_s = delay_s
        self.transpose = transpose
        self._out: list[TimedNote] = []
        self._sounding: set[int] = set()

    def hear(self, note: TimedNote, now: float) -> None:
        pitch = note.pitch + self.transpose
        if not 0 <= pitch <= 127:
            return
        if note.velocity > 0:
            self._sounding.add(pitch)
        else:
            self._sounding.discard(pitch)
        self._out.append(TimedNote(now + self.delay_s, 0, pitch, note.velocity))

    def control(self, number: int, value: int, now: float) -> None:
        pass

    def poll(self, now: float) -> list[TimedNote]:
        out, self._out = self._out, []
        return out

    def next_wakeup(self, now: float) -> float:
        return now if self._out else now + 0.25

    def close(self, now: float) -> list[TimedNote]:
        offs = [TimedNote(now, 0, p, 0) for p in sorted(self._sounding)]
        self._sounding.clear()
        return offs
