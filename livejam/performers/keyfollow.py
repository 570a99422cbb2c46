"""The key of the human's playing (`--key auto`): estimated from the pitches heard so far.

The estimate runs on every 8th note-on over the last 64 (Krumhansl-Kessler profiles,
livejam.engine.keys) and is taken when its correlation is above 0.5.
"""
from __future__ import annotations

import logging
from collections import deque

log = logging.getLogger(__name__)
EVERY = 8  # note-ons between estimates
MIN_R = 0.5  # correlation an estimate needs to be taken


class KeyFollower:
    def __init__(self):
        self.pitches: deque[int] = deque(maxlen=64)
        self._ons = 0  # every EVERY-th re-estimates (the deque's length stops at 64)

    def hear(self, pitch: int, key: str | None) -> str | None:
        """A human note-on; returns a new key when the estimate moved away from `key`, else None."""
        from livejam.engine.keys import estimate_key, pitch_class_histogram

        self.pitches.append(pitch)
        self._ons += 1
        if self._ons % EVERY:
            return None
        new, r = estimate_key(pitch_class_histogram(self.pitches))
        if r > MIN_R and new != key:
            log.info("key estimated from the human: %s (r=%.2f)", new, r)
            return new
        return None
