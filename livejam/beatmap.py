"""Musical time as data: the BeatMap contract (seconds <-> beats, tempo, bar position) and its fixed
maps: free time, a beat grid from a click track or a MIDI file's tempo map; and the jitter-robust
tempo fit of incoming MIDI clock ticks that the live beat clock (livejam/beat/) builds its map with.

Pure: no threads, no ports; events, charts and the performers count their time through it.
"""
from __future__ import annotations

import bisect
import logging
import math
from collections import deque
from typing import Protocol

log = logging.getLogger(__name__)

CLOCK_TICKS_PER_BEAT = 24  # MIDI clock: 24 ticks per quarter note


class TempoFit:
    """Least-squares line through the times of the last `window` MIDI clock ticks.

    Robust to jitter (the fit averages it out) and quick on a tempo jump: when three
    ticks in a row land on the same side of the prediction by more than 4 residual
    RMS (and 1 ms), the old ticks are forgotten and the fit restarts from those three.
    Bounded jitter never does that (uniform jitter stays within 1.8 RMS).
    A pause in the ticks (a clock that stops sending) also restarts it; until two new
    ticks arrive, the tempo from before the pause stands.
    """

    def __init__(self, window: int = 96):
        self.times: deque[float] = deque(maxlen=window)
        self.interval: float | None = None  # seconds per tick
        self.last: float | None = None  # the fitted time of the newest tick
        self._intercept = 0.0
        self._rms = 0.0
        self._outliers: list[float] = []

    @property
    def bpm(self) -> float | None:
        return None if self.interval is None else 60.0 / (self.interval * CLOCK_TICKS_PER_BEAT)

    def add(self, t: float) -> None:
        ts = self.times
        if ts and self.interval is not None:
            if t - ts[-1] > 3.5 * self.interval:  # the clock paused: old ticks say nothing now
                ts.clear()
                self._outliers = []
            elif len(ts) >= 12:  # enough ticks for the residual RMS to mean something
                error = t - (self._intercept + self.interval * len(ts))
                if abs(error) > max(4.0 * self._rms, 0.001):
                    same_side = not self._outliers or (error > 0) == (self._outliers[-1] > 0)
                    self._outliers = self._outliers + [error] if same_side else [error]
                else:
                    self._outliers = []
        ts.append(t)
        if len(self._outliers) >= 3:  # a tempo change, not jitter
            kept = list(ts)[-3:]
            ts.clear()
            ts.extend(kept)
            self._outliers = []
        self._fit()

    def _fit(self) -> None:
        ts, n = self.times, len(self.times)
        if n < 2 or ts[-1] <= ts[0]:  # after a pause: the last tempo known stays the best guess
            self.last = ts[-1] if ts else None
            return
        origin = ts[0]  # fit relative times: perf_counter values are large
        mx = (n - 1) / 2.0
        my = sum(ts) / n - origin
        sxy = sum((i - mx) * (t - origin - my) for i, t in enumerate(ts))
        sxx = n * (n * n - 1) / 12.0
        slope = sxy / sxx
        intercept = origin + my - slope * mx
        if n > 2:
            sse = sum((t - intercept - slope * i) ** 2 for i, t in enumerate(ts))
            self._rms = math.sqrt(sse / (n - 2))
        self.interval, self._intercept = slope, intercept
        self.last = intercept + slope * (n - 1)


# --- where the beat is --------------------------------------------------------------
# The event coder, the performers and `simulate` read beats through a BeatMap: time
# (seconds, on the Clock's timeline) <-> beats, the bar, the tempo. Free time is a map
# too (a nominal 120 bpm with no bar), so the event encoding is the same with or
# without a tempo source; only the bar position and the tempo say "unknown".

NOMINAL_BPM = 120.0  # free time counts beats at this rate (0.5 s a beat)


class BeatMap(Protocol):
    # Changes when the map renumbers its beats (the live clock on MIDI Start, a new tempo source):
    # a reader holding a position in beats rebases. A fixed map never renumbers.
    generation: int

    def beat_at(self, t: float) -> float:
        """Beats since the map's beat 0 at time t (may be negative before it)."""
        ...

    def time_at(self, beat: float) -> float:
        """The inverse of beat_at."""
        ...

    def bar_at(self, beat: float) -> tuple[float, int] | None:
        """(position in the bar in beats, beats per bar) at `beat`; None in free time."""
        ...

    def bpm_at(self, t: float) -> float | None:
        """The tempo at time t; None in free time."""
        ...


class FreeTime:
    """No tempo source: beats at NOMINAL_BPM from `origin`, no bar, no tempo."""

    generation = 0

    def __init__(self, origin: float = 0.0):
        self.origin = origin

    def beat_at(self, t: float) -> float:
        return (t - self.origin) * NOMINAL_BPM / 60.0

    def time_at(self, beat: float) -> float:
        return self.origin + beat * 60.0 / NOMINAL_BPM

    def bar_at(self, beat: float) -> None:
        return None

    def bpm_at(self, t: float) -> None:
        return None


class BeatGrid:
    """A BeatMap from a list of beat times (a click track, POP909's beat_midi.txt, a MIDI
    file's tempo map): piecewise linear between beats, extended before the first and
    after the last beat at the tempo of the nearest interval.

    `downbeats[i]` is True where beat i starts a bar; with none, every `meter` beats
    from beat 0 start a bar. Bars may have any length (a 2/4 bar in a 4/4 song).
    """

    generation = 0  # a fixed map never renumbers

    def __init__(self, times, downbeats=None, meter: int = 4):
        import numpy as np

        t = np.asarray(times, dtype=np.float64)
        if t.ndim != 1 or len(t) < 2 or not np.all(np.isfinite(t)) or not np.all(np.diff(t) > 0):
            raise ValueError("a beat grid needs at least two finite, strictly increasing beat times")
        self.times = t
        n = len(t)
        if downbeats is None or not any(downbeats):
            starts = list(range(0, n, max(1, meter)))
        else:
            starts = [i for i, d in enumerate(downbeats) if d]
        # bar starts as beat indices, extended with `meter`-beat bars (the first bar's
        # length before the first downbeat, the last bar's after the last one)
        first_len = starts[1] - starts[0] if len(starts) > 1 else meter
        while starts[0] > 0:
            starts.insert(0, starts[0] - first_len)
        self.bar_starts = np.asarray(starts, dtype=np.float64)
        self.meter = meter

    @classmethod
    def from_file(cls, path, meter: int = 4) -> "BeatGrid":
        """Beat times in seconds, first column of each line; a third column (POP909's
        downbeat flag) marks bar starts. ValueError (one line) on anything unreadable."""
        times, downs = [], []
        from livejam.midi.files import read_text

        lines = read_text(path, "beat file").splitlines()
        for number, line in enumerate(lines, 1):
            cols = line.replace(",", " ").split()
            if not cols or cols[0].startswith("#"):
                continue
            try:
                times.append(float(cols[0]))
                downs.append(len(cols) >= 3 and float(cols[2]) > 0)
            except ValueError:
                raise ValueError(f"{path}:{number}: not a beat time: {line.strip()[:40]!r}") from None
        try:
            return cls(times, downs if any(downs) else None, meter)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None

    def beat_at(self, t: float) -> float:
        ts = self.times
        i = min(max(int(bisect.bisect_right(ts, t)) - 1, 0), len(ts) - 2)  # interval i..i+1 (extended at the ends)
        return i + (t - ts[i]) / (ts[i + 1] - ts[i])

    def time_at(self, beat: float) -> float:
        ts = self.times
        i = min(max(int(math.floor(beat)), 0), len(ts) - 2)
        return float(ts[i] + (beat - i) * (ts[i + 1] - ts[i]))

    def bar_at(self, beat: float) -> tuple[float, int]:
        starts = self.bar_starts
        j = int(bisect.bisect_right(starts, beat + 1e-9)) - 1
        if j < 0:  # before the first bar: bars of the first bar's length
            length = int(starts[1] - starts[0]) if len(starts) > 1 else self.meter
            return float((beat - starts[0]) % length), length
        if j + 1 < len(starts):
            length = int(starts[j + 1] - starts[j])
        else:
            length = int(starts[j] - starts[j - 1]) if j > 0 else self.meter
        return float((beat - starts[j]) % length), length

    def bpm_at(self, t: float) -> float:
        b = self.beat_at(t)
        ts = self.times
        i = min(max(int(math.floor(b)), 0), len(ts) - 2)
        lo, hi = max(0, i - 1), min(len(ts) - 1, i + 2)  # the local tempo over ~3 beats
        return float(60.0 * (hi - lo) / (ts[hi] - ts[lo]))


def beat_grid_from_midi(path, meter: int = 4) -> BeatGrid:
    """A MIDI file's tempo map as a BeatGrid, as a DAW would send clock: a beat per quarter
    note from the file's tick 0, timed by its set_tempo messages (120 bpm until the first),
    bars from its time signatures (`meter`/4 before the first or without any). The grid
    covers the file and extends past its end at the last tempo. ValueError (one line) if
    the file cannot be read or is past livejam.midi.files' budgets."""
    import mido

    from livejam.midi.files import load_midi

    mid = load_midi(path)
    if mid.type == 2:
        raise ValueError(f"{path}: a type 2 MIDI file (independent songs) has no single tempo map")
    tpb = mid.ticks_per_beat
    tempos: dict[int, int] = {0: 500_000}  # tick -> microseconds per quarter; MIDI's default 120 bpm
    sigs: dict[int, float] = {0: float(meter)}  # tick -> bar length in quarters
    tick = 0
    for msg in mido.merge_tracks(mid.tracks):
        tick += msg.time
        if msg.type == "set_tempo":
            tempos[tick] = msg.tempo
        elif msg.type == "time_signature":
            sigs[tick] = msg.numerator * 4.0 / msg.denominator
    n = max(2, math.ceil(tick / tpb) + 2)  # beats 0..n-1: past the last event

    starts = sorted(tempos)  # seconds at each tempo change, then any tick by interpolation
    secs = [0.0]
    for a, b in zip(starts, starts[1:]):
        secs.append(secs[-1] + (b - a) * tempos[a] / 1e6 / tpb)

    def seconds(tk: float) -> float:
        i = bisect.bisect_right(starts, tk) - 1
        return secs[i] + (tk - starts[i]) * tempos[starts[i]] / 1e6 / tpb

    times = [seconds(k * tpb) for k in range(n)]
    down = [False] * n
    sig_ticks = sorted(sigs)
    odd = False
    for j, at in enumerate(sig_ticks):  # a time signature starts a bar where it stands
        q, end = at / tpb, (sig_ticks[j + 1] / tpb if j + 1 < len(sig_ticks) else float(n))
        while q < end - 1e-9 and round(q) < n:
            odd |= abs(q - round(q)) > 1e-6
            down[round(q)] = True
            q += sigs[at]
    if odd:  # e.g. 7/8: bar lines between quarter beats
        log.warning("%s: bar lines off the quarter-note beat, rounded to the nearest beat", path)
    return BeatGrid(times, down, meter)
