"""The machine's output half: which of its notes sound, since when and in which chord they began.

Every note the performer hands out goes through here, so a note-on is never sent for a sounding
note nor a note-off for a silent one, and close() ends whatever still sounds.
"""
from __future__ import annotations

from typing import Callable

from livejam.events import TimedNote


class MachineNotes:
    def __init__(self, emit: Callable[[TimedNote], None], min_note_s: float = 0.0):
        self._emit = emit  # hands a note out (the performer's queue)
        # a note ends at least this long after it began: an end at its very start would reach the
        # wire first (the scheduler sends note-offs before note-ons at one instant) and the note stick
        self.min_note_s = max(min_note_s, 1e-3)
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

    def end(self, part: int, pitch: int, t: float, send: bool = True) -> float | None:
        """End a sounding note at t, or min_note_s after it began if that is later (with `send`, hand
        its note-off out); the time it ends, or None if it was not sounding."""
        on = self.sounding.pop((part, pitch), None)
        if on is None:
            return None
        self.onset_chord.pop((part, pitch), None)
        t = max(t, on + self.min_note_s)
        if send:
            self._emit(TimedNote(t, part, pitch, 0))
        return t

    def close(self, now: float) -> list[TimedNote]:
        """The note-offs of everything sounding (not handed out: the caller sends them)."""
        offs = [TimedNote(max(now, t + self.min_note_s), part, pitch, 0)
                for (part, pitch), t in sorted(self.sounding.items())]
        self.sounding.clear()
        self.onset_chord.clear()
        return offs
