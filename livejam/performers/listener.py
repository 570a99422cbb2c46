"""The chord listener: the event model over the human's notes alone, predicting the coming chord.

The duet context holds the machine's own notes too, and those follow the chords the machine
guessed: read from there, a wrong guess talks the model into itself. The listener runs the same
network over the human's events alone with the chord fields hidden, as in the melody-alone
training sequences (tools/prepare_data: part_variants), and its chord head answers "in which
chord would a melody note at time t sound". A melody fills the window slowly, so its 1,024
events reach minutes back into the song.

One backbone step per heard event (~0.5-1 ms on one CPU thread), run with the rest of a burst
(Engine.defer); owned by the performer's thread.
"""
from __future__ import annotations

import numpy as np

from livejam.engine.kv import Engine, live_context
from livejam.events import CHORD, EventCoder, TimedNote
from livejam.harmony import NO_CHORD

# The listener's context (events of the human alone): as long as the training windows reach.
LISTEN_CONTEXT = 1024
HUMAN_PART = 0


class ChordListener:
    def __init__(self, model):
        self.vocab = model.info.vocab
        self.engine = Engine(model, defer_shadow=True, context=live_context(model.info.max_len, LISTEN_CONTEXT))
        self.coder: EventCoder | None = None
        self._timeline: tuple | None = None  # (beat map, its generation) the coder counts on
        self._last = 0.0  # time of the last event heard (seconds: survives a renumbering of the beats)

    def warm_up(self, steps: int = 8) -> None:
        for _ in range(steps):
            self.engine.feed(self.vocab.bos_row())
            self.engine.logits(CHORD, (HUMAN_PART, 0, self.vocab.pos_unknown))
        self.reset()

    def reset(self) -> None:
        self.engine.reset()
        self.coder = None

    def idle(self, max_steps: int = 2) -> None:
        self.engine.idle(max_steps=max_steps)

    def hear(self, note: TimedNote, beats) -> None:
        """A human note-on or note-off, counted on `beats` (the performer's beat map)."""
        timeline = (id(beats), beats.generation)  # a new map, or the live clock renumbered
        if self.coder is None or timeline != self._timeline:
            start = self._last if self.coder is not None else note.time
            self.coder = EventCoder(self.vocab, beats, min(start, note.time))
            self._timeline = timeline
        c = self.coder
        row = c.encode(TimedNote(max(note.time, c.time), HUMAN_PART, note.pitch, note.velocity), NO_CHORD)
        self.engine.defer(np.asarray(row, np.int64))
        self._last = c.time

    def predict(self, t: float) -> np.ndarray | None:
        """Log-probabilities of the chord at time t (the chord head for a melody note placed then;
        N excluded: something is always played in some chord); None before anything was heard."""
        c = self.coder
        if c is None:
            return None
        v = self.vocab
        ticks = int(round((c.beats.beat_at(t) - c.beat) * v.ticks_per_beat))
        dt = min(max(ticks, 0), v.max_dt_ticks)
        logits = self.engine.logits(CHORD, (HUMAN_PART, dt, c.next_pos(dt))).astype(np.float64)
        logits[NO_CHORD] = -np.inf
        return logits - np.logaddexp.reduce(logits[np.isfinite(logits)])
