"""Teach livejam your style: fine-tune the shipped model on your recorded sessions.

    python -m tools.teach ~/.local/share/livejam/sessions --out my.onnx
    livejam run --model my.onnx

Reads only the human's part of each session file (never the machine's notes or the count-in; a
plain MIDI file counts as your playing, drums channel left out: tools/teach_data.py), holds out a
share of the files, fine-tunes from the shipped model with a fine-tune's schedule and early
stopping on the held-out files (tools/teach_tune.py), exports the result to ONNX and loads it in
onnxruntime, then prints the held-out NLL per event before and after and the longest run of notes
any of its answers copied from a training session (tools/teach_check.py). A model that is not
better on the held-out sessions, or that replays 8 or more notes of one, is not written (--force
writes it anyway). Needs the training extra: pip install 'livejam[train]'.
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from livejam.config import DEFAULT_MODEL, ConfigError

log = logging.getLogger("teach")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not the usage first
        self.exit(2, f"teach: error: {message} (teach --help)\n")


def parse_args(argv):
    from tools.teach_tune import TuneConfig

    d = TuneConfig()
    p = _Parser(prog="teach", description=__doc__.split("\n")[0])
    p.add_argument("sessions", metavar="SESSIONS_DIR", help="folder of session files (.mid; searched recursively)")
    p.add_argument("--out", required=True, metavar="FILE.onnx", help="where the taught model goes")
    p.add_argument("--base", default=str(DEFAULT_MODEL), metavar="MODEL", help="model to start from (default: the shipped one)")
    p.add_argument("--held-out", type=float, default=0.2, metavar="FRAC", help="share of the files held out (at least one; default 0.2)")
    p.add_argument("--lr", type=float, default=d.lr, help=f"peak learning rate (default {d.lr:g})")
    p.add_argument("--steps", type=int, default=d.steps, help=f"most steps (default {d.steps})")
    p.add_argument("--warmup", type=int, default=d.warmup_steps, help=f"warm-up steps (default {d.warmup_steps})")
    p.add_argument("--batch", type=int, default=d.batch_size, help=f"windows a step (default {d.batch_size})")
    p.add_argument("--eval-every", type=int, default=d.eval_every, help=f"steps between held-out checks (default {d.eval_every})")
    p.add_argument("--patience", type=int, default=d.patience,
                   help=f"stop after this many checks without a better held-out NLL (default {d.patience}; 0 = never)")
    p.add_argument("--minutes", type=float, default=d.minutes, help=f"time limit of the fine-tune (default {d.minutes:g}; 0 = none)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    p.add_argument("--answers", type=int, default=3, help="answers sampled per held-out session for the replay check (default 3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, the batches and the answers")
    p.add_argument("--force", action="store_true", help="write --out even if the model is not better or replays")
    p.add_argument("-v", "--verbose", action="store_true", help="log every held-out check")
    args = p.parse_args(argv)
    for name in ("steps", "batch", "eval_every", "threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if not 0.0 < args.held_out < 1.0:
        p.error("--held-out must be between 0 and 1")
    if args.lr <= 0 or args.minutes < 0 or args.warmup < 0 or args.patience < 0 or args.answers < 1:
        p.error("--lr must be > 0; --minutes, --warmup and --patience >= 0; --answers >= 1")
    return args


def table(before: dict, after: dict) -> str:
    """The held-out NLL per event, in total and by field, before and after (the chord column is not
    in the total: sessions carry no chord labels)."""
    fields = ("part", "dt", "pitch", "vel", "chord")
    rows = [("nats/event", "total", *fields[:-1], "(chord)"),
            ("shipped", f"{before['event']:.3f}", *(f"{before[f]:.3f}" for f in fields)),
            ("taught", f"{after['event']:.3f}", *(f"{after[f]:.3f}" for f in fields))]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
                     for r in rows)


def run(args) -> int:
    import torch

    from livejam.engine import load_model
    from tools.export_onnx import export
    from tools.teach_check import REPLAY_BAR, nll, replay_check
    from tools.teach_data import TeachError, read_sessions, split, write_shards
    from tools.teach_tune import TuneConfig, fine_tune, load_start

    torch.set_num_threads(args.threads)
    t0 = time.time()
    try:
        model, cfg = load_start(args.base)
    except (OSError, ConfigError, KeyError, ValueError) as e:
        raise TeachError(f"cannot start from {args.base}: {e}") from None
    sessions, skipped = read_sessions(args.sessions, cfg.vocab)
    train, held = split(sessions, args.held_out, args.seed)
    events = sum(len(s.rows) for s in train)
    print(f"{len(sessions)} sessions ({sum(s.session for s in sessions)} session files, {len(skipped)} skipped), "
          f"{sum(s.notes for s in sessions)} notes of yours: training on {len(train)} ({events} events), "
          f"held out {len(held)}: {', '.join(s.name for s in held)}")
    tune = replace(TuneConfig(), lr=args.lr, steps=args.steps, warmup_steps=args.warmup, batch_size=args.batch,
                   eval_every=args.eval_every, patience=args.patience, minutes=args.minutes, seed=args.seed)
    out = Path(args.out).expanduser()
    with tempfile.TemporaryDirectory(prefix="livejam-teach-") as tmp:
        write_shards(train, Path(tmp), "train")
        result = fine_tune(model, Path(tmp), [s.rows for s in held], tune)
        print(f"fine-tuned {result.steps} steps in {result.seconds / 60:.1f} min (stopped: {result.stopped}); "
              f"kept step {result.best_step}")
        candidate = export(result.model, Path(tmp) / "taught.onnx")
        load_model(candidate)  # loads in onnxruntime as the daemon loads it
        before, after = nll(args.base, held, args.threads), nll(candidate, held, args.threads)
        replay = replay_check(candidate, train, held, answers=args.answers, seed=args.seed)
        chance = replay_check(args.base, train, held, answers=args.answers, seed=args.seed).longest
        print(f"held-out NLL ({len(held)} session{'s' * (len(held) != 1)}, {after['events']} events; lower is better):")
        print(table(before, after))
        print(f"replay: the longest run of notes an answer copied from a training session: {replay.longest} "
              f"({replay.answers} answers, {replay.notes} notes; the bar is under {REPLAY_BAR}; by chance: the "
              f"shipped model's answers {chance}, your held-out sessions themselves {replay.style})")
        better = after["event"] < before["event"]
        problems = ([] if better else ["it is not better than the shipped model on your held-out sessions"]) + \
                   ([] if replay.ok else [f"it replays {replay.longest} notes of a training session"])
        if problems and not args.force:
            print(f"not written: {'; '.join(problems)} (--force writes it anyway; more sessions help)")
            return 1
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(candidate.read_bytes())
    note = f" ({'; '.join(problems)})" if problems else ""
    print(f"wrote {out}{note} in {(time.time() - t0) / 60:.1f} min: play with it: livejam run --model {out}")
    return 0


def missing_extra() -> str | None:
    """The first package of the training extra that cannot be imported (None: all there)."""
    import importlib.util

    for name in ("torch", "onnx", "tqdm"):
        if importlib.util.find_spec(name) is None:
            return name
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    missing = missing_extra()
    if missing:
        print(f"teach: needs the training extra ({missing} is missing): pip install 'livejam[train]'", file=sys.stderr)
        return 2
    from tools.teach_data import TeachError

    try:
        return run(args)
    except TeachError as e:
        print(f"teach: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"teach: {e.filename or args.out}: {e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("teach: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
