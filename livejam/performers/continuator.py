"""Variable-order Markov continuator over event rows (format 2: part, dt, chord, pitch, vel, pos, tempo).

Two jobs, one model (in the spirit of Pachet's Continuator):
- the live performer's brain: it learns the player's phrases as they are heard
  (`observe`) and continues them (`sample`), with no training beforehand;
- the probabilistic baseline the neural model is compared against (`nll`,
  `score`): a proper distribution per predicted field, factorised in the neural
  heads' order part -> dt -> chord -> pitch -> vel. Each field is conditioned
  on what the neural head for it may know (the earlier fields of the same
  event, the event's bar position once dt is chosen, and the history) and on
  that field's own recent values:

    part  | previous parts
    dt    | part, the bar position now (the last event's), previous dts
    chord | the chord sounding, the event's bar position, whether time moves
            (dt > 0), the chord changes before (the progression so far)
    pitch | part, chord, that part's previous pitches
    vel   | part, whether (part, pitch) is sounding, that part's previous vels

  "Sounding" is a deterministic function of the history (note-ons minus
  note-offs) and is what makes note-offs predictable. The chord history is the
  sequence of chord *changes*: one chord lasts many events, so its last k
  per-event values say almost nothing that the chord sounding does not; its
  last changes say where the progression goes. Pitches and velocities are
  histories of their own part: interleaved melody and accompaniment would
  otherwise mix two lines into one context. These orders were chosen on POP909
  validation songs (online, order 4) among a few alternatives, each worse by
  0.01-0.25 nats/event: dt without the bar position, pitch with its history
  before the chord, chord history as per-event values.

Smoothing is Witten-Bell interpolation along each field's context, from the
longest down to the empty one and finally a uniform floor over the field's
whole vocabulary, so every value gets a probability > 0 and each field's
distribution sums to 1 (tested). A field's context is an ordered tuple (the
conditions first, most informative first, then the history, newest first) and
its back-off keys are the tuple's prefixes. Counts live in dicts keyed by those
prefixes; scoring a value costs a few dict look-ups per order, never a loop over
the vocabulary.

Counts are kept in layers: `fit` and `observe` write to the newest layer, and
`fork()` adds an empty layer over shared, read-only older ones. That lets
`livejam eval` fit once on training data and score each file online (learning
as it goes, like a live session) without copying or polluting the fitted counts.
Each layer is its own backoff chain whose floor is the layer below's
distribution (a cache model over a background model): summing a song's few
counts into a corpus's many would drown what the player just did (measured on
POP909 melody + piano with format 1, order 4: ~7.6 nats/event with summed
counts, ~6.5 chained, the same as with no corpus at all). Format 2, 4 POP909
validation songs after 200k training events: 6.07 chained against 6.58 with the
layers interleaved per context length (each order's fitted counts, then the
session's); the song's own repetition is the strongest signal here (5.89 with no
corpus at all).
"""
from __future__ import annotations

import logging
import math
from typing import Callable, Iterable, Sequence

import numpy as np

from livejam.events import COLUMNS, COND_COLUMNS, COND_COUNTS, FIELDS, DT, PART, PITCH, VEL, Vocab

log = logging.getLogger(__name__)

N_FIELDS = len(FIELDS)  # predicted: part, dt, chord, pitch, vel
WIDTH = len(COLUMNS)
Token = tuple[int, ...]  # a row of WIDTH ids (COLUMNS order)
NONE = -1  # "no value yet" in a context (never a symbol)


class MarkovContinuator:
    """Online variable-order Markov model of event rows; see the module docstring."""

    def __init__(self, vocab: Vocab | None = None, max_order: int = 4):
        if max_order < 0:
            raise ValueError(f"max_order must be >= 0, got {max_order}")
        self.vocab = vocab or Vocab()
        self.max_order = max_order
        self.sizes = self.vocab.field_sizes
        # Each layer maps a context key -> [total count, {symbol: count}].
        self._layers: list[dict[tuple, list]] = [{}]
        self.reset_context()

    # --- state -----------------------------------------------------------------

    def fork(self) -> "MarkovContinuator":
        """A model that sees these counts (shared, not copied) and learns into its own new layer."""
        other = MarkovContinuator(self.vocab, self.max_order)
        other._layers = self._layers + [{}]
        other.restore_context(self.context_state())
        return other

    def reset_context(self) -> None:
        """Start a new sequence: forget the recent history (not the counts)."""
        n = self.vocab.n_parts
        self._parts: list[int] = []
        self._dts: list[int] = []
        self._changes: list[int] = []  # chord changes, newest last (the chord sounding is the last)
        self._pitches: list[list[int]] = [[] for _ in range(n)]  # per part
        self._vels: list[list[int]] = [[] for _ in range(n)]  # per part
        self._pos = self.vocab.pos_unknown  # bar position of the last event: "now"
        self._sounding: set[tuple[int, int]] = set()  # (part, pitch) note-ons without their off yet

    def context_state(self) -> tuple:
        """Snapshot of the recent history, for `restore_context` (e.g. after a machine answer)."""
        return (list(self._parts), list(self._dts), list(self._changes), [list(h) for h in self._pitches],
                [list(h) for h in self._vels], self._pos, frozenset(self._sounding))

    def restore_context(self, state: tuple) -> None:
        parts, dts, changes, pitches, vels, pos, sounding = state
        self._parts, self._dts, self._changes = list(parts), list(dts), list(changes)
        self._pitches = [list(h) for h in pitches]
        self._vels = [list(h) for h in vels]
        self._pos = pos
        self._sounding = set(sounding)

    def without_sounding(self, state: tuple) -> tuple:
        """`state` (from context_state) with nothing sounding."""
        return state[:-1] + (frozenset(),)

    def sounding(self) -> frozenset[tuple[int, int]]:
        return frozenset(self._sounding)

    # --- learning ----------------------------------------------------------------

    def observe(self, token: Sequence[int]) -> None:
        """Learn one row in its context, then append it to the history."""
        token = _as_token(token)
        if token[PART] >= self.vocab.n_parts:  # a start marker: a new sequence begins
            self.reset_context()
            return
        self._check(token)
        layer = self._layers[-1]
        cond = _cond(token)
        for field in range(N_FIELDS):
            symbol = token[field]
            for key in self._keys(field, cond):
                entry = layer.get(key)
                if entry is None:
                    layer[key] = [1, {symbol: 1}]
                else:
                    entry[0] += 1
                    counts = entry[1]
                    counts[symbol] = counts.get(symbol, 0) + 1
        self.push(token)

    def push(self, token: Sequence[int]) -> None:
        """Append a row to the context without learning it (the machine's own output)."""
        part, dt, chord, pitch, vel, pos, _ = _as_token(token)
        if part >= self.vocab.n_parts:
            self.reset_context()
            return
        _append(self._parts, part, self.max_order)
        _append(self._dts, dt, self.max_order)
        if not self._changes or self._changes[-1] != chord:
            _append(self._changes, chord, self.max_order + 1)  # + the chord sounding
        _append(self._pitches[part], pitch, self.max_order)
        _append(self._vels[part], vel, self.max_order)
        self._pos = pos
        if vel > 0:
            self._sounding.add((part, pitch))
        else:
            self._sounding.discard((part, pitch))

    def fit(self, sequences: Iterable[np.ndarray]) -> "MarkovContinuator":
        """Learn from whole sequences ((N, 7) row arrays); each starts a fresh context."""
        for events in sequences:
            self.reset_context()
            for row in _rows(events):
                self.observe(row)
        self.reset_context()
        return self

    # --- probabilities -------------------------------------------------------------

    def log_probs(self, token: Sequence[int]) -> np.ndarray:
        """Log-probability (nats) of each predicted field of `token` as the next event, shape (5,)."""
        token = _as_token(token)
        self._check(token)
        cond = _cond(token)
        out = np.empty(N_FIELDS)
        for field in range(N_FIELDS):
            out[field] = math.log(self._prob(field, cond, token[field]))
        return out

    def distribution(self, field: int, cond: Sequence[int] = ()) -> np.ndarray:
        """Probabilities over field `field`'s vocabulary for the next event. `cond` is what the
        neural head k reads: the next event's (part, dt, pos, chord, pitch) (COND_COLUMNS),
        of which field k needs the first COND_COUNTS[k]. Sums to 1."""
        cond = tuple(int(x) for x in cond)
        need = COND_COUNTS[field]
        if len(cond) < need:
            raise ValueError(f"field {FIELDS[field]} needs {need} conditioning values "
                             f"(part, dt, pos, chord, pitch), got {cond}")
        cond = cond[:need] + (0,) * (len(COND_COLUMNS) - need)
        size = self.sizes[field]
        probs = np.full(size, 1.0 / size)
        keys = self._keys(field, cond)
        counts = np.zeros(size)
        for layer in self._layers:  # each layer backs off to the one below it
            for key in keys:
                entry = layer.get(key)
                if entry is not None:
                    total, table = entry
                    counts[:] = 0.0
                    counts[np.fromiter(table.keys(), np.int64, len(table))] = np.fromiter(table.values(), float, len(table))
                    probs = (counts + len(table) * probs) / (total + len(table))
        return probs

    def score(self, events: np.ndarray, warm: np.ndarray | None = None) -> np.ndarray:
        """Online NLL (nats) of each event's predicted fields, shape (M, 5): each event is
        scored, then learned, like a live session. Start markers (part == bos) reset the
        context and are not scored. `warm` is observed first, unscored (a prompt). Works on
        a fork, so this model's own counts are left as they were."""
        model = self.fork()
        model.reset_context()
        if warm is not None:
            for row in _rows(warm):
                model.observe(row)
        rows = _rows(events)
        out = np.empty((len(rows), N_FIELDS))
        n = 0
        bos = self.vocab.bos_part
        for row in rows:
            if row[PART] == bos:
                model.reset_context()
                continue
            out[n] = -model.log_probs(row)
            model.observe(row)
            n += 1
        return out[:n]

    def nll(self, events: np.ndarray, warm: np.ndarray | None = None) -> np.ndarray:
        """Mean online NLL per field (nats), shape (5,) in FIELDS order; their sum is the
        NLL per event. See `score`."""
        scores = self.score(events, warm)
        if len(scores) == 0:
            return np.zeros(N_FIELDS)
        return scores.mean(axis=0)

    # --- generation -----------------------------------------------------------------

    def sample(self, rng: np.random.Generator, parts: Sequence[int] | None = None,
               dt_bins: tuple[int, int] | None = None, pitch_range: tuple[int, int] | None = None,
               max_polyphony: int | None = None, temperature: float = 1.0,
               next_pos: Callable[[int], int] | None = None, tempo: int = 0) -> Token:
        """Sample the next row field by field, with constraints as masks.

        parts: allowed parts (default: every playable part, never the start marker);
        dt_bins / pitch_range: inclusive bounds; max_polyphony: at that many sounding
        notes in the part only note-offs are allowed. Note-offs are only for sounding
        notes and note-ons only for silent ones. A constraint that leaves nothing to
        sample is dropped (logged), never an error. next_pos(dt): the bar position an
        event dt ticks on lands at (the coder's; unknown without it), which the chord
        is conditioned on; `tempo` is copied into the row. Does not change the model;
        call `push` (or `observe`) with the result to continue from it.
        """
        v = self.vocab
        part_mask = np.zeros(self.sizes[PART], bool)
        part_mask[list(parts) if parts is not None else list(range(v.n_parts))] = True
        part_mask[v.bos_part] = False
        part = _choose(self.distribution(0), part_mask, temperature, rng)

        dt_mask = None
        if dt_bins is not None:
            dt_mask = np.zeros(self.sizes[DT], bool)
            dt_mask[max(0, dt_bins[0]): dt_bins[1] + 1] = True
        dt = _choose(self.distribution(1, (part,)), dt_mask, temperature, rng)
        pos = next_pos(dt) if next_pos is not None else v.pos_unknown

        chord = _choose(self.distribution(2, (part, dt, pos)), None, temperature, rng)

        sounding = sorted(p for q, p in self._sounding if q == part)
        pitch_mask = None
        if pitch_range is not None:
            pitch_mask = np.zeros(self.sizes[PITCH], bool)
            pitch_mask[max(0, pitch_range[0]): pitch_range[1] + 1] = True
            pitch_mask[sounding] = True  # ending a note is always allowed
        if max_polyphony is not None and len(sounding) >= max_polyphony:
            pitch_mask = np.zeros(self.sizes[PITCH], bool)
            pitch_mask[sounding] = True
        pitch = _choose(self.distribution(3, (part, dt, pos, chord)), pitch_mask, temperature, rng)

        vel_mask = np.zeros(self.sizes[VEL], bool)
        if (part, pitch) in self._sounding:
            vel_mask[0] = True
        else:
            vel_mask[1:] = True
        vel = _choose(self.distribution(4, (part, dt, pos, chord, pitch)), vel_mask, temperature, rng)
        return (part, dt, chord, pitch, vel, pos, tempo)

    # --- internals ----------------------------------------------------------------------

    def _keys(self, field: int, cond: tuple) -> list[tuple]:
        """Back-off keys of `field`, shortest first: the prefixes of its context (see the
        module docstring). cond: the next event's (part, dt, pos, chord, pitch)."""
        part, dt, pos, chord, pitch = cond
        k = self.max_order
        if field == 0:
            context: tuple = tuple(self._parts[::-1][:k])
        elif field == 1:
            context = (part, self._pos) + tuple(self._dts[::-1][:k])
        elif field == 2:
            now = self._changes[-1] if self._changes else NONE
            context = (now, pos, dt > 0) + tuple(self._changes[-2::-1][:k])
        elif field == 3:
            context = (part, chord) + tuple(self._pitches[part][::-1][:k])
        else:
            context = (part, (part, pitch) in self._sounding) + tuple(self._vels[part][::-1][:k])
        return [(field,) + context[:i] for i in range(len(context) + 1)]

    def _prob(self, field: int, cond: tuple, symbol: int) -> float:
        prob = 1.0 / self.sizes[field]
        keys = self._keys(field, cond)
        for layer in self._layers:  # each layer backs off to the one below it
            for key in keys:
                entry = layer.get(key)
                if entry is not None:
                    total, table = entry
                    types = len(table)
                    prob = (table.get(symbol, 0) + types * prob) / (total + types)
        return prob

    def _check(self, token: Token) -> None:
        for column, (value, size) in enumerate(zip(token, self.sizes)):
            if not 0 <= value < size:
                raise ValueError(f"{COLUMNS[column]} {value} outside its vocabulary 0..{size - 1}")


def _as_token(token: Sequence[int]) -> Token:
    if len(token) != WIDTH:
        raise ValueError(f"an event row has {WIDTH} columns {COLUMNS}, got {len(token)}")
    return tuple(int(x) for x in token)


def _cond(token: Token) -> tuple:
    return tuple(token[c] for c in COND_COLUMNS)


def _rows(events) -> list[list[int]]:
    return np.asarray(events, dtype=np.int64).reshape(-1, WIDTH).tolist()


def _append(history: list[int], value: int, keep: int) -> None:
    history.append(value)
    if len(history) > 4 * keep + 4:  # trim now and then, not every call
        del history[: len(history) - keep]


def _choose(probs: np.ndarray, mask: np.ndarray | None, temperature: float, rng: np.random.Generator) -> int:
    """Sample an index from `probs` restricted to `mask`; inverse-CDF on one uniform draw
    so the result depends only on the rng's state (deterministic under a seed)."""
    weights = probs if mask is None else probs * mask
    if weights.sum() <= 0.0:
        log.debug("constraint mask left nothing to sample; ignoring it")
        weights = probs
    if temperature != 1.0:
        weights = weights ** (1.0 / max(temperature, 1e-3))
    cdf = np.cumsum(weights)
    index = int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))
    return min(index, len(probs) - 1)
