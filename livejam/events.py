"""The event representation shared by training, export and the live daemon.

An event is one position of the model: (part, dt, pitch, vel), all token ids.
- part: which voice plays it. 0 is the part the human plays, 1 the other part
  (accompaniment, or the melody when the human accompanies); `vocab.bos_part`
  marks the start of a sequence (the model's first position).
- dt: the time since the previous event, binned (`vocab.dt_ms` holds each bin's
  value): fine near 0 for chords and fast runs, coarser up to a few seconds.
- pitch: MIDI note number 0..127.
- vel: 0 is a note-off; 1..n_vel-1 are velocity bins of a note-on.

Times are quantised *cumulatively*: each dt is chosen against the timeline
rebuilt so far, so rounding never accumulates into drift; every event's time
is within half a bin of the truth. A rest longer than the last bin is clipped
to it (the decoded timeline then runs early by the excess; the encoder resyncs
to the true time, so it does not drift).
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

FORMAT_VERSION = 1


def _default_dt_ms() -> tuple[int, ...]:
    # 5 ms steps up to 100 ms (chord spread, fast runs), 10 ms up to 1 s (note
    # values at any tempo), 100 ms up to 4 s (rests).
    return tuple(range(0, 100, 5)) + tuple(range(100, 1000, 10)) + tuple(range(1000, 4001, 100))


@dataclass(frozen=True)
class Vocab:
    """Sizes and bin values of the event fields; stored in model metadata."""

    n_parts: int = 2  # playable parts; id n_parts is the start-of-sequence marker
    dt_ms: tuple[int, ...] = field(default_factory=_default_dt_ms)
    n_pitch: int = 128
    n_vel: int = 33  # 0 = note-off, 1..32 = velocity bins of width 4

    @property
    def bos_part(self) -> int:
        return self.n_parts

    @property
    def part_size(self) -> int:
        return self.n_parts + 1

    @property
    def n_dt(self) -> int:
        return len(self.dt_ms)

    @property
    def field_sizes(self) -> tuple[int, int, int, int]:
        """Vocabulary size of (part, dt, pitch, vel), in the heads' order."""
        return (self.part_size, self.n_dt, self.n_pitch, self.n_vel)

    def dt_seconds(self, dt_bin: int) -> float:
        return self.dt_ms[dt_bin] / 1000.0

    def dt_bin(self, seconds: float) -> int:
        """Nearest bin to a duration (clipped to the bin range)."""
        ms = max(0.0, seconds * 1000.0)
        values = self.dt_ms
        i = bisect.bisect_left(values, ms)
        if i >= len(values):
            return len(values) - 1
        if i > 0 and ms - values[i - 1] <= values[i] - ms:
            return i - 1
        return i

    def vel_bin(self, velocity: int) -> int:
        """MIDI velocity 1..127 -> bin 1..n_vel-1; 0 (note-off) stays 0."""
        if velocity <= 0:
            return 0
        width = 128 / (self.n_vel - 1)
        return min(self.n_vel - 1, 1 + int((min(velocity, 127) - 1) // width))

    def velocity(self, vel_bin: int) -> int:
        """Bin -> a MIDI velocity at the bin's centre (0 for note-off)."""
        if vel_bin <= 0:
            return 0
        width = 128 / (self.n_vel - 1)
        return max(1, min(127, int(round((vel_bin - 1) * width + width / 2))))


@dataclass(frozen=True)
class Note:
    """A note on an absolute timeline in seconds."""

    start: float
    end: float
    pitch: int
    velocity: int
    part: int = 0


@dataclass(frozen=True)
class TimedNote:
    """One note-on (velocity > 0) or note-off (velocity 0) at an absolute time."""

    time: float
    part: int
    pitch: int
    velocity: int


class EventCoder:
    """Streaming converter between timed notes and event tokens.

    Holds the quantised timeline (`time`), so encoding and decoding share one
    clock: the live performer encodes what it hears and decodes what the model
    plays through the same object, and no rounding drift builds up.
    """

    def __init__(self, vocab: Vocab | None = None, start_time: float = 0.0):
        self.vocab = vocab or Vocab()
        self.time = start_time  # the quantised time of the last event

    def reset(self, start_time: float) -> None:
        self.time = start_time

    def encode(self, note: TimedNote) -> tuple[int, int, int, int]:
        """Token for a heard/played note; advances the quantised clock."""
        v = self.vocab
        gap = note.time - self.time
        dt = v.dt_bin(gap)
        self.time += v.dt_seconds(dt)
        if gap > v.dt_seconds(v.n_dt - 1):  # a rest longer than the last bin is clipped: resync the timeline
            self.time = note.time
        return (note.part, dt, note.pitch, v.vel_bin(note.velocity))

    def decode(self, token: Sequence[int]) -> TimedNote:
        """Timed note for a token; advances the quantised clock."""
        part, dt, pitch, vel = (int(x) for x in token)
        self.time += self.vocab.dt_seconds(dt)
        return TimedNote(self.time, part, pitch, self.vocab.velocity(vel))

    def peek_time(self, dt_bin: int) -> float:
        """Absolute time a token with this dt would land at (no state change)."""
        return self.time + self.vocab.dt_seconds(dt_bin)


def notes_to_timed(notes: Iterable[Note]) -> list[TimedNote]:
    """Note-ons and note-offs in playing order, with overlaps made playable.

    At equal times note-offs come first (a re-struck note ends, then starts).
    A note-on for a pitch already sounding in its part first ends that note,
    and the later stale note-off is dropped: each part is monophonic per pitch,
    like a keyboard.
    """
    raw = []
    for i, n in enumerate(notes):
        end = max(n.end, n.start + 0.001)  # zero-length notes still get an off after their on
        raw.append((n.start, 1, n.part, n.pitch, max(1, min(127, n.velocity)), i))
        raw.append((end, 0, n.part, n.pitch, 0, i))
    raw.sort(key=lambda r: r[:4])
    sounding: dict[tuple[int, int], int] = {}  # (part, pitch) -> id of the note sounding there
    out: list[TimedNote] = []
    for time, is_on, part, pitch, vel, note_id in raw:
        key = (part, pitch)
        if is_on:
            if key in sounding:  # re-strike: end the sounding note first
                out.append(TimedNote(time, part, pitch, 0))
            sounding[key] = note_id
            out.append(TimedNote(time, part, pitch, vel))
        elif sounding.get(key) == note_id:  # an off of a note ended by a re-strike is stale
            del sounding[key]
            out.append(TimedNote(time, part, pitch, 0))
    return out


def notes_to_events(notes: Iterable[Note], vocab: Vocab | None = None, bos: bool = True) -> np.ndarray:
    """Notes -> (N, 4) int64 array of (part, dt, pitch, vel) tokens.

    With `bos` the first row is the start marker and the timeline starts at the
    first note; otherwise at 0.
    """
    vocab = vocab or Vocab()
    timed = notes_to_timed(notes)
    start = timed[0].time if (timed and bos) else 0.0
    coder = EventCoder(vocab, start)
    rows = [(vocab.bos_part, 0, 0, 0)] if bos else []
    rows.extend(coder.encode(t) for t in timed)
    return np.asarray(rows, dtype=np.int64).reshape(-1, 4)


def events_to_timed(events: np.ndarray, vocab: Vocab | None = None, start_time: float = 0.0) -> list[TimedNote]:
    """Tokens -> timed note-ons/offs; start markers are skipped (their dt still counts)."""
    vocab = vocab or Vocab()
    coder = EventCoder(vocab, start_time)
    out = []
    for row in np.asarray(events).reshape(-1, 4):
        t = coder.decode(row)
        if t.part < vocab.n_parts:
            out.append(t)
    return out


def timed_to_notes(timed: Iterable[TimedNote]) -> list[Note]:
    """Pair note-ons with their note-offs; notes still open at the end close at the last time."""
    open_notes: dict[tuple[int, int], TimedNote] = {}
    notes: list[Note] = []
    last = 0.0
    for t in timed:
        last = max(last, t.time)
        key = (t.part, t.pitch)
        if key in open_notes:
            on = open_notes.pop(key)
            notes.append(Note(on.time, t.time, on.pitch, on.velocity, on.part))
        if t.velocity > 0:
            open_notes[key] = t
    for on in open_notes.values():
        notes.append(Note(on.time, last, on.pitch, on.velocity, on.part))
    notes.sort(key=lambda n: (n.start, n.part, n.pitch))
    return notes


def events_to_notes(events: np.ndarray, vocab: Vocab | None = None, start_time: float = 0.0) -> list[Note]:
    return timed_to_notes(events_to_timed(events, vocab, start_time))


# --- MIDI files (mido) -------------------------------------------------------

def read_midi_tracks(path: str | Path) -> list[tuple[str, list[Note]]]:
    """(track name, notes) for each track of a MIDI file that has notes; times in seconds.

    Raises ValueError with a one-line reason for a file mido cannot read.
    """
    import mido

    try:
        mid = mido.MidiFile(str(path), clip=True)
    except Exception as e:  # mido raises many types for corrupt files
        raise ValueError(f"{path}: not a readable MIDI file ({type(e).__name__}: {e})") from None
    tempo_map = _tempo_map(mid)
    tracks = []
    for index, track in enumerate(mid.tracks):
        name = track.name or f"track{index}"
        notes = _track_notes(track, tempo_map, mid.ticks_per_beat)
        if notes:
            tracks.append((name, notes))
    return tracks


def _tempo_map(mid) -> list[tuple[int, float, int]]:
    """(tick, seconds at tick, tempo from tick) segments from all tracks' set_tempo."""
    changes = []
    for track in mid.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "set_tempo":
                changes.append((tick, msg.tempo))
    changes.sort()
    segments = [(0, 0.0, 500000)]
    for tick, tempo in changes:
        t0, s0, tempo0 = segments[-1]
        seconds = s0 + (tick - t0) * tempo0 / 1e6 / mid.ticks_per_beat
        if tick == t0:
            segments[-1] = (t0, s0, tempo)
        else:
            segments.append((tick, seconds, tempo))
    return segments


def _track_notes(track, tempo_map, tpb: int) -> list[Note]:
    ticks = [seg[0] for seg in tempo_map]

    def seconds(tick: int) -> float:
        t0, s0, tempo = tempo_map[bisect.bisect_right(ticks, tick) - 1]
        return s0 + (tick - t0) * tempo / 1e6 / tpb

    tick = 0
    open_notes: dict[tuple[int, int], list[tuple[float, int]]] = {}
    notes = []
    for msg in track:
        tick += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            open_notes.setdefault((msg.channel, msg.note), []).append((seconds(tick), msg.velocity))
        elif msg.type in ("note_off", "note_on"):
            stack = open_notes.get((msg.channel, msg.note))
            if stack:
                start, vel = stack.pop(0)
                notes.append(Note(start, seconds(tick), msg.note, vel))
    end = seconds(tick)
    for (_, pitch), stack in open_notes.items():
        notes.extend(Note(start, max(end, start), pitch, vel) for start, vel in stack)
    notes.sort(key=lambda n: (n.start, n.pitch))
    return notes


def write_midi(path: str | Path, tracks: Sequence[tuple[str, Sequence[Note]]], channels: Sequence[int] | None = None,
               ticks_per_beat: int = 480, tempo: int = 500000) -> None:
    """Write named tracks of notes to a type-1 MIDI file (one channel per track)."""
    import mido

    mid = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat)
    meta = mido.MidiTrack()
    meta.append(mido.MetaMessage("set_tempo", tempo=tempo, time=0))
    mid.tracks.append(meta)
    for i, (name, notes) in enumerate(tracks):
        channel = channels[i] if channels else i % 16
        track = mido.MidiTrack()
        track.append(mido.MetaMessage("track_name", name=name, time=0))
        timed = notes_to_timed(Note(n.start, n.end, n.pitch, n.velocity, 0) for n in notes)
        last_tick = 0
        for t in timed:
            tick = max(last_tick, int(round(mido.second2tick(max(0.0, t.time), ticks_per_beat, tempo))))
            kind = "note_on" if t.velocity > 0 else "note_off"
            track.append(mido.Message(kind, channel=channel, note=t.pitch, velocity=t.velocity, time=tick - last_tick))
            last_tick = tick
        mid.tracks.append(track)
    mid.save(str(path))
