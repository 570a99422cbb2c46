"""Tempo following: a causal beat tracker over the human's note-on times.

Pure and clock-free: `TempoTracker.onset(t)` takes each note-on as it is heard and
`estimate(now)` says the tempo, the beat phase at `now` and how sure it is, from the
onsets heard so far only (it never looks ahead). The live BeatClock follows it when it
is sure enough (livejam/beat/live.py, source "follow"); tools/tempo_eval.py measures it on
POP909 melodies against their annotated beats.

How: for every candidate beat period (log-spaced, `min_bpm`..`max_bpm`) the recent onsets,
weighted by recency, are matched against metrical templates - where in the beat a note of
that length tends to start (long notes on the beat, sixteenths between) - as a few Fourier
harmonics of the onsets' phases, which scores every phase of a period at once (a comb filter
/ tempogram with a template per note length).
A log-normal tempo prior picks between the metrical levels that fit equally well (a melody
of eighths fits a beat twice as fast as well as the true one); `prior_bpm` was chosen on
POP909 training songs, not on the songs the evaluation reports. The winner is refined by a
weighted least-squares line through the onsets that sit on its grid, and kept across
updates unless another hypothesis scores clearly better (no flip-flopping on each note).

Confidence in [0, 1]: how much of the recent onsets' weight the template explains (a
stream of random times scores near 0, a metronome near 1), times the margin by which the
winner beats the best other tempo hypothesis; zero with too few onsets or after a long
silence (`hold_s`).
"""
from __future__ import annotations

import math
from collections import deque
from typing import NamedTuple

import numpy as np


class TempoEstimate(NamedTuple):
    bpm: float | None  # None: no estimate yet
    phase: float  # where `now` sits in the beat, in [0, 1): 0 = on a beat
    confidence: float  # 0..1

    def beat_time(self, now: float) -> float | None:
        """The time of the last beat at or before `now` (None without a tempo)."""
        return None if self.bpm is None else now - self.phase * 60.0 / self.bpm


NO_ESTIMATE = TempoEstimate(None, 0.0, 0.0)

# The metrical templates: how likely an onset sits at each place in the beat (beat, off-beat
# eighth, the two sixteenths; triplets a little), by how long the note lasts until the next
# onset, in beats of the hypothesis. The shapes are the shares counted on 300 POP909 training
# melodies (songs the evaluation does not report), scaled to 1 at the peak: notes of a beat or
# longer sit on the beat 2.4 times as often as on the off-beat, eighths almost as often on
# either, sixteenths mostly off the beat. So long notes decide the phase, short ones the grid.
TEMPLATES = (  # (shortest next-onset gap in beats, ((position in the beat, weight), ...))
    (0.0, ((0.0, 0.45), (0.25, 0.37), (0.5, 1.0), (0.75, 0.84), (1 / 3, 0.2), (2 / 3, 0.2))),
    (0.3, ((0.0, 1.0), (0.25, 0.07), (0.5, 0.86), (0.75, 0.07), (1 / 3, 0.2), (2 / 3, 0.2))),
    (0.6, ((0.0, 1.0), (0.25, 0.09), (0.5, 0.41), (0.75, 0.23), (1 / 3, 0.2), (2 / 3, 0.2))),
)
HARMONICS = 8  # Fourier terms of a template; the peaks' width follows from KERNEL_WIDTH
KERNEL_WIDTH = 0.05  # beats (std of each peak): ~30 ms at 100 bpm, about human timing spread
PHASES = 48  # phases scanned per period (the least-squares refinement does the rest)


def _template_coefficients() -> np.ndarray:
    """(classes, HARMONICS) cos-series coefficients of each template's sum of Gaussian peaks."""
    h = np.arange(1, HARMONICS + 1)
    out = np.zeros((len(TEMPLATES), HARMONICS))
    for c, (_, peaks) in enumerate(TEMPLATES):
        for pos, weight in peaks:
            out[c] += weight * np.cos(2 * np.pi * h * pos)
    return out * np.exp(-0.5 * (2 * np.pi * h * KERNEL_WIDTH) ** 2)


class TempoTracker:
    """Online tempo and beat-phase estimate from onset times (seconds, any origin).

    Not thread-safe: one owner feeds and reads it (the BeatClock, under its write lock).
    """

    def __init__(self, min_bpm: float = 50.0, max_bpm: float = 200.0, prior_bpm: float = 72,
                 prior_octaves: float = 0.5, window_s: float = 12.0, half_life_s: float = 6.0,
                 min_onsets: int = 8, hold_s: float = 12.0, switch_margin: float = 0.15):
        if not 20.0 <= min_bpm < max_bpm <= 300.0:
            raise ValueError(f"tempo range must be within 20..300 bpm, got {min_bpm}..{max_bpm}")
        self.window_s, self.min_onsets, self.hold_s = window_s, min_onsets, hold_s
        self.switch_margin = switch_margin
        self._decay = math.log(2) / half_life_s
        n = int(math.ceil(math.log(max_bpm / min_bpm) / math.log(1.01))) + 1
        self.bpms = min_bpm * 1.01 ** np.arange(n)  # 1% steps: finer than the 4% that matters
        self.log_prior = -0.5 * (np.log2(self.bpms / prior_bpm) / prior_octaves) ** 2
        self._a = _template_coefficients()
        self._norm = float(self._a[1].sum())  # an eighth-note stream all on beats scores 1
        self._bounds = np.array([lo for lo, _ in TEMPLATES])
        phases = np.arange(PHASES) / PHASES
        h = np.arange(1, HARMONICS + 1)
        self._rot = np.exp(2j * np.pi * np.outer(h, phases))  # (H, PHASES)
        self.onsets: deque[float] = deque(maxlen=64)  # 8 s of dense playing: enough, and ~3 ms at most
        self._held: tuple[float, float] | None = None  # (bpm, time of a beat): the standing hypothesis
        self._dirty = True
        self._last = NO_ESTIMATE
        self._last_now: float | None = None

    def onset(self, t: float) -> None:
        """A note-on heard at time t. Notes of one chord (within 40 ms) count once."""
        if self.onsets and t - self.onsets[-1] < 0.04:
            return
        if self.onsets and t < self.onsets[-1]:
            return  # out of order: the tracker is causal, a late report adds nothing
        self.onsets.append(t)
        self._dirty = True

    def reset(self) -> None:
        self.onsets.clear()
        self._held, self._dirty, self._last = None, True, NO_ESTIMATE

    def estimate(self, now: float) -> TempoEstimate:
        """Tempo, beat phase at `now` and confidence from the onsets up to now."""
        if not self.onsets or now - self.onsets[-1] > self.hold_s:
            self._held = None  # a long silence: the next phrase may be at another tempo
            return NO_ESTIMATE
        if self._dirty:
            self._update()
            self._dirty = False
        if self._held is None:
            return NO_ESTIMATE
        bpm, beat_t = self._held
        phase = ((now - beat_t) * bpm / 60.0) % 1.0
        return TempoEstimate(float(bpm), float(phase), float(self._confidence))

    # --- internals --------------------------------------------------------------------
    def _window(self) -> tuple[np.ndarray, np.ndarray]:
        t = np.asarray(self.onsets, dtype=np.float64)
        t = t[t > t[-1] - self.window_s]
        w = np.exp(-self._decay * (t[-1] - t))
        return t, w

    def _scores(self, t: np.ndarray, w: np.ndarray, bpms: np.ndarray) -> np.ndarray:
        """(periods, PHASES): the template score of a beat at t[-1] + k/PHASES beats of each
        period, normalised (1 = an eighth-note stream with every onset on a beat)."""
        rel = t - t[-1]  # relative times: keeps the phases accurate whatever the origin
        beats = np.multiply.outer(bpms / 60.0, rel)  # (P, N) in beats of each hypothesis
        gap = np.diff(beats, axis=1, append=np.inf)  # the next onset's distance; the newest: open
        cls = np.searchsorted(self._bounds, gap, side="right") - 1  # (P, N) template per onset
        step = np.exp(-2j * np.pi * beats)  # (P, N): harmonic 1
        a = self._a[cls]  # (P, N, H): each onset's template
        z = np.empty((len(bpms), HARMONICS), np.complex128)
        eh = step * w
        for k in range(HARMONICS):  # harmonic h = step^h: products, not exps (the hot part)
            z[:, k] = np.einsum("pn,pn->p", a[:, :, k], eh)
            eh = eh * step
        return (z @ self._rot).real / (self._norm * w.sum())

    def _update(self) -> None:
        t, w = self._window()
        if len(t) < self.min_onsets or t[-1] - t[0] < 2.0:
            self._held, self._confidence = None, 0.0
            return
        s = self._scores(t, w, self.bpms)
        fit = s.max(axis=1)
        total = np.log(np.maximum(fit, 1e-6)) + self.log_prior
        i = int(np.argmax(total))
        bpm = float(self.bpms[i])
        beat_t = float(t[-1] + np.argmax(s[i]) / PHASES * 60.0 / bpm)
        if self._held is not None:  # keep the standing tempo and phase unless clearly beaten
            held_bpm, held_t = self._held
            k = int(round((held_t - t[-1]) * held_bpm / 60.0 % 1.0 * PHASES)) % PHASES
            held_fit = float(self._scores(t, w, np.array([held_bpm]))[0, k])
            held_total = math.log(max(held_fit, 1e-6)) + float(np.interp(held_bpm, self.bpms, self.log_prior))
            if total[i] - held_total < self.switch_margin:
                bpm, beat_t = held_bpm, held_t
        bpm, beat_t = self._refine(t, w, bpm, beat_t)
        self._held = (bpm, beat_t)
        self._confidence = self._confidence_of(fit, total, bpm)

    def _refine(self, t: np.ndarray, w: np.ndarray, bpm: float, beat_t: float) -> tuple[float, float]:
        """A weighted line through the onsets near the grid (beats, eighths, sixteenths):
        sharper tempo and phase than the scan's steps. Small moves only (5%, a tenth of a beat)."""
        period = 60.0 / bpm
        pos = (t - beat_t) / period * 4.0  # in sixteenths
        k = np.round(pos)
        near = np.abs(pos - k) < 0.3
        if near.sum() < 4 or np.ptp(k[near]) < 8:
            return bpm, beat_t
        x, y, ww = k[near] / 4.0, t[near], w[near]
        mx, my = np.average(x, weights=ww), np.average(y, weights=ww)
        sxx = float(np.sum(ww * (x - mx) ** 2))
        slope = float(np.sum(ww * (x - mx) * (y - my))) / sxx
        new_period = slope if abs(slope / period - 1) < 0.05 else period
        new_beat = my - mx * new_period  # the line's beat 0 (near beat_t)
        if abs(new_beat - beat_t) > 0.1 * period:
            new_beat = beat_t
        return 60.0 / new_period, new_beat

    def _confidence_of(self, fit: np.ndarray, total: np.ndarray, bpm: float) -> float:
        """The template fit at the chosen tempo, times its margin over the best hypothesis
        that is not the same tempo nor a metrical relative (x2, x1/2, x3, x1/3)."""
        i = int(np.argmin(np.abs(self.bpms - bpm)))
        ratio = self.bpms / bpm
        related = np.zeros(len(ratio), bool)
        for r in (1.0, 2.0, 0.5, 3.0, 1 / 3, 1.5, 2 / 3):
            related |= np.abs(np.log(ratio / r)) < 0.06
        rivals = total[~related]
        margin = 1.0 if len(rivals) == 0 else float(np.clip((total[i] - rivals.max()) / 0.5, 0.0, 1.0))
        return float(np.clip(fit[i], 0.0, 1.0)) * margin
