"""Musicianship measures over held notes: what sounds together, how long and across which chords.

Pure functions over lists of `livejam.events.Note` (start, end in seconds, pitch, velocity,
part) and annotations, each scored over a window [lo, hi) in seconds. A note counts where it
*sounds* (start <= t < end), not only where it is struck: a note held into the melody's next
note or across a chord change is heard, so it is measured. `tools.quality` is the driver.

Annotations: `chords` is a list of (start, end, chord id) spans (livejam.harmony ids, 0 = N,
time outside every span is N); `beats` a BeatMap-like object with `beat_at(t)`/`time_at(beat)`
(livejam.beatmap.BeatGrid).

Interval class of two pitches: the semitone distance folded into 0..6 (a minor 2nd and a major
7th in any octave are class 1, the tritone class 6). Class 1 is the clash a listener hears as
wrong between an accompaniment and a melody; the tritone is reported apart because in a 7th
chord under the melody it is often right.

Pure python + numpy: no torch, nothing live imports this.
"""
from __future__ import annotations

import bisect
from typing import Iterable, Iterator, Sequence

import numpy as np

from livejam.events import Note
from livejam.harmony import chord_tones

CLASH_IC = 1  # minor 2nd / major 7th
TRITONE_IC = 6
CARRY_S = 0.05  # a note still sounding this long after a chord change was carried across it
GRID_TOLERANCE_S = 0.035  # an onset this close to the 16th-note grid is on it


def interval_class(a: int, b: int) -> int:
    d = (a - b) % 12
    return min(d, 12 - d)


def ratio(a: float, b: float) -> float | None:
    """a / b, None when b is 0: nothing to score is not a zero."""
    return a / b if b else None


def span_at(spans: Sequence[tuple[float, float, object]], t: float, default=0):
    """The value of the (start, end, value) span holding t; `default` outside every span."""
    for start, end, value in spans:
        if start <= t < end:
            return value
    return default


def chord_at(chords: Sequence[tuple[float, float, int]], t: float) -> int:
    """The annotated chord id at t (0 = N, also between spans)."""
    return span_at(chords, t, 0)


def onsets_in(notes: Iterable[Note], lo: float, hi: float) -> list[Note]:
    return [n for n in notes if lo <= n.start < hi]


def sounding_at(notes: Iterable[Note], t: float) -> list[Note]:
    return [n for n in notes if n.start <= t < n.end]


def segments(a: Sequence[Note], b: Sequence[Note], lo: float, hi: float
             ) -> Iterator[tuple[float, list[int], list[int]]]:
    """Cut [lo, hi) where any note of `a` or `b` starts or ends; yield (length, pitches of `a`
    sounding, pitches of `b` sounding) for each piece (pitches repeated where notes double)."""
    edges = {lo, hi}
    for n in (*a, *b):
        if n.end > lo and n.start < hi and n.end > n.start:
            edges.update(t for t in (n.start, n.end) if lo < t < hi)
    cuts = sorted(edges)
    # each note covers a run of pieces: mark them, then read each piece's pitches
    pieces_a: list[list[int]] = [[] for _ in cuts[:-1]]
    pieces_b: list[list[int]] = [[] for _ in cuts[:-1]]
    for notes, pieces in ((a, pieces_a), (b, pieces_b)):
        for n in notes:
            if n.end <= lo or n.start >= hi or n.end <= n.start:
                continue
            first = bisect.bisect_right(cuts, max(n.start, lo)) - 1
            last = bisect.bisect_left(cuts, min(n.end, hi))
            for i in range(first, last):
                pieces[i].append(n.pitch)
    for i in range(len(cuts) - 1):
        yield cuts[i + 1] - cuts[i], pieces_a[i], pieces_b[i]


def clash_time(machine: Sequence[Note], melody: Sequence[Note], lo: float, hi: float) -> dict:
    """Of the time in [lo, hi) in which both parts sound, the share in which some pair (machine
    note, melody note) sounding together is interval class 1 (`clash_time`), and the share in
    which some pair is a tritone (`tritone_time`); `both_s`: that shared time in seconds.
    None when the parts never sound together."""
    both = clash = tritone = 0.0
    for length, ms, ns in segments(machine, melody, lo, hi):
        if not ms or not ns:
            continue
        both += length
        classes = {interval_class(p, q) for p in ms for q in ns}
        clash += length * (CLASH_IC in classes)
        tritone += length * (TRITONE_IC in classes)
    return {"clash_time": ratio(clash, both), "tritone_time": ratio(tritone, both), "both_s": both}


def onset_clash(machine: Sequence[Note], melody: Sequence[Note], lo: float, hi: float) -> dict:
    """`onset_clash`: the share of melody onsets in [lo, hi) at which some machine note sounding
    (start <= onset < end, so a machine note struck at the same instant counts) is interval
    class 1 from the melody note. `machine_onset_clash`: the share of machine onsets at which
    some melody note sounding is interval class 1 from it."""
    def share(struck: Sequence[Note], held: Sequence[Note]) -> float | None:
        onsets = onsets_in(struck, lo, hi)
        hits = sum(any(interval_class(n.pitch, h.pitch) == CLASH_IC for h in sounding_at(held, n.start))
                   for n in onsets)
        return ratio(hits, len(onsets))

    return {"onset_clash": share(melody, machine), "machine_onset_clash": share(machine, melody)}


def voices(machine: Sequence[Note], lo: float, hi: float) -> float | None:
    """Mean number of machine notes sounding at once, weighted by time, over the time in [lo, hi)
    in which at least one sounds. None when none sounds."""
    sounding = total = 0.0
    for length, ms, _ in segments(machine, (), lo, hi):
        if ms:
            sounding += length
            total += length * len(ms)
    return ratio(total, sounding)


def single_line(machine: Sequence[Note], lo: float, hi: float) -> float | None:
    """Share of the time in [lo, hi) in which machine notes sound that exactly one sounds: how
    much of the part is a line rather than chords. None when none sounds."""
    sounding = one = 0.0
    for length, ms, _ in segments(machine, (), lo, hi):
        if ms:
            sounding += length
            one += length * (len(ms) == 1)
    return ratio(one, sounding)


def note_lengths(machine: Sequence[Note], lo: float, hi: float, max_note_s: float = 4.0) -> dict:
    """Over the machine notes struck in [lo, hi): `median_note_s`, the median length (end - start,
    not clipped to the window) in seconds, and `capped_share`, the share that ran to the
    performer's watchdog cap (length >= max_note_s - 0.01)."""
    lengths = np.array([n.end - n.start for n in onsets_in(machine, lo, hi)])
    if not len(lengths):
        return {"median_note_s": None, "capped_share": None}
    return {"median_note_s": float(np.median(lengths)),
            "capped_share": float(np.mean(lengths >= max_note_s - 0.01))}


def chord_changes(chords: Sequence[tuple[float, float, int]], lo: float, hi: float) -> list[tuple[float, int]]:
    """(time, new chord id) of each annotated change in [lo, hi): a span that starts right where a
    span of a different chord ends, neither N (music starting after N, or stopping, is no change)."""
    out, previous, previous_end = [], 0, None
    for start, end, cid in sorted(chords):
        if previous_end is not None and start > previous_end + 1e-6:
            previous = 0  # a gap between spans is N
        if cid and previous and cid != previous and lo <= start < hi:
            out.append((start, cid))
        previous, previous_end = cid, end
    return out


def carried(machine: Sequence[Note], chords: Sequence[tuple[float, float, int]], lo: float, hi: float) -> dict:
    """Notes held across the annotated chord changes in [lo, hi).

    A machine note is carried across a change at time c when it was struck before c - CARRY_S
    and still sounds at c + CARRY_S (the tolerance on both sides: a note struck a hair early on
    the change belongs to the new chord). `carried`: carried notes per change; `carried_wrong`:
    the share of carried notes whose pitch class is not a tone of the new chord; `changes`: the
    number of changes. None where there is nothing to divide by."""
    changes = chord_changes(chords, lo, hi)
    count = wrong = 0
    for t, cid in changes:
        tones = chord_tones(cid)
        for n in machine:
            if n.start < t - CARRY_S and n.end > t + CARRY_S:
                count += 1
                wrong += (n.pitch % 12) not in tones
    return {"carried": ratio(count, len(changes)), "carried_wrong": ratio(wrong, count), "changes": len(changes)}


def notes_per_s(notes: Sequence[Note], lo: float, hi: float) -> float:
    """Onsets in [lo, hi) per second of the window (not of the melody's span)."""
    return len(onsets_in(notes, lo, hi)) / max(hi - lo, 1e-9)


def chord_tone(notes: Sequence[Note], chords: Sequence[tuple[float, float, int]], lo: float, hi: float
               ) -> float | None:
    """Share of onsets in [lo, hi) under an annotated chord (not N) whose pitch class is a tone of
    that chord."""
    hits = total = 0
    for n in onsets_in(notes, lo, hi):
        cid = chord_at(chords, n.start)
        if cid:
            total += 1
            hits += (n.pitch % 12) in chord_tones(cid)
    return ratio(hits, total)


def on_grid(notes: Sequence[Note], beats, lo: float, hi: float, tolerance: float = GRID_TOLERANCE_S
            ) -> float | None:
    """Share of onsets in [lo, hi) within `tolerance` seconds of the 16th-note grid (each
    annotated beat in four)."""
    onsets = onsets_in(notes, lo, hi)
    hits = sum(abs(beats.time_at(round(beats.beat_at(n.start) * 4) / 4) - n.start) <= tolerance for n in onsets)
    return ratio(hits, len(onsets))


def texture(machine: Sequence[Note], melody: Sequence[Note], chords: Sequence[tuple[float, float, int]], beats,
            lo: float, hi: float, max_note_s: float = 4.0) -> dict:
    """Every measure of this module for one part against the melody, in one dict."""
    out = {"notes": len(onsets_in(machine, lo, hi)), "notes_per_s": notes_per_s(machine, lo, hi),
           "chord_tone": chord_tone(machine, chords, lo, hi), "on_grid": on_grid(machine, beats, lo, hi),
           "voices": voices(machine, lo, hi)}
    out.update(clash_time(machine, melody, lo, hi))
    out.update(onset_clash(machine, melody, lo, hi))
    out.update(note_lengths(machine, lo, hi, max_note_s))
    out.update(carried(machine, chords, lo, hi))
    return out
