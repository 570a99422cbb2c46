"""Call and response: how long an answer lasts and how many voices it has.

An answer takes its length from the call (phrase duration x answer_length_ratio, within
[min_answer_s, max_answer_s]) and its texture too: a line is answered with a line, a chordal call
with at most as many voices as the call held at once.
"""
from __future__ import annotations

from livejam.config import PerformerConfig


class CallPhrasing:
    def __init__(self, config: PerformerConfig):
        self.config = config
        self.voices = 1  # voices of the answer now (the call's)
        self._call_voices = 0  # the most notes the human held at once in this call ...
        self._sounding: set[int] = set()  # ... counted over these

    def hear(self, pitch: int, velocity: int) -> None:
        if velocity > 0:
            self._sounding.add(pitch)
            self._call_voices = max(self._call_voices, len(self._sounding))
        else:
            self._sounding.discard(pitch)

    def answer(self, now: float, phrase=None) -> float:
        """The answer to the call that just ended (its Phrase; None: unknown, the longest): its end time."""
        c = self.config
        length = c.max_answer_s if phrase is None else phrase.duration * c.answer_length_ratio
        self.voices = max(1, self._call_voices)
        self._call_voices = len(self._sounding)  # the next call starts with what is still held
        return now + min(c.max_answer_s, max(c.min_answer_s, length))
