"""`livejam eval`: NLL of the ONNX model on MIDI files or prepared shards, beside the Markov baseline.

Both models score exactly the same events (format 2 rows, livejam.events), one
sequence (a file, or a song of a shard) at a time, in nats, per event and per
predicted field (part, dt, chord, pitch, vel):
- the neural model teacher-forced through the live engine's KV cache: for each
  event, the earlier events have been fed, and field k's log-softmax is read at
  the true value with the event's true known fields as the head's condition
  (row[COND_COLUMNS], of which head k reads the first COND_COUNTS[k]). A sequence
  longer than the model's context continues the way the daemon does: when the
  context is full it restarts from a start-of-sequence event plus the most
  recent `window - 1` events (livejam.engine.Engine's shadow swap), so every
  window starts with a start marker and no event is scored without context;
- the Markov continuator online, like a live session: each event is scored,
  then learned; each sequence starts from the fitted counts (or none) again.

A MIDI file is encoded as training encodes it (livejam/measure/pieces.py).

Start markers are context, not predictions: they are never scored.
Needs onnxruntime + numpy only (no torch).
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from livejam.config import model_path as resolve_model
from livejam.engine import Engine, ModelError, load_model
from livejam.events import COND_COLUMNS, FIELDS, PART
from livejam.measure.pieces import (BEAT_FILE, CHORD_FILE, as_rows, check_tokens, limit_events, midi_sequences,
                                    token_sequences)
from livejam.performers.continuator import MarkovContinuator

log = logging.getLogger(__name__)


# --- scoring -----------------------------------------------------------------------

def _log_softmax_at(logits: np.ndarray, index: int) -> float:
    x = logits.astype(np.float64)
    m = x.max()
    return float(x[index] - m - np.log(np.exp(x - m).sum()))


def model_scores(engine: Engine, tokens: np.ndarray, context: int | None = None) -> tuple[np.ndarray, int]:
    """Teacher-forced NLL (nats) of each non-marker event of one sequence, shape (M, 5)
    (FIELDS), and how many times the context restarted.

    context: the most events the model attends over (default: its max_len). When
    it is full, the context restarts as a start marker + the last `window - 1`
    events, the same tokens at the same positions as the live engine's shadow
    swap, rebuilt here with one prefill (so the context may also be capped below
    max_len, e.g. at the length the model was trained on). Build the engine with
    `defer_shadow=True`: its own shadow steps would be wasted work here.
    """
    bos = engine.vocab.bos_part
    context = min(context or engine.max_len, engine.max_len)
    keep = engine.window - 1
    if not 1 <= keep < context - 1:
        raise ValueError(f"window {engine.window} must be below the context {context}")
    rows = as_rows(tokens)
    conds = rows[:, COND_COLUMNS]  # (N, 5): each event's known fields, as the heads read them
    out = np.empty((len(rows), len(FIELDS)))
    n = restarts = 0
    engine.reset()  # position 0 holds a start marker
    start = 0  # index of the current sequence's first event after its marker
    for i, row in enumerate(rows):
        if row[PART] == bos:
            if i > 0:  # a marker inside a sequence starts a new one, as in training
                engine.reset()
            start = i + 1
            continue
        for k in range(len(FIELDS)):
            out[n, k] = -_log_softmax_at(engine.logits(k, conds[i]), int(row[k]))
        n += 1
        if i + 1 == len(rows):  # the last event's state is never read
            break
        if engine.pos >= context:
            engine.reset()
            engine.prefill(rows[max(start, i - keep):i])
            restarts += 1
        engine.feed(row)
    return out[:n], restarts


def markov_scores(markov: MarkovContinuator, tokens: np.ndarray) -> np.ndarray:
    """Online NLL (nats) of each non-marker event of one sequence, shape (M, 5) (a fresh session)."""
    return markov.score(tokens)  # score() works on a fork: each sequence starts from the fitted counts


def _summary(scores: np.ndarray) -> dict[str, float]:
    per_field = scores.mean(axis=0) if len(scores) else np.zeros(len(FIELDS))
    return {"event": float(per_field.sum()), **{f: float(v) for f, v in zip(FIELDS, per_field)}}


def evaluate(model_path: str | Path | None, data: Sequence[str | Path] | np.ndarray | Sequence[np.ndarray],
             max_events: int | None = None, markov_fit: np.ndarray | Iterable[np.ndarray] | None = None,
             context: int | None = None, window: int | None = None, markov_order: int = 4, threads: int = 1,
             per_sequence: int | None = None, order_seed: int | None = None,
             return_scores: bool = False) -> dict:
    """Model and Markov NLL on the same events. See the module docstring.

    data: MIDI files/folders, or an (N, 7) row array (split at its start
    markers), or a list of row arrays (one sequence each). max_events: score
    only the first N events; order_seed / per_sequence: which ones (see
    `limit_events`). markov_fit: token sequences (or one shard array) the
    Markov model learns before scoring (else it starts empty, like the daemon's
    fallback). context: cap the model's context below its max_len (e.g. at the
    training window); window: events kept when it restarts (default context // 2).
    Raises ModelError for an unusable model file. With `return_scores` the dict
    also holds the (M, 5) arrays under "scores" (for tests).
    """
    t0 = time.perf_counter()
    model = load_model(resolve_model(str(model_path or "")), intra_op_threads=threads)
    vocab = model.info.vocab
    skipped: list[dict] = []
    files = None
    if isinstance(data, np.ndarray):
        seqs, source = token_sequences(data, vocab), "tokens"
    elif data and all(isinstance(d, np.ndarray) for d in data):
        seqs = [s for i, d in enumerate(data) for s in token_sequences(d, vocab, f"seq{i}")]
        source = "tokens"
    else:
        seqs, skipped = midi_sequences(data, vocab)
        source, files = "midi", len(seqs)
    seqs = limit_events(seqs, max_events, vocab, per_sequence, order_seed)
    for s in seqs:
        check_tokens(s, vocab)

    context = min(context or model.info.max_len, model.info.max_len)
    engine = Engine(model, window=window or max(2, context // 2), defer_shadow=True)
    markov = MarkovContinuator(vocab, max_order=markov_order)
    fit_events = 0
    if markov_fit is not None:
        if isinstance(markov_fit, np.ndarray):  # a shard: one sequence per start marker
            fit = [p.tokens for p in token_sequences(markov_fit, vocab)]
        else:
            fit = [as_rows(s, "markov_fit") for s in markov_fit]
        fit_events = int(sum(len(s) for s in fit))
        t_fit = time.perf_counter()
        markov.fit(fit)
        log.info("markov: fitted on %d events in %.1f s", fit_events, time.perf_counter() - t_fit)

    neural, baseline, longest, restarts = [], [], 0, 0
    for s in seqs:
        scores, n_restarts = model_scores(engine, s.tokens, context)
        neural.append(scores)
        baseline.append(markov_scores(markov, s.tokens))
        restarts += n_restarts
        longest = max(longest, len(s.tokens))
    nn_scores = np.concatenate(neural) if neural else np.zeros((0, len(FIELDS)))
    mk_scores = np.concatenate(baseline) if baseline else np.zeros((0, len(FIELDS)))
    if len(nn_scores) != len(mk_scores):  # both skip exactly the start markers
        raise RuntimeError(f"scored {len(nn_scores)} events with the model but {len(mk_scores)} with Markov")
    model_nll, markov_nll = _summary(nn_scores), _summary(mk_scores)
    result = {
        "model": str(model.path),
        "model_config": {k: model.info.config[k] for k in ("n_layer", "n_head", "d_model", "max_len")
                         if k in model.info.config},
        "providers": model.providers,
        "source": source,
        "files": files,  # MIDI files read (before --max-events)
        "annotated": ({"beats": sum(s.beats for s in seqs), "chords": sum(s.chords for s in seqs)}
                      if source == "midi" else None),  # files encoded on their beats / with chords
        "sequences": len(seqs),
        "events": int(len(nn_scores)),
        "max_events": max_events,
        "per_sequence": per_sequence,
        "order_seed": order_seed,
        "skipped": skipped,
        "context": {
            "max_len": engine.max_len, "context": context, "window": engine.window, "longest_sequence": longest,
            "windowed_sequences": sum(len(s.tokens) > context for s in seqs), "restarts": restarts,
            "how": (f"teacher-forced through the KV cache; past {context} events the context restarts "
                    f"as a start-of-sequence event + the last {engine.window - 1} events (as the live engine)"),
        },
        "model_nll": model_nll,
        "markov": {"max_order": markov_order, "fit_events": fit_events,
                   "how": "online: each event scored then learned; each sequence a fresh session"
                          + (" over the fitted counts" if fit_events else "")},
        "markov_nll": markov_nll,
        "markov_minus_model": float(markov_nll["event"] - model_nll["event"]),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    if return_scores:
        result["scores"] = {"model": nn_scores, "markov": mk_scores}
    return result


def format_result(r: dict) -> str:
    """A few human-readable lines."""
    lines = [f"{r['events']} events in {r['sequences']} sequences ({r['source']}), model {r['model']}"]
    if r.get("annotated") is not None:
        a = r["annotated"]
        lines.append(f"{a['beats']} of {r['sequences']} on annotated beats ({BEAT_FILE}; the rest in free time), "
                     f"{a['chords']} with annotated chords ({CHORD_FILE}; the rest N)")
    for s in r["skipped"]:
        lines.append(f"skipped {s['reason']}")
    lines.append(f"{'NLL (nats)':<12} {'event':>8} " + " ".join(f"{f:>8}" for f in FIELDS))
    for name, key in (("model", "model_nll"), ("markov", "markov_nll")):
        v = r[key]
        lines.append(f"{name:<12} {v['event']:8.3f} " + " ".join(f"{v[f]:8.3f}" for f in FIELDS))
    lines.append(f"markov - model: {r['markov_minus_model']:+.3f} nats/event")
    c = r["context"]
    if c["windowed_sequences"]:
        lines.append(f"{c['windowed_sequences']} sequence(s) longer than the context ({c['context']}): "
                     f"scored in windows that restart with a start marker + the last {c['window'] - 1} events")
    lines.append(f"{r['seconds']:.1f} s")
    return "\n".join(lines)


# --- CLI ---------------------------------------------------------------------------

def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `eval` on the `livejam` subparsers."""
    p = subparsers.add_parser("eval", help="NLL of the model on MIDI files, beside the Markov continuator's")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", nargs="+", metavar="PATH", help="MIDI files or folders")
    src.add_argument("--tokens", metavar="NPY", help="a prepared shard of (N, 7) rows, e.g. data/events/val.tokens.npy")
    p.add_argument("--model", metavar="PATH", help="ONNX model (default: the shipped one, its 8-bit file on the CPU)")
    p.add_argument("--max-events", type=int, default=None, metavar="N", help="score only the first N events")
    p.add_argument("--order-seed", type=int, default=None, metavar="S",
                   help="take the sequences in a random order fixed by S (a shard lists a song's variants together)")
    p.add_argument("--per-sequence", type=int, default=None, metavar="N",
                   help="score at most N events of each sequence")
    p.add_argument("--markov-fit", metavar="NPY",
                   help="fit the Markov model on this shard first (e.g. data/events/train.tokens.npy)")
    p.add_argument("--markov-fit-events", type=int, default=None, metavar="N",
                   help="use only the first N events of --markov-fit")
    p.add_argument("--context", type=int, default=None,
                   help="cap the context (default the model's max_len; e.g. the training window + 1)")
    p.add_argument("--window", type=int, default=None, help="events kept when the context fills (default context/2)")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (default 1)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """0 ok; 2 for a bad model file, an unreadable shard or nothing to score (one line on stderr)."""
    import sys

    try:
        # a path the user typed that is not there is a usage error (a folder's unreadable files are skipped)
        for path in args.data or ():
            if not Path(path).exists():
                raise FileNotFoundError(f"{path}: no such file or folder")
        data = np.load(args.tokens, mmap_mode="r") if args.tokens else args.data
        fit = None
        if args.markov_fit:
            fit_tokens = np.load(args.markov_fit, mmap_mode="r")
            if args.markov_fit_events:
                fit_tokens = fit_tokens[: args.markov_fit_events]
            fit = np.asarray(fit_tokens)
        result = evaluate(args.model, data, args.max_events, fit, context=args.context, window=args.window,
                          threads=args.threads, per_sequence=args.per_sequence, order_seed=args.order_seed)
    except (ModelError, OSError, ValueError) as e:
        print(f"livejam eval: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2
    if result["events"] == 0:
        print("livejam eval: no events to score" + (f" ({len(result['skipped'])} file(s) skipped)"
                                                   if result["skipped"] else ""), file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2) if args.json else format_result(result))
    return 0
