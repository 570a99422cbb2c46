"""The command line's shared options and how they become a DaemonConfig: the config file, then
--set, then the dedicated flags (most specific wins). Used by `run`, `simulate` and the tools that
take the same options; usage errors are ConfigError (one line, exit status 2, in cli.main)."""
from __future__ import annotations

import argparse
import json
from dataclasses import replace

from livejam.config import ConfigError, DaemonConfig, NeuralConfig, PerformerConfig, load

PERFORMERS = ("neural", "markov", "echo")
_NEURAL, _PERFORMER = NeuralConfig(), PerformerConfig()  # help texts show the real defaults


def add_common_options(p: argparse.ArgumentParser) -> None:
    """Options every performer-running subcommand shares."""
    p.add_argument("--config", metavar="FILE",
                   help="TOML config file (unknown keys are errors); default ~/.config/livejam/config.toml when "
                        "it exists ('' for none)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key, e.g. --set performer.phrase_end_silence_s=0.8")
    p.add_argument("--performer", "--engine", dest="performer", choices=PERFORMERS,
                   help=f"who plays (default {_PERFORMER.kind}; the neural performer falls back to markov if "
                        "the model cannot be loaded, unless --performer neural is given)")
    p.add_argument("--seed", type=int, help="random seed (deterministic answers)")
    n = p.add_argument_group("neural performer")
    n.add_argument("--model", metavar="PATH", help="ONNX model file (default: the shipped model)")
    n.add_argument("--mode", choices=("call", "duet"),
                   help=f"call: answer when a phrase ends; duet: play along the whole time (default: {_NEURAL.mode})")
    n.add_argument("--prompt", metavar="FILE.mid", help="prime the model's context with this MIDI file")
    n.add_argument("--key", metavar="KEY", help=f"lock to a key, e.g. C:minor, 'auto' (estimated from you), '' (off); default {_NEURAL.key!r}")
    n.add_argument("--temperature", type=float, help=f"sampling temperature (default {_NEURAL.temperature}; 0 = always the likeliest)")
    n.add_argument("--top-p", type=float, help=f"nucleus sampling mass (default {_NEURAL.top_p})")
    n.add_argument("--harmony", type=float, help=f"0 = off .. 1 = strong: note-ons lean to the tones of the chord "
                   f"the model hears (default {_NEURAL.harmony})")
    n.add_argument("--grid", type=float, help=f"0 = off .. 1 = strong: with a beat clock, onsets lean to the "
                   f"16th-note grid (default {_NEURAL.grid})")
    n.add_argument("--density", type=float, help=f"> 0 denser, < 0 sparser (-4..4; the knob spans -2..2; default {_NEURAL.density})")
    n.add_argument("--pitch-range", metavar="LO:HI", help=f"MIDI notes the machine may play (default {_PERFORMER.pitch_low}:{_PERFORMER.pitch_high})")
    n.add_argument("--max-polyphony", type=int, help=f"most machine notes sounding at once (default {_PERFORMER.max_polyphony})")
    p.add_argument("--chords", metavar="CHART",
                   help='a chord chart to play in: "Am F C G" (a chord a bar, looping), "Am:2 F:2" (beats), or a '
                        "file of such text or POP909's chord_midi.txt (README: Chord charts)")
    n.add_argument("--grid-beats", type=float, metavar="BEATS",
                   help="hard quantise: while MIDI clock comes in, put machine notes on this grid "
                        f"(0.5 = eighths, 0.25 = sixteenths; default {_NEURAL.grid_beats} = free time)")


def config_from_args(args: argparse.Namespace, extra: list[str] = ()) -> DaemonConfig:
    """Config file, then --set overrides, then the dedicated flags (most specific wins)."""
    overrides = list(args.overrides)
    if args.performer:
        overrides.append(f'performer.kind="{args.performer}"')
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    for flag, key in (("mode", "neural.mode"), ("prompt", "neural.prompt"), ("key", "neural.key"),
                      ("chords", "chords.chart")):
        if getattr(args, flag) is not None:
            overrides.append(f"{key}={toml_str(getattr(args, flag))}")
    for flag, key in (("temperature", "neural.temperature"), ("top_p", "neural.top_p"),
                      ("density", "neural.density"), ("harmony", "neural.harmony"), ("grid", "neural.grid"),
                      ("max_polyphony", "performer.max_polyphony"), ("grid_beats", "neural.grid_beats")):
        if getattr(args, flag) is not None:
            overrides.append(f"{key}={getattr(args, flag)}")
    if args.pitch_range:
        lo, sep, hi = args.pitch_range.partition(":")
        if not sep or not lo.isdigit() or not hi.isdigit() or not int(lo) <= int(hi) <= 127:
            raise ConfigError(f"--pitch-range {args.pitch_range!r}: expected LO:HI MIDI notes, e.g. 36:96")
        overrides += [f"performer.pitch_low={int(lo)}", f"performer.pitch_high={int(hi)}"]
    overrides.extend(extra)
    config = load(DaemonConfig, config_file(args), overrides)
    if args.model is not None:  # a path is no TOML value: set it on the loaded config
        config = replace(config, neural=replace(config.neural, model=args.model))
    if config.neural.key not in ("", "auto"):  # a misspelt key would otherwise just lock nothing
        from livejam.engine.keys import parse_key

        try:
            parse_key(config.neural.key)
        except ValueError as e:
            raise ConfigError(f"neural.key: {e}") from None
    return config


def config_file(args: argparse.Namespace) -> str | None:
    """--config, else the user's config file when there is one (~/.config/livejam/config.toml)."""
    if args.config is not None:
        return args.config or None  # --config "" : none at all
    from livejam.config import user_config_file

    path = user_config_file()
    return str(path) if path.is_file() else None


def meter_beats(text: str) -> int:
    """'4/4' -> 4 beats a bar; compound meters count dotted beats: '6/8' -> 2, '12/8' -> 4."""
    num, sep, den = text.partition("/")
    if not num.isdigit() or (sep and den not in ("2", "4", "8", "16")):
        raise ConfigError(f"--meter {text!r}: expected beats/unit, e.g. 4/4, 3/4, 6/8")
    n = int(num)
    return n // 3 if den in ("8", "16") and n % 3 == 0 and n > 3 else n


def toml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def tempo_overrides(args: argparse.Namespace) -> list[str]:
    """--bpm, --tempo and --link as [beat] config overrides (usage errors as ConfigError)."""
    out: list[str] = []
    if args.tempo == "fixed" and args.bpm is None:
        raise ConfigError("--tempo fixed needs --bpm")
    if args.tempo == "free" and (args.bpm is not None or args.link):
        raise ConfigError("--tempo free plays without a beat: drop --bpm / --link")
    if args.tempo == "follow":  # --bpm is then the tempo to expect, not one to keep
        out.append("beat.follow=true")
        if args.bpm is not None:
            out.append(f"beat.follow_prior_bpm={args.bpm}")
    elif args.bpm is not None:
        out += [f"beat.bpm={args.bpm}", f"beat.clock_out={'false' if args.no_clock_out else 'true'}"]
    if args.tempo == "free":
        out.append("beat.clock_in=false")
    if args.link:
        out.append("beat.link=true")
    return out
