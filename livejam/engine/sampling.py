"""Per-field sampling with the musician's constraints as masks.

One event is sampled field by field in the heads' order part -> dt -> chord ->
pitch -> vel; before each field is drawn its logits are masked (or biased) by the
constraints that concern it, so a later field always sees the earlier choices.
The chord head is sampled like any field: the model's own idea of the harmony
at that moment, which the `harmony` control then leans the pitch toward; the `grid` control
leans dt toward onsets on the beat clock's 16th grid. Masks are applied
in priority order; a mask that would leave nothing to sample is dropped (and
counted in `EventSampler.fallbacks`), and if nothing at all is allowed the
argmax of the unmasked logits is taken. Sampling never raises on a constraint.

Determinism: all randomness comes from the numpy Generator passed in, one draw
per field; temperature 0 takes the argmax (no draw).
"""
from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np

from livejam.engine.keys import key_pitch_mask
from livejam.events import CHORD, COLUMNS, COND_COLUMNS, DT, PART, PITCH, POS, VEL, Vocab
from livejam.harmony import NO_CHORD, tone_table

HARMONY_NATS = 4.0  # the pitch bias toward chord tones at harmony = 1 (e^4: ~55x more likely)
GRID_NATS = 4.0  # the dt bias toward onsets on a 16th of the beat at grid = 1
# Onsets on an 8th-note triplet (a third of a beat) get this share of the grid's lean: swing and
# triplet figures are musical and the 12-tick lattice holds them exactly, so the grid should not
# iron them out, but where the model is undecided the straight 16th wins. The other ticks (1/12,
# 1/6 beat off a 16th) are the timing noise the grid is there to clean up: no lean.
TRIPLET_SHARE = 0.5

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Constraints:
    """What the sampler may produce. Times in milliseconds."""

    temperature: float = 1.0  # 0 = argmax
    # The timing field's own temperature (None: `temperature`). A low temperature on dt
    # collapses it to its mode (often 0: chords), which crowds the output; rhythm keeps
    # its variety at 1 while pitches are sampled more conservatively.
    dt_temperature: float | None = None
    # The chord field's own temperature (None: `temperature`): low keeps the machine on the
    # model's likeliest reading of the harmony, which its pitches then lean to (`harmony`).
    chord_temperature: float | None = None
    top_p: float = 1.0  # nucleus: smallest set with this much probability (1 = off)
    min_p: float = 0.0  # drop tokens below min_p * p(best) (0 = off)
    parts: tuple[int, ...] | None = None  # allowed parts (None: every playable part)
    pitch_range: tuple[int, int] = (0, 127)  # inclusive, for note-ons
    key: str | None = None  # e.g. "C:minor": note-ons in the scale only
    # note-ons in these pitch classes only (None: any); `--key auto` sets the ones heard while it
    # knows no key yet, so the machine plays nothing its listening does not support
    pitch_classes: tuple[int, ...] | None = None
    max_polyphony: int | None = None  # sounding notes per part; when full, only note-offs
    consistent: bool = True  # note-on only for a silent pitch, note-off only for a sounding one
    min_note_ms: float = 0.0  # a note may not end earlier than this
    max_note_ms: float | None = None  # a note must end by this
    density: float = 0.0  # > 0 biases dt shorter (denser), < 0 longer (sparser); ~1 is strong
    min_dt_bin: int = 0  # only-future: dt (ticks) >= this (e.g. the silence since the last event)
    harmony: float = 0.0  # 0 = off .. 1 = strong: note-on pitches lean to the tones of the sampled chord
    lean_pcs: tuple[int, ...] = ()  # pitch classes `harmony` leans to instead of the chord's (a cadence)
    grid: float = 0.0  # 0 = off .. 1 = strong: dt leans to onsets on the 16th grid (needs beat_phase)
    # Ticks of the last event into its beat (the caller sets it per sample from its beat clock);
    # None: free time, where there is no grid to lean to.
    beat_phase: int | None = None


class NoteTracker:
    """Which pitches sound in each part and since when, on the events' own timeline (ms).

    Observe every event fed to the engine (heard and played) in order. dt is in
    ticks of a beat; `ms_per_tick` (set by the performer from the tempo it plays
    at; the nominal 120 bpm in free time) turns it into milliseconds.
    """

    def __init__(self, vocab: Vocab):
        self.vocab = vocab
        self.ms_per_tick = 60000.0 / (120.0 * vocab.ticks_per_beat)
        self.reset()

    def reset(self) -> None:
        self.time_ms = 0.0
        self.sounding: list[dict[int, float]] = [{} for _ in range(self.vocab.n_parts)]  # pitch -> onset

    def observe(self, row) -> None:
        part, dt, pitch, vel = int(row[PART]), int(row[DT]), int(row[PITCH]), int(row[VEL])
        self.time_ms += dt * self.ms_per_tick
        if part >= self.vocab.n_parts:  # start-of-sequence marker
            return
        if vel > 0:
            self.sounding[part][pitch] = self.time_ms
        else:
            self.sounding[part].pop(pitch, None)

    def count(self, part: int) -> int:
        return len(self.sounding[part]) if part < self.vocab.n_parts else 0


def sample_logits(logits: np.ndarray, allowed: np.ndarray | None, temperature: float, top_p: float, min_p: float,
                  rng: np.random.Generator) -> int:
    """One id from (V,) logits restricted to the (V,) bool `allowed` (which must have a True; None: all).

    On the step's path five times an event: ndarray methods rather than the np.* wrappers
    and no full nan_to_num pass (~30 us a field), with the same draws as the plain version."""
    if allowed is None:
        idx, z = None, logits.astype(np.float64)
    else:
        idx = allowed.nonzero()[0]
        z = logits[idx].astype(np.float64)
    if not math.isfinite(z.sum()):  # a nan or inf logit (rare): the sum says so in one pass
        z = np.nan_to_num(z, nan=-1e30, posinf=1e30, neginf=-1e30)
    best = int(z.argmax())
    n = len(z)
    if temperature <= 0.0 or n == 1:
        return best if idx is None else int(idx[best])
    z -= z[best]
    z /= temperature
    p = np.exp(z, out=z)  # (n,), max 1
    if min_p > 0.0:
        p[p < min_p] = 0.0  # min_p * p(best), with p(best) = 1 before normalising
    if top_p < 1.0:
        order = (-p).argsort(kind="stable")
        c = p[order].cumsum()
        keep = int(c.searchsorted(top_p * c[-1])) + 1  # smallest prefix reaching top_p
        p[order[keep:]] = 0.0
    c = p.cumsum()
    total = c[-1]
    if not total > 0.0:
        return best if idx is None else int(idx[best])
    j = min(int(c.searchsorted(rng.random() * total, side="right")), n - 1)
    return j if idx is None else int(idx[j])


@lru_cache(maxsize=64)
def _static_masks(vocab: Vocab, parts: tuple[int, ...] | None, pitch_range: tuple[int, int], key: str | None,
                  density: float, min_dt_bin: int, pitch_classes: tuple[int, ...] | None = None):
    """Masks and biases that depend only on the constraints (cached per constraint set)."""
    playable = np.zeros(vocab.part_size, bool)
    playable[:vocab.n_parts] = True
    allowed_parts = None
    if parts is not None:
        allowed_parts = np.zeros(vocab.part_size, bool)
        allowed_parts[[p for p in parts if 0 <= p < vocab.n_parts]] = True
    ticks = np.arange(vocab.n_dt, dtype=np.float64)
    min_dt = ticks >= min_dt_bin if min_dt_bin > 0 else None
    dt_bias = None
    if density != 0.0:
        ld = np.log(ticks + 1.0)
        dt_bias = (-density * (ld - ld.mean()) / (ld.std() + 1e-9)).astype(np.float32)  # (n_dt,)
    lo, hi = pitch_range
    pitches = np.arange(vocab.n_pitch)
    in_range = (pitches >= lo) & (pitches <= hi) if (lo, hi) != (0, vocab.n_pitch - 1) else None
    in_key = None
    if key:
        try:
            in_key = key_pitch_mask(key, vocab.n_pitch)
        except ValueError as e:
            log.warning("ignoring key constraint: %s", e)
    heard = None if pitch_classes is None else np.isin(pitches % 12, pitch_classes)
    return playable, allowed_parts, ticks, min_dt, dt_bias, in_range, in_key, heard


def _log_softmax(x: np.ndarray) -> np.ndarray:
    """Log-probabilities of logits along the last axis."""
    z = x - x.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


@lru_cache(maxsize=256)
def grid_bias(vocab: Vocab, grid: float, phase: int) -> np.ndarray:
    """(n_dt,) dt bias for an event `phase` ticks into its beat: GRID_NATS * grid for a dt whose onset
    falls on a 16th of a beat, TRIPLET_SHARE of that on an 8th-note triplet, 0 elsewhere."""
    tpb = vocab.ticks_per_beat
    at = (phase + np.arange(vocab.n_dt)) % tpb  # (n_dt,) the onset's tick in its beat
    sixteenth = (at * 4) % tpb == 0
    triplet = ((at * 3) % tpb == 0) & ~sixteenth
    return (grid * GRID_NATS * (sixteenth + TRIPLET_SHARE * triplet)).astype(np.float32)


class EventSampler:
    """Samples whole events from an Engine under Constraints."""

    def __init__(self, vocab: Vocab):
        self.vocab = vocab
        self.fallbacks: Counter[str] = Counter()  # constraint name -> times it was dropped
        self._on = np.arange(vocab.n_vel) > 0  # (n_vel,) note-on bins
        self._off = ~self._on
        self._cond = np.zeros(5, np.int64)
        self._tones = tone_table()  # (n_chord, 12) chord id -> its pitch classes
        self._pitch_class = np.arange(vocab.n_pitch) % 12

    def _pick(self, engine, k: int, cond, masks, c: Constraints, rng: np.random.Generator,
              temperature: float | None = None, bias: np.ndarray | None = None) -> int:
        """Field k: its masks combined in priority order, then one draw from the head's logits (+ bias).

        When the masks leave one id (a note-off's velocity, a single allowed part) the head is
        not run at all: sample_logits would return that id without a draw either way."""
        allowed = None
        for name, m in masks:
            if m is None:
                continue
            nxt = m if allowed is None else allowed & m
            if nxt.any():
                allowed = nxt
            else:
                self.fallbacks[name] += 1
        if allowed is not None:
            only = allowed.nonzero()[0]
            if len(only) == 1:
                return int(only[0])
        logits = engine.logits(k, cond)
        if bias is not None:
            logits = logits + bias
        t = c.temperature if temperature is None else temperature
        return sample_logits(logits, allowed, t, c.top_p, c.min_p, rng)

    def warm_up(self, engine, c: Constraints, notes: NoteTracker, rng: np.random.Generator, steps: int = 32) -> None:
        """Run every graph `steps` times, then empty the context: the first real step is not the slowest."""
        for _ in range(steps):
            engine.feed(self.sample(engine, c, notes, rng))
        engine.reset()
        notes.reset()

    def sample(self, engine, c: Constraints, notes: NoteTracker, rng: np.random.Generator,
               next_pos: Callable[[int], int] | None = None,
               chord_for: Callable[[int], int] | None = None) -> np.ndarray:
        """(7,) int64 row for the event after the engine's context: part, dt, chord, pitch, vel
        sampled; pos from `next_pos(dt)` (the coder's bar position; unknown without it); the
        chord from `chord_for(dt)` when given (the performer knows it: a chart, the human's
        chords, its committed prediction), else from the chord head; the tempo column is left 0
        for the caller, who knows the tempo."""
        v = self.vocab
        playable, allowed_parts, ticks, min_dt, dt_bias, in_range, in_key, in_pcs = _static_masks(
            v, c.parts, tuple(c.pitch_range), c.key, float(c.density), int(c.min_dt_bin),
            None if c.pitch_classes is None else tuple(c.pitch_classes))
        row = np.zeros(len(COLUMNS), np.int64)
        # each head is conditioned on the row's fields sampled before it: cond = row[COND_COLUMNS], its
        # first COND_COUNTS[head] entries (the rest are still 0 and unread)
        def cond() -> np.ndarray:
            return row.take(COND_COLUMNS, out=self._cond)

        row[PART] = part = self._pick(engine, PART, None, (("playable", playable), ("parts", allowed_parts)), c, rng)
        sounding = notes.sounding[part] if part < v.n_parts else {}

        dt_ms = ticks * notes.ms_per_tick
        deadline_mask = None
        if c.max_note_ms is not None and sounding:
            slack = min(sounding.values()) + c.max_note_ms - notes.time_ms  # ms until the oldest is due
            deadline_mask = dt_ms <= max(slack, 0.0)
        if c.grid > 0.0 and c.beat_phase is not None:
            lean = grid_bias(v, float(c.grid), int(c.beat_phase))
            dt_bias = lean if dt_bias is None else dt_bias + lean
        row[DT] = dt = self._pick(engine, DT, cond(), (("min_dt", min_dt), ("max_note", deadline_mask)), c, rng,
                                  c.dt_temperature, dt_bias)
        row[POS] = next_pos(dt) if next_pos is not None else v.pos_unknown

        row[CHORD] = chord = (chord_for(dt) if chord_for is not None
                              else self._pick(engine, CHORD, cond(), (), c, rng, c.chord_temperature))

        masks = []
        t_event = notes.time_ms + dt_ms[dt]
        if sounding:
            snd = np.zeros(v.n_pitch, bool)
            snd[list(sounding)] = True
            if c.max_polyphony is not None and len(sounding) >= c.max_polyphony:
                masks.append(("polyphony", snd))
            if c.max_note_ms is not None:
                due = [p for p, t0 in sounding.items() if t_event - t0 >= c.max_note_ms]
                if due:
                    m = np.zeros(v.n_pitch, bool)
                    m[due] = True
                    masks.append(("max_note", m))
            if c.min_note_ms > 0:
                early = [p for p, t0 in sounding.items() if t_event - t0 < c.min_note_ms]
                if early:
                    m = np.ones(v.n_pitch, bool)
                    m[early] = False
                    masks.append(("min_note", m))
            # a sounding pitch can always be ended, whatever the range/key
            masks.append(("range", None if in_range is None else in_range | snd))
            masks.append(("key", None if in_key is None else in_key | snd))
            masks.append(("pitch_classes", None if in_pcs is None else in_pcs | snd))
        else:
            if c.max_polyphony is not None and c.max_polyphony <= 0:
                self.fallbacks["polyphony"] += 1
            masks.append(("range", in_range))
            masks.append(("key", in_key))
            masks.append(("pitch_classes", in_pcs))
        lean = None
        if c.harmony > 0.0 and (chord != NO_CHORD or c.lean_pcs):
            if c.lean_pcs:  # the caller's own stable tones (a cadence) instead of the chord's
                tones = np.isin(self._pitch_class, c.lean_pcs)  # (n_pitch,) bool
            else:
                tones = self._tones[chord][self._pitch_class]  # (n_pitch,) bool
            if sounding:
                # new notes lean to the chord's tones; of the sounding ones, those outside it lean to end
                tones = (tones & ~snd) | (snd & ~tones)
            lean = (c.harmony * HARMONY_NATS) * tones
        row[PITCH] = pitch = self._pick(engine, PITCH, cond(), masks, c, rng, bias=lean)

        vel_mask = None
        if c.consistent and part < v.n_parts:
            vel_mask = self._off if pitch in sounding else self._on
        row[VEL] = self._pick(engine, VEL, cond(), (("consistency", vel_mask),), c, rng)
        return row
