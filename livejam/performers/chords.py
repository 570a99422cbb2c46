"""The chord the machine plays in, from one precedence: a chart > the human's chords > a prediction.

A pianist does not read the harmony after the fact: chords in pop music change about every two
beats, so a reader one beat late is wrong a third of the time. The chord is therefore *given*
(a chart on the beat clock, which knows the next change), *heard* (the human plays harmony: a
left hand or a pad, read from their sounding notes), or *predicted* ahead for the coming
harmonic-rhythm slot from the melody so far (the model's chord head, trained with the context's
chords hidden so that it infers rather than copies), and then committed for the whole slot so the
harmony does not flicker. At a cold start it listens before committing (`listening`: the key's
tonic triad when the key is known, else no chord, so only key and model guide the notes).

A memory of this song (ProgressionMemory) recalls the chords a section had the last time its
melody came: chords come back with their section, beyond the model's context window.

Owned by the performer's thread; no clock reads (times are passed in).
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from livejam.config import ChordConfig
from livejam.harmony import NO_CHORD, QUALITIES, HeardChords, chord_id, chord_tones
from livejam.performers.base import PerformerBase
from livejam.performers.memory import ProgressionMemory

# what each source means for the context rows the model reads: a given or heard chord is the
# truth the model saw in training windows with chords; a predicted one is its own guess, so the
# rows carry N there (as in the training windows whose chords were hidden) and it keeps inferring
TRUSTED = ("chart", "heard")


def tonic_chord(key: str | None) -> int:
    """The tonic triad of a key like "C:major" / "A:minor" (livejam key names); N without a key."""
    if not key:
        return NO_CHORD
    from livejam.engine.keys import parse_key

    try:
        tonic, scale = parse_key(key)
    except ValueError:
        return NO_CHORD
    minor = scale in ("minor", "harmonic_minor", "melodic_minor", "dorian", "phrygian", "minor_pentatonic", "blues")
    return chord_id(tonic, QUALITIES.index("min" if minor else "maj"))


class ChordKeeper:
    """Which chord sounds at a time, and from which source (see the module docstring).

    `predict(t)` is the performer's: log-probabilities of the chord at time t (the chord head for a
    machine event placed then), or None when the model cannot say."""

    def __init__(self, config: ChordConfig):
        self.config = config
        self.chart = None
        self.heard = HeardChords(min_pcs=config.heard_min_pcs)
        self.memory = ProgressionMemory() if config.memory else None
        self.chord, self.source = NO_CHORD, ""
        self.first_heard: float | None = None  # the human's first note-on: the listening window's start
        # slot index on the beat map -> (its chord, how many human notes had come when it was predicted)
        self._slots: dict[int, tuple[int, int]] = {}
        self._heard_count = 0

    def set_chart(self, chart) -> None:
        self.chart = chart

    def reset(self) -> None:
        self.heard.reset()
        self.first_heard = None
        self._slots.clear()
        self._heard_count = 0
        if self.memory is not None:
            self.memory.reset()

    def hear(self, pitch: int, velocity: int, t: float, beats) -> None:
        """A human note-on (velocity > 0) or note-off at time t."""
        self._heard_count += 1
        if velocity > 0:
            self.heard.note_on(pitch, t)
            if self.first_heard is None:
                self.first_heard = t
            if self.memory is not None:
                self.memory.note(beats.beat_at(t), pitch)
        else:
            self.heard.note_off(pitch, t)

    def context_chord(self) -> int:
        """The chord field of the rows fed to the model now (heard and played alike)."""
        return self.chord if self.source in TRUSTED else NO_CHORD

    def at(self, t: float, beats, key: str | None, predict: Callable[[float], np.ndarray | None],
           now: float | None = None) -> int:
        """The chord at time t (`now`, or a note's coming time); sets `chord` and `source`."""
        chord, source = self._resolve(t, beats, key, predict, t if now is None else now)
        self.chord, self.source = chord, source
        return chord

    def _resolve(self, t, beats, key, predict, now) -> tuple[int, str]:
        if self.chart is not None:
            chord, _ = self.chart.at(beats, t)
            return chord, "chart"
        if self.config.heard:
            chord, confidence = self.heard.read(t)
            if chord != NO_CHORD and confidence >= self.config.heard_confidence:
                return chord, "heard"
        beat = beats.beat_at(t)
        if self.first_heard is None or beat - beats.beat_at(self.first_heard) < self.config.listen_beats:
            return tonic_chord(key), "listening"
        slot = math.floor(beat / self.config.slot_beats + 1e-6)
        start = beats.time_at(slot * self.config.slot_beats)
        # A slot's chord is predicted when first asked (ahead of its first note) and again while it
        # has not begun whenever more of the melody came; from its start on it holds (no flicker).
        known = self._slots.get(slot)
        if known is None or (known[1] != self._heard_count and now < start):
            logp = predict(max(t, start))
            if logp is None:
                return (known or (NO_CHORD, 0))[0], "predicted"
            if self.memory is not None:
                logp = self.memory.adjust(logp, slot * self.config.slot_beats, self.config.slot_beats)
            known = self._slots[slot] = (int(np.argmax(logp)), self._heard_count)
            for old in [k for k in self._slots if k < slot - 8]:
                del self._slots[old]
        return known[0], "predicted"

    def tones(self) -> frozenset[int]:
        return chord_tones(self.chord) if self.chord != NO_CHORD else frozenset()


class FollowsChords(PerformerBase):
    """The chord part of the performer protocol (performers/base.py) for a performer that keeps a
    ChordKeeper in `self.chords` and one pending prediction in `self.pending`."""

    chords: ChordKeeper

    @property
    def chord(self) -> int:
        """The chord the machine plays in now (harmony id: the status display, the quality measures)."""
        return self.chords.chord

    @property
    def chord_source(self) -> str:
        return self.chords.source

    @property
    def chart(self):
        return self.chords.chart

    def set_chart(self, chart) -> None:
        """Play in this chart's chords (None: hear or predict them); what was predicted under the old
        chords is drawn again."""
        self.chords.set_chart(chart)
        self.pending = None
