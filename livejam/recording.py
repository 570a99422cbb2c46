"""Session recording: everything heard and played goes to a MIDI file a DAW can use.

The file starts a little before the first note (a bar line of the beat clock, else 1 s before it),
carries the beat clock's tempo and meter (a `--bpm` session lands on the DAW's grid; a followed or
incoming clock is written as the tempo changes it had), and keeps the parts apart: tracks `human`,
`machine` and `count-in`, every note on the channel it was played on.

Appends only (list.append is atomic under the GIL), so the performer thread
(human) and the scheduler thread (machine) can both record without a lock.
The path is checked before the session starts (`check_writable`); the daemon
rewrites the file every few seconds and at the end, on every exit path, each
time to a temporary file renamed over the last one: a crash or a full disk
loses at most the last seconds, never the file.
"""
from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import replace
from pathlib import Path

from livejam.events import TimedNote, timed_to_notes
from livejam.midi.files import write_midi
from livejam.midi.spec import Message

log = logging.getLogger(__name__)

LEAD_IN_BEATS = 1.0  # the file starts at the bar line at least this far before the first note ...
LEAD_IN_S = 1.0  # ... or this long before it in free time


class Recorder:
    """`beats`: the session's beat clock (a BeatMap with bpm_at and bar_at), None: free time.
    `click_channel`: the count-in's channel (its clicks get a track of their own)."""

    def __init__(self, t0: float, beats=None, click_channel: int | None = None):
        self.t0 = t0  # clock time of the session start (times below are relative to it)
        self.beats = beats
        self.click_channel = click_channel
        self.human: list[TimedNote] = []  # part = the MIDI channel it came on
        self.machine: list[TimedNote] = []
        self.clicks: list[TimedNote] = []
        self.tempo: list[tuple[float, float]] = []  # (time, bpm) where the beat clock's tempo changed
        self.origin: float | None = None  # the file's time 0, set at the first note
        self.meter: int | None = None

    @staticmethod
    def _note(msg: Message, t: float) -> TimedNote | None:
        if msg.kind == "note_on" and msg.velocity > 0:
            return TimedNote(t, msg.channel, msg.note, msg.velocity)  # part = channel: pairs ons/offs per channel
        if msg.kind in ("note_on", "note_off"):
            return TimedNote(t, msg.channel, msg.note, 0)
        return None

    def record_human(self, msg: Message, t: float) -> None:
        note = self._note(msg, t - self.t0)
        if note is not None:
            self._timeline(note, t)
            self.human.append(note)

    def record_machine(self, msg: Message, t: float) -> None:
        note = self._note(msg, t - self.t0)
        if note is None:
            return
        if note.part == self.click_channel:
            self.clicks.append(note)
            return
        self._timeline(note, t)
        self.machine.append(note)

    def _timeline(self, note: TimedNote, t: float) -> None:
        """The tempo in force at the note, and the file's start at the first one."""
        bpm = self.beats.bpm_at(t) if self.beats is not None else None
        if not self.tempo or bpm != self.tempo[-1][1]:  # two threads may both append a change: harmless
            self.tempo.append((note.time, bpm))
        if self.origin is None and note.velocity > 0:
            self.origin = self._start_before(t) - self.t0

    def _start_before(self, t: float) -> float:
        if self.beats is None or self.beats.bpm_at(t) is None:
            return t - LEAD_IN_S
        beat = self.beats.beat_at(t) - LEAD_IN_BEATS
        bar = self.beats.bar_at(beat)
        if bar is not None:
            self.meter = bar[1]
        return self.beats.time_at(beat - bar[0] if bar is not None else math.floor(beat))

    def empty(self) -> bool:
        """Nothing heard and nothing played: such a session is not worth a file."""
        return not self.human and not self.machine

    def save(self, path: str | Path) -> Path:
        path = Path(path).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        origin = self.origin or 0.0
        tracks = []
        for name, timed in (("human", self.human), ("machine", self.machine), ("count-in", self.clicks)):
            notes = timed_to_notes(sorted(list(timed), key=lambda n: n.time))  # a snapshot: the threads append
            notes = [replace(n, start=n.start - origin, end=n.end - origin) for n in notes if n.start >= origin - 1e-9]
            if notes or name != "count-in":
                tracks.append((name, notes))
        # the tempo at the file's start, then each change; free time (None) is written as 120 bpm
        tempo = [(t - origin, bpm or 120.0) for t, bpm in list(self.tempo)]
        before = [c for c in tempo if c[0] <= 0.0]
        tempo = before[-1:] + [c for c in tempo if c[0] > 0.0]
        if tempo:
            tempo[0] = (0.0, tempo[0][1])  # the lead-in is in the first note's tempo
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            write_midi(tmp, tracks, tempo_map=[(max(0.0, t), bpm) for t, bpm in tempo], meter=self.meter,
                       note_channels=True)
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
        log.info("session recorded to %s", path)
        return path


class RecordPathError(ValueError):
    """The recording cannot be written where asked (one-line message)."""


def check_writable(path: str | Path) -> None:
    """Raise RecordPathError unless a file can be written at `path` (creating its folder)."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise RecordPathError(f"--record {path}: is a directory")
    probe = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(probe, "wb") as f:
            f.write(b"MThd" + bytes(4096))  # some bytes, so a full disk says so now
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise RecordPathError(f"cannot record to {path}: {e.strerror or e}") from None
    finally:
        try:
            probe.unlink()
        except OSError:
            pass


def default_path(folder: str | Path) -> Path:
    """A fresh file name in `folder`, by start time (never overwrites a session)."""
    if not folder:
        from livejam.config import user_sessions_dir

        folder = user_sessions_dir()
    folder = Path(folder).expanduser()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = folder / f"session-{stamp}.mid"
    n = 1
    while path.exists():
        path = folder / f"session-{stamp}-{n}.mid"
        n += 1
    return path
