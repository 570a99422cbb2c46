"""Chords: the chord vocabulary of the event representation (the contract: livejam/events.py).

A chord id is 0 for N (no chord / unknown), else 1 + 15*root + quality, with the
root a pitch class (C = 0) and the quality an index into QUALITIES. Inversions
(`C:maj/3`) are dropped: the bass note does not change which tones fit.

Labels are POP909's (Harte-style `root:quality[(extensions)][/bass]`). A quality
that is not in the list is mapped to the nearest listed one by what it adds to a
triad or seventh chord (NEAREST below) - ninths, elevenths and thirteenths keep
their seventh chord, added tones keep their triad - and a label we cannot read
at all is N, so a surprising file never stops data preparation.

Pure python + numpy: the live daemon imports this (chord-tone bias, display).
"""
from __future__ import annotations

import bisect
import re
from pathlib import Path

import numpy as np

QUALITIES = ("maj", "min", "dim", "aug", "sus2", "sus4", "7", "maj7", "min7", "hdim7", "dim7", "maj6", "min6",
             "7sus4", "minmaj7")
N_QUALITIES = len(QUALITIES)
N_CHORDS = 1 + 12 * N_QUALITIES  # 181
NO_CHORD = 0

# semitones above the root of each quality's tones
INTERVALS = {
    "maj": (0, 4, 7), "min": (0, 3, 7), "dim": (0, 3, 6), "aug": (0, 4, 8), "sus2": (0, 2, 7), "sus4": (0, 5, 7),
    "7": (0, 4, 7, 10), "maj7": (0, 4, 7, 11), "min7": (0, 3, 7, 10), "hdim7": (0, 3, 6, 10), "dim7": (0, 3, 6, 9),
    "maj6": (0, 4, 7, 9), "min6": (0, 3, 7, 9), "7sus4": (0, 5, 7, 10), "minmaj7": (0, 3, 7, 11),
}

# Other spellings and qualities outside the list -> a listed quality. POP909 writes the
# 7sus4 chord as `sus4(b7)`; the rest is for other annotated data (Harte's shorthands).
NEAREST = {
    "": "maj", "M": "maj", "m": "min", "sus4(b7)": "7sus4", "7sus": "7sus4", "6": "maj6", "m6": "min6",
    "maj9": "maj7", "maj11": "maj7", "maj13": "maj7", "9": "7", "11": "7", "13": "7", "min9": "min7",
    "min11": "min7", "min13": "min7", "m7": "min7", "minmaj9": "minmaj7", "dim9": "dim7", "aug7": "7",
    "hdim": "hdim7", "m7b5": "hdim7", "add9": "maj", "maj(9)": "maj", "min(9)": "min", "madd9": "min",
    "sus2(b7)": "7sus4", "sus4(9)": "sus4", "5": "maj", "1": "maj",
}

PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_LETTERS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_ROOT = re.compile(r"^([A-Ga-g])([#b]*)$")


def root_pc(name: str) -> int | None:
    """`C`, `C#`, `Bb`, `F##` -> pitch class 0..11; None if not a note name."""
    m = _ROOT.match(name.strip())
    if not m:
        return None
    return (_LETTERS[m.group(1).upper()] + m.group(2).count("#") - m.group(2).count("b")) % 12


def quality_index(quality: str) -> int | None:
    """A quality string -> index into QUALITIES (via NEAREST); None when unknown."""
    q = NEAREST.get(quality, quality)
    if q in INTERVALS:
        return QUALITIES.index(q)
    base = quality.split("(", 1)[0]  # extensions in parentheses add tones: keep the base chord
    if base != quality:
        return quality_index(base)
    return None


def chord_id(root: int, quality: int) -> int:
    return 1 + N_QUALITIES * (root % 12) + quality


def parse_chord(label: str) -> int:
    """A POP909 / Harte label (`G:maj`, `E:min7`, `C:maj/3`, `Bb:sus4(b7)`, `N`) -> chord id (0 = N)."""
    label = label.strip()
    if not label or label in ("N", "X"):
        return NO_CHORD
    root_text, _, quality = label.partition(":")
    quality = quality.split("/", 1)[0]  # inversion dropped
    root = root_pc(root_text)
    q = quality_index(quality)
    if root is None or q is None:
        return NO_CHORD
    return chord_id(root, q)


def split_id(cid: int) -> tuple[int, int] | None:
    """Chord id -> (root pitch class, quality index); None for N."""
    if cid <= 0:
        return None
    return (cid - 1) // N_QUALITIES, (cid - 1) % N_QUALITIES


def chord_tones(cid: int) -> frozenset[int]:
    """Pitch classes of the chord (empty for N)."""
    parts = split_id(cid)
    if parts is None:
        return frozenset()
    root, q = parts
    return frozenset((root + i) % 12 for i in INTERVALS[QUALITIES[q]])


def chord_name(cid: int) -> str:
    parts = split_id(cid)
    if parts is None:
        return "N"
    return f"{PITCH_NAMES[parts[0]]}:{QUALITIES[parts[1]]}"


def transpose_ids(ids: np.ndarray, semitones: int) -> np.ndarray:
    """Chord ids moved by `semitones` (N stays N); any integer array."""
    ids = np.asarray(ids)
    root = (ids - 1) // N_QUALITIES
    moved = 1 + N_QUALITIES * ((root + semitones) % 12) + (ids - 1) % N_QUALITIES
    return np.where(ids > 0, moved, ids).astype(ids.dtype)


def tone_table() -> np.ndarray:
    """(N_CHORDS, 12) bool: chord id -> which pitch classes are chord tones (row 0, N, is all False)."""
    table = np.zeros((N_CHORDS, 12), dtype=bool)
    for cid in range(1, N_CHORDS):
        table[cid, sorted(chord_tones(cid))] = True
    return table


class ChordTrack:
    """Chords over time (seconds): `at(t)` is the chord sounding at t, N outside every span."""

    def __init__(self, spans):
        spans = sorted((float(s), float(e), int(c)) for s, e, c in spans)
        self.starts = [s for s, _, _ in spans]
        self.spans = spans

    @classmethod
    def from_file(cls, path: str | Path) -> "ChordTrack":
        """POP909's chord_midi.txt: start, end (seconds), label; tab or space separated.
        ValueError (one line) on anything unreadable."""
        spans = []
        try:
            lines = Path(path).read_text().splitlines()
        except OSError as e:
            raise ValueError(f"{path}: cannot read the chord file ({e.strerror})") from None
        for number, line in enumerate(lines, 1):
            cols = line.split()
            if not cols or cols[0].startswith("#"):
                continue
            try:
                start, end = float(cols[0]), float(cols[1])
                label = cols[2] if len(cols) > 2 else "N"
            except (ValueError, IndexError):
                raise ValueError(f"{path}:{number}: not a chord line: {line.strip()[:40]!r}") from None
            spans.append((start, end, parse_chord(label)))
        return cls(spans)

    def at(self, t: float) -> int:
        i = bisect.bisect_right(self.starts, t) - 1
        if i < 0:
            return NO_CHORD
        start, end, cid = self.spans[i]
        return cid if t < end else NO_CHORD


# --- the chord the human plays --------------------------------------------------------------
# Template matching over 12 roots x QUALITIES on the pitch classes sounding now, scored as
# tools.quality scores a chord (weight inside - weight outside - TONE_COST x total x tones), with
# the bass and the common chords preferred. The weights below were set on hand-made chords
# (tests/events/test_heard.py): a root-position or inverted triad, a seventh, a melody note on top.
HEARD_LINGER_S = 0.15  # a note released this recently still sounds for the reader (a staccato left hand)
BASS_WEIGHT = 2.0  # the lowest sounding note weighs this much: it is usually the root
MELODY_WEIGHT = 0.5  # the top note, an octave or more above the next one down: a melody over the chord
TONE_COST = 0.05  # x total weight, per chord tone: a bigger chord has to explain more
ROOT_BONUS = 0.2  # x total weight, when the bass is the chord's root (Am7 over C6 on A-C-E-G, C6 on C-E-G-A)
RARE_COST = 0.15  # x total weight: sus, aug, sixths, dim7, 7sus4, minmaj7 only when they fit clearly better
COMMON_QUALITIES = ("maj", "min", "dim", "7", "maj7", "min7", "hdim7")


class HeardChords:
    """A causal reader of the chord the human plays, fed their note-ons and note-offs.

    `read(now)` -> (chord id, confidence) over the notes sounding at `now` and those released
    within HEARD_LINGER_S before it. Fewer than `min_pcs` distinct pitch classes: (0, 0.0).
    Confidence (0..1) is the share of the sounding weight the chosen chord's tones cover; the
    caller decides what is enough (ChordConfig.heard_confidence). Not thread-safe: the
    performer thread owns it.
    """

    _tables: tuple | None = None  # built once: (tones (N_CHORDS, 12), n tones, roots, rare)

    def __init__(self, min_pcs: int = 3, linger_s: float = HEARD_LINGER_S):
        self.min_pcs = min_pcs
        self.linger_s = linger_s
        self.sounding: dict[int, float] = {}  # pitch -> onset time
        self.released: dict[int, float] = {}  # pitch -> release time, for `linger_s`
        self.last = 0.0  # the latest event's time: `read()`'s default now

    def note_on(self, pitch: int, t: float) -> None:
        self.released.pop(pitch, None)
        self.sounding.setdefault(pitch, t)
        self.last = max(self.last, t)

    def note_off(self, pitch: int, t: float) -> None:
        if self.sounding.pop(pitch, None) is not None:
            self.released[pitch] = t
        self.last = max(self.last, t)

    def reset(self) -> None:
        self.sounding.clear()
        self.released.clear()

    def read(self, now: float | None = None) -> tuple[int, float]:
        now = self.last if now is None else now
        for p in [p for p, t in self.released.items() if t < now - self.linger_s]:
            del self.released[p]
        pitches = sorted(set(self.sounding) | set(self.released))
        if len({p % 12 for p in pitches}) < max(1, self.min_pcs):
            return NO_CHORD, 0.0
        w = np.zeros(12)
        for p in pitches:
            w[p % 12] += 1.0
        w[pitches[0] % 12] += BASS_WEIGHT - 1.0
        if len(pitches) > 2 and pitches[-1] - pitches[-2] >= 12:
            w[pitches[-1] % 12] -= 1.0 - MELODY_WEIGHT
        tones, n_tones, roots, rare = self._templates()
        total = float(w.sum())
        inside = tones @ w  # (N_CHORDS,)
        score = (2.0 * inside - total - TONE_COST * total * n_tones
                 + ROOT_BONUS * total * (roots == pitches[0] % 12) - RARE_COST * total * rare)
        score[NO_CHORD] = -np.inf
        best = int(np.argmax(score))
        return best, float(inside[best] / total)

    @classmethod
    def _templates(cls) -> tuple:
        if cls._tables is None:
            tones = tone_table().astype(np.float64)
            ids = np.arange(N_CHORDS)
            roots = np.where(ids > 0, (ids - 1) // N_QUALITIES, -1)
            rare = np.array([cid > 0 and QUALITIES[(cid - 1) % N_QUALITIES] not in COMMON_QUALITIES
                             for cid in ids], dtype=np.float64)
            cls._tables = (tones, tones.sum(axis=1), roots, rare)
        return cls._tables
