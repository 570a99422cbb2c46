"""The `livejam` command. One function per subcommand (`cmd_<name>`), each
registered by `_add_<name>` on the shared parser, so later subcommands (eval,
bench, learn) and options (--mode, --model) slot in without restructuring.

Exit status: 0 ok, 1 failure while running, 2 usage/config error or no usable
MIDI system (one line on stderr, no traceback).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Callable

from livejam.config import ConfigError, DaemonConfig, load

log = logging.getLogger("livejam")

ENGINES = ("neural", "markov", "echo")


def _common(p: argparse.ArgumentParser) -> None:
    """Options every engine-running subcommand shares."""
    p.add_argument("--config", metavar="FILE", help="TOML config file (unknown keys are errors)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key, e.g. --set performer.phrase_end_silence_s=0.8")
    p.add_argument("--engine", choices=ENGINES,
                   help="performer engine (default from config: neural; falls back to markov if the model "
                        "cannot be loaded, unless --engine neural is given)")
    p.add_argument("--seed", type=int, help="random seed (deterministic answers)")
    n = p.add_argument_group("neural engine")
    n.add_argument("--model", metavar="PATH", help="ONNX model file (default: the shipped model)")
    n.add_argument("--mode", choices=("call", "duet"),
                   help="call: answer when a phrase ends; duet: play along the whole time (default: call)")
    n.add_argument("--prompt", metavar="FILE.mid", help="prime the model's context with this MIDI file")
    n.add_argument("--key", metavar="KEY", help="lock to a key, e.g. C:minor, or 'auto' (estimated from you)")
    n.add_argument("--temperature", type=float, help="sampling temperature (default 0.9; 0 = always the likeliest)")
    n.add_argument("--top-p", type=float, help="nucleus sampling mass (default 0.95)")
    n.add_argument("--density", type=float, help="> 0 denser, < 0 sparser (about -2..2; default 0)")
    n.add_argument("--pitch-range", metavar="LO:HI", help="MIDI notes the machine may play (default 21:108)")
    n.add_argument("--max-polyphony", type=int, help="most machine notes sounding at once (default 6)")
    n.add_argument("--grid", type=float, metavar="BEATS",
                   help="tempo sync: while MIDI clock comes in, put machine notes on this grid "
                        "(0.5 = eighths, 0.25 = sixteenths; default 0 = free time)")


def _config(args: argparse.Namespace, extra: list[str] = ()) -> DaemonConfig:
    """Config file, then --set overrides, then the dedicated flags (most specific wins)."""
    overrides = list(args.overrides)
    if args.engine:
        overrides.append(f'engine="{args.engine}"')
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    for flag, key in (("model", "neural.model"), ("mode", "neural.mode"), ("prompt", "neural.prompt"),
                      ("key", "neural.key")):
        if getattr(args, flag) is not None:
            overrides.append(f"{key}={_toml_str(getattr(args, flag))}")
    for flag, key in (("temperature", "neural.temperature"), ("top_p", "neural.top_p"),
                      ("density", "neural.density"), ("max_polyphony", "performer.max_polyphony"),
                      ("grid", "neural.grid_beats")):
        if getattr(args, flag) is not None:
            overrides.append(f"{key}={getattr(args, flag)}")
    if args.pitch_range:
        lo, sep, hi = args.pitch_range.partition(":")
        if not sep or not lo.isdigit() or not hi.isdigit() or not int(lo) <= int(hi) <= 127:
            raise ConfigError(f"--pitch-range {args.pitch_range!r}: expected LO:HI MIDI notes, e.g. 36:96")
        overrides += [f"performer.pitch_low={int(lo)}", f"performer.pitch_high={int(hi)}"]
    overrides.extend(extra)
    return load(DaemonConfig, args.config, overrides)


def _toml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def _performer(args: argparse.Namespace, config: DaemonConfig):
    """Build (and warm up) the performer before any port opens. An unusable model is an
    error only when --engine neural was asked for; otherwise the Markov continuator plays."""
    from livejam.daemon import build_performer

    return build_performer(config.engine, config, config.seed, strict=args.engine == "neural")


# --- ports -------------------------------------------------------------------------

def _add_ports(sub) -> None:
    p = sub.add_parser("ports", help="list MIDI inputs and outputs of the selected backend")
    p.add_argument("--backend", default="auto", help="auto (default), alsa, jack, ...")
    p.set_defaults(func=cmd_ports)


def cmd_ports(args: argparse.Namespace) -> int:
    from livejam.midi.ports import api_name, list_ports, select_backend

    api = select_backend(args.backend)
    inputs, outputs = list_ports(api)
    print(f"backend: {api_name(api)}")
    print("inputs:")
    for name in inputs:
        print(f"  {name}")
    print("outputs:")
    for name in outputs:
        print(f"  {name}")
    return 0


# --- run ---------------------------------------------------------------------------

def _add_run(sub) -> None:
    p = sub.add_parser("run", help="listen on a MIDI input and play on a MIDI output")
    _common(p)
    p.add_argument("--in", dest="input", metavar="NAME", help="input port name substring (default: virtual 'livejam in')")
    p.add_argument("--out", dest="output", metavar="NAME",
                   help="output port name substring (default: virtual 'livejam out')")
    p.add_argument("--backend", help="auto (default), alsa, jack, ...")
    rec = p.add_mutually_exclusive_group()
    rec.add_argument("--record", metavar="PATH", help="record the session to this MIDI file")
    rec.add_argument("--no-record", action="store_true", help="do not record the session")
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    from livejam.daemon import Daemon

    extra = []
    if args.input:
        extra.append(f"midi.input={_toml_str(args.input)}")
    if args.output:
        extra.append(f"midi.output={_toml_str(args.output)}")
    if args.backend:
        extra.append(f"midi.backend={_toml_str(args.backend)}")
    if args.no_record:
        extra.append("record.enabled=false")
    config = _config(args, extra)

    from livejam.daemon import performer_name
    from livejam.midi.ports import select_backend

    if config.record.enabled and args.record:
        from livejam.recording import check_writable

        check_writable(args.record)  # a bad path ends the session now, not after it (exit 2, one line)
    select_backend(config.midi.backend)  # no MIDI system: say so before loading a model
    performer = _performer(args, config)
    playing = performer_name(performer)  # after a fallback: markov, whatever was asked

    def ready(inp: str, out: str, backend: str) -> None:
        print(f"livejam: ready: in={inp} out={out} backend={backend} performer={playing} engine={playing}",
              flush=True)

    daemon = Daemon(config, performer=performer, record_path=args.record, on_ready=ready)
    try:
        result = daemon.run()
        print(f"livejam: stopped ({result.reason})", flush=True)
        if result.recording:
            print(f"livejam: recorded to {result.recording}", flush=True)
        print("livejam: counters " + json.dumps(result.summary, sort_keys=True), flush=True)
    finally:
        daemon.restore_signals()  # only now: a second Ctrl-C must not cut the counters short
    if result.hard_exit:
        # A port was left open under its JACK callback (or a thread would not stop):
        # end the process here, without finalising the interpreter under them.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(result.rc)
    return result.rc


# --- simulate ----------------------------------------------------------------------

def _add_simulate(sub) -> None:
    p = sub.add_parser("simulate", help="run the performer on a MIDI file's track(s) on a virtual clock")
    _common(p)
    p.add_argument("--human", required=True, metavar="FILE.mid", help="MIDI file whose track(s) play the human")
    p.add_argument("--human-track", action="append", default=[], metavar="NAME_OR_INDEX",
                   help="track name, or index among tracks with notes (repeatable; default: the first)")
    p.add_argument("--out", required=True, metavar="OUT.mid", help="output file: tracks 'human' and 'machine'")
    p.add_argument("--tail", type=float, metavar="SECONDS",
                   help="keep running this long after the last input (default: room for one answer)")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=cmd_simulate)


def cmd_simulate(args: argparse.Namespace) -> int:
    from livejam.simulate import simulate_file

    config = _config(args)
    summary = simulate_file(args.human, args.out, args.human_track, config.engine, config.seed, config,
                            tail_s=args.tail, performer=_performer(args, config))
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
    else:
        print(f"{summary['human_notes']} human notes in, {summary['machine_notes']} machine notes out, "
              f"{summary['sounding_at_end']} sounding at the end -> {args.out}")
    return 0 if summary["sounding_at_end"] == 0 else 1


# --- entry point -------------------------------------------------------------------

def _add_eval(sub) -> None:
    from livejam import evaluate

    evaluate.add_parser(sub)


def _add_bench(sub) -> None:
    from livejam import bench

    bench.add_parser(sub)


def _add_learn(sub) -> None:
    from livejam import learn

    learn.add_parser(sub)


SUBCOMMANDS: tuple[Callable, ...] = (_add_ports, _add_run, _add_simulate, _add_eval, _add_bench, _add_learn)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="livejam", description="Real-time MIDI co-performer")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from livejam.engine.session import ModelError
    from livejam.midi.ports import MidiUnavailable

    try:
        return args.func(args)
    except (ConfigError, MidiUnavailable, ModelError, ValueError, OSError) as e:
        # Expected failures (a bad path, a full disk, no MIDI system) get one line, not a traceback.
        print(f"livejam: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C outside the daemon (simulate, eval, model loading)
        print("livejam: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
