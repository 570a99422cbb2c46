"""Write the model card (JSON + a short Markdown page) of an exported model.

    python -m tools.model_card --checkpoint runs/main/ckpt.pt --model models/livejam-small.onnx \\
        --out models/livejam-small.json [--max-events 20000]

Every number comes from a command recorded in the card ("commands"):
- parameters, model config, data and training history: from the checkpoint
  tools/train.py wrote (and data/events/meta.json from tools/prepare_data.py);
- validation NLL per event and per field (part, dt, chord, pitch, vel; format 2)
  of the ONNX model and of the Markov continuator on the same N events of
  data/events/val.tokens.npy (livejam/measure/evaluate.py: the model
  teacher-forced through the KV cache, Markov online like a live session; also
  Markov fitted on training events first);
- per-event step latency (feed + sample every field) on one CPU thread:
  `livejam bench --sections step --json`, run as a subprocess (its own process, so the
  card measures what a user's command would);
- the machine: CPU model and cores from /proc/cpuinfo, and the load while
  measuring (latency on a machine busy with training is noisy: say so).
Torch is needed only to read the checkpoint.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from livejam.engine import ModelError, load_model
from livejam.events import FIELDS, FORMAT_VERSION
from livejam.performers.continuator import MarkovContinuator
from livejam.measure import evaluate as ev
from livejam.measure import pieces
from livejam.measure.latency import machine_info

log = logging.getLogger("model_card")


def rel(path: str | Path) -> str:
    """A path as a command line in the repo root would spell it (commands in the card are run from there)."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def load_checkpoint_meta(path: Path) -> dict:
    """Everything but the weights of a tools/train.py checkpoint."""
    import torch

    ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    ckpt.pop("model", None)
    ckpt.pop("optimizer", None)
    return ckpt


def data_section(meta: dict, data_dir: Path) -> dict:
    """Sources, split and sizes, from the checkpoint's copy of meta.json (plus meta.json itself)."""
    full = {}
    meta_path = data_dir / "meta.json"
    if meta_path.is_file():
        full = json.loads(meta_path.read_text())
    out = {"sources": meta.get("sources", full.get("sources"))}
    for split in ("train", "val"):
        m = meta.get(split) or full.get(split) or {}
        out[split] = {"songs": len(m.get("songs", [])), "sequences": m.get("sequences"), "events": m.get("events")}
    n_songs = out["train"]["songs"] + out["val"]["songs"]
    split = full.get("split", {})
    seed, val_frac, free_frac = split.get("seed", 0), split.get("val_frac", 0.1), split.get("free_frac", 0.1)
    out["split"] = (f"by song, hash-based: a song goes to val when sha256(f'{{seed}}:{{song_id}}') as a fraction "
                    f"< val_frac (tools/prepare_data.py; here seed {seed}, val_frac {val_frac}): "
                    f"{out['val']['songs']}/{n_songs} songs in val. Each song is written as several sequences "
                    "(melody->part 0 + accompaniment->part 1, the swap, everything as part 0, the melody alone)")
    out["time"] = (f"{full.get('beat_annotated_songs', '?')} songs on their annotated beats (beat_midi.txt) with "
                   f"their chords (chord_midi.txt); {len(full.get('free_time_copies', []))} of them "
                   f"(free_frac {free_frac}) also as a free-time copy; songs without a beat file in free time")
    out["format_version"] = full.get("format_version")
    out["skipped_files"] = len(full.get("skipped", []))
    return out


def training_section(ckpt: dict) -> dict:
    history = ckpt.get("history", [])
    train = [h for h in history if "train" in h]
    val = [h for h in history if "val" in h]
    tc = ckpt.get("train_config", {})
    return {
        "steps": ckpt.get("step", history[-1]["step"] if history else 0),
        "wall_seconds": round(float(ckpt.get("wall_seconds", 0.0)), 1),
        "final_train_loss": train[-1]["train"] if train else None,
        "val_history": [{"step": h["step"], **{k: round(v, 4) for k, v in h["val"].items()}} for h in val],
        "note": "val_history: tools/train.py's periodic loss on fixed random validation windows "
                f"({tc.get('eval_batches')} batches of {tc.get('batch_size')} x {tc.get('seq_len')} events)",
        "config": tc,
    }


def train_overrides(used: dict) -> list[str]:
    """key=value for each training setting that differs from tools/train.py's defaults
    (every setting, with a warning, if tools/train.py cannot be imported here)."""
    from livejam.config import to_dict

    try:
        from tools.train import TrainConfig  # torch is already loaded for the checkpoint
        default_config = to_dict(TrainConfig())
    except Exception as e:  # noqa: BLE001 - the card still records what was used
        log.warning("tools/train.py not importable (%s: %s): the card lists every training setting",
                    type(e).__name__, e)
        default_config = {}

    def flat(d: dict, prefix: str = "") -> dict:
        out = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    default, used = flat(default_config), flat(used)
    return [f"{k}={json.dumps(v) if isinstance(v, list) else v}" for k, v in sorted(used.items())
            if default.get(k) != v]


def markov_fitted(tokens: np.ndarray, vocab, select: dict, fit_path: Path, fit_events: int) -> dict:
    """Markov NLL on the same events after fitting on the first `fit_events` training events."""
    fit = np.asarray(np.load(fit_path, mmap_mode="r")[:fit_events])
    t0 = time.perf_counter()
    markov = MarkovContinuator(vocab).fit(p.tokens for p in pieces.token_sequences(fit, vocab))
    seconds = time.perf_counter() - t0
    scored = pieces.limit_events(pieces.token_sequences(tokens, vocab), vocab=vocab, **select)
    scores = np.concatenate([ev.markov_scores(markov, p.tokens) for p in scored])
    per_field = scores.mean(axis=0)
    return {"events": int(len(scores)), "fit_events": int(len(fit)), "fit_seconds": round(seconds, 1),
            "nll": {"event": float(per_field.sum()), **{f: float(v) for f, v in zip(FIELDS, per_field)}}}


def bench(model: Path, steps: int) -> tuple[dict | None, str]:
    """`livejam bench --sections step` on the model, in a subprocess (the card's latency figures)."""
    args = ["bench", "--model", str(model), "--json", "--threads", "1", "--events", str(steps), "--sections", "step"]
    cmd = [sys.executable, "-m", "livejam.cli", *args]
    text = " ".join(shlex.quote(c) for c in ["livejam", *args[:2], rel(model), *args[3:]])
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        log.warning("livejam bench failed (%d): %s", proc.returncode, proc.stderr.strip().splitlines()[-1:])
        return None, text
    return json.loads(proc.stdout), text


def latency_section(result: dict | None) -> dict | None:
    if result is None:
        return None
    keep = ("n", "median_ms", "p99_ms", "max_ms")
    steps = result["step"]
    at = {k.split()[0]: {m: round(v[m], 3) for m in keep} for k, v in steps.items() if k.endswith(" cached")}
    stream = next(v for k, v in steps.items() if k.startswith("stream"))
    m = result["machine"]
    return {
        "what": "feed one event + sample every field, its bar position from a 120 bpm beat grid "
                "(livejam bench --sections step), one intra-op thread",
        "providers": result["providers"], "intra_op_threads": result["intra_op_threads"],
        "at_cached_events": at,
        "stream": {k: round(stream[k], 3) for k in keep},
        "load_avg_1min": [m["load_avg_1min"], m["load_avg_1min_after"]],
    }


def musicianship(path: Path, command: str) -> dict:
    """A tools.quality --json result as the card keeps it: the command, its printed tables and bars,
    and the means per row."""
    from tools.quality_report import format_result

    result = json.loads(path.read_text())
    return {"command": command, "songs": result["songs"], "seeds": result["seeds"], "seconds": result["seconds"],
            "settings": result["settings"], "mean": result["mean"], "summary": format_result(result)}


def variant_section(card: dict, path: Path, made_by: str, data_dir: Path, bench_steps: int,
                    quality: list[dict]) -> dict:
    """A derived file of the card's model (an 8-bit copy): the validation and latency of the card's own
    commands, run on it (bench_steps 0: no latency)."""
    v = card["validation"]
    val_path = data_dir / "val.tokens.npy"
    context = v["context"].get("context")
    result = ev.evaluate(path, np.load(val_path, mmap_mode="r"), v["max_events"], context=context,
                         order_seed=v["order_seed"])
    mp = rel(path)
    commands = {"made_by": made_by,
                "validation": f"livejam eval --tokens {rel(val_path)} --model {mp} --max-events {v['max_events']} "
                              f"--order-seed {v['order_seed']}" + (f" --context {context}" if context else "")
                              + " --json"}
    raw = None
    if bench_steps:
        raw, commands["latency"] = bench(path, bench_steps)
    section = {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
               "bytes": path.stat().st_size, "model_nll": result["model_nll"], "events": result["events"],
               "latency": latency_section(raw), "musicianship": quality, "machine": machine_info(),
               "written": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "commands": commands}
    return section


def variant_markdown(name: str, x: dict, card: dict) -> list[str]:
    float_nll = card["validation"]["model_nll"]
    lines = [f"## {name}: `{x['file']}` ({x['bytes'] / 1e6:.1f} MB)", "",
             f"Made by `{x['commands']['made_by']}`. The CPU's default (livejam.config.default_model); an "
             "onnxruntime with CUDA loads the float file.", "",
             f"Validation NLL on the same {x['events']} events (`{x['commands']['validation']}`):", "",
             "| | event | " + " | ".join(FIELDS) + " |", "|---|---|" + "---|" * len(FIELDS)]
    for label, nll in (("float", float_nll), (name, x["model_nll"])):
        lines.append(f"| {label} | {nll['event']:.3f} | " + " | ".join(f"{nll[f]:.3f}" for f in FIELDS) + " |")
    lat = x.get("latency")
    if lat:
        lines += ["", f"Step latency (`{x['commands']['latency']}`; the float file's table above ran on "
                      f"{card['machine']['cpu']}, this one on {x['machine']['cpu']}, {x['machine']['cores']} cores, "
                      f"load {lat['load_avg_1min']}):", "", "| cached events | median ms | p99 ms |", "|---|---|---|"]
        lines += [f"| {k} | {s['median_ms']:.3f} | {s['p99_ms']:.3f} |" for k, s in lat["at_cached_events"].items()]
    for q in x.get("musicianship") or []:
        lines += ["", f"Musicianship: `{q['command']}`", "", "```", q["summary"], "```"]
    return lines + [""]


def markdown(card: dict) -> str:
    v = card["validation"]
    rows = [("model (ONNX)", v["model_nll"]), ("Markov, online", v["markov_nll"])]
    if v.get("markov_fitted"):
        rows.append((f"Markov, fitted on {v['markov_fitted']['fit_events']} train events",
                     v["markov_fitted"]["nll"]))
    lines = [f"# {card['name']}", "",
             f"{card['parameters'] / 1e6:.2f}M parameters; {card['model_config'].get('n_layer')} layers, "
             f"d={card['model_config'].get('d_model')}, context {card['model_config'].get('max_len')} events. "
             f"Trained {card['training']['steps']} steps in {card['training']['wall_seconds'] / 60:.0f} min."
             + (f" {card['training']['history_note']}" if card["training"].get("history_note") else ""), "",
             f"## Validation NLL (nats, {v['events']} events of {v['sequences']} validation sequences)", "",
             "| | event | " + " | ".join(FIELDS) + " |", "|---|---|" + "---|" * len(FIELDS)]
    for name, nll in rows:
        lines.append(f"| {name} | {nll['event']:.3f} | " + " | ".join(f"{nll[f]:.3f}" for f in FIELDS) + " |")
    lines += ["", f"Model vs online Markov: {v['markov_minus_model']:+.3f} nats/event. {v['context']['how']}.", ""]
    lat = card.get("latency")
    if lat:
        lines += ["## Step latency (feed + sample, one CPU thread)", "", "| cached events | median ms | p99 ms |",
                  "|---|---|---|"]
        lines += [f"| {k} | {s['median_ms']:.3f} | {s['p99_ms']:.3f} |" for k, s in lat["at_cached_events"].items()]
        lines += ["", f"Load average while measuring: {lat['load_avg_1min']} on {card['machine']['cores']} cores.", ""]
    for q in card.get("musicianship") or []:
        lines += ["## Musicianship (held-out POP909 songs, tools.quality)", "", f"`{q['command']}`", "", "```",
                  q["summary"], "```", ""]
    for name, x in (card.get("variants") or {}).items():
        lines += variant_markdown(name, x, card)
    d = card["data"]
    lines += ["## Data", "", f"Format {d.get('format_version')} events (beats and chords). "
              f"Sources: {', '.join(d['sources'] or [])}. Train: {d['train']['songs']} songs, "
              f"{d['train']['events']} events; val: {d['val']['songs']} songs, {d['val']['events']} events. "
              f"Split {d['split']}. Time: {d['time']}.", "", "## Machine", "",
              f"{card['machine']['cpu']}, {card['machine']['cores']} cores.", "", "## Commands", ""]
    lines += [f"- {k}: `{c}`" for k, c in card["commands"].items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", help="tools/train.py checkpoint (runs/NAME/ckpt.pt)")
    p.add_argument("--model", help="the ONNX file exported from it")
    p.add_argument("--out", required=True, help="card path (.json); a .md is written beside it")
    p.add_argument("--data", default=str(ROOT / "data" / "events"), help="prepared data folder")
    p.add_argument("--max-events", type=int, default=100_000, help="validation events scored")
    p.add_argument("--order-seed", type=int, default=0, help="validation sequences are taken in a random order "
                   "fixed by this seed (whole sequences, the last one cut), so the N events span many songs")
    p.add_argument("--context", type=int, default=None, help="cap the model's context (default its max_len)")
    p.add_argument("--markov-fit-events", type=int, default=1_000_000,
                   help="training events the fitted Markov baseline learns first (0: skip it)")
    p.add_argument("--bench-steps", type=int, default=1000, help="steps per context size in the latency bench")
    p.add_argument("--no-bench", action="store_true", help="leave the latency out")
    p.add_argument("--history-note", default="", help="how the checkpoint came to be, where it is more than one run "
                                                      "(e.g. fine-tuned from an earlier one)")
    p.add_argument("--quality", nargs=2, action="append", default=[], metavar=("RESULT.json", "COMMAND"),
                   help="a tools.quality --json result and the command that made it (repeatable): the card's "
                        "musicianship section")
    p.add_argument("--only-quality", action="store_true", help="keep the card at --out as it is and (re)write "
                   "only its musicianship section (no checkpoint needed)")
    p.add_argument("--variant", nargs=3, metavar=("NAME", "MODEL", "COMMAND"),
                   help="keep the card at --out and (re)write its section on a file derived from its model "
                        "(e.g. 8-bit MODEL, made by COMMAND): validation and latency by the card's own commands, "
                        "--quality as its musicianship (no checkpoint needed)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        quality = [musicianship(Path(f), cmd) for f, cmd in args.quality]
    except (OSError, KeyError, ValueError) as e:
        p.exit(2, f"model_card: --quality: {str(e).splitlines()[0]}\n")
    if args.only_quality or args.variant:
        out = Path(args.out)
        try:
            card = json.loads(out.read_text())
            if args.variant:
                name, path, made_by = args.variant
                section = variant_section(card, Path(path), made_by, Path(args.data),
                                             0 if args.no_bench else args.bench_steps, quality)
                card.setdefault("variants", {})[name] = section
        except (OSError, KeyError, ValueError, ModelError) as e:
            p.exit(2, f"model_card: {out}: {str(e).splitlines()[0]}\n")
        if args.variant:
            out.write_text(json.dumps(card, indent=1) + "\n")
            out.with_suffix(".md").write_text(markdown(card))
            print(f"wrote the {args.variant[0]} section of {out} and {out.with_suffix('.md')}")
            return 0
        card["musicianship"] = quality
        out.write_text(json.dumps(card, indent=1) + "\n")
        out.with_suffix(".md").write_text(markdown(card))
        print(f"wrote the musicianship section of {out} and {out.with_suffix('.md')}")
        return 0
    if not args.checkpoint or not args.model:
        p.error("--checkpoint and --model are needed (or --only-quality)")
    ckpt_path, model_path, out = Path(args.checkpoint), Path(args.model), Path(args.out)
    data_dir = Path(args.data)
    val_path = data_dir / "val.tokens.npy"
    try:
        ckpt = load_checkpoint_meta(ckpt_path)
        val = np.load(val_path, mmap_mode="r")
        log.info("evaluating %s on %d events of %s", model_path, args.max_events, val_path)
        result = ev.evaluate(model_path, val, args.max_events, context=args.context, order_seed=args.order_seed)
    except (OSError, KeyError, ValueError, ModelError) as e:
        p.exit(2, f"model_card: {str(e).splitlines()[0]}\n")
    ck, mp, vp, tp = rel(ckpt_path), rel(model_path), rel(val_path), rel(data_dir / "train.tokens.npy")
    here = f"python -m tools.model_card --checkpoint {ck} --model {mp} --out {rel(out)}"
    ctx = f" --order-seed {args.order_seed}" + (f" --context {args.context}" if args.context else "")
    commands = {
        "data": "python -m tools.prepare_data",
        "training": "python -m tools.train " + " ".join(train_overrides(ckpt.get("train_config", {})))
                    + "  (then --resume across sessions)",
        "export": f"python -m tools.export_onnx --checkpoint {ck} --out {mp}",
        "validation": f"livejam eval --tokens {vp} --model {mp} --max-events {args.max_events}{ctx} --json",
        "card": here + f" --max-events {args.max_events} --order-seed {args.order_seed}",
    }
    validation = {k: result[k] for k in ("events", "sequences", "max_events", "order_seed", "context", "model_nll",
                                         "markov", "markov_nll", "markov_minus_model", "seconds")}
    validation["data"] = vp
    if args.markov_fit_events:
        log.info("fitting the Markov baseline on %d training events", args.markov_fit_events)
        select = {"max_events": args.max_events, "order_seed": args.order_seed}
        validation["markov_fitted"] = markov_fitted(val, load_model(model_path).info.vocab, select,
                                                    data_dir / "train.tokens.npy", args.markov_fit_events)
        commands["markov_fitted"] = (f"livejam eval --tokens {vp} --model {mp} --max-events {args.max_events}{ctx} "
                                     f"--markov-fit {tp} "
                                     f"--markov-fit-events {args.markov_fit_events}")
    latency = None
    if not args.no_bench:
        log.info("measuring the step latency (livejam bench --sections step)")
        raw, commands["latency"] = bench(model_path, args.bench_steps)
        latency = latency_section(raw)
    if ckpt.get("format_version", FORMAT_VERSION) != FORMAT_VERSION:
        log.warning("the checkpoint is format %s, this runtime format %s", ckpt.get("format_version"), FORMAT_VERSION)
    card = {
        "name": model_path.stem,
        "format_version": FORMAT_VERSION,  # the ONNX file loaded above, which the engine checks
        "file": model_path.name,
        "sha256": hashlib.sha256(model_path.read_bytes()).hexdigest(),
        "bytes": model_path.stat().st_size,
        "parameters": ckpt.get("parameters"),
        "model_config": ckpt.get("model_config", {}),
        "data": data_section(ckpt.get("data_meta", {}), data_dir),
        "training": {**training_section(ckpt), **({"history_note": args.history_note} if args.history_note else {})},
        "validation": validation,
        "latency": latency,
        "musicianship": quality,
        "machine": machine_info(),  # the one machine description every measurement prints
        "written": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "commands": commands,
    }
    if result["model_config"] and any(card["model_config"].get(k) != v for k, v in result["model_config"].items()):
        log.warning("the ONNX model's config %s differs from the checkpoint's", result["model_config"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(card, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(card))
    v = card["validation"]
    print(f"wrote {out} and {out.with_suffix('.md')}: val NLL/event model {v['model_nll']['event']:.3f}, "
          f"Markov {v['markov_nll']['event']:.3f} ({v['events']} events)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
