"""`livejam learn`: MIDI-learn the live controls and write them to a TOML config.

    livejam learn --in "My Keyboard"     # writes ~/.config/livejam/config.toml
    livejam run                           # loads it (no --config needed)

For each control (temperature, density, pitch centre, mode, reset, panic) it
asks you to move a knob or press a button and takes the first control change
that arrives; Enter-less: a control nobody touches within `--timeout` seconds
keeps its default. The mapping is the `[neural.controls]` table of the user's
config file (platformdirs: ~/.config/livejam/config.toml on Linux), which
`livejam run` loads when no --config is given; the file's other settings are
kept. `--out FILE` writes another file (a valid `--config` file on its own).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import queue
import time
from pathlib import Path
from typing import Callable

from livejam.config import ConfigError, ControlMap
from livejam.config.controls import CONTROLS
from livejam.midi.spec import parse



def learn_mapping(next_cc: Callable[[float], int | None], timeout_s: float,
                  prompt: Callable[[str], None] = print, defaults: ControlMap | None = None) -> ControlMap:
    """Ask for each control and take the CC number `next_cc(timeout)` returns (None: keep the default).

    A CC already taken by an earlier control is not taken twice (a knob sends
    a stream of values: its tail must not be learnt for the next control).
    """
    defaults = defaults or ControlMap()
    learnt: dict[str, int] = {}
    for control in CONTROLS:  # its name is its ControlMap field
        prompt(f"move {control.learn} (or wait {timeout_s:.0f} s to keep CC {getattr(defaults, control.name)})")
        deadline = time.monotonic() + timeout_s
        number = None
        while (left := deadline - time.monotonic()) > 0:
            cc = next_cc(left)
            if cc is not None and cc not in learnt.values():
                number = cc
                break
        learnt[control.name] = number if number is not None else getattr(defaults, control.name)
        prompt(f"  {control.name} = CC {learnt[control.name]}" + ("" if number is not None else " (default)"))
    return ControlMap(**learnt)


def to_toml(mapping: ControlMap) -> str:
    lines = ["# livejam live controls (written by `livejam learn`): CC number per control, -1 = none",
             "[neural.controls]"]
    lines += [f"{f.name} = {getattr(mapping, f.name)}" for f in dataclasses.fields(ControlMap)]
    return "\n".join(lines) + "\n"


REWRITTEN = "# livejam settings (rewritten by `livejam learn`, which sets [neural.controls])\n"


def merge_into(existing: str, mapping: ControlMap) -> str:
    """`existing` TOML text with its live controls replaced by `mapping`, everything else kept.

    The [neural.controls] table is swapped as text, which keeps the user's comments; where the file
    holds the controls another way (dotted keys under [neural], an inline table) that text would be
    invalid TOML, so the result is checked by parsing it, and otherwise the file is written anew from
    its parsed settings (valid by construction, comments lost). Raises ConfigError for a file that
    is not valid TOML now: it is left as it is."""
    import tomllib

    try:
        data = tomllib.loads(existing)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"the config file is not valid TOML ({e}): fix it first; nothing was written") from None
    neural = data.setdefault("neural", {})
    if not isinstance(neural, dict):
        raise ConfigError("the config file's `neural` is not a table: fix it first; nothing was written")
    neural["controls"] = {f.name: getattr(mapping, f.name) for f in dataclasses.fields(ControlMap)}
    kept, skipping = [], False
    for line in existing.splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            skipping = stripped.replace(" ", "") == "[neural.controls]"
        elif stripped.startswith("# livejam live controls"):
            continue
        if not skipping:
            kept.append(line)
    head = "\n".join(kept).rstrip()
    text = (head + "\n\n" if head else "") + to_toml(mapping)
    try:
        if tomllib.loads(text) == data:
            return text
    except tomllib.TOMLDecodeError:
        pass
    import tomli_w

    return REWRITTEN + tomli_w.dumps(data)


def write_atomically(path: Path, text: str) -> None:
    """The whole file or the old one, never half: a sibling written and fsynced, then renamed over."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def cc_numbers(q: "queue.SimpleQueue") -> Callable[[float], int | None]:
    """next_cc over a queue of raw MIDI messages (the rtmidi callback fills it)."""

    def next_cc(timeout: float) -> int | None:
        try:
            raw = q.get(timeout=timeout)
        except queue.Empty:
            return None
        msg = parse(raw)
        return msg.control if msg is not None and msg.kind == "control_change" else None

    return next_cc


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("learn", help="MIDI-learn the live controls and write them to a TOML file")
    p.add_argument("--in", dest="input", metavar="NAME", help="input port name substring (default: virtual 'livejam learn')")
    p.add_argument("--backend", default="auto", help="auto (default), alsa, jack, ...")
    p.add_argument("--out", metavar="FILE",
                   help="TOML file to write (default: the user config, ~/.config/livejam/config.toml, which "
                        "`livejam run` loads; its other settings are kept)")
    p.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for each control")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from livejam.midi.ports import MidiInput, select_backend

    from livejam.config import user_config_file

    out = Path(args.out).expanduser() if args.out else user_config_file()
    existing = out.read_text() if out.is_file() else ""
    merge_into(existing, ControlMap())  # a file that cannot take the result: say so before the knobs are turned
    api = select_backend(args.backend)
    q: queue.SimpleQueue = queue.SimpleQueue()
    inp = MidiInput(api, lambda event, data=None: q.put(event[0]), args.input or "", client="livejam learn")
    print(f"listening on {inp.port_name}")
    try:
        mapping = learn_mapping(cc_numbers(q), args.timeout)
    finally:
        inp.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(out, merge_into(existing, mapping))
    if args.out:
        print(f"wrote {out}: use it with `livejam run --config {out}`")
    else:
        print(f"wrote {out}: `livejam run` loads it")
    return 0

