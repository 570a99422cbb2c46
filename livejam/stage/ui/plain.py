"""The plain status lines (`--plain`, or stdout not a terminal): one line per change of mode,
controls, tempo, chord or JACK's xrun count. Pure, and without rich: a base install
(`pip install livejam`) has them."""
from __future__ import annotations

from livejam.stage.ui.status import Snapshot


def fmt(v, unit: str = "") -> str:
    return "-" if v is None else f"{v:g}{unit}"


def changes(before: Snapshot | None, now: Snapshot) -> list[str]:
    """One line per thing that changed (the plain log): mode, controls, key, tempo, chord."""
    if before is None:
        controls = ", ".join(f"{k} {v}" for k, v in now.controls.items())
        return ["; ".join([f"mode {now.mode}"] + ([controls] if controls else [])
                          + ([f"chord {now.chord} ({now.chord_source})"] if now.chord_source else []))]
    out = []
    if now.mode != before.mode:
        out.append(f"mode {before.mode} -> {now.mode}")
    for k, v in now.controls.items():
        if before.controls.get(k) != v:
            out.append(f"{k} {before.controls.get(k)} -> {v}")
    if (now.bpm is None) != (before.bpm is None) or (now.bpm and before.bpm and abs(now.bpm - before.bpm) >= 2):
        out.append(f"tempo {fmt(before.bpm)} -> {fmt(now.bpm)} BPM")
    if (now.chord, now.chord_source) != (before.chord, before.chord_source):
        out.append(f"chord {now.chord} ({now.chord_source or 'none'})")
    return out


XRUN_LINE_EVERY_S = 10.0  # a server without real-time rights xruns all the time: a line, not a flood


def xrun_line(said: tuple[float, int], now: Snapshot) -> tuple[str | None, tuple[float, int]]:
    """The line (or None) for JACK's xrun count, the one trace of input JACK may have dropped before
    livejam's callback (livejam/midi/xruns.py): when it grew since the count last said (`said`: its
    time and count), at most every XRUN_LINE_EVERY_S; and the new `said`."""
    xruns = now.counters.get("xruns")
    t, count = said
    if not isinstance(xruns, int) or xruns <= count or now.t - t < XRUN_LINE_EVERY_S:
        return None, said
    return f"JACK xruns {count} -> {xruns}: input may have been lost", (now.t, xruns)
