"""`livejam bench`: the latency table of deliverable 7, with its targets.

    livejam bench [--model PATH] [--json] [--threads N] [--events N] [--no-jack | --start-jack]
    livejam bench --vs-notochord [--model PATH] [--events N]   (the `compare` extra)

1. step: feed + sample every field (part, dt, chord, pitch, vel; the bar
   position and tempo from a 120 bpm beat grid) at 128 / 512 / 1024 cached events and
   over a stream crossing the context-full boundary (the performer's deferred
   shadow, its idle steps untimed);
2. scheduler lateness: the real Scheduler thread emitting to a null sink while
   an inference thread steps the model back to back, beside the bare
   sleep-then-spin floor measured in the same run (idle and under that load);
3. end to end over JACK (when a server runs, or with --start-jack): a note into
   livejam's input until the reply leaves its output, through a path that
   feeds the note and samples one event (livejam/measure/reply.py), minus the bare
   rtmidi echo's round trip measured in the same run;
4. heard input at 1,000 msg/s into the neural performer (duet) through the daemon's
   loop shape (one message, then a poll): how long a message waits in the queue;
5. timing as heard (JACK): a short duet (livejam/measure/duet.py, `--heard-minutes`, with the
   status screen, OSC and the recording on when livejam[ui,osc] is installed) whose player, in
   its own process, stamps each note and MIDI clock tick that arrives, beside a bare transport
   timed through the same server in the same run.

--vs-notochord times the step beside Notochord's default model instead, in the
same process (livejam/measure/notochord.py), and prints the ratios.

The measuring code lives in livejam/measure/latency.py and livejam/measure/jack_server.py. No
torch here. Figures taken while other work loads the machine are noisy; the
table says so with the load average beside them.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

import numpy as np

from livejam.config import model_path
from livejam.measure import latency

TARGETS_MS = {"step_p99": 1.0, "scheduler_p99": 0.5, "overhead_p99": 1.0, "heard_over_transport_p99": 1.0}
SECTIONS = ("step", "lateness", "jack", "input", "heard")  # [1] [2] [3] [4] [5] of the table
INPUT_RATE = 1000.0  # heard messages per second in the input section (a dense flood)
LATENESS_SPACING_S = 0.003  # scheduled events this far apart: dense playing, and a short run


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("bench", help="measure step latency, scheduler lateness and end-to-end overhead")
    p.add_argument("--model", metavar="PATH", help="livejam .onnx model (default: the shipped one, its 8-bit file on the CPU)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (default 1)")
    p.add_argument("--events", type=int, default=2000,
                   help="steps per context size and scheduled events per lateness run; a third of it "
                        "round trips per JACK path (default 2000: ~40 s)")
    jack = p.add_mutually_exclusive_group()
    jack.add_argument("--no-jack", action="store_true", help="skip the end-to-end section")
    jack.add_argument("--start-jack", action="store_true",
                      help="if no JACK server runs, start a private dummy one (-S) for the run and stop it")
    p.add_argument("--sections", default=",".join(SECTIONS), metavar="LIST",
                   help=f"comma-separated sections to run, of {', '.join(SECTIONS)} (default: all)")
    p.add_argument("--context", type=int, default=None, metavar="N",
                   help="live context in events (default: the engine's, LIVE_CONTEXT capped at the model's max_len)")
    p.add_argument("--vs-notochord", action="store_true",
                   help="only the step, timed beside Notochord's default model (needs the `compare` extra)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--heard-minutes", type=float, default=1.0, metavar="M",
                   help="length of the duet timed as heard (section 5; issue 20's bar: 10 minutes)")
    p.add_argument("--screen", action="store_true",
                   help="also measure the scheduler's lateness with the status screen rendering (needs livejam[ui])")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from livejam.engine import ModelError, open_engine

    sections = {s.strip() for s in args.sections.split(",") if s.strip()}
    if (args.events < 10 or args.threads < 1 or not sections or not sections <= set(SECTIONS)
            or not 0 < args.heard_minutes <= 600):
        print(f"livejam bench: --events must be >= 10, --threads >= 1, --heard-minutes in (0, 600], "
              f"--sections a list of {', '.join(SECTIONS)}", file=sys.stderr)
        return 2
    if args.no_jack:
        sections -= {"jack", "heard"}
    path = str(model_path(args.model or ""))
    try:
        engine = open_engine(path, intra_op_threads=args.threads, context=args.context)
    except (ModelError, ValueError) as e:
        print(f"livejam bench: {e}", file=sys.stderr)
        return 2
    engine.defer_shadow = True  # the neural performer's setting: shadow steps in idle time
    if args.vs_notochord:
        return _vs_notochord(engine, path, args)
    t0 = time.perf_counter()
    result = {"machine": latency.machine_info(), "model": _model_info(engine, path),
              "providers": engine.model.providers, "intra_op_threads": args.threads}
    result["step"] = measure_steps(engine, args.events, args.seed) if "step" in sections else {}
    result["scheduler"] = (measure_lateness(engine, args.events, args.seed, screen=args.screen)
                           if "lateness" in sections else {})
    result["e2e"] = (with_jack(args, lambda: _e2e_paths(path, args)) if "jack" in sections
                     else {"status": "skipped (not in --sections)"})
    result["input"] = measure_input(engine.model, args) if "input" in sections else {}
    result["heard"] = (with_jack(args, lambda: measure_heard(path, args)) if "heard" in sections
                       else {"status": "skipped (not in --sections)"})
    result["targets"] = targets(result)
    result["machine"]["load_avg_1min_after"] = round(os.getloadavg()[0], 2)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_table(result))
    return 0


def _model_info(engine, path: str) -> dict:
    info = engine.info
    return {"path": str(path), "layers": info.n_layer, "d_model": info.d_model, "heads": info.n_head,
            "max_len": info.max_len, "context": engine.context, "window": engine.window}


def _vs_notochord(engine, path: str, args: argparse.Namespace) -> int:
    from livejam.measure import notochord

    try:
        r = notochord.compare(engine, args.events, args.seed)
    except notochord.NotochordMissing as e:
        print(f"livejam bench --vs-notochord: {e}", file=sys.stderr)
        return 2
    r["model"] = _model_info(engine, path)
    print(json.dumps(r, indent=2) if args.json else notochord.format_compare(r, r["model"]))
    return 0


# --- the three measurements --------------------------------------------------------------

def measure_steps(engine, events: int, seed: int) -> dict:
    from livejam.engine import EventSampler

    sampler = EventSampler(engine.vocab)
    c = latency.BENCH_CONSTRAINTS
    rng = np.random.default_rng(seed)
    latency.warm_up(engine, sampler, c, rng)
    out = {}
    for n in latency.context_sizes(engine.context):
        step, feed = latency.bench_at(engine, sampler, c, n, events, rng)
        out[f"{n} cached"] = {**step, "feed_only_median_ms": feed.get("median_ms")}
    n_stream = max(events, 2 * engine.context)  # from empty: at least one swap (two with the default window)
    swaps = engine.swaps
    stream, at_swap = latency.bench_stream(engine, sampler, c, n_stream, rng)
    out[f"stream {n_stream} events"] = {**stream, "swaps": engine.swaps - swaps, "swap_steps": at_swap}
    return out


def measure_lateness(engine, events: int, seed: int, screen: bool = False) -> dict:
    from livejam.engine import EventSampler

    sampler = EventSampler(engine.vocab)
    switch = _daemon_switch_interval()
    out = {"events": events, "spacing_ms": LATENESS_SPACING_S * 1e3, "gil_switch_interval_ms": switch * 1e3,
           "floor_idle": latency.stats_s(latency.floor_loop(events, LATENESS_SPACING_S))}
    old_switch = sys.getswitchinterval()
    sys.setswitchinterval(switch)  # what the daemon runs with, so the threads meet as they do live
    try:
        with latency.InferenceLoad(engine, sampler, latency.BENCH_CONSTRAINTS, seed + 1) as load:
            out["floor_under_inference"] = latency.stats_s(latency.floor_loop(events, LATENESS_SPACING_S))
        out["floor_load_steps_per_s"] = round(load.steps_per_s, 1)
        with latency.InferenceLoad(engine, sampler, latency.BENCH_CONSTRAINTS, seed + 2) as load:
            out["scheduler_under_inference"] = latency.stats_s(
                latency.scheduler_lateness(events, LATENESS_SPACING_S))
        out["scheduler_load_steps_per_s"] = round(load.steps_per_s, 1)
        if screen:  # the same run again with the status screen drawing at its rate beside it
            from livejam.stage.ui.bench import ScreenLoad

            with latency.InferenceLoad(engine, sampler, latency.BENCH_CONSTRAINTS, seed + 3), ScreenLoad() as scr:
                out["scheduler_under_inference_with_screen"] = latency.stats_s(
                    latency.scheduler_lateness(events, LATENESS_SPACING_S))
            out["screen_frames"], out["screen_frame_ms"] = scr.frames, scr.mean_frame_ms
    finally:
        sys.setswitchinterval(old_switch)
    return out


def measure_input(model, args: argparse.Namespace) -> dict:
    from livejam.config import NeuralConfig, PerformerConfig
    from livejam.performers.neural import NeuralPerformer

    performer = NeuralPerformer(PerformerConfig(), NeuralConfig(mode="duet"), model, seed=args.seed)
    return latency.input_flood(performer, INPUT_RATE, seconds=max(0.2, min(3.0, args.events / INPUT_RATE)))


def _daemon_switch_interval() -> float:
    """The GIL switch interval the daemon sets (its config default), else Python's own."""
    from livejam.config import DaemonConfig

    return float(getattr(DaemonConfig().scheduler, "gil_switch_interval_s", sys.getswitchinterval()))


def with_jack(args: argparse.Namespace, measure) -> dict:
    """`measure()` on the JACK server that runs, or on one started for it (--start-jack)."""
    from livejam.measure import jack_server as transport

    server = None
    if not transport.jack_running():
        if not args.start_jack:
            return {"status": "skipped (no JACK server running; start one or pass --start-jack)"}
        try:
            server = transport.JackServer.start()
        except RuntimeError as e:
            return {"status": f"skipped ({e})"}
    try:
        return {**measure(), "server": server.name if server else os.environ.get("JACK_DEFAULT_SERVER", "default"),
                "started_here": server is not None}
    except RuntimeError as e:  # a path that did not come up: say so in the table, keep the rest
        return {"status": f"failed ({e})"}
    finally:
        if server is not None:
            server.stop()


def _e2e_paths(model_path: str, args) -> dict:
    from livejam.measure import jack_server as transport

    n = max(10, args.events // 3)
    tag = f"{os.getpid()}"
    out = {"status": "measured", "round_trips": n}
    with transport.bare_echo(f"ljb-bare{tag}") as p:
        out["transport_floor"] = latency.stats_s(transport.round_trips(f"ljb-bare{tag} in:in", f"ljb-bare{tag} out:out", n))
    with transport.livejam_echo(f"ljb-echo{tag}") as p:
        out["livejam_echo"] = latency.stats_s(transport.round_trips(f"ljb-echo{tag} in:in", f"ljb-echo{tag} out:out", n))
    reply_cmd = [sys.executable, "-m", "livejam.measure.reply", "--model", str(model_path), "--client", f"ljb-reply{tag}",
                 "--threads", str(args.threads), "--seed", str(args.seed)]
    with transport.EchoPath(reply_cmd) as p:
        out["reply"] = latency.stats_s(transport.round_trips(f"ljb-reply{tag} in:in", f"ljb-reply{tag} out:out", n))
    for line in p.lines:  # the reply process's own feed + sample + feed times
        if line.startswith("stats "):
            out["reply_step_in_daemon"] = json.loads(line[6:]).get("reply_step")
    floor = out["transport_floor"]
    for name in ("livejam_echo", "reply"):
        s = out[name]
        out[f"{name}_overhead"] = ({k: s[k] - floor[k] for k in ("median_ms", "p99_ms")}
                                      if s["n"] and floor["n"] else {})
    return out


def measure_heard(model_path: str, args: argparse.Namespace) -> dict:
    """Section 5: the duet measurement in a process of its own (it runs a whole daemon), its figures as heard."""
    import importlib.util

    stage = all(importlib.util.find_spec(m) for m in ("rich", "pythonosc"))
    cmd = [sys.executable, "-m", "livejam.measure.duet", "--minutes", str(args.heard_minutes), "--json",
           "--model", model_path, "--period-s", str(max(10.0, args.heard_minutes * 60.0)), "--seed", str(args.seed)]
    if stage:
        cmd.append("--stage")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.heard_minutes * 60.0 + 300.0)
    try:
        r = json.loads(proc.stdout[proc.stdout.index("{"):])
    except ValueError:
        raise RuntimeError(f"the duet measurement ended with status {proc.returncode}: "
                           f"{(proc.stderr.strip().splitlines() or ['no output'])[-1]}") from None
    heard = r.get("heard")
    if not heard:
        raise RuntimeError("the duet's player reported nothing")
    b = heard["bare"]
    out = {"status": "measured", "minutes": args.heard_minutes, "stage": stage, "notes": heard["notes"],
           "bare_notes": b["lateness"], "clock_jitter": heard["clock_jitter"], "bare_jitter": b["jitter"],
           "notes_sent": heard["notes_sent"], "notes_arrived": heard["notes_arrived"],
           "dropped_late": r["daemon"]["scheduler"]["dropped_late"]}
    for name, bare in (("notes", "bare_notes"), ("clock_jitter", "bare_jitter")):
        if out[name].get("n") and out[bare].get("n"):
            out[f"{name}_over_transport_p99_ms"] = out[name]["p99_ms"] - out[bare]["p99_ms"]
    return out


# --- targets and output ------------------------------------------------------------------

def targets(r: dict) -> list[dict]:
    """Each target beside the figure it judges; PASS only when measured and within it."""
    step_p99 = max((s["p99_ms"] for s in r["step"].values() if s.get("n")), default=None)
    sched = r["scheduler"].get("scheduler_under_inference", {})
    overhead = r["e2e"].get("reply_overhead", {}).get("p99_ms")
    heard = r.get("heard", {})
    rows = [("step p99 (worst context)", step_p99, TARGETS_MS["step_p99"]),
            ("scheduler lateness p99 under inference", sched.get("p99_ms"), TARGETS_MS["scheduler_p99"]),
            ("daemon overhead over transport p99", overhead, TARGETS_MS["overhead_p99"]),
            ("notes as heard, p99 over the transport's", heard.get("notes_over_transport_p99_ms"),
             TARGETS_MS["heard_over_transport_p99"]),
            ("clock jitter as heard, p99 over the transport's", heard.get("clock_jitter_over_transport_p99_ms"),
             TARGETS_MS["heard_over_transport_p99"])]
    return [{"name": name, "value_ms": value, "target_ms": limit,
             "verdict": "n/a" if value is None else ("PASS" if value <= limit else "MISS")}
            for name, value, limit in rows]


def _row(name: str, s: dict | None) -> str:
    if not s or not s.get("n"):
        return f"  {name:<44} {'-':>8}"
    cells = [s.get(k) for k in ("median_ms", "p99_ms", "p99.9_ms", "max_ms")]
    text = " ".join(f"{v:8.3f}" if isinstance(v, float) and math.isfinite(v) else f"{'-':>8}" for v in cells)
    return f"  {name:<44} {text}  n={s['n']}"


def format_table(r: dict) -> str:
    m, mod = r["machine"], r["model"]
    lines = [f"livejam bench: {mod['path']} ({mod['layers']} layers, d={mod['d_model']}, max_len={mod['max_len']}, "
             f"live context {mod['context']}, window {mod['window']})",
             f"providers {r['providers']}, {r['intra_op_threads']} intra-op thread(s); "
             f"machine {m['cpu']}, {m['cores']} cores, onnxruntime {m['onnxruntime']}, python {m['python']}",
             f"load avg {m['load_avg_1min']} -> {m['load_avg_1min_after']} (other work on the machine makes "
             f"every figure noisy)", "",
             f"  {'ms':<44} {'median':>8} {'p99':>8} {'p99.9':>8} {'max':>8}",
             "[1] step: feed + sample every field" if r["step"] else "[1] step: skipped (not in --sections)"]
    for name, s in r["step"].items():
        lines.append(_row(name, s))
        if s.get("swap_steps", {}).get("n"):
            lines.append(_row(f"  the {s['swaps']} swap step(s)", s["swap_steps"]))
    sch = r["scheduler"]
    if not sch:
        lines.append("[2] lateness: skipped (not in --sections)")
    else:
        lines += _lateness_rows(sch)
    e = r["e2e"]
    lines.append(f"[3] end to end over JACK: {e['status']}")
    if e["status"] == "measured":
        lines.append(_row("transport floor (bare rtmidi echo)", e["transport_floor"]))
        lines.append(_row("livejam run --performer echo (no model)", e["livejam_echo"]))
        lines.append(_row("livejam reply (feed + sample + reply)", e["reply"]))
        if e.get("reply_step_in_daemon"):
            lines.append(_row("  model work inside the reply path", e["reply_step_in_daemon"]))
        for name in ("livejam_echo", "reply"):
            o = e.get(f"{name}_overhead") or {}
            if o:
                lines.append(f"  {name + ' minus floor':<44} {o['median_ms']:8.3f} {o['p99_ms']:8.3f}")
    inp = r.get("input") or {}
    if not inp:
        lines.append("[4] input flood: skipped (not in --sections)")
    else:
        lines.append(f"[4] heard input at {inp['rate_per_s']:.0f} msg/s into the neural performer (duet), "
                     f"{inp['messages']} messages")
        lines.append(_row("queue wait (arrival -> hear)", inp["queue_wait"]))
        lines.append(_row("the performer's steps (feed or sample)", inp["performer_step"]))
    h = r.get("heard") or {"status": "skipped (not in --sections)"}
    lines.append(f"[5] timing as heard by a second process over JACK: {h['status']}")
    if h["status"] == "measured":
        lines[-1] += (f" ({h['minutes']:g}-minute duet, {'screen, OSC and recording on' if h['stage'] else 'no stage'}; "
                      f"{h['notes_arrived']} of {h['notes_sent']} note messages arrived, {h['dropped_late']} dropped late)")
        lines.append(_row("livejam's notes: arrival - intended", h["notes"]))
        lines.append(_row("the bare transport, same run", h["bare_notes"]))
        lines.append(_row("MIDI clock out: tick jitter", h["clock_jitter"]))
        lines.append(_row("the bare transport's jitter, same run", h["bare_jitter"]))
    lines += ["", "targets:"]
    for t in r["targets"]:
        value = "-" if t["value_ms"] is None else f"{t['value_ms']:.3f} ms"
        lines.append(f"  {t['name']:<48} {value:>10}  <= {t['target_ms']} ms  {t['verdict']}")
    lines.append(f"({r['seconds']} s)")
    return "\n".join(lines)


def _lateness_rows(sch: dict) -> list[str]:
    lines = []
    lines.append(f"[2] lateness, {sch['events']} events {sch['spacing_ms']:.0f} ms apart (inference thread: "
                 f"~{sch['scheduler_load_steps_per_s']:.0f} steps/s; GIL switch {sch['gil_switch_interval_ms']:g} ms)")
    lines.append(_row("bare sleep-then-spin floor, idle", sch["floor_idle"]))
    lines.append(_row("bare sleep-then-spin floor, under inference", sch["floor_under_inference"]))
    lines.append(_row("scheduler thread, under inference", sch["scheduler_under_inference"]))
    if "scheduler_under_inference_with_screen" in sch:
        lines.append(_row(f"  ... and the status screen ({sch['screen_frame_ms']:g} ms/frame)",
                          sch["scheduler_under_inference_with_screen"]))
    return lines


def main(argv: list[str] | None = None) -> int:
    """`python -m livejam.measure.bench ...`: the same as `livejam bench ...`."""
    import logging

    parser = argparse.ArgumentParser(prog="livejam")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["bench", *(sys.argv[1:] if argv is None else argv)])
    logging.basicConfig(level=logging.WARNING)
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
