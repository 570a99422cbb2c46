"""The inference engine: preallocated KV cache, cached steps, prefill, field logits.

Knows token ids only (no MIDI). One backbone run per event:

    engine.reset()                 # position 0, then the start-of-sequence event
    engine.prefill(prompt)         # (N, 7) rows (livejam.events.COLUMNS), one run
    engine.feed(row)               # one cached step; engine.h is the new state
    engine.defer(row)              # queue a row: the queue is fed in one run at the next use
    engine.logits(k, cond)         # (V_k,) logits of field k of the next event, given the
                                   # next event's known fields cond = (part, dt, pos, chord, pitch);
                                   # each head's inputs and output are bound once (IOBinding)

KV cache: per layer and kind one (1, H, L, hd) float32 buffer (L = max_len) that
is both the past input and the present output of GroupQueryAttention, bound
once through IOBinding: a step writes its new K/V in place and attends over the
first `pos` positions only. Nothing is copied or allocated per step, and
`reset()` costs nothing (positions past `pos` are never read).

Context full: positions are absolute (learned position embeddings), so the
context cannot slide. It is full at `context` events (the model's max_len, or
less: live_context() caps it where a longer one stops paying for its
attention). A *shadow* context (a second set of buffers) is built
incrementally: from position context - window + 1 on, every event also goes
into the shadow, which starts with a start-of-sequence event. When the main
context is full, the two swap: the model continues from [BOS] + the last
window - 1 events at position `window`, with no pause (a shadow step is a step
at a small position). `defer_shadow=True` leaves the shadow steps to `idle()`
(call it while waiting for the next event); when none came, feed() keeps the
shadow at most one event behind and the swap runs that event with its own: a
feed is one backbone run after idle(), two at most without, so no step stalls.
"""
from __future__ import annotations

import logging
import time

import numpy as np

from livejam.engine.contexts import WIDTH, Context, PairStep
from livejam.engine.session import LoadedModel, ModelError
from livejam.events import COND_COUNTS

# The live context's default cap, for two reasons. Training windows are a start row + 512
# events (tools/train.py seq_len), so positions past 512 hold position embeddings no
# gradient reached: a checkpoint of the v2 training run (step 700) scored 4.52 nats/event on
# held-out songs at context 512 and 5.12 at 1024 (`livejam eval --context`). And a step's
# attention cost is not smooth in the context: on one CPU thread (onnxruntime 1.32, AVX2,
# 4 layers d=192) a feed took 0.48 ms of CPU at 512 cached events, 0.83 at 520 and 1.1 at
# 600 (GroupQueryAttention changes pace past 512).
LIVE_CONTEXT = 512

log = logging.getLogger(__name__)


class Engine:
    """KV-cached event model: feed events, read field logits of the next one."""

    def __init__(self, model: LoadedModel, window: int | None = None, defer_shadow: bool = False,
                 context: int | None = None):
        info = model.info
        self.model = model
        self.info = info
        self.vocab = info.vocab
        self.max_len = info.max_len
        # the live context: the most events a step attends over before the swap (<= max_len).
        # A step's attention grows with it; live_context() says what pays.
        self.context = info.max_len if context is None else int(context)
        if not 3 <= self.context <= self.max_len:
            raise ValueError(f"context {self.context} must be in 3..{self.max_len}")
        self.window = window if window is not None else max(2, self.context // 2)
        if not 2 <= self.window <= self.context - 1:
            raise ValueError(f"window {self.window} must be in 2..{self.context - 1}")
        self.defer_shadow = defer_shadow
        self.bos = np.array(self.vocab.bos_row(), np.int64)
        self.h = np.zeros((1, info.d_model), np.float32)  # (1, C) state after the last fed event
        self._shadow_h = np.zeros((1, info.d_model), np.float32)  # the shadow's (unused)
        self._step_ev = np.zeros((1, 1, WIDTH), np.int64)
        self._step_pos = np.zeros((1, 1), np.int64)
        self._pair: PairStep | None = None
        if model.batched and model.providers[:1] != ["CUDAExecutionProvider"]:
            shape = (2, info.n_head, info.max_len, info.head_dim)
            self._kv = [np.zeros(shape, np.float32) for _ in range(2 * info.n_layer)]  # the halves: main, shadow
            self._main = Context(model, self.h, self._step_ev, self._step_pos, [a[0:1] for a in self._kv], 0)
            self._shadow = Context(model, self._shadow_h, self._step_ev, self._step_pos, [a[1:2] for a in self._kv], 1)
            self._pair = PairStep(model, self._kv)
        else:
            self._main = Context(model, self.h, self._step_ev, self._step_pos)
            self._shadow = Context(model, self._shadow_h, self._step_ev, self._step_pos)
        self._shadow_on = False  # the shadow holds [BOS] + tokens[shadow_from:shadow_from + shadow.pos - 1]
        self._bind_heads()
        self._queued: list[np.ndarray] = []  # rows given to defer(), not yet run
        self.swaps = 0
        self._self_check()
        self.reset()

    def _self_check(self) -> None:
        """Steps must match a prefill of the same events (catches a provider that breaks the shared cache)."""
        v = self.vocab
        probe = np.array([self.bos, [0, 1, 1, 60, 5, 1, 0], [1, 2, 0, 64, 0, v.pos_unknown, 0]], np.int64)
        self.reset(start=False)
        self.prefill(probe)
        ref = self.h.copy()
        self.reset(start=False)
        for t in probe:
            self.feed(t)
        err = float(np.abs(self.h - ref).max())
        if self._pair is not None:  # a pair step: the main's third event beside the shadow's second
            self.reset(start=False)
            self._main.run_chunk(probe[:2])
            self._shadow.pos = 0
            self._shadow.run_chunk(probe[:1])
            self._pair.step(self._main, probe[2], self._shadow, probe[1])
            err = max(err, float(np.abs(self._pair.h[self._main.half] - ref[0]).max()))
            self._shadow.pos = 0
        if not err <= 1e-3:
            raise ModelError(f"{self.model.path}: cached steps disagree with prefill on providers "
                             f"{self.model.providers} (max diff {err:.2g}); use the CPU provider")

    def _bind_heads(self) -> None:
        """Each head's inputs (h, cond) and output bound once: a head call is one run_with_iobinding.

        (A run with a feed dict spends ~15 us per head validating and wrapping its inputs: measured
        5 heads 141 us -> 85 us median, beside 152 us for the same math in numpy.)"""
        import onnxruntime as ort

        h = ort.OrtValue.ortvalue_from_numpy(self.h)  # self.h stays the main context's output across swaps
        self._cond = [np.zeros((1, n), np.int64) for n in COND_COUNTS]  # (1, n_k) head inputs
        self._head_logits, self._head_bind, self._head_values = [], [], [h]
        for k, sess in enumerate(self.model.heads):
            b = sess.io_binding()
            b.bind_ortvalue_input("h", h)
            if COND_COUNTS[k]:
                c = ort.OrtValue.ortvalue_from_numpy(self._cond[k])
                self._head_values.append(c)  # the OrtValues wrap our arrays: keep them alive
                b.bind_ortvalue_input("cond", c)
            out = np.zeros((1, self.vocab.head_sizes[k]), np.float32)  # (1, V_k)
            v = ort.OrtValue.ortvalue_from_numpy(out)
            self._head_values.append(v)
            b.bind_ortvalue_output(sess.get_outputs()[0].name, v)
            self._head_logits.append(out)
            self._head_bind.append(b)

    # --- state ---------------------------------------------------------------
    @property
    def pos(self) -> int:
        """Events in the context (the next event's position), deferred rows included."""
        self._flush()
        return self._main.pos

    @property
    def shadow_from(self) -> int:
        """Index of the main context's first event the shadow copies."""
        return self.context - self.window + 1

    def tokens(self) -> np.ndarray:
        """(pos, WIDTH) the events in the context, oldest first (a view: copy to keep)."""
        self._flush()
        return self._main.tokens[:self._main.pos]

    def reset(self, start: bool = True) -> None:
        """Empty the context (deferred rows too); with `start`, feed the start-of-sequence event."""
        self._queued.clear()
        self._main.pos = 0
        self._shadow.pos = 0
        self._shadow_on = False
        self.h[:] = 0.0
        if start:
            self.feed(self.bos)

    def rewind(self, pos: int) -> None:
        """Drop the events after the first `pos` (>= 1). `h` is stale until the next feed."""
        self._flush()
        if not 1 <= pos <= self._main.pos:
            raise ValueError(f"rewind to {pos}: context holds {self._main.pos} events")
        self._main.pos = pos
        if self._shadow_on:
            if pos <= self.shadow_from:
                self._shadow_on = False
            else:
                self._shadow.pos = min(self._shadow.pos, pos - self.shadow_from + 1)

    # --- feeding -------------------------------------------------------------
    def feed(self, token) -> None:
        """One cached step: an event row (COLUMNS ids); updates `h`."""
        if self._queued:
            self._flush()
        if self._main.pos >= self.context:
            self._swap(then=token)  # the shadow's missing row and this one: one run
        elif self._pair is not None and self._shadow_on and (not self.defer_shadow or self._shadow_pending()):
            # the shadow needs a row now (deferred: it is already behind; a pair costs ~1.3 single
            # steps, so one a row behind is left to idle())
            self._pair_step(token)
        else:
            self._main.step(token)
        if not self.defer_shadow:
            self._catch_up(limit=None, chunk=False)
        else:
            # idle() does the shadow's steps while the caller waits; a feed keeps the shadow at most
            # this event behind (the swap folds that one into its run), so a feed runs the backbone
            # twice at worst. Catching up only when the swap could wait no longer ran it three
            # times in a quarter of the feeds when no idle() came between them.
            pending = self._shadow_pending()
            if pending > 1:
                self._catch_up(limit=pending - 1, chunk=False)

    def prefill(self, tokens) -> None:
        """Feed many events at once (a prompt): (N, WIDTH) rows; chunked runs, not per-event steps."""
        self._flush()
        tokens = np.asarray(tokens, np.int64).reshape(-1, WIDTH)
        i = 0
        while i < len(tokens):
            if self._main.pos >= self.context:
                self._swap()
            n = min(len(tokens) - i, self.context - self._main.pos)
            self._main.run_chunk(tokens[i:i + n])  # writes self.h (bound output)
            i += n
            self._catch_up(limit=None, chunk=True)  # a prompt is off the hot path: leave no backlog

    def idle(self, max_steps: int = 1) -> bool:
        """Do up to `max_steps` pending shadow steps; True if work is left."""
        self._flush()
        self._catch_up(limit=max_steps, chunk=False)
        return self._shadow_pending() > 0

    def defer(self, token) -> None:
        """Queue an event row instead of stepping now: every use of the engine (logits, feed,
        prefill, idle, pos, tokens, rewind) first runs the queue, one prefill for several rows.

        For input that arrives faster than steps run: k rows in one run cost much less than
        k steps (16 rows: 3.2 ms against 14.5 ms here), and the caller is free until it reads."""
        self._queued.append(np.array(token, np.int64))

    @property
    def queued(self) -> int:
        """Rows deferred and not yet run (the state `h` is behind by that many)."""
        return len(self._queued)

    def _flush(self) -> None:
        if self._queued:
            rows, self._queued = self._queued, []
            if len(rows) == 1:
                self.feed(rows[0])
            else:
                self.prefill(np.stack(rows))

    # --- shadow context ------------------------------------------------------
    def _shadow_pending(self) -> int:
        """Main events the shadow still has to take in."""
        start = self.shadow_from
        if self._main.pos <= start:
            return 0
        done = self._shadow.pos - 1 if self._shadow_on else 0
        return self._main.pos - start - done

    def _pair_step(self, token) -> None:
        """This row into the main context and, in the same run, the shadow's next row (the oldest
        it lacks, or this one): once caught up, the shadow stays caught up at no second run."""
        main, shadow = self._main, self._shadow
        i = self.shadow_from + shadow.pos - 1  # the main index of the shadow's next row
        self._pair.step(main, token, shadow, token if i >= main.pos else main.tokens[i])
        self.h[:] = self._pair.h[main.half]

    def _catch_up(self, limit: int | None, chunk: bool) -> None:
        pending = self._shadow_pending()
        if pending <= 0:
            return
        shadow = self._shadow
        n = pending if limit is None else min(pending, limit)
        if not self._shadow_on:  # it opens with a start event, run with its first rows
            shadow.pos = 0
            shadow.run_chunk(np.concatenate([self.bos[None], self._main.tokens[self.shadow_from:self.shadow_from + n]]))
            self._shadow_on = True
            return
        start = self.shadow_from + shadow.pos - 1
        todo = self._main.tokens[start:start + n]
        if chunk and n > 1:
            shadow.run_chunk(todo)
        else:
            for row in todo:
                shadow.step(row)

    def _swap(self, then=None) -> None:
        """Main context full: continue in the shadow ([BOS] + the last window - 1 events), then
        feed `then` (a row). The rows the shadow still lacks run with it, in one chunk."""
        t0 = time.perf_counter()
        if not self._shadow_on:
            self._catch_up(limit=None, chunk=True)
        done = self._shadow.pos - 1
        missing = self._main.tokens[self.shadow_from + done:self._main.pos].copy()  # (pending, WIDTH)
        self._main, self._shadow = self._shadow, self._main
        # the outputs 'h' are bound per context: keep self.h the main's
        self._main._h, self._shadow._h = self._shadow._h, self._main._h
        self._main.binding.bind_ortvalue_output("h", self._main._h)
        self._shadow.binding.bind_ortvalue_output("h", self._shadow._h)
        self._shadow.pos = 0
        self._shadow_on = False
        self.swaps += 1
        rows = missing if then is None else np.concatenate([missing, np.asarray(then, np.int64).reshape(1, WIDTH)])
        if len(rows) == 1:
            self._main.step(rows[0])
        elif len(rows):
            self._main.run_chunk(rows)
        log.debug("context full: swapped to the shadow window (%d events) in %.2f ms",
                  self._main.pos, (time.perf_counter() - t0) * 1e3)

    # --- heads ---------------------------------------------------------------
    def logits(self, k: int, cond=None) -> np.ndarray:
        """(V_k,) float32 logits of field k of the next event. cond: the next event's known
        fields (part, dt, pos, chord, pitch); head k reads the first COND_COUNTS[k].
        The array is head k's bound output, overwritten by its next call: copy it to keep it."""
        if self._queued:
            self._flush()
        n = COND_COUNTS[k]
        if n:
            self._cond[k][0] = cond[:n]  # the bound (1, n_k) input, written in place
        self.model.heads[k].run_with_iobinding(self._head_bind[k])
        return self._head_logits[k][0]


def live_context(max_len: int, context: int | None = None) -> int:
    """The live context for a model of max_len positions: `context` if given, else LIVE_CONTEXT (capped)."""
    return min(max_len, LIVE_CONTEXT if context is None else context)


def open_engine(path, window: int | None = None, intra_op_threads: int = 1,
                providers: list[str] | None = None, context: int | None = None) -> Engine:
    """Load a model file and build its Engine: CUDA then CPU, falling back to CPU if CUDA misbehaves.

    The live context is `context` or LIVE_CONTEXT, at most the model's max_len.
    Raises ModelError (one line) for a missing/corrupt/wrong-version file.
    """
    from livejam.engine.session import load_model

    model = load_model(path, providers=providers, intra_op_threads=intra_op_threads)
    context = live_context(model.info.max_len, context)
    try:
        return Engine(model, window=window, context=context)
    except ModelError:
        if model.providers == ["CPUExecutionProvider"]:
            raise
        log.warning("providers %s failed the engine self-check; using the CPU provider", model.providers)
        cpu = load_model(path, providers=["CPUExecutionProvider"], intra_op_threads=intra_op_threads)
        return Engine(cpu, window=window, context=context)
