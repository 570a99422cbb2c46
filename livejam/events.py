"""The event representation shared by training, export and the live daemon (format 2).

This module is the contract. An event is one model position, a
row of 7 token ids (COLUMNS):
- part: 0 the human's part, 1 the other part, `vocab.bos_part` the start marker.
- dt: time since the previous event in ticks of 1/ticks_per_beat beat (12: 16ths
  are 3 ticks, triplet 8ths 4), 0..max_dt_ticks.
- chord: the chord sounding at the event (livejam.harmony ids, 0 = N).
- pitch: MIDI note 0..127.  vel: 0 = note-off, 1..32 velocity bins.
- pos: the event's position in its bar in ticks; `vocab.pos_unknown` in free time.
- tempo: 0 = free time, else a log-spaced tempo bin.
The first five are predicted (heads, in that order); pos and tempo are context.

Time goes through a BeatMap (livejam.beatmap): beats, not seconds, so a pattern
looks the same at any tempo. Free time is FreeTime() (120 bpm nominal, no bar).
Beats are quantised *cumulatively*: the coder holds the quantised beat of the
last event and each dt is chosen against it, so rounding never accumulates into
drift; every event is within half a tick of its true beat. A gap longer than
max_dt_ticks is clipped and the coder resyncs to the true beat (snapped to the
tick lattice), so the decoded timeline runs early by the excess but never drifts.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from livejam.beatmap import BeatMap, FreeTime
from livejam.harmony import N_CHORDS

FORMAT_VERSION = 2
COLUMNS = ("part", "dt", "chord", "pitch", "vel", "pos", "tempo")
# a row's columns by name; the first five are also the model's heads (FIELDS), in the same order
PART, DT, CHORD, PITCH, VEL, POS, TEMPO = range(len(COLUMNS))
FIELDS = COLUMNS[:5]  # predicted, in the heads' order
# The next event's known fields each head is conditioned on: cond = row[COND_COLUMNS],
# head k reads the first COND_COUNTS[k] entries (pos is known once dt is: the beat map says it).
COND_COLUMNS = (PART, DT, POS, CHORD, PITCH)
COND_COUNTS = (0, 1, 3, 4, 5)
MELODY_TRACKS = {"MELODY", "BRIDGE"}  # POP909's lead tracks


@dataclass(frozen=True)
class Vocab:
    """Sizes and bins of the event fields; stored in model metadata."""

    n_parts: int = 2  # playable parts; id n_parts is the start-of-sequence marker
    ticks_per_beat: int = 12
    max_dt_ticks: int = 96  # 8 beats
    n_chord: int = N_CHORDS  # 1 + 12 roots * 15 qualities
    n_pitch: int = 128
    n_vel: int = 33  # 0 = note-off, 1..32 = velocity bins of width 4
    max_bar_ticks: int = 96  # bars up to 8 beats have positions; pos id max_bar_ticks = unknown
    n_tempo: int = 33  # 0 = free time, 1..n_tempo-1 log-spaced bins
    tempo_min_bpm: float = 40.0
    tempo_max_bpm: float = 240.0

    def __post_init__(self):
        # read from a model's metadata: a bad value must fail here, with the model's name, not as a
        # math domain error at the first tempo
        counts = ("n_parts", "ticks_per_beat", "max_dt_ticks", "n_chord", "n_pitch", "n_vel", "max_bar_ticks",
                  "n_tempo")
        bad = [f"{name}={getattr(self, name)!r}" for name in counts if not getattr(self, name) >= 1]
        if not 0 < self.tempo_min_bpm < self.tempo_max_bpm < math.inf:
            bad.append(f"tempo bounds {self.tempo_min_bpm!r}..{self.tempo_max_bpm!r}")
        if bad:
            raise ValueError("vocabulary out of range: " + ", ".join(bad))

    @property
    def bos_part(self) -> int:
        return self.n_parts

    @property
    def part_size(self) -> int:
        return self.n_parts + 1

    @property
    def n_dt(self) -> int:
        return self.max_dt_ticks + 1

    @property
    def n_pos(self) -> int:
        return self.max_bar_ticks + 1

    @property
    def pos_unknown(self) -> int:
        return self.max_bar_ticks

    @property
    def field_sizes(self) -> tuple[int, ...]:
        """Vocabulary size of each column (COLUMNS order)."""
        return (self.part_size, self.n_dt, self.n_chord, self.n_pitch, self.n_vel, self.n_pos, self.n_tempo)

    @property
    def head_sizes(self) -> tuple[int, ...]:
        """Vocabulary size of each predicted field (FIELDS order)."""
        return self.field_sizes[: len(FIELDS)]

    @property
    def cond_sizes(self) -> tuple[int, ...]:
        """Vocabulary size of each conditioning entry (COND_COLUMNS order)."""
        return tuple(self.field_sizes[c] for c in COND_COLUMNS)

    def bos_row(self, tempo: int = 0) -> tuple[int, ...]:
        return (self.bos_part, 0, 0, 0, 0, self.pos_unknown, tempo)

    def tempo_bin(self, bpm: float | None) -> int:
        """bpm -> 1..n_tempo-1 (equal steps of log tempo, clipped to the range); None -> 0 (free time)."""
        if bpm is None or not bpm > 0:
            return 0
        n = self.n_tempo - 1
        x = math.log(bpm / self.tempo_min_bpm) / math.log(self.tempo_max_bpm / self.tempo_min_bpm)
        return 1 + min(n - 1, max(0, int(x * n)))

    def tempo_bpm(self, tempo: int) -> float | None:
        """A tempo bin's centre (geometric mean of its edges); None for free time."""
        if tempo <= 0:
            return None
        n = self.n_tempo - 1
        return self.tempo_min_bpm * (self.tempo_max_bpm / self.tempo_min_bpm) ** ((tempo - 0.5) / n)

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
    """Streaming converter between timed notes and event rows, in beats through a BeatMap.

    Holds the quantised beat of the last event (`beat`), so encoding and decoding
    share one timeline: the live performer encodes what it hears and decodes what
    the model plays through the same object, and no rounding drift builds up.
    """

    def __init__(self, vocab: Vocab | None = None, beats: BeatMap | None = None, start_time: float = 0.0):
        self.vocab = vocab or Vocab()
        self.beats = beats if beats is not None else FreeTime(start_time)
        self.beat = self._snap(self.beats.beat_at(start_time))

    def reset(self, start_time: float, beats: BeatMap | None = None) -> None:
        if beats is not None:
            self.beats = beats
        self.beat = self._snap(self.beats.beat_at(start_time))

    def follow(self, t: float) -> None:
        """Move the quantised beat on to time t, rounding up to the next tick: the timeline follows
        what was played later than planned (a late commit, a grid snap, a note held to its minimum
        length) and never falls back behind it (rounding down let the next events land before it)."""
        tpb = self.vocab.ticks_per_beat
        self.beat = max(self.beat, math.ceil(self.beats.beat_at(t) * tpb - 1e-9) / tpb)

    def _snap(self, beat: float) -> float:
        # the coder's beat stays on the tick lattice of the map, so positions are exact ticks
        tpb = self.vocab.ticks_per_beat
        return round(beat * tpb) / tpb

    @property
    def time(self) -> float:
        """The quantised time of the last event (seconds)."""
        return self.beats.time_at(self.beat)

    def pos_at(self, beat: float) -> int:
        """Bar position id of a (quantised) beat: ticks into the bar, pos_unknown without a bar."""
        v = self.vocab
        bar = self.beats.bar_at(beat)
        if bar is None:
            return v.pos_unknown
        pos_beats, beats_per_bar = bar
        bar_ticks = beats_per_bar * v.ticks_per_beat
        if beats_per_bar <= 0 or bar_ticks > v.max_bar_ticks:
            return v.pos_unknown
        return int(round(pos_beats * v.ticks_per_beat)) % bar_ticks

    def tempo_now(self, t: float) -> int:
        return self.vocab.tempo_bin(self.beats.bpm_at(t))

    def encode(self, note: TimedNote, chord: int = 0) -> tuple[int, ...]:
        """Row for a heard/played note with the chord sounding then; advances the quantised beat."""
        v = self.vocab
        target = self.beats.beat_at(note.time)
        ticks = int(round((target - self.beat) * v.ticks_per_beat))
        if ticks > v.max_dt_ticks:  # a rest longer than the last bin: clip, resync to the true beat
            dt = v.max_dt_ticks
            self.beat = self._snap(target)
        else:
            dt = max(0, ticks)  # never backwards: a note a hair before the coder's beat is at dt 0
            self.beat += dt / v.ticks_per_beat
        return (note.part, dt, chord, note.pitch, v.vel_bin(note.velocity), self.pos_at(self.beat),
                self.tempo_now(note.time))

    def decode(self, row: Sequence[int]) -> TimedNote:
        """Timed note for a row (columns 0..4 are read); advances the quantised beat."""
        part, dt, _, pitch, vel = (int(x) for x in row[:5])
        self.beat += dt / self.vocab.ticks_per_beat
        return TimedNote(self.beats.time_at(self.beat), part, pitch, self.vocab.velocity(vel))

    def next_pos(self, dt: int) -> int:
        """Bar position id of an event placed dt ticks after the last one (the chord head's cond)."""
        return self.pos_at(self.beat + dt / self.vocab.ticks_per_beat)

    def peek_time(self, dt: int) -> float:
        """Absolute time an event with this dt would land at (no state change)."""
        return self.beats.time_at(self.beat + dt / self.vocab.ticks_per_beat)


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


def notes_to_events(notes: Iterable[Note], vocab: Vocab | None = None, beats: BeatMap | None = None,
                    chords=None, bos: bool = True) -> np.ndarray:
    """Notes -> (N, 7) int64 rows (COLUMNS).

    beats: the BeatMap of the notes' timeline (None: free time from the first note).
    chords: anything with `at(seconds) -> chord id` (livejam.harmony.ChordTrack); None = all N.
    The chord of an event is read at its quantised time, so a note played a hair
    before a chord change that the grid puts on the change gets the new chord.
    With `bos` the first row is the start marker; the coder starts at the first note.
    """
    vocab = vocab or Vocab()
    timed = notes_to_timed(notes)
    start = timed[0].time if timed else 0.0
    coder = EventCoder(vocab, beats if beats is not None else FreeTime(start), start)
    rows = [vocab.bos_row(coder.tempo_now(start))] if bos else []
    for t in timed:
        row = coder.encode(t)
        if chords is not None:
            row = row[:2] + (chords.at(coder.time + 1e-6),) + row[3:]
        rows.append(row)
    return np.asarray(rows, dtype=np.int64).reshape(-1, len(COLUMNS))


def events_to_timed(events: np.ndarray, vocab: Vocab | None = None, beats: BeatMap | None = None,
                    start_time: float = 0.0) -> list[TimedNote]:
    """Rows -> timed note-ons/offs; start markers are skipped (their dt still counts).

    Decode with the BeatMap (and start time) the rows were encoded with."""
    vocab = vocab or Vocab()
    coder = EventCoder(vocab, beats if beats is not None else FreeTime(start_time), start_time)
    out = []
    for row in np.asarray(events).reshape(-1, len(COLUMNS)):
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


def events_to_notes(events: np.ndarray, vocab: Vocab | None = None, beats: BeatMap | None = None,
                    start_time: float = 0.0) -> list[Note]:
    return timed_to_notes(events_to_timed(events, vocab, beats, start_time))


# --- parts -------------------------------------------------------------------
# Training (tools/prepare_data.py) and evaluation (livejam evaluate/quality) split a
# file's tracks into parts through these, so "the human's part" means the same thing.

def lead_tracks(tracks: Sequence[tuple[str, Sequence[Note]]]) -> list[int]:
    """Indices of the lead (melody) tracks: POP909's MELODY/BRIDGE, else the highest track."""
    names = [name.upper() for name, _ in tracks]
    lead = [i for i, name in enumerate(names) if name in MELODY_TRACKS]
    if not lead and tracks:
        lead = [max(range(len(tracks)), key=lambda i: float(np.mean([n.pitch for n in tracks[i][1]])))]
    return lead


def part_variants(tracks: Sequence[tuple[str, Sequence[Note]]]) -> list[list[Note]]:
    """The part assignments one file is trained under; the first is the one a musician plays.

    Several tracks: melody -> part 0 with the rest -> part 1, the swap, everything as part 0
    (the model learns "continue this part" and "accompany that part"), and the melody alone
    (with chords hidden in training, the chord head learns to hear the harmony in a melody:
    the chord listener of a live duet reads a melody and nothing else). One track:
    all part 0, and a right hand / left hand split at middle C.
    """
    every = [n for _, notes in tracks for n in notes]
    if len(tracks) == 1:
        return [_with_part(every, 0), [replace(n, part=0 if n.pitch >= 60 else 1) for n in every]]
    lead = set(lead_tracks(tracks))
    melody = [n for i in sorted(lead) for n in tracks[i][1]]
    accomp = [n for i, (_, notes) in enumerate(tracks) if i not in lead for n in notes]
    return [_with_part(melody, 0) + _with_part(accomp, 1), _with_part(accomp, 0) + _with_part(melody, 1),
            _with_part(every, 0), _with_part(melody, 0)]


def assign_parts(tracks: Sequence[tuple[str, Sequence[Note]]]) -> list[Note]:
    """Lead -> part 0 (the human's), the rest -> part 1: the first of part_variants."""
    return part_variants(tracks)[0] if tracks else []


def _with_part(notes: Iterable[Note], part: int) -> list[Note]:
    return [replace(n, part=part) for n in notes]
