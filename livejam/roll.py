"""`livejam roll`: a piano-roll picture of a session (or a simulation) as a PNG.

    livejam roll SESSION.mid --out roll.png [--chords chord_midi.txt] [--start 10 --end 40]

Draws the `human` and `machine` tracks in two colours (every other track in
grey), beat and bar lines when the file carries a musical tempo (a
time-signature or a tempo other than MIDI's default 120 BPM; session
recordings carry neither, so they get a plain seconds axis), and chord labels
from a POP909-style `chord_midi.txt` (start, end, label; tab-separated,
seconds). matplotlib is an optional extra (`pip install 'livejam[plot]'`); it
is imported only when a picture is drawn.
"""
from __future__ import annotations

import argparse
import io
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from livejam.events import Note
from livejam.midi.files import load_midi, read_midi_tracks, read_text

COLOURS = {"human": "#2166ac", "machine": "#e66101"}  # blue and orange: apart for colour-blind eyes too
OTHER = "#8c8c8c"
DEFAULT_TEMPO = 500_000  # MIDI's 120 BPM, what a file says when it says nothing
MAX_GRID_LINES = 2000  # beat (or bar) lines in one picture; more are closer than its pixels


@dataclass(frozen=True)
class Grid:
    """Beat and bar times in seconds, from a MIDI file's tempo map and time signatures."""

    beats: tuple[float, ...]
    bars: tuple[float, ...]
    bpm: float
    meter: str


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed; the message says how to install it."""


def read_grid(path: str | Path, force: bool = False) -> Grid | None:
    """The file's beat grid, or None when it carries no musical tempo (unless `force`).
    ValueError (one line) for a file livejam.midi.files.load_midi refuses."""
    import bisect

    mid = load_midi(path)
    tempos: list[tuple[int, int]] = []
    sigs: list[tuple[int, int, int]] = []
    end_tick = 0
    for track in mid.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "set_tempo":
                tempos.append((tick, msg.tempo))
            elif msg.type == "time_signature":
                sigs.append((tick, msg.numerator, msg.denominator))
        end_tick = max(end_tick, tick)
    if not force and not sigs and all(t == DEFAULT_TEMPO for _, t in tempos):
        return None
    tempos = sorted(tempos) or [(0, DEFAULT_TEMPO)]
    if tempos[0][0] != 0:
        tempos.insert(0, (0, DEFAULT_TEMPO))
    sigs = sorted(sigs) or [(0, 4, 4)]
    tpb = mid.ticks_per_beat
    change_ticks = [t for t, _ in tempos]
    change_secs = [0.0]  # seconds at each tempo change
    for (a, tempo), (b, _) in zip(tempos, tempos[1:]):
        change_secs.append(change_secs[-1] + (b - a) * tempo / 1e6 / tpb)

    def seconds(tick: float) -> float:
        i = bisect.bisect_left(change_ticks, tick) - 1 if tick > 0 else 0
        return change_secs[i] + (tick - change_ticks[i]) * tempos[i][1] / 1e6 / tpb

    beats, bars = [], []
    tick, beat_in_bar, sig_i = 0.0, 0, 0
    while tick <= end_tick:
        while sig_i + 1 < len(sigs) and sigs[sig_i + 1][0] <= tick:
            sig_i += 1
            beat_in_bar = 0
        _, num, den = sigs[sig_i]
        t = seconds(tick)
        (bars if beat_in_bar == 0 else beats).append(t)
        beat_in_bar = (beat_in_bar + 1) % num
        tick += tpb * 4 / den  # in float ticks: at 1 tick per beat an eighth is half a tick
    _, num, den = sigs[0]
    return Grid(tuple(beats), tuple(bars), round(60e6 / tempos[0][1], 1), f"{num}/{den}")


def read_chords(path: str | Path) -> list[tuple[float, float, str]]:
    """POP909 chord_midi.txt: (start s, end s, label) rows; 'N' (no chord) is left out."""
    rows = []
    for n, line in enumerate(read_text(path, "chord file").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t") if "\t" in line else line.split()
        if len(parts) < 3:
            raise ValueError(f"{path}:{n}: expected start, end, label; got {line!r}")
        if parts[2] != "N":
            rows.append((float(parts[0]), float(parts[1]), parts[2]))
    return rows


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: never a window, works with no display
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotUnavailable("pictures need matplotlib: pip install 'livejam[plot]'") from None
    return plt


def draw_roll(tracks: Sequence[tuple[str, Sequence[Note]]], out: str | Path, grid: Grid | None = None,
              chords: Sequence[tuple[float, float, str]] = (), title: str = "",
              start: float | None = None, end: float | None = None) -> Path:
    """Draw named note tracks to a PNG; returns its path. Times in seconds."""
    plt = _pyplot()
    from matplotlib.patches import Patch

    notes = [n for _, ns in tracks for n in ns]
    t0 = max(0.0, start) if start is not None else 0.0
    t1 = end if end is not None else max((n.end for n in notes), default=t0 + 1.0)
    t1 = max(t1, t0 + 0.5)
    shown = [n for n in notes if n.end >= t0 and n.start <= t1]
    lo = min((n.pitch for n in shown), default=48) - 2
    hi = max((n.pitch for n in shown), default=72) + 2
    width = min(48.0, max(9.0, (t1 - t0) / 2.5))
    height = min(12.0, max(4.0, (hi - lo) / 7 + 1.5))
    fig, ax = plt.subplots(figsize=(width, height), dpi=110)
    ax.set_facecolor("#fbfbfb")
    for p in range(lo, hi + 1):  # black keys shaded, like a DAW's roll
        if p % 12 in (1, 3, 6, 8, 10):
            ax.axhspan(p - 0.5, p + 0.5, color="#eeeeee", zorder=0, lw=0)
        if p % 12 == 0:
            ax.axhline(p - 0.5, color="#cccccc", lw=0.6, zorder=0)
    if grid is not None:  # lines closer than the pixels can show are left out (hours of beats: minutes to draw)
        beats, bars = ([t for t in ts if t0 <= t <= t1] for ts in (grid.beats, grid.bars))
        for t in beats if len(beats) <= MAX_GRID_LINES else ():
            ax.axvline(t, color="#d9d9d9", lw=0.5, zorder=1)
        for t in bars if len(bars) <= MAX_GRID_LINES else ():
            ax.axvline(t, color="#9a9a9a", lw=0.9, zorder=1)
    handles = []
    for name, ns in tracks:
        colour = COLOURS.get(name.lower(), OTHER)
        ns = [n for n in ns if n.end >= t0 and n.start <= t1]
        for n in ns:
            ax.add_patch(plt.Rectangle((n.start, n.pitch - 0.42), max(0.02, n.end - n.start), 0.84,
                                       facecolor=colour, edgecolor="black", linewidth=0.3,
                                       alpha=0.45 + 0.55 * min(127, n.velocity) / 127, zorder=3))
        handles.append(Patch(facecolor=colour, edgecolor="black", label=f"{name} ({len(ns)} notes)"))
    if chords:
        ax.axhspan(hi + 0.5, hi + 2.5, color="#f3f0e6", zorder=0, lw=0)
    for c_start, c_end, label in chords:
        if c_end >= t0 and c_start <= t1:
            mid = (max(c_start, t0) + min(c_end, t1)) / 2
            ax.text(mid, hi + 0.9, label.replace(":maj", "").replace(":min", "m"), ha="center", va="bottom",
                    fontsize=8, color="#333333", clip_on=True)
            ax.plot([c_start, c_start], [hi + 0.5, hi + 2.5], color="#555555", lw=0.8, zorder=2)
    ax.set_xlim(t0, t1)
    ax.set_ylim(lo - 0.5, hi + (2.5 if chords else 0.5))
    ax.set_xlabel("time (s)" + (f"; {grid.meter} at {grid.bpm:g} BPM, bars dark, beats light" if grid else ""))
    ax.set_ylabel("MIDI note")
    ticks = [p for p in range(lo, hi + 1) if p % 12 == 0]
    ax.set_yticks(ticks, [f"C{p // 12 - 1}" for p in ticks])
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=9, frameon=False)
    if title:
        ax.set_title(title, fontsize=11)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    picture = io.BytesIO()
    fig.savefig(picture, format=out.suffix.lstrip(".").lower() or "png")
    plt.close(fig)
    with open(out, "wb") as f:  # written and closed here, so a full disk is an OSError, not "wrote"
        f.write(picture.getvalue())
    return out


def render_file(midi: str | Path, out: str | Path, chords: str | Path | None = None,
                grid_from: str | Path | None = None, start: float | None = None, end: float | None = None,
                grid: bool | None = None) -> Path:
    """A MIDI file's roll as a PNG; the beat grid comes from `grid_from` (default: the file itself).
    `grid`: None = when the file has a musical tempo, True = always, False = never."""
    tracks = read_midi_tracks(midi)
    if not tracks:
        raise ValueError(f"{midi}: no notes to draw")
    beat_grid = None if grid is False else read_grid(grid_from or midi, force=bool(grid))
    return draw_roll(tracks, out, beat_grid, read_chords(chords) if chords else (), Path(midi).name, start, end)


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("roll", help="draw a piano roll of a session or simulation MIDI file (PNG)")
    p.add_argument("midi", metavar="SESSION.mid", help="MIDI file (tracks 'human' and 'machine' get two colours)")
    p.add_argument("--out", required=True, metavar="ROLL.png", help="PNG file to write")
    p.add_argument("--chords", metavar="FILE", help="chord labels: POP909 chord_midi.txt (start, end, label)")
    p.add_argument("--grid-from", metavar="FILE.mid", help="take beats and bars from this file's tempo map")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--grid", dest="grid", action="store_true", default=None, help="always draw beats and bars")
    g.add_argument("--no-grid", dest="grid", action="store_false", help="never draw beats and bars")
    p.add_argument("--start", type=float, metavar="S", help="from this time (seconds)")
    p.add_argument("--end", type=float, metavar="S", help="to this time (seconds)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    if args.start is not None and args.end is not None and args.end <= args.start:
        print(f"livejam roll: --end {args.end:g} is not after --start {args.start:g}", file=sys.stderr)
        return 2
    if any(v is not None and not (math.isfinite(v) and v >= 0) for v in (args.start, args.end)):
        print("livejam roll: --start and --end are seconds from the file's start (0 or more)", file=sys.stderr)
        return 2
    try:
        path = render_file(args.midi, args.out, args.chords, args.grid_from, args.start, args.end, args.grid)
    except PlotUnavailable as e:
        print(f"livejam: {e}")
        return 2
    except OSError as e:
        print(f"livejam roll: cannot write {args.out}: {e.strerror or e}", file=sys.stderr)
        return 2
    print(f"livejam: wrote {path}")
    return 0
