"""The stage add-ons of `livejam run`: built-in sound, the status screen, OSC.

cli.py asks this module for the options (`add_run_options`), turns them into
config overrides (`overrides`) and gets the add-ons the daemon runs beside
the real-time path (`build_addons`); each add-on imports its optional
dependency only when it is asked for, so the base install runs without them.
"""
from __future__ import annotations

import argparse
import json
import sys

from livejam.config import ConfigError, DaemonConfig


def add_run_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("stage (sound, screen, remote control)")
    g.add_argument("--sound", action="store_true",
                   help="play both parts on the audio device (General MIDI soundfont synth; needs livejam[sound])")
    g.add_argument("--sound-program", metavar="human=0,machine=4",
                   help="General MIDI programs (0-based) of the two parts; default human=0 (piano), machine=4")
    g.add_argument("--osc", metavar="[HOST:]PORT",
                   help="listen for OSC controls /livejam/... (HOST defaults to 127.0.0.1; needs livejam[osc])")
    g.add_argument("--plain", action="store_true",
                   help="no status screen: one log line per change (the default when stdout is not a terminal)")


def overrides(args: argparse.Namespace) -> list[str]:
    out = []
    if args.sound:
        out.append("sound.enabled=true")
    if args.sound_program:
        for item in args.sound_program.split(","):
            role, sep, value = item.partition("=")
            if not sep or role.strip() not in ("human", "machine") or not value.strip().isdigit() \
                    or int(value) > 127:
                raise ConfigError(f"--sound-program {args.sound_program!r}: expected human=N,machine=M (0..127)")
            out.append(f"sound.{role.strip()}_program={int(value)}")
    if args.osc:
        out.append(f"osc.listen={json.dumps(args.osc)}")
    if args.plain:
        out.append('screen.mode="plain"')
    return out


def screen_mode(config: DaemonConfig, stdout=None) -> str:
    """screen | plain | off: `auto` is the screen on a terminal, plain lines otherwise."""
    mode = config.screen.mode
    if mode not in ("auto", "screen", "plain", "off"):
        raise ConfigError(f"screen.mode {mode!r}: expected auto, screen, plain or off")
    if mode == "auto":
        stdout = stdout or sys.stdout
        return "screen" if stdout.isatty() else "plain"
    return mode


def build_addons(config: DaemonConfig) -> list:
    """The add-ons this config asks for, in start order (sound first: the screen shows its line)."""
    addons = []
    if config.sound.enabled:
        from livejam.stage.sound.output import SoundOut

        # Opened in its start(), after the MIDI ports: a JACK client opening while the audio
        # callback waits for the GIL stalled a synchronous JACK server's graph here.
        addons.append(SoundOut(config.sound, config.midi.machine_channels))
    if config.osc.listen:
        from livejam.stage.osc import OscControl

        osc = OscControl(config.osc.listen, config)
        osc.bind()
        addons.append(osc)
    mode = screen_mode(config)
    if mode != "off":
        from livejam.stage.ui import StatusAddon

        addons.append(StatusAddon(config, mode))
    return addons
