"""Per-event step latency of the engine: feed one event + sample all four fields.

    python -m tools.bench_step --model models/NAME.onnx
    python -m tools.bench_step --random            # an untrained default-config model (needs torch)

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
import tempfile
from pathlib import Path

import numpy as np

from livejam.engine import Engine, EventSampler, ModelError, load_model
# the measuring core is shared with `livejam bench`
from livejam.latency import BENCH_CONSTRAINTS, bench_at, bench_stream, warm_up


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
        from tools import export_onnx  # torch: only for the random model

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
    c = BENCH_CONSTRAINTS
    rng = np.random.default_rng(args.seed)
    warm_up(engine, sampler, c, rng)
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
    raise SystemExit(main())
