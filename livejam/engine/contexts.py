"""The backbone's KV contexts: one set of cache buffers bound in place, and the pair step.

A context is one sequence's cache (the engine's main context, or its shadow: see kv.py). On
the CPU the two contexts' buffers are the two halves of one (2, H, L, hd) array per layer and
kind, so that when both need an event (the shadow copies the main context's last events
before a swap) one backbone run with B = 2 steps both: the weights are read once, which is
most of a step's cost at batch 1 (4 layers, d=256: a pair step 0.42 ms against two single
steps 0.64 ms, median, on a 2-core AMD EPYC VM).
"""
from __future__ import annotations

import numpy as np

from livejam.engine.session import LoadedModel
from livejam.events import COLUMNS

WIDTH = len(COLUMNS)  # token ids per event


class Context:
    """One set of KV buffers bound to the backbone (main or shadow).

    `kv`: the (1, H, L, hd) arrays to use, one per layer and kind (on the CPU: the halves of the
    pair's buffers, `half` 0 or 1), else buffers of its own (on the GPU: kept there)."""

    def __init__(self, model: LoadedModel, h_out: np.ndarray, step_events: np.ndarray, step_pos: np.ndarray,
                 kv: list[np.ndarray] | None = None, half: int = 0):
        import onnxruntime as ort

        info = model.info
        self.sess = model.backbone
        self.half = half
        shape = (1, info.n_head, info.max_len, info.head_dim)  # (1, H, L, hd)
        if kv is not None:
            self.kv = [ort.OrtValue.ortvalue_from_numpy(a) for a in kv]  # wraps the arrays: no copy
        elif model.providers and model.providers[0] == "CUDAExecutionProvider":  # keep the cache on the GPU
            self.kv = [ort.OrtValue.ortvalue_from_shape_and_type(shape, np.float32, "cuda", 0)
                       for _ in range(2 * info.n_layer)]
        else:
            self.kv = [ort.OrtValue.ortvalue_from_numpy(np.zeros(shape, np.float32))
                       for _ in range(2 * info.n_layer)]
        self.binding = self.sess.io_binding()
        for i in range(info.n_layer):
            for kind, j in (("key", 2 * i), ("value", 2 * i + 1)):
                self.binding.bind_ortvalue_input(f"past_{kind}_{i}", self.kv[j])
                self.binding.bind_ortvalue_output(f"present_{kind}_{i}", self.kv[j])
        # the step's inputs/output live in arrays shared with the engine: bound once, written in place
        self._ev_np, self._pos_np = step_events, step_pos
        self._ev = ort.OrtValue.ortvalue_from_numpy(step_events)  # (1, 1, WIDTH) int64
        self._pos = ort.OrtValue.ortvalue_from_numpy(step_pos)  # (1, 1) int64
        self._h = ort.OrtValue.ortvalue_from_numpy(h_out)  # (1, C) float32
        self.binding.bind_ortvalue_output("h", self._h)
        self._bind_step()
        self.tokens = np.zeros((info.max_len, WIDTH), np.int64)  # what each position holds
        self.pos = 0

    def _bind_step(self) -> None:
        self.binding.bind_ortvalue_input("events", self._ev)
        self.binding.bind_ortvalue_input("positions", self._pos)

    def step(self, token) -> None:
        """One event at position pos, through the bound (1, 1, WIDTH) / (1, 1) arrays."""
        self._ev_np[0, 0] = token  # the arrays the bound OrtValues wrap (no copy)
        self._pos_np[0, 0] = self.pos
        self.sess.run_with_iobinding(self.binding)
        self.tokens[self.pos] = token
        self.pos += 1

    def run_chunk(self, tokens: np.ndarray) -> None:
        """tokens: (T, WIDTH) at positions pos..pos+T-1 (T >= 1; a T = 1 chunk is a step)."""
        T = len(tokens)
        self.binding.bind_cpu_input("events", np.ascontiguousarray(tokens, dtype=np.int64)[None])  # (1, T, WIDTH)
        self.binding.bind_cpu_input("positions", np.arange(self.pos, self.pos + T, dtype=np.int64)[None])
        self.sess.run_with_iobinding(self.binding)
        self._bind_step()
        self.tokens[self.pos:self.pos + T] = tokens
        self.pos += T


class PairStep:
    """Both contexts one event each, at their own positions, in one backbone run (B = 2).

    `kv`: the (2, H, L, hd) arrays whose halves the two contexts hold (their `half`)."""

    def __init__(self, model: LoadedModel, kv: list[np.ndarray]):
        import onnxruntime as ort

        self.sess = model.backbone
        self.events = np.zeros((2, 1, WIDTH), np.int64)
        self.positions = np.zeros((2, 1), np.int64)
        self.h = np.zeros((2, model.info.d_model), np.float32)
        self._values = [ort.OrtValue.ortvalue_from_numpy(a) for a in (self.events, self.positions, self.h, *kv)]
        ev, pos, h, *cache = self._values
        self.binding = self.sess.io_binding()
        self.binding.bind_ortvalue_input("events", ev)
        self.binding.bind_ortvalue_input("positions", pos)
        self.binding.bind_ortvalue_output("h", h)
        for i in range(model.info.n_layer):
            for kind, j in (("key", 2 * i), ("value", 2 * i + 1)):
                self.binding.bind_ortvalue_input(f"past_{kind}_{i}", cache[j])
                self.binding.bind_ortvalue_output(f"present_{kind}_{i}", cache[j])

    def step(self, a: Context, row_a, b: Context, row_b) -> None:
        """row_a at a's next position and row_b at b's, one run; each context's h is self.h[half]."""
        for ctx, row in ((a, row_a), (b, row_b)):
            self.events[ctx.half, 0] = row
            self.positions[ctx.half, 0] = ctx.pos
        self.sess.run_with_iobinding(self.binding)
        for ctx, row in ((a, row_a), (b, row_b)):
            ctx.tokens[ctx.pos] = row
            ctx.pos += 1
