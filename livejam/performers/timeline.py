"""The performer's one timeline: an EventCoder counted in the beats of the session's BeatMap.

Everything heard and played is encoded and decoded through one coder, so the model's dt and
bar positions match what sounds. The live beat clock may renumber its beats (a tempo change,
a MIDI clock start): the coder is then rebased on the time of the last event, kept in seconds,
which survives any renumbering.
"""
from __future__ import annotations

from livejam.beatmap import FreeTime
from livejam.events import EventCoder, Vocab


class Timeline:
    def __init__(self, vocab: Vocab):
        self.vocab = vocab
        self.beats = None  # the BeatMap given by set_beats; None: free time from the first event
        self.coder: EventCoder | None = None  # started by the first event
        self._generation = None  # of the live BeatClock the coder counts on
        self._last_time = 0.0  # time of the last event (seconds)

    def reset(self) -> None:
        self.coder = None

    def set_beats(self, beats) -> None:
        """Count on this BeatMap from now on (None: free time); the last event keeps its time."""
        self.beats = beats
        self._generation = _generation(beats)
        if self.coder is not None:
            t = self.coder.time
            self.coder.reset(t, beats if beats is not None else FreeTime(t))

    def at(self, now: float) -> EventCoder:
        """The coder, started at `now` if nothing came yet, rebased if the live clock renumbered."""
        if self.coder is None:
            self.coder = EventCoder(self.vocab, self.beats if self.beats is not None else FreeTime(now), now)
            self._generation = _generation(self.beats)
        else:
            generation = _generation(self.beats)
            if generation != self._generation:
                self._generation = generation
                self.coder.reset(self._last_time)
        return self.coder

    def moved(self) -> None:
        """An event was encoded or decoded: remember its time in seconds."""
        if self.coder is not None:
            self._last_time = self.coder.time


def _generation(beats) -> int:
    """The numbering of `beats`; no map (free time from the first event) never renumbers."""
    return 0 if beats is None else beats.generation
