"""Variable-order Markov continuator over event tokens (part, dt, pitch, vel).

Two jobs, one model (in the spirit of Pachet's Continuator):
- the live performer's brain: it learns the player's phrases as they are heard
  (`observe`) and continues them (`sample`), with no training beforehand;
- the probabilistic baseline the neural model is compared against (`nll`,
  `score`): a proper distribution per field, factorised in the neural heads'
  order part -> dt -> pitch -> vel, each field conditioned on the fields of the
  same event before it and on that field's own recent history:

    part  | previous parts
    dt    | part, previous dts
    pitch | part, previous pitches
    vel   | part, whether (part, pitch) is sounding, previous vels

  "Sounding" is a deterministic function of the history (note-ons minus
  note-offs) and is what makes note-offs predictable.

Smoothing is Witten-Bell interpolation from the longest context down to the
empty one and finally a uniform floor over the field's whole vocabulary, so
every token gets a probability > 0 and each field's distribution sums to 1
(tested). Counts live in dicts keyed by context tuples; scoring a token costs a
few dict look-ups per order, never a loop over the vocabulary.

Counts are kept in layers: `fit` and `observe` write to the newest layer, and
`fork()` adds an empty layer over shared, read-only older ones. That lets
`livejam eval` fit once on training data and score each file online (learning
as it goes, like a live session) without copying or polluting the fitted counts.
Each layer is its own backoff chain whose floor is the layer below's
distribution (a cache model over a background model): summing a song's few
counts into a corpus's many would drown what the player just did (measured on
POP909 melody + piano, order 4: ~7.6 nats/event with summed counts, ~6.5
chained, the same as with no corpus at all).
"""
from __future__ import annotations

import logging
import math
from typing import Iterable, Sequence

import numpy as np

from livejam.events import Vocab

log = logging.getLogger(__name__)

FIELDS = ("part", "dt", "pitch", "vel")
Token = tuple[int, int, int, int]


class MarkovContinuator:
    """Online variable-order Markov model of event tokens; see the module docstring."""

    def __init__(self, vocab: Vocab | None = None, max_order: int = 4):
        if max_order < 0:
            raise ValueError(f"max_order must be >= 0, got {max_order}")
        self.vocab = vocab or Vocab()
        self.max_order = max_order
        self.sizes = self.vocab.field_sizes
        # Each layer maps a context key -> [total count, {symbol: count}].
        self._layers: list[dict[tuple, list]] = [{}]
        self._history: list[list[int]] = [[], [], [], []]  # per field, newest last
        self._sounding: set[tuple[int, int]] = set()  # (part, pitch) note-ons without their off yet

    # --- state -----------------------------------------------------------------

    def fork(self) -> "MarkovContinuator":
        """A model that sees these counts (shared, not copied) and learns into its own new layer."""
        other = MarkovContinuator(self.vocab, self.max_order)
        other._layers = self._layers + [{}]
        other.restore_context(self.context_state())
        return other

    def reset_context(self) -> None:
        """Start a new sequence: forget the recent history (not the counts)."""
        self._history = [[], [], [], []]
        self._sounding = set()

    def context_state(self) -> tuple:
        """Snapshot of the recent history, for `restore_context` (e.g. after a machine answer)."""
        return tuple(list(h) for h in self._history), frozenset(self._sounding)

    def restore_context(self, state: tuple) -> None:
        history, sounding = state
        self._history = [list(h) for h in history]
        self._sounding = set(sounding)

    def is_sounding(self, part: int, pitch: int) -> bool:
        return (part, pitch) in self._sounding

    def sounding(self) -> frozenset[tuple[int, int]]:
        return frozenset(self._sounding)

    # --- learning ----------------------------------------------------------------

    def observe(self, token: Sequence[int]) -> None:
        """Learn one token in its context, then append it to the history."""
        token = _as_token(token)
        if token[0] >= self.vocab.n_parts:  # a start marker: a new sequence begins
            self.reset_context()
            return
        self._check(token)
        layer = self._layers[-1]
        for field in range(4):
            symbol = token[field]
            for key in self._keys(field, token):
                entry = layer.get(key)
                if entry is None:
                    layer[key] = [1, {symbol: 1}]
                else:
                    entry[0] += 1
                    counts = entry[1]
                    counts[symbol] = counts.get(symbol, 0) + 1
        self.push(token)

    def push(self, token: Sequence[int]) -> None:
        """Append a token to the context without learning it (the machine's own output)."""
        part, dt, pitch, vel = _as_token(token)
        if part >= self.vocab.n_parts:
            self.reset_context()
            return
        keep = 4 * self.max_order + 4  # trim now and then, not every call
        for field, value in enumerate((part, dt, pitch, vel)):
            history = self._history[field]
            history.append(value)
            if len(history) > keep:
                del history[: len(history) - self.max_order]
        if vel > 0:
            self._sounding.add((part, pitch))
        else:
            self._sounding.discard((part, pitch))

    def fit(self, sequences: Iterable[np.ndarray]) -> "MarkovContinuator":
        """Learn from whole sequences ((N, 4) token arrays); each starts a fresh context."""
        for events in sequences:
            self.reset_context()
            for row in np.asarray(events, dtype=np.int64).reshape(-1, 4).tolist():
                self.observe(row)
        self.reset_context()
        return self

    # --- probabilities -------------------------------------------------------------

    def log_probs(self, token: Sequence[int]) -> np.ndarray:
        """Log-probability (nats) of each field of `token` as the next event, shape (4,)."""
        token = _as_token(token)
        self._check(token)
        out = np.empty(4)
        for field in range(4):
            out[field] = math.log(self._prob(field, token, token[field]))
        return out

    def distribution(self, field: int, prefix: Sequence[int] = ()) -> np.ndarray:
        """Probabilities over field `field`'s vocabulary for the next event, given the
        values `prefix` of the fields before it (part first). Sums to 1."""
        prefix = tuple(int(x) for x in prefix)
        if len(prefix) < field:
            raise ValueError(f"field {FIELDS[field]} needs the {field} fields before it, got {prefix}")
        size = self.sizes[field]
        probs = np.full(size, 1.0 / size)
        keys = self._keys(field, prefix)
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
        """Online NLL (nats) of each event's fields, shape (M, 4): each event is scored,
        then learned, like a live session. Start markers (part == bos) reset the context
        and are not scored. `warm` is observed first, unscored (a prompt). Works on a
        fork, so this model's own counts are left as they were."""
        model = self.fork()
        model.reset_context()
        if warm is not None:
            for row in np.asarray(warm, dtype=np.int64).reshape(-1, 4).tolist():
                model.observe(row)
        rows = np.asarray(events, dtype=np.int64).reshape(-1, 4).tolist()
        out = np.empty((len(rows), 4))
        n = 0
        bos = self.vocab.bos_part
        for row in rows:
            if row[0] == bos:
                model.reset_context()
                continue
            out[n] = -model.log_probs(row)
            model.observe(row)
            n += 1
        return out[:n]

    def nll(self, events: np.ndarray, warm: np.ndarray | None = None) -> np.ndarray:
        """Mean online NLL per field (nats), shape (4,) in order part, dt, pitch, vel;
        their sum is the NLL per event. See `score`."""
        scores = self.score(events, warm)
        if len(scores) == 0:
            return np.zeros(4)
        return scores.mean(axis=0)

    # --- generation -----------------------------------------------------------------

    def sample(self, rng: np.random.Generator, parts: Sequence[int] | None = None,
               dt_bins: tuple[int, int] | None = None, pitch_range: tuple[int, int] | None = None,
               max_polyphony: int | None = None, temperature: float = 1.0) -> Token:
        """Sample the next token field by field, with constraints as masks.

        parts: allowed parts (default: every playable part, never the start marker);
        dt_bins / pitch_range: inclusive bounds; max_polyphony: at that many sounding
        notes in the part only note-offs are allowed. Note-offs are only for sounding
        notes and note-ons only for silent ones. A constraint that leaves nothing to
        sample is dropped (logged), never an error. Does not change the model; call
        `push` (or `observe`) with the result to continue from it.
        """
        v = self.vocab
        part_mask = np.zeros(self.sizes[0], bool)
        part_mask[list(parts) if parts is not None else list(range(v.n_parts))] = True
        part_mask[v.bos_part] = False
        part = _choose(self.distribution(0), part_mask, temperature, rng)

        dt_mask = None
        if dt_bins is not None:
            dt_mask = np.zeros(self.sizes[1], bool)
            dt_mask[max(0, dt_bins[0]): dt_bins[1] + 1] = True
        dt = _choose(self.distribution(1, (part,)), dt_mask, temperature, rng)

        sounding = sorted(p for q, p in self._sounding if q == part)
        pitch_mask = None
        if pitch_range is not None:
            pitch_mask = np.zeros(self.sizes[2], bool)
            pitch_mask[max(0, pitch_range[0]): pitch_range[1] + 1] = True
            pitch_mask[sounding] = True  # ending a note is always allowed
        if max_polyphony is not None and len(sounding) >= max_polyphony:
            pitch_mask = np.zeros(self.sizes[2], bool)
            pitch_mask[sounding] = True
        pitch = _choose(self.distribution(2, (part, dt)), pitch_mask, temperature, rng)

        vel_mask = np.zeros(self.sizes[3], bool)
        if (part, pitch) in self._sounding:
            vel_mask[0] = True
        else:
            vel_mask[1:] = True
        vel = _choose(self.distribution(3, (part, dt, pitch)), vel_mask, temperature, rng)
        return (part, dt, pitch, vel)

    # --- internals ----------------------------------------------------------------------

    def _keys(self, field: int, token: Sequence[int]) -> list[tuple]:
        """Context keys for `field`, shortest first: empty, conditioning fields, then
        the conditioning fields plus 1..max_order of the field's previous values."""
        if field == 0:
            cond: tuple = ()
        elif field == 3:
            cond = (token[0], (token[0], token[2]) in self._sounding)
        else:
            cond = (token[0],)
        base = (field,) + cond
        keys = [(field,), base] if cond else [base]
        history = self._history[field]
        for k in range(1, min(self.max_order, len(history)) + 1):
            keys.append(base + tuple(history[-k:]))
        return keys

    def _prob(self, field: int, token: Sequence[int], symbol: int) -> float:
        prob = 1.0 / self.sizes[field]
        keys = self._keys(field, token)
        for layer in self._layers:  # each layer backs off to the one below it
            for key in keys:
                entry = layer.get(key)
                if entry is not None:
                    total, table = entry
                    types = len(table)
                    prob = (table.get(symbol, 0) + types * prob) / (total + types)
        return prob

    def _check(self, token: Token) -> None:
        for field, (value, size) in enumerate(zip(token, self.sizes)):
            if not 0 <= value < size:
                raise ValueError(f"{FIELDS[field]} {value} outside its vocabulary 0..{size - 1}")


def _as_token(token: Sequence[int]) -> Token:
    part, dt, pitch, vel = (int(x) for x in token)
    return (part, dt, pitch, vel)


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
