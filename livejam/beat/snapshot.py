"""The live beat clock's published map: immutable segments of one generation, read without a lock.

The clock (live.py) publishes a new BeatSnapshot whenever its map changes (a tick that
corrects it, a tempo change, a renumbering); readers on any thread take the current one
and read beats, times, bars and tempo from it, never half of an update.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass

from livejam.beatmap import NOMINAL_BPM


@dataclass(frozen=True)
class Segment:
    """From time t0 on, beats advance linearly from beat0 at `bpm` (None: free time, at NOMINAL_BPM)."""

    t0: float
    beat0: float
    bpm: float | None
    bars: bool = True  # False: the tempo is known but not the downbeat (tempo following)

    @property
    def rate(self) -> float:  # beats per second
        return (self.bpm or NOMINAL_BPM) / 60.0


class BeatSnapshot:
    """An immutable BeatMap: the segments of one generation (increasing in time and beat)
    and the bar starts (beat, beats per bar), each in force until the next."""

    __slots__ = ("segments", "bars", "generation", "source", "_t0s", "_b0s", "_bar0s")

    def __init__(self, segments: tuple[Segment, ...], bars: tuple[tuple[float, int], ...],
                 generation: int, source: str):
        self.segments, self.bars, self.generation, self.source = segments, bars, generation, source
        self._t0s = [s.t0 for s in segments]
        self._b0s = [s.beat0 for s in segments]
        self._bar0s = [b for b, _ in bars]

    def _seg_at_time(self, t: float) -> Segment:
        return self.segments[max(0, bisect.bisect_right(self._t0s, t) - 1)]

    def _seg_at_beat(self, beat: float) -> Segment:
        return self.segments[max(0, bisect.bisect_right(self._b0s, beat) - 1)]

    def beat_at(self, t: float) -> float:
        s = self._seg_at_time(t)
        return s.beat0 + (t - s.t0) * s.rate

    def time_at(self, beat: float) -> float:
        s = self._seg_at_beat(beat)
        return s.t0 + (beat - s.beat0) / s.rate

    def bar_at(self, beat: float) -> tuple[float, int] | None:
        seg = self._seg_at_beat(beat)
        if seg.bpm is None or not seg.bars or not self.bars:
            return None  # free time has no bar, even if bars were known before it
        start, meter = self.bars[max(0, bisect.bisect_right(self._bar0s, beat + 1e-9) - 1)]
        return float((beat - start) % meter), meter

    def bpm_at(self, t: float) -> float | None:
        return self._seg_at_time(t).bpm
