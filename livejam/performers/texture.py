"""The machine's texture: how long its notes last and which end when the harmony moves.

A pianist keeps 2-4 voices, ends a note within its beat and chord, and lifts what no longer fits
when the chord changes. v0.2 held a 5-voice pad through the changes, and the melody walked into
its held notes (a semitone clash sounded 4x as long as with the real pianist).
"""
from __future__ import annotations

import math

from livejam.config import PerformerConfig
from livejam.harmony import NO_CHORD, chord_tones


def note_cap_ms(config: PerformerConfig, bpm: float | None) -> float:
    """The longest a machine note may last: max_note_beats (of 120 bpm in free time), at most max_note_s."""
    beat_ms = 60000.0 / (bpm or 120.0)
    return min(config.max_note_s * 1000.0, config.max_note_beats * beat_ms)


def off_chord(sounding, onset_chord: dict, chord: int) -> list[tuple[int, int]]:
    """The sounding (part, pitch) notes to end because the chord changed to `chord` and they are not
    its tones (a note struck in this very chord is the player's choice, a passing tone: it stays)."""
    if chord == NO_CHORD:
        return []
    tones = chord_tones(chord)
    return sorted(key for key in sounding if key[1] % 12 not in tones and onset_chord.get(key, NO_CHORD) != chord)


def release_off_chord(notes, chord: int, beats, now: float, ahead: float, last_event: float, slot_beats: float):
    """End the machine's notes (performers.output.MachineNotes) that `chord`, sounding by `ahead`,
    leaves out, at the change: the start of the harmonic-rhythm slot holding `ahead` (chart and
    predicted chords change on that grid), never before now or the last event. Returns the
    (part, pitch, note-off time) of each, so the model hears the ends too. Everything after that is
    sampled after the change, in the new chord: a release cannot repeat itself."""
    stale = off_chord(notes.sounding, notes.onset_chord, chord)
    change = beats.time_at(math.floor(beats.beat_at(ahead) / slot_beats + 1e-6) * slot_beats)
    off = max(now, last_event, change)
    return [(part, pitch, notes.end(part, pitch, off)) for part, pitch in stale]


def release_overdue(notes, cap_s: float, now: float, ahead: float, last_event: float):
    """End the machine's notes held `cap_s` or longer by `ahead`, when the first of them is due (not
    before now or the last event): the length cap holds even when the model is not asked for an
    event in time (a duet waits for the human's turn). Returns the (part, pitch, note-off time) of each."""
    due = sorted(key for key, t0 in notes.sounding.items() if t0 + cap_s <= ahead)
    if not due:
        return []
    off = max(now, last_event, min(notes.sounding[key] for key in due) + cap_s)
    return [(part, pitch, notes.end(part, pitch, off)) for part, pitch in due]


def next_release(notes, cap_s: float, beats, ahead: float, slot_beats: float) -> float:
    """The first time after `ahead` at which the two releases above could end a note: a sounding
    note reaching its length cap, or the next harmonic-rhythm slot (a chord change). The performer
    looks again a lookahead before it, so the note-off is stamped ahead of its time, not at the
    moment it was noticed (it would leave late by however long that poll took)."""
    if not notes.sounding:
        return float("inf")
    caps = [t0 + cap_s for t0 in notes.sounding.values() if t0 + cap_s > ahead]
    change = beats.time_at((math.floor(beats.beat_at(ahead) / slot_beats + 1e-6) + 1) * slot_beats)
    return min(caps + [change])


def release_wakeup(notes, config, beats, now: float, slot_beats: float) -> float:
    """When the performer (PerformerConfig `config`) must poll next for `next_release`: a lookahead
    before it, and never sooner than 1 ms from now (no busy loop on a release it already saw)."""
    cap_s = note_cap_ms(config, beats.bpm_at(now)) / 1000.0
    release = next_release(notes, cap_s, beats, now + config.lookahead_s, slot_beats)
    return max(now + 1e-3, release - config.lookahead_s)
