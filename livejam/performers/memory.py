"""A memory of this song's progression, beyond the model's context window.

Pop songs repeat their sections: a second verse and chorus bring back the first one's chords
under (nearly) the same melody. The model sees about the last 1,000 events, so the first chorus
is out of sight when the second comes. This memory keeps, for every harmonic-rhythm slot of the
session, the melody's pitch classes and a hindsight reading of the slot's chord (the chord the
prediction leaned to, corrected by the melody the slot turned out to hold). When the melody of
the last two slots matches an earlier place in the song, the chord that followed there is
recalled: its log-probability is raised before the next slot's chord is committed.

Pure numpy; owned by the performer's thread.
"""
from __future__ import annotations

import math

import numpy as np

from livejam.harmony import NO_CHORD, tone_table

MATCH_SLOTS = 2  # slots of melody compared (two half-bars in 4/4)
MIN_SIMILARITY = 0.85  # mean cosine of the compared slots' pitch-class histograms
RECALL_NATS = 2.5  # how far a full recall raises the remembered chord's log-probability
HINDSIGHT_NATS = 1.0  # weight of the slot's melody fit against the prediction, in hindsight
MIN_GAP_SLOTS = 4  # an "earlier place" at least this far back (not the slot's own neighbours)
# slots remembered (the oldest forgotten first): ~17 minutes of 2-beat slots at 120 bpm, a long song; a
# session of hours must not grow it, nor the search over it that every prediction runs, without end
MAX_SLOTS = 512


class ProgressionMemory:
    def __init__(self):
        self._tones = tone_table().astype(np.float64)  # (n_chord, 12)
        self.reset()

    def reset(self) -> None:
        self.pcs: dict[int, np.ndarray] = {}  # slot -> (12,) onset counts of the human's pitch classes
        self.predicted: dict[int, np.ndarray] = {}  # slot -> the log-probabilities it was committed from
        self.slot_beats = 2.0
        self.recalls = 0  # how often a recall changed the committed chord (a counter for the curious)

    def _slot(self, beat: float) -> int:
        return math.floor(beat / self.slot_beats + 1e-6)

    def note(self, beat: float, pitch: int) -> None:
        h = self.pcs.setdefault(self._slot(beat), np.zeros(12))
        h[pitch % 12] += 1.0
        _forget_oldest(self.pcs)

    def hindsight(self, slot: int) -> int:
        """The chord of a past slot, read with its whole melody known."""
        logp = self.predicted.get(slot)
        h = self.pcs.get(slot)
        if logp is None:
            return NO_CHORD
        if h is None or h.sum() == 0:
            return int(np.argmax(logp))
        share = h / h.sum()
        fit = self._tones @ share - 0.5 * ((1 - self._tones) @ share)  # (n_chord,) in -0.5..1
        fit[NO_CHORD] = -0.5
        return int(np.argmax(logp + HINDSIGHT_NATS * 3 * fit))

    def adjust(self, logp: np.ndarray, slot_beat: float, slot_beats: float) -> np.ndarray:
        """The prediction for the slot starting at `slot_beat`, with this song's recalled chord."""
        self.slot_beats = slot_beats
        slot = self._slot(slot_beat)
        self.predicted[slot] = np.asarray(logp, np.float64)
        _forget_oldest(self.predicted)
        recent = [self.pcs.get(slot - k) for k in range(1, MATCH_SLOTS + 1)]
        if any(h is None or h.sum() == 0 for h in recent):
            return logp
        votes = np.zeros(len(logp))
        for earlier in self.predicted:
            if earlier > slot - MIN_GAP_SLOTS:
                continue
            past = [self.pcs.get(earlier - k) for k in range(1, MATCH_SLOTS + 1)]
            if any(h is None or h.sum() == 0 for h in past):
                continue
            sim = float(np.mean([_cosine(a, b) for a, b in zip(recent, past)]))
            if sim >= MIN_SIMILARITY:
                votes[self.hindsight(earlier)] += sim
        if not votes.any():
            return logp
        out = logp + RECALL_NATS * votes / votes.sum()
        if int(np.argmax(out)) != int(np.argmax(logp)):
            self.recalls += 1
        self.predicted[slot] = out
        return out


def _forget_oldest(slots: dict) -> None:
    """Keep MAX_SLOTS slots: the first inserted (slots come in time order) go first."""
    while len(slots) > MAX_SLOTS:
        del slots[next(iter(slots))]


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))
