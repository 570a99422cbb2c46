"""How well `--tempo follow` finds the beat: the tempo tracker on POP909 melodies.

    python -m tools.tempo_eval                       # the 80 held-out songs (004 005 038 041 ...)
    python -m tools.tempo_eval --songs 004 005 038 041
    python -m tools.tempo_eval --split train --max-songs 60   # the songs the settings were chosen on
    python -m tools.tempo_eval --jitter-ms 20           # with a human's timing spread
    python -m tools.tempo_eval --json > tempo.json

Each song's MELODY track plays the human: its note-on times go to a TempoTracker one by
one, as they would be heard live (the tracker is causal), and the estimate is read
8 bars (32 annotated beats) after the melody's first note, against the song's
beat_midi.txt:
- tempo error: |estimated / annotated - 1|, the annotated tempo over the beats around
  that moment; "within 4%" counts the songs at the right metrical level and tempo;
- octave errors: estimates within 4% of double or half the annotated tempo, counted
  apart (the beat a melody of eighths suggests is often twice the annotated one);
- beat-phase error: the distance from an estimated beat to the nearest annotated beat,
  modulo the shorter of the two beat periods, in annotated beats (0.5 = off-beat);
  "within 1/8 beat" counts songs whose tempo is right and whose phase is that close;
- confident: the tracker's confidence at least the threshold (`beat.follow_confidence`),
  i.e. the songs where the live beat clock would follow rather than stay in free time.

Held-out songs are prepare_data's validation split (a hash of the song id), so the
tracker's settings, chosen on training songs (`--split train`), never saw them.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
from pathlib import Path

import numpy as np

from livejam.beatmap import BeatGrid
from livejam.config import BeatConfig
from livejam.midi.files import read_midi_tracks
from livejam.beat.tempo import TempoTracker

OCTAVE_TOL = 0.04  # relative tempo error counted as right (and for x2 / x1/2)
PHASE_TOL = 0.125  # beats


def pop909_root(arg: str | None) -> Path:
    for cand in (arg, os.environ.get("LIVEJAM_DATA"), "../shared/data"):
        if not cand:
            continue
        for sub in ("", "pop909", "POP909"):
            p = Path(cand) / sub
            if (p / "001" / "001.mid").exists():
                return p
    raise SystemExit("tempo_eval: POP909 not found: give --pop909 DIR or set LIVEJAM_DATA")


def split_songs(root: Path, split: str, seed: int = 0, val_frac: float = 0.1) -> list[str]:
    """prepare_data's split: a song is held out when the hash of its id (`pop909/NNN`) falls
    under val_frac (the same formula as tools.prepare_data.share; repeated here so this
    script needs neither tqdm nor the training extra)."""
    def share(song: str) -> float:
        digest = hashlib.sha256(f"{seed}:pop909/{song}".encode()).digest()
        return int.from_bytes(digest[:8], "little") / 2 ** 64

    songs = sorted(p.name for p in root.iterdir() if (p / f"{p.name}.mid").exists())
    return [s for s in songs if (share(s) < val_frac) == (split == "held-out")]


def melody_onsets(root: Path, song: str) -> tuple[np.ndarray, BeatGrid]:
    tracks = dict(read_midi_tracks(root / song / f"{song}.mid"))
    notes = tracks.get("MELODY")
    if not notes:
        raise ValueError(f"{song}: no MELODY track")
    onsets = np.array(sorted(n.start for n in notes))
    return onsets, BeatGrid.from_file(root / song / "beat_midi.txt")


def phase_error(est_beat_t: float, est_period: float, grid: BeatGrid, t: float) -> float:
    """Distance (in annotated beats) from the estimated beat grid to the annotated one near t,
    modulo the shorter period: the error of the beats the two grids share."""
    true_period = 60.0 / grid.bpm_at(t)
    true_beat_t = grid.time_at(math.floor(grid.beat_at(t)))
    m = min(est_period, true_period)
    d = (est_beat_t - true_beat_t) % m
    return min(d, m - d) / true_period


def evaluate_song(onsets: np.ndarray, grid: BeatGrid, bars: float = 8, meter: int = 4,
                  tracker: TempoTracker | None = None) -> dict:
    """Feed the onsets up to `bars` bars after the first one; score the estimate then."""
    tracker = tracker or TempoTracker()
    t_eval = grid.time_at(grid.beat_at(onsets[0]) + bars * meter)
    for t in onsets[onsets < t_eval]:
        tracker.onset(float(t))
        tracker.estimate(float(t))  # as live: an estimate after every note (hysteresis sees each)
    est = tracker.estimate(t_eval)
    true_bpm = grid.bpm_at(t_eval)
    row = {"true_bpm": round(true_bpm, 2), "bpm": None if est.bpm is None else round(est.bpm, 2),
           "confidence": round(est.confidence, 3), "onsets": int(np.sum(onsets < t_eval))}
    if est.bpm is None:
        return {**row, "level": "none", "tempo_error": None, "phase_error": None}
    ratio = est.bpm / true_bpm
    level = "other"
    for name, r in (("right", 1.0), ("double", 2.0), ("half", 0.5), ("x3/2", 1.5), ("x2/3", 2 / 3)):
        if abs(ratio / r - 1) <= OCTAVE_TOL:
            level = name
            break
    period = 60.0 / est.bpm
    return {**row, "level": level, "tempo_error": round(abs(ratio - 1), 4),
            "phase_error": round(phase_error(est.beat_time(t_eval), period, grid, t_eval), 4)}


def summarise(rows: dict[str, dict], threshold: float) -> dict:
    n = len(rows)
    vals = list(rows.values())
    right = [r for r in vals if r["level"] == "right"]
    conf = [r for r in vals if r["confidence"] >= threshold]

    def share(rs, cond) -> float:
        return round(sum(1 for r in rs if cond(r)) / max(1, len(rs)), 3)

    def med(xs) -> float | None:
        return None if not xs else round(float(np.median(xs)), 4)

    both = lambda r: r["level"] == "right" and r["phase_error"] <= PHASE_TOL  # noqa: E731
    return {
        "songs": n,
        "median_tempo_error": med([r["tempo_error"] for r in vals if r["tempo_error"] is not None]),
        "median_tempo_error_octave_folded": med([_folded(r) for r in vals if r["bpm"]]),
        "tempo_within_4pct": share(vals, lambda r: r["level"] == "right"),
        "double": share(vals, lambda r: r["level"] == "double"),
        "half": share(vals, lambda r: r["level"] == "half"),
        "other_level": share(vals, lambda r: r["level"] in ("other", "x3/2", "x2/3", "none")),
        "median_phase_error_right_tempo": med([r["phase_error"] for r in right]),
        "median_phase_error_all": med([r["phase_error"] for r in vals if r["phase_error"] is not None]),
        "phase_within_eighth_right_tempo": share(right, lambda r: r["phase_error"] <= PHASE_TOL),
        "tempo_and_phase_right": share(vals, both),
        "confident": share(vals, lambda r: r["confidence"] >= threshold),
        "confident_tempo_within_4pct": share(conf, lambda r: r["level"] == "right"),
        "confident_tempo_and_phase_right": share(conf, both),
    }


def _folded(r: dict) -> float:
    """Tempo error after folding x2 / x1/2: how close the tempo is at some metrical level."""
    ratio = r["bpm"] / r["true_bpm"]
    return min(abs(ratio * f - 1) for f in (1.0, 0.5, 2.0))


def table(summary: dict, bars: float) -> str:
    s = summary
    pct = lambda x: "-" if x is None else f"{100 * x:.0f}%"  # noqa: E731
    num = lambda x: "-" if x is None else f"{x:.3f}"  # noqa: E731
    lines = [
        f"tempo follow on POP909 melodies, {s['songs']} songs, after {bars:g} bars",
        "| measure | value |", "| --- | --- |",
        f"| median tempo error (all songs) | {pct(s['median_tempo_error'])} |",
        f"| median tempo error, x2 and x1/2 folded | {pct(s['median_tempo_error_octave_folded'])} |",
        f"| tempo within 4% | {pct(s['tempo_within_4pct'])} |",
        f"| octave errors: double / half | {pct(s['double'])} / {pct(s['half'])} |",
        f"| other (x3/2, x2/3, wrong, none) | {pct(s['other_level'])} |",
        f"| median beat-phase error, songs at the right tempo (beats) | {num(s['median_phase_error_right_tempo'])} |",
        f"| median beat-phase error, all songs (beats) | {num(s['median_phase_error_all'])} |",
        f"| phase within 1/8 beat, of the songs at the right tempo | {pct(s['phase_within_eighth_right_tempo'])} |",
        f"| tempo within 4% and phase within 1/8 beat (all songs) | {pct(s['tempo_and_phase_right'])} |",
        f"| confident (the beat clock follows) | {pct(s['confident'])} |",
        f"| of those: tempo within 4% / and phase within 1/8 | {pct(s['confident_tempo_within_4pct'])} / "
        f"{pct(s['confident_tempo_and_phase_right'])} |",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pop909", metavar="DIR", help="POP909 folder (default: $LIVEJAM_DATA or ../shared/data)")
    p.add_argument("--songs", nargs="*", help="song numbers (default: the held-out split)")
    p.add_argument("--split", choices=("held-out", "train"), default="held-out")
    p.add_argument("--max-songs", type=int, default=0, help="at most this many songs of the split (0: all)")
    p.add_argument("--bars", type=float, default=8.0, help="read the estimate this many bars after the first note")
    p.add_argument("--threshold", type=float, default=BeatConfig().follow_confidence,
                   help="confidence the beat clock needs to follow (default: beat.follow_confidence)")
    p.add_argument("--jitter-ms", type=float, default=0.0,
                   help="move each onset by Gaussian noise of this std (a human's timing; POP909 is near the grid)")
    p.add_argument("--seed", type=int, default=0, help="seed of the jitter")
    p.add_argument("--rows", action="store_true", help="print one line per song too")
    p.add_argument("--json", action="store_true", help="print JSON (summary and rows)")
    args = p.parse_args(argv)
    root = pop909_root(args.pop909)
    songs = args.songs or split_songs(root, args.split)
    if args.max_songs:
        songs = songs[:args.max_songs]
    rows = {}
    rng = np.random.default_rng(args.seed)
    for song in songs:
        try:
            onsets, grid = melody_onsets(root, song)
        except ValueError as e:
            print(f"tempo_eval: skipped {e}", file=sys.stderr)
            continue
        if args.jitter_ms:
            onsets = np.sort(onsets + rng.normal(0.0, args.jitter_ms / 1000.0, len(onsets)))
        rows[song] = evaluate_song(onsets, grid, args.bars)
    summary = summarise(rows, args.threshold)
    if args.json:
        print(json.dumps({"summary": summary, "rows": rows}, indent=1))
        return 0
    if args.rows:
        for song, r in rows.items():
            print(song, json.dumps(r))
    print(f"songs: {' '.join(rows)}")
    print(table(summary, args.bars) + (f"\n(onsets jittered: {args.jitter_ms:g} ms std)" if args.jitter_ms else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
