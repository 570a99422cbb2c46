"""Call and response: how long an answer lasts and how many voices it has.

An answer takes its length from the call (phrase duration x answer_length_ratio, within
[min_answer_s, max_answer_s]) and its texture too: a line is answered with a line, a chordal call
with at most as many voices as the call held at once.
"""
from __future__ import annotations

from livejam.config import PerformerConfig

# The end of an answer is a cadence: in its last CADENCE_BEATS its notes lean this strongly (x the
# sampler's chord-tone bias: e^12, as good as a mask) to the pitch classes the call ended on (a melody's
# last notes are where its harmony rests), so the answer ends on a stable tone rather than wherever
# the clock cuts it.
CADENCE_BEATS = 2.0
CADENCE_HARMONY = 3.0


class CallPhrasing:
    def __init__(self, config: PerformerConfig):
        self.config = config
        self.voices = 1  # voices of the answer now (the call's)
        self._call_voices = 0  # the most notes the human held at once in this call ...
        self._sounding: set[int] = set()  # ... counted over these
        self._last_pcs: list[int] = []  # pitch classes of the call's last notes ...
        self.cadence_pcs: tuple[int, ...] = ()  # ... which the answer ends on

    def hear(self, pitch: int, velocity: int) -> None:
        if velocity > 0:
            self._last_pcs = (self._last_pcs + [pitch % 12])[-2:]
            self._sounding.add(pitch)
            self._call_voices = max(self._call_voices, len(self._sounding))
        else:
            self._sounding.discard(pitch)

    def answer(self, now: float, phrase=None) -> float:
        """The answer to the call that just ended (its Phrase; None: unknown, the longest): its end time."""
        c = self.config
        length = c.max_answer_s if phrase is None else phrase.duration * c.answer_length_ratio
        self.voices = max(1, self._call_voices)
        self.cadence_pcs = tuple(sorted(set(self._last_pcs)))
        self._call_voices = len(self._sounding)  # the next call starts with what is still held
        return now + min(c.max_answer_s, max(c.min_answer_s, length))

    @staticmethod
    def in_cadence(now: float, answer_end: float | None, bpm: float | None) -> bool:
        """Whether `now` is in the closing beats of the answer (of 120 bpm in free time)."""
        return answer_end is not None and answer_end - now <= CADENCE_BEATS * 60.0 / (bpm or 120.0)
