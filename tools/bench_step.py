"""Per-event step latency of the engine: feed one event + sample all four fields.

    python tools/bench_step.py --model models/NAME.onnx
    python tools/bench_step.py --random            # an untrained default-config model (needs torch)

Reports median / p99 / p99.9 / max at 128, 512 and 1024 cached events (the
last capped at max_len - 1) and over a stream that crosses the context-full
boundary (shadow steps and swaps included), on one intra-op thread by default,
with the provider onnxruntime really uses. Figures taken while other work runs
on the machine are noisy: say so beside them.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from livejam.engine import Constraints, Engine, EventSampler, ModelError, NoteTracker, load_model  # noqa: E402


def stats(ns: list[int]) -> dict[str, float]:
    a = np.asarray(ns, np.float64) / 1e6  # ms
    return {"n": int(len(a)), "median_ms": float(np.median(a)), "p99_ms": float(np.percentile(a, 99)),
            "p99.9_ms": float(np.percentile(a, 99.9)), "max_ms": float(a.max())}


def random_tokens(vocab, n: int, rng: np.random.Generator) -> np.ndarray:
    return np.stack([rng.integers(0, vocab.n_parts, n), rng.integers(0, vocab.n_dt, n),
                     rng.integers(0, vocab.n_pitch, n), rng.integers(0, vocab.n_vel, n)], 1).astype(np.int64)


def bench_at(engine: Engine, sampler: EventSampler, c: Constraints, n_cached: int, steps: int,
             rng: np.random.Generator) -> tuple[dict, dict]:
    """Steps at a fixed context size: rewind to n_cached before each (same position every time)."""
    engine.reset()
    engine.prefill(random_tokens(engine.vocab, n_cached - 1, rng))
    notes = NoteTracker(engine.vocab)
    total, feed = [], []
    for _ in range(steps):
        engine.rewind(n_cached)
        t0 = time.perf_counter_ns()
        tok = sampler.sample(engine, c, notes, rng)
        t1 = time.perf_counter_ns()
        engine.feed(tok)
        t2 = time.perf_counter_ns()
        total.append(t2 - t0)
        feed.append(t2 - t1)
    return stats(total), stats(feed)


def bench_stream(engine: Engine, sampler: EventSampler, c: Constraints, steps: int,
                 rng: np.random.Generator) -> tuple[dict, dict]:
    """A continuous stream from an empty context across context-full boundaries."""
    engine.reset()
    notes = NoteTracker(engine.vocab)
    total, at_swap = [], []
    for _ in range(steps):
        swaps = engine.swaps
        t0 = time.perf_counter_ns()
        tok = sampler.sample(engine, c, notes, rng)
        engine.feed(tok)
        dt = time.perf_counter_ns() - t0
        notes.observe(tok)
        total.append(dt)
        if engine.swaps != swaps:
            at_swap.append(dt)
    return stats(total), (stats(at_swap) if at_swap else {"n": 0})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="livejam .onnx model file")
    parser.add_argument("--random", action="store_true", help="bench an untrained default-config model")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    parser.add_argument("--steps", type=int, default=2000, help="steps per context size")
    parser.add_argument("--window", type=int, default=None, help="events kept at a context-full swap")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if bool(args.model) == bool(args.random):
        parser.error("give exactly one of --model or --random")
    logging.basicConfig(level=logging.WARNING)
    tmp = None
    path = args.model
    if args.random:
        import export_onnx  # torch: only for the random model

        tmp = tempfile.TemporaryDirectory()
        path = export_onnx.export(export_onnx.EventTransformer(export_onnx.ModelConfig()).eval(),
                                  Path(tmp.name) / "random.onnx", check=False)
    try:
        model = load_model(path, intra_op_threads=args.threads)
    except ModelError as e:
        parser.exit(2, f"bench_step: {e}\n")
    info = model.info
    engine = Engine(model, window=args.window)
    sampler = EventSampler(info.vocab)
    c = Constraints(temperature=1.0, top_p=0.95, max_polyphony=8, pitch_range=(36, 96))
    rng = np.random.default_rng(args.seed)
    for _ in range(200):  # warm-up
        engine.feed(sampler.sample(engine, c, NoteTracker(info.vocab), rng))
    result = {"model": str(path), "layers": info.n_layer, "d_model": info.d_model, "max_len": info.max_len,
              "providers": model.providers, "intra_op_threads": args.threads, "window": engine.window,
              "cpus": os.cpu_count(), "load_avg_1min": os.getloadavg()[0], "at": {}}
    for n in (128, 512, 1024):
        n_cached = min(n, info.max_len - 1)
        step, feed = bench_at(engine, sampler, c, n_cached, args.steps, rng)
        result["at"][str(n_cached)] = {"step": step, "feed_only": feed}
    stream, swap = bench_stream(engine, sampler, c, 3 * info.max_len, rng)
    result["stream_across_context_full"] = {"step": stream, "swap_steps": swap, "swaps": engine.swaps}
    result["load_avg_1min_after"] = os.getloadavg()[0]
    if tmp is not None:
        tmp.cleanup()
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"model {path}: {info.n_layer} layers, d={info.d_model}, max_len={info.max_len}")
    print(f"providers {model.providers}, intra-op threads {args.threads}, window {engine.window}, "
          f"load avg {result['load_avg_1min']:.2f} -> {result['load_avg_1min_after']:.2f} on {os.cpu_count()} cpus")
    print(f"{'context':>26} {'median':>8} {'p99':>8} {'p99.9':>8} {'max':>8}  (ms, feed + sample 4 fields)")
    rows = [(f"{k} cached", v["step"]) for k, v in result["at"].items()]
    rows += [(f"{k} cached, feed only", v["feed_only"]) for k, v in result["at"].items()]
    rows.append((f"stream {3 * info.max_len} events", stream))
    if swap.get("n"):
        rows.append((f"the {swap['n']} swap steps", swap))
    for name, s in rows:
        print(f"{name:>26} {s['median_ms']:8.3f} {s['p99_ms']:8.3f} {s['p99.9_ms']:8.3f} {s['max_ms']:8.3f}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    raise SystemExit(main())
