"""The machine's output half: which of its notes sound, since when and in which chord they began.

Every note the performer hands out goes through here, so a note-on is never sent for a sounding
note nor a note-off for a silent one, and close() ends whatever still sounds.
"""
from __future__ import annotations

from typing import Callable

from livejam.events import TimedNote


class MachineNotes:
    def __init__(self, emit: Callable[[TimedNote], None]):
        self._emit = emit  # hands a note out (the performer's queue)
        self.sounding: dict[tuple[int, int], float] = {}  # (part, pitch) -> note-on time
        self.onset_chord: dict[tuple[int, int], int] = {}  # (part, pitch) -> the chord it began in
        self.last_on = float("-inf")  # time of the last note-on

    def __bool__(self) -> bool:
        return bool(self.sounding)

    def start(self, part: int, pitch: int, t: float, velocity: int, chord: int) -> None:
        key = (part, pitch)
        if key not in self.sounding:
            self.sounding[key] = self.last_on = t
            self.onset_chord[key] = chord
            self._emit(TimedNote(t, part, pitch, velocity))

    def end(self, part: int, pitch: int, t: float, send: bool = True) -> bool:
        """End a sounding note (with `send`, hand its note-off out); False if it was not sounding."""
        if self.sounding.pop((part, pitch), None) is None:
            return False
        self.onset_chord.pop((part, pitch), None)
        if send:
            self._emit(TimedNote(t, part, pitch, 0))
        return True

    def close(self, now: float) -> list[TimedNote]:
        """The note-offs of everything sounding (not handed out: the caller sends them)."""
        offs = [TimedNote(max(now, t), part, pitch, 0) for (part, pitch), t in sorted(self.sounding.items())]
        self.sounding.clear()
        self.onset_chord.clear()
        return offs
