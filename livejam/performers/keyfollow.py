"""The key of the human's playing (`--key auto`): estimated from the pitches heard so far.

The estimate (Krumhansl-Kessler profiles, livejam.engine.keys, over the last 64 note-ons) runs
on every human note-on and at the end of each human phrase, so the first phrase is answered in
its key. A key is taken only when the estimate is confident: at least MIN_PCS pitch classes
heard, a correlation above MIN_R, and a scale that holds SCALE_SHARE of the notes. At a phrase
end the confident best is taken; in the middle of a phrase a held key gives way only to one
that beats it by MARGIN (a passing note should not move the lock while the machine plays).
Until a key is known the machine plays only the pitch classes heard (`heard_pcs`): no
chromatic guesses.
"""
from __future__ import annotations

import logging
from collections import deque
from dataclasses import replace

import numpy as np

from livejam.engine.keys import KEY_NAMES, key_correlations, scale_shares

log = logging.getLogger(__name__)
WINDOW = 64  # note-ons the estimate looks at
MIN_R = 0.5  # correlation an estimate needs to be taken
# A single C correlates 0.68 with C major: the correlation alone is no confidence from a few notes.
# Five pitch classes fit at most three major scales (a pentatonic: C D E G A is in C, F and G major)
# and their relative minors, among which the profiles' weight on tonic and fifth decides; four
# fit up to four, and the machine had better keep to what it heard.
MIN_PCS = 5
# The profiles weigh the tonic and fifth; on short phrases the best of them can leave out what the
# human played (E E F G G F E D correlates best with E minor, which has no F): a key whose scale
# misses more than this share of the notes heard is not the human's key.
SCALE_SHARE = 0.9
# Mid-phrase, how much better (in correlation) a new key must fit than the held one to replace it.
MARGIN = 0.1


class KeyFollower:
    def __init__(self):
        self.pitches: deque[int] = deque(maxlen=WINDOW)
        self._hist = np.zeros(12)  # pitch-class counts of `pitches`, kept as they come and go

    @property
    def heard_pcs(self) -> tuple[int, ...] | None:
        """The pitch classes heard (in the window), sorted; None before any note."""
        return tuple(int(pc) for pc in np.flatnonzero(self._hist)) or None

    def constrain(self, constraints, key: str | None):
        """`--key auto`: the draw constraints locked to a newly estimated `key`; while none is known, to
        the pitch classes heard."""
        if key is not None:
            return replace(constraints, key=key, pitch_classes=None)
        if constraints.key is None:
            return replace(constraints, pitch_classes=self.heard_pcs)
        return constraints

    def hear(self, pitch: int, key: str | None) -> str | None:
        """A human note-on; returns a new key when the estimate confidently moved away from `key`, else None."""
        if len(self.pitches) == WINDOW:
            self._hist[self.pitches[0] % 12] -= 1
        self.pitches.append(pitch)
        self._hist[pitch % 12] += 1
        return self._estimate(key, MARGIN if key else 0.0)

    def phrase_end(self, key: str | None) -> str | None:
        """The human's phrase ended: the confident estimate when it differs from `key`, else None."""
        return self._estimate(key, 0.0)

    def _estimate(self, key: str | None, margin: float) -> str | None:
        """On every note-on (~30 us: the window's histogram is kept up to date, the 24 keys are one product each)."""
        if np.count_nonzero(self._hist) < MIN_PCS:
            return None
        r = key_correlations(self._hist)
        fit = np.flatnonzero((r > MIN_R) & (scale_shares(self._hist) >= SCALE_SHARE))
        if not len(fit):
            return None
        best = int(fit[np.argmax(r[fit])])  # the best-correlated key whose scale holds the notes
        held = r[KEY_NAMES.index(key)] if key in KEY_NAMES else -np.inf
        if KEY_NAMES[best] == key or r[best] - held <= margin:
            return None
        log.info("key estimated from the human: %s (r=%.2f)", KEY_NAMES[best], r[best])
        return KEY_NAMES[best]
