"""The `livejam` command. One function per subcommand (`cmd_<name>`), each
registered by `_add_<name>` on the shared parser; the measuring subcommands
(eval, bench) keep their parsers beside their code in livejam/measure/; the options `run` and
`simulate` share, and how they become a config, are in livejam/options.py.

Exit status: 0 ok, 1 failure while running, 2 usage/config error or no usable
MIDI system (one line on stderr, no traceback).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Callable

from livejam.config import ConfigError, DaemonConfig
from livejam.options import (add_common_options, config_file, config_from_args, meter_beats, tempo_overrides,
                             toml_str)

log = logging.getLogger("livejam")


def _performer(args: argparse.Namespace, config: DaemonConfig):
    """Build (and warm up) the performer before any port opens. An unusable model is an error
    when the user asked for it (--performer neural, or a model file by name); the shipped model's
    absence or damage is a warning, and the Markov continuator plays."""
    from livejam.dispatch import build_performer

    return build_performer(config, strict=args.performer == "neural" or bool(config.neural.model))


# --- ports -------------------------------------------------------------------------

def _add_ports(sub) -> None:
    p = sub.add_parser("ports", help="list the MIDI ports you can play from (keyboards) and to (synths)")
    p.add_argument("--backend", default="auto", help="auto (default), alsa, jack, ...")
    p.add_argument("--all", action="store_true", help="livejam's own ports too")
    p.set_defaults(func=cmd_ports)


def cmd_ports(args: argparse.Namespace) -> int:
    from livejam.config import MidiConfig
    from livejam.midi.ports import api_name, list_ports, select_backend

    api = select_backend(args.backend)
    # rtmidi's inputs are the ports that send (keyboards, a DAW's MIDI out), its outputs those that
    # receive (synths, a DAW track's input); livejam's own ports are not something to choose
    own = MidiConfig().client_name
    inputs, outputs = ([n for n in names if args.all or not n.startswith(own)] for names in list_ports(api))
    print(f"backend: {api_name(api)}")
    print("play from (keyboards, DAW MIDI outputs): livejam run --in NAME")
    for name in inputs:
        print(f"  {name}")
    if not inputs:
        print(f"  none: plug in a keyboard, or connect one to '{own} in' once livejam runs")
    print("play to (synths, DAW MIDI inputs): livejam run --out NAME")
    for name in outputs:
        print(f"  {name}")
    if not outputs:
        print(f"  none: add --sound to hear it on this computer, or connect a synth to '{own} out' once livejam runs")
    return 0


# --- run ---------------------------------------------------------------------------

def _add_run(sub) -> None:
    p = sub.add_parser("run", help="listen on a MIDI input and play on a MIDI output")
    add_common_options(p)
    p.add_argument("--in", dest="input", metavar="NAME", help="input port name substring (default: virtual 'livejam in')")
    p.add_argument("--out", dest="output", metavar="NAME",
                   help="output port name substring (default: virtual 'livejam out')")
    p.add_argument("--json", action="store_true",
                   help="at exit, print every counter as JSON (a line starting `livejam: counters `) after the "
                        "one-line summary")
    p.add_argument("--exit-on-port-loss", action="store_true",
                   help="a --in/--out port missing at start is an error (exit status 2) and one that vanishes "
                        "ends the session (status 1); default: wait for it and reconnect when it comes back")
    p.add_argument("--backend", help="auto (default), alsa, jack, ...")
    b = p.add_argument_group("tempo")
    b.add_argument("--bpm", type=float, help="livejam's own tempo (20..300): it is the clock master and sends MIDI "
                   "clock, start and stop on its output (an incoming clock is then ignored)")
    b.add_argument("--meter", metavar="N/D", help="beats per bar, e.g. 4/4, 3/4, 6/8 (default 4/4)")
    b.add_argument("--count-in", type=int, metavar="BARS", help="with --bpm: click this many bars before beat 0 "
                   "(MIDI channel 10)")
    b.add_argument("--no-clock-out", action="store_true", help="with --bpm: play at that tempo but send no clock")
    b.add_argument("--tempo", choices=("follow", "fixed", "free"),
                   help="follow: find the tempo and beat in what you play (with --bpm: the tempo to expect, "
                        "not a fixed one); fixed: --bpm's tempo; free: no beat at all, incoming MIDI clock "
                        "ignored (default: MIDI clock if one comes in, else --bpm, else free time)")
    b.add_argument("--link", action="store_true", help="join an Ableton Link session and follow its tempo and "
                   "beat while it has peers (needs livejam[link]); MIDI clock still outranks it")
    from livejam.stage import addons as stage

    stage.add_run_options(p)
    p.add_argument("--thru", action="store_true",
                   help="pass your notes to the output too, on their own channel (midi.thru_channel, default 1)")
    rec = p.add_mutually_exclusive_group()
    rec.add_argument("--record", metavar="PATH", help="record the session to this MIDI file")
    rec.add_argument("--no-record", action="store_true", help="do not record the session")
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    from livejam.daemon import Daemon

    extra = []
    if args.input:
        extra.append(f"midi.input={toml_str(args.input)}")
    if args.output:
        extra.append(f"midi.output={toml_str(args.output)}")
    if args.backend:
        extra.append(f"midi.backend={toml_str(args.backend)}")
    if args.exit_on_port_loss:
        extra.append("midi.exit_on_port_loss=true")
    if args.no_record:
        extra.append("record.enabled=false")
    extra += tempo_overrides(args)
    if args.meter:
        extra.append(f"beat.meter={meter_beats(args.meter)}")
    if args.count_in is not None:
        extra.append(f"beat.count_in_bars={args.count_in}")
    if args.thru:
        extra.append("midi.thru=true")
    from livejam.stage import addons as stage

    config = config_from_args(args, extra + stage.overrides(args))
    if config.beat.count_in_bars and config.beat.bpm is None:  # no tempo to click it at: say so, play on
        print("livejam: warning: --count-in needs livejam's own tempo (--bpm N): no count-in", file=sys.stderr,
              flush=True)
    if config.beat.link:  # from --link or a config file: no package, one line before any port opens
        from livejam.beat.link import LinkUnavailable, check_available

        try:
            check_available()
        except LinkUnavailable as e:
            raise ConfigError(str(e)) from None

    from livejam.dispatch import performer_name
    from livejam.lines import connect_lines, exit_line
    from livejam.midi.ports import select_backend

    if config.record.enabled and args.record:
        from livejam.recording import check_writable

        check_writable(args.record)  # a bad path ends the session now, not after it (exit 2, one line)
    select_backend(config.midi.backend)  # no MIDI system: say so before loading a model
    performer = _performer(args, config)
    playing = performer_name(performer)  # after a fallback: markov, whatever was asked
    addons = stage.build_addons(config)

    def ready(inp: str, out: str, backend: str) -> None:
        used = config_file(args)
        print(f"livejam: ready: in={inp} out={out} backend={backend} performer={playing}"
              + (f" config={used}" if used else ""), flush=True)
        for addon in addons:  # sound (its latency, or why there is none), OSC address
            if addon.line:
                print(f"livejam: {addon.line}", flush=True)
        for line in connect_lines(config, inp, out):
            print(f"livejam: {line}", flush=True)

    daemon = Daemon(config, performer=performer, record_path=args.record, on_ready=ready, addons=addons)
    try:
        result = daemon.run()
        print(f"livejam: {exit_line(result.summary, result.recording)}", flush=True)
        counters = ["counters " + json.dumps(result.summary, sort_keys=True)]
        summaries = [(type(a).__name__, a.summary()) for a in addons]  # each asked once
        counters += [f"{name} " + json.dumps(s, sort_keys=True) for name, s in summaries if s is not None]
        for line in counters:  # for scripts (--json) and the log (-v), not for the musician's eyes
            if args.json:
                print(f"livejam: {line}", flush=True)
            else:
                log.info("%s", line)
    finally:
        for addon in addons:  # the daemon closes those it started; closing twice is harmless
            addon.close()
        daemon.restore_signals()  # only now: a second Ctrl-C must not cut the counters short
    if result.hard_exit:
        from livejam.daemon import leave_process

        leave_process(result.rc)
    return result.rc


# --- simulate ----------------------------------------------------------------------

def _add_simulate(sub) -> None:
    p = sub.add_parser("simulate", help="run the performer on a MIDI file's track(s) on a virtual clock")
    add_common_options(p)
    p.add_argument("--human", required=True, metavar="FILE.mid", help="MIDI file whose track(s) play the human")
    p.add_argument("--human-track", action="append", default=[], metavar="NAME_OR_INDEX",
                   help="track name, or index among tracks with notes (repeatable; default: the first)")
    p.add_argument("--out", required=True, metavar="OUT.mid", help="output file: tracks 'human' and 'machine'")
    tempo = p.add_mutually_exclusive_group()
    tempo.add_argument("--beats", metavar="FILE", help="the beat clock: beat times in seconds, one per line "
                       "(first column; a third column marks downbeats, as POP909's beat_midi.txt); "
                       "default: the input file's tempo map")
    tempo.add_argument("--free", action="store_true", help="no beat clock: free time")
    p.add_argument("--tail", type=float, metavar="SECONDS",
                   help="keep running this long after the last input (default: room for one answer)")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.add_argument("--png", metavar="ROLL.png", help="also draw the result as a piano roll (needs livejam[plot])")
    p.set_defaults(func=cmd_simulate)


def cmd_simulate(args: argparse.Namespace) -> int:
    from livejam.simulate import simulate_file

    config = config_from_args(args)
    from livejam.recording import check_writable
    from livejam.simulate import beat_source

    for option, path in (("--out", args.out), ("--png", args.png)):  # now, not after the whole run
        if path:
            check_writable(path, option)

    beats = beat_source(args.human, args.beats, args.free)
    summary = simulate_file(args.human, args.out, args.human_track, config,
                            tail_s=args.tail, performer=_performer(args, config), beats=beats)
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
    else:
        print(f"{summary['human_notes']} human notes in, {summary['machine_notes']} machine notes out, "
              f"{summary['sounding_at_end']} sounding at the end -> {args.out}")
    if args.png:
        from livejam.roll import render_file

        print(f"piano roll -> {render_file(args.out, args.png, grid_from=args.human)}")
    return 0 if summary["sounding_at_end"] == 0 else 1


# --- entry point -------------------------------------------------------------------

def _add_eval(sub) -> None:
    from livejam.measure import evaluate

    evaluate.add_parser(sub)


def _add_bench(sub) -> None:
    from livejam.measure import bench

    bench.add_parser(sub)


def _add_roll(sub) -> None:
    from livejam import roll

    roll.add_parser(sub)


def _add_learn(sub) -> None:
    from livejam import learn

    learn.add_parser(sub)


def _add_teach(sub) -> None:
    from livejam import teach

    teach.add_parser(sub)


SUBCOMMANDS: tuple[Callable, ...] = (_add_ports, _add_run, _add_simulate, _add_eval, _add_bench, _add_learn,
                                    _add_roll, _add_teach)


class OneLineParser(argparse.ArgumentParser):
    """A usage error is one line saying what was wrong (argparse names the valid choices) and where
    to read more, not the whole usage first. Every subcommand's parser is of this class too."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from livejam import version

    parser = OneLineParser(prog="livejam", description="Real-time MIDI co-performer")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    parser.add_argument("--version", action="version", version=f"livejam {version()}")
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
