"""What every performer shares: the protocol, the phrase detector, the human's note.

A performer is the decision loop: what the machine hears, and what it plays and
when. Contract between the daemon and a performer (the performer thread calls
these; a performer never reads a clock, every method gets `now` from the daemon's Clock,
so the same performer runs on the real clock and on a virtual one):

- `hear(note, now)`: a human note-on/off (velocity 0 = off); part 0; `note.time`
  is its arrival time on the clock.
- `control(number, value, now)`: a control change from the human.
- `poll(now)`: what the machine decided since the last poll, in time order:
  `TimedNote`s with absolute play times (>= now, at most `lookahead_s` ahead;
  part 0 continues the human's part, part 1 is the machine's own part) and
  `Cancel` (barge-in: drop every machine event queued but not yet sent and end
  the machine's sounding notes now).
- `next_wakeup(now)`: when it wants `poll` again (always a finite time).
- `close(now)`: end of session; note-offs for anything it considers sounding.
- `set_chart(chart)`: the user's chord chart (livejam.chart.ChordChart, None: no chart), at
  the start of a session and whenever /livejam/chords changes it; and two attributes the
  status display reads without locks: `chord` (the chord id it plays in, 0 = N) and
  `chord_source` ("chart", "heard", "predicted", "listening" or ""). `PerformerBase` below
  gives the defaults of these and of the other optional parts (beats, counters, constraints).

A performer must not raise on odd input (note-offs without note-ons, repeated
note-ons, unknown controllers): the daemon feeds it whatever the port delivers.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol, runtime_checkable

from livejam.events import TimedNote

log = logging.getLogger(__name__)

HUMAN_PART = 0
MACHINE_PART = 1
# Controllers that mean "everything off" from the human's side (all sound off,
# reset all controllers, all notes off): the keys the detector holds are gone.
ALL_OFF_CCS = (120, 121, 123)


@dataclass(frozen=True)
class Cancel:
    """Barge-in: drop every queued machine event, end the machine's sounding notes now."""

    time: float


@runtime_checkable
class Performer(Protocol):
    def hear(self, note: TimedNote, now: float) -> None: ...

    def control(self, number: int, value: int, now: float) -> None: ...

    def poll(self, now: float) -> list[TimedNote | Cancel]: ...

    def next_wakeup(self, now: float) -> float: ...

    def close(self, now: float) -> list[TimedNote]: ...


class PerformerBase:
    """The optional half of the performer protocol, with defaults, so the daemon, simulate and
    the status display call and read without probing: a performer that follows no chords keeps
    the chart it is given and reports no chord; one that keeps its own time ignores the live beat
    clock; one without sampling constraints or step times shows none."""

    chart = None  # livejam.chart.ChordChart | None
    chord: int = 0  # livejam.harmony chord id the performer plays in; 0 = N
    chord_source: str = ""  # "chart", "heard", "predicted", "listening" or "" (none)
    mode: str = "call"
    follows_live_beats = False  # True: count its events in the live beat clock's beats (set_beats)
    constraints = None  # the sampling constraints the knobs move (livejam.engine.Constraints), if any
    step_ms: Sequence[float] = ()  # recent feed + sample times (ms), if it steps a model
    counters: Mapping[str, int] = MappingProxyType({})  # its own counters (a performer sets a dict)

    def set_chart(self, chart) -> None:
        self.chart = chart

    def follow_clock(self, beat) -> None:
        """The live beat clock, for tempo sync (snapping to its grid); most performers keep their own time."""

    def set_beats(self, beats) -> None:
        """The beat map its events are counted in (simulate: the file's; live: the beat clock)."""

    def settings(self) -> dict:
        """What the status screen shows of its knobs now: those of its sampling constraints."""
        c = self.constraints
        if c is None:
            return {}
        return {"temperature": round(c.temperature, 2), "density": round(c.density, 2),
                "harmony": round(c.harmony, 2), "grid": round(c.grid, 2), "range": tuple(c.pitch_range),
                "key": c.key or "-"}


def human_note(note: TimedNote, n_pitch: int) -> TimedNote | None:
    """A heard note as the human's part with its velocity clamped to MIDI's range; None off the keyboard."""
    if not 0 <= note.pitch < n_pitch:
        return None
    return TimedNote(note.time, HUMAN_PART, note.pitch, max(0, min(127, note.velocity)))


@dataclass(frozen=True)
class Phrase:
    """A finished human phrase: first note-on to last activity."""

    start: float
    end: float
    note_count: int

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)


class PhraseDetector:
    """Tracks the human's keys and cuts the input into phrases. Pure: no clock, no I/O.

    A phrase starts with a note-on while no phrase is open and ends when all
    keys are up and `silence_s` has passed since the last note event (seen by
    `poll`), or at once on `end_phrase` (the phrase-end CC), keys held or not.
    """

    def __init__(self, silence_s: float = 0.5, held_key_timeout_s: float = 10.0):
        self.silence_s = silence_s
        self.held_key_timeout_s = held_key_timeout_s
        self.held: set[int] = set()
        self.last_activity: float | None = None
        self.phrase_start: float | None = None  # None while no phrase is open
        self.note_count = 0

    @property
    def in_phrase(self) -> bool:
        return self.phrase_start is not None

    def note(self, note: TimedNote) -> tuple[bool, bool]:
        """Feed a human note; returns (valid, started_phrase).

        valid is False for a note-off of a key not held and a repeated note-on
        of a held key (garbage the model should not learn from); started_phrase
        is True when this note-on opened a new phrase (the human plays again).
        """
        self.last_activity = note.time
        if note.velocity <= 0:
            if note.pitch not in self.held:
                return False, False
            self.held.discard(note.pitch)
            return True, False
        if note.pitch in self.held:
            return False, False
        self.held.add(note.pitch)
        started = self.phrase_start is None
        if started:
            self.phrase_start = note.time
            self.note_count = 0
        self.note_count += 1
        return True, started

    def release_all(self, now: float) -> None:
        """The human's all-notes-off: no key counts as held any more."""
        self.held.clear()
        self.last_activity = now

    def deadline(self) -> float | None:
        """When silence would end the open phrase (None: no phrase open)."""
        if self.phrase_start is None or self.last_activity is None:
            return None
        if self.held:
            return self.last_activity + self.held_key_timeout_s
        return self.last_activity + self.silence_s

    def poll(self, now: float) -> Phrase | None:
        """The phrase that silence ended by `now`, if any."""
        deadline = self.deadline()
        if deadline is None or now < deadline:
            return None
        if self.held:
            log.warning("keys %s held %.1f s with no input: taken as released", sorted(self.held),
                        self.held_key_timeout_s)
            self.held.clear()
        return self._close(self.last_activity)

    def end_phrase(self, now: float) -> Phrase | None:
        """Explicit end (the phrase-end CC); None if no phrase is open."""
        if self.phrase_start is None:
            return None
        return self._close(max(now, self.last_activity or now))

    def _close(self, end: float) -> Phrase:
        phrase = Phrase(self.phrase_start, end, self.note_count)
        self.phrase_start = None
        self.note_count = 0
        return phrase
