"""The chord a part implies, beat by beat, against the annotated chords; baselines and memory.

In each annotated beat [b_i, b_i+1) of the window, the pitch classes a part sounds are weighed
by how long they sound inside the beat (a note held through the beat weighs a whole beat, a
16th a quarter of it). The *implied chord* is the template among 12 roots x TEMPLATE_QUALITIES
that maximises

    (weight inside the template) - (weight outside it) - TONE_COST x (total weight) x (tones)

(the last term: a bigger chord has to explain more; C-E-G is C, not Cmaj7 or Am7). Ties go to
the template whose root sounds the most, then to quality order, then root order C..B. `implied_root` is the share of the
beats that have an annotated chord (not N) and some sound of the part in which the implied
root is the annotated root (the annotated chord of a beat: the one at its midpoint).

Baselines give a chord per beat without playing: the key's tonic triad held constant (`tonic`),
the best major/minor triad of the melody's last two beats (`reader2`), the annotated chord one
beat late (`late1`); they are scored on every beat with an annotated chord.

`memory`: whether the part's root is right more often where the annotated progression of the
last two bars (the roots of the 8 beats ending at this one) already came earlier in the song.

Pure python + numpy: no torch.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from livejam.events import Note
from livejam.harmony import INTERVALS, QUALITIES, chord_id, split_id
from livejam.measure.music import chord_at, ratio, span_at

TEMPLATE_QUALITIES = ("maj", "min", "dim", "aug", "sus4", "7", "maj7", "min7")
TRIADS = ("maj", "min")  # the reader baseline's chords
TONE_COST = 0.05
MEMORY_BEATS = 8  # two 4/4 bars of chord roots
MEMORY_FROM_S = 90.0  # memory is scored on the beats this far into the window and later


def _templates(qualities: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tones (T, 12) float, chord ids (T,), roots (T,)): in `qualities` order, then root C..B."""
    tones, ids, roots = [], [], []
    for q in qualities:
        for root in range(12):
            row = np.zeros(12)
            row[[(root + i) % 12 for i in INTERVALS[q]]] = 1.0
            tones.append(row)
            ids.append(chord_id(root, QUALITIES.index(q)))
            roots.append(root)
    return np.array(tones), np.array(ids), np.array(roots)


_TEMPLATES = _templates(TEMPLATE_QUALITIES)
_TRIADS = _templates(TRIADS)


def best_chord(weights: np.ndarray, templates: tuple = _TEMPLATES) -> int:
    """The template chord id with the best score for 12 pitch-class weights; 0 (N) for no weight.

    Ties (common in thin textures: a root and fifth are covered as well by the root's triad as by
    the fifth's sus4, a lone note by every chord holding it) go to the template whose root sounds
    the most, then to the first quality in the list (maj before sus4), then the lowest root."""
    total = float(weights.sum())
    if total <= 0:
        return 0
    tones, ids, roots = templates
    inside = tones @ weights
    score = inside - (total - inside) - TONE_COST * total * tones.sum(axis=1)
    tied = np.flatnonzero(score >= score.max() - 1e-9 * total)
    root_weight = weights[roots[tied]]
    return int(ids[tied[int(np.argmax(root_weight))]])  # argmax: the first of the heaviest roots


def pc_weights(notes: Sequence[Note], t0: float, t1: float) -> np.ndarray:
    """Seconds each pitch class sounds within [t0, t1)."""
    w = np.zeros(12)
    for n in notes:
        overlap = min(n.end, t1) - max(n.start, t0)
        if overlap > 0:
            w[n.pitch % 12] += overlap
    return w


def beat_spans(beat_times: Sequence[float], lo: float, hi: float) -> list[tuple[int, float, float]]:
    """(index into beat_times, start, end) of each annotated beat that starts in [lo, hi), the
    last one cut at hi."""
    out = []
    for i in range(len(beat_times) - 1):
        if lo <= beat_times[i] < hi:
            out.append((i, float(beat_times[i]), float(min(beat_times[i + 1], hi))))
    return out


def implied(notes: Sequence[Note], chords, beat_times: Sequence[float], lo: float, hi: float
            ) -> list[tuple[float, int, int]]:
    """(beat start, implied chord id or 0 when the part is silent, annotated chord id) per beat."""
    return [(t0, best_chord(pc_weights(notes, t0, t1)), chord_at(chords, (t0 + t1) / 2))
            for _, t0, t1 in beat_spans(beat_times, lo, hi)]


def root_right(beats: Sequence[tuple[float, int, int]]) -> float | None:
    """Share of beats with an annotated chord and a guess (both not N) whose roots agree."""
    scored = [(g, a) for _, g, a in beats if g and a]
    return ratio(sum(split_id(g)[0] == split_id(a)[0] for g, a in scored), len(scored))


def implied_root(notes: Sequence[Note], chords, beat_times: Sequence[float], lo: float, hi: float
                 ) -> float | None:
    return root_right(implied(notes, chords, beat_times, lo, hi))


def tonic_guess(keys, chords, beat_times: Sequence[float], lo: float, hi: float) -> list[tuple[float, int, int]]:
    """The annotated key's tonic major/minor triad at each beat. `keys`: (start, end, (tonic pc,
    minor)) spans."""
    out = []
    for _, t0, t1 in beat_spans(beat_times, lo, hi):
        key = span_at(keys, (t0 + t1) / 2, None)
        guess = chord_id(key[0], QUALITIES.index("min" if key[1] else "maj")) if key else 0
        out.append((t0, guess, chord_at(chords, (t0 + t1) / 2)))
    return out


def reader2_guess(melody: Sequence[Note], chords, beat_times: Sequence[float], lo: float, hi: float
                  ) -> list[tuple[float, int, int]]:
    """A ten-line causal reader: at each beat, the best major/minor triad (by the template score)
    of the melody's pitch classes over the two beats before it, weighted by time sounding; it
    keeps its last reading through a silence (N before the first)."""
    out, guess = [], 0
    for i, t0, t1 in beat_spans(beat_times, lo, hi):
        w = pc_weights(melody, float(beat_times[max(i - 2, 0)]), t0)
        guess = best_chord(w, _TRIADS) or guess
        out.append((t0, guess, chord_at(chords, (t0 + t1) / 2)))
    return out


def late1_guess(chords, beat_times: Sequence[float], lo: float, hi: float) -> list[tuple[float, int, int]]:
    """The annotated chord of the beat before: the chord known perfectly, one beat late."""
    out = []
    for i, t0, t1 in beat_spans(beat_times, lo, hi):
        before = chord_at(chords, (float(beat_times[i - 1]) + t0) / 2) if i > 0 else 0
        out.append((t0, before, chord_at(chords, (t0 + t1) / 2)))
    return out


def memory(beats: Sequence[tuple[float, int, int]], lo: float, from_s: float = MEMORY_FROM_S,
           window: int = MEMORY_BEATS) -> dict:
    """Root right (as `root_right`) on the beats from lo + from_s on, split by whether the
    annotated roots of the `window` beats ending at this one (N as its own symbol) occurred as a
    whole, earlier and not overlapping, in the song (`memory_seen`) or not (`memory_new`);
    `memory_gain` = seen - new. `beats` is `implied(...)`'s list over the whole scored span."""
    roots = [split_id(a)[0] if a else -1 for _, _, a in beats]
    first_end: dict[tuple, int] = {}  # a progression -> the beat index where it first ended
    seen, new = [], []
    for i in range(window - 1, len(beats)):
        key = tuple(roots[i - window + 1: i + 1])
        came = key in first_end and first_end[key] <= i - window
        first_end.setdefault(key, i)
        if beats[i][0] >= lo + from_s:
            (seen if came else new).append(beats[i])
    a, b = root_right(seen), root_right(new)
    return {"memory_seen": a, "memory_new": b, "memory_gain": a - b if a is not None and b is not None else None,
            "memory_beats_seen": len(seen), "memory_beats_new": len(new)}
