"""Musical quality of the machine's part, checked against POP909's annotations.

    python tools/quality.py --mode duet --engine neural          # held-out songs of data/events/meta.json
    python tools/quality.py --mode call --engine markov --songs 003 017 --json

For each song, runs `livejam simulate` with the song's MELODY as the human
(in duet mode; in call mode the melody too, so the machine answers its
phrases), then scores the machine track against the song's own annotations:
- in_key:     share of machine note-ons whose pitch class is in the annotated key
- chord_tone: share of machine note-ons (under a chord) that are tones of the annotated chord
- on_grid:    share of machine onsets within 60 ms of the annotated eighth-note grid
- notes_per_s: machine notes per second of the song
The same scores of the song's real accompaniment (PIANO) are printed beside,
as the bar a human arranger sets; `--engine markov` gives the baseline.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from livejam.events import Note, read_midi_tracks  # noqa: E402

POP909 = Path(__file__).resolve().parents[2] / "shared" / "data" / "pop909"
NOTE_NAMES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
CHORD_INTERVALS = {
    "maj": (0, 4, 7), "min": (0, 3, 7), "7": (0, 4, 7, 10), "maj7": (0, 4, 7, 11), "min7": (0, 3, 7, 10),
    "dim": (0, 3, 6), "dim7": (0, 3, 6, 9), "hdim7": (0, 3, 6, 10), "aug": (0, 4, 8), "sus2": (0, 2, 7),
    "sus4": (0, 5, 7), "maj6": (0, 4, 7, 9), "min6": (0, 3, 7, 9), "minmaj7": (0, 3, 7, 11), "9": (0, 4, 7, 10, 2),
}
MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10, 11)  # natural minor plus the harmonic leading tone


def pitch_class(name: str) -> int:
    pc = NOTE_NAMES[name[0].upper()]
    for accidental in name[1:]:
        pc += 1 if accidental == "#" else -1 if accidental == "b" else 0
    return pc % 12


def chord_tones(label: str) -> frozenset[int] | None:
    """'G:maj', 'E:min7', 'C:maj/3', 'A:sus4(b7)' -> pitch classes; None for 'N' or unknown."""
    if label == "N" or ":" not in label:
        return None
    root, quality = label.split(":", 1)
    quality = quality.split("/")[0]
    extra = ()
    if "(" in quality:
        quality, ext = quality.split("(", 1)
        extra = (10,) if "b7" in ext else (11,) if "7" in ext else ()
    intervals = CHORD_INTERVALS.get(quality) or (CHORD_INTERVALS["min"] if quality.startswith("min") else CHORD_INTERVALS["maj"])
    r = pitch_class(root)
    return frozenset((r + i) % 12 for i in intervals + extra)


def read_annotations(song_dir: Path):
    beats = np.loadtxt(song_dir / "beat_midi.txt", ndmin=2)[:, 0]
    chords = []
    for line in (song_dir / "chord_midi.txt").read_text().splitlines():
        start, end, label = line.split("\t")
        chords.append((float(start), float(end), chord_tones(label.strip())))
    keys = []
    for line in (song_dir / "key_audio.txt").read_text().splitlines():
        start, end, label = line.split("\t")
        root, mode = label.strip().split(":")
        scale = MINOR if mode.startswith("min") else MAJOR
        keys.append((float(start), float(end), frozenset((pitch_class(root) + i) % 12 for i in scale)))
    return beats, chords, keys


def at(segments, t: float):
    for start, end, value in segments:
        if start <= t < end:
            return value
    return None


def score(notes: list[Note], song_dir: Path, duration: float) -> dict:
    beats, chords, keys = read_annotations(song_dir)
    grid = np.sort(np.concatenate([beats, (beats[1:] + beats[:-1]) / 2]))
    in_key, chord_hit, chord_total, on_grid = 0, 0, 0, 0
    for n in notes:
        scale = at(keys, n.start)
        in_key += scale is None or (n.pitch % 12) in scale
        tones = at(chords, n.start)
        if tones is not None:
            chord_total += 1
            chord_hit += (n.pitch % 12) in tones
        on_grid += bool(len(grid)) and bool(np.min(np.abs(grid - n.start)) <= 0.060)
    count = len(notes)
    ratio = (lambda a, b: a / b if b else None)  # noqa: E731  no notes: nothing to score, not a zero
    return {"notes": count, "in_key": ratio(in_key, count), "chord_tone": ratio(chord_hit, chord_total),
            "on_grid": ratio(on_grid, count), "notes_per_s": count / max(duration, 1e-9)}


def track(path: Path, name: str) -> list[Note]:
    return [n for track_name, notes in read_midi_tracks(path) if track_name == name for n in notes]


def held_out_songs(meta: Path) -> list[str]:
    songs = json.loads(meta.read_text())["val"]["songs"]
    return [s.split("/")[1] for s in songs if s.startswith("pop909/")]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--songs", nargs="*", help="POP909 song numbers (default: held-out songs from --meta)")
    p.add_argument("--meta", default="data/events/meta.json", help="prepare_data's meta.json (for the held-out list)")
    p.add_argument("--max-songs", type=int, default=8)
    p.add_argument("--skip-songs", type=int, default=0, help="start this far into the held-out list (tune on "
                   "one slice of held-out songs, report on another)")
    p.add_argument("--sim-args", default="", help='more `livejam simulate` options, e.g. "--temperature 0.7"')
    p.add_argument("--pop909", default=str(POP909))
    p.add_argument("--mode", default="duet", choices=["duet", "call"])
    p.add_argument("--engine", default="neural")
    p.add_argument("--model", help="model file for the neural engine")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    songs = args.songs or held_out_songs(Path(args.meta))[args.skip_songs: args.skip_songs + args.max_songs]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for song in songs:
            song_dir = Path(args.pop909) / song
            midi = song_dir / f"{song}.mid"
            out = Path(tmp) / f"{song}.mid"
            cmd = [sys.executable, "-m", "livejam.cli", "simulate", "--human", str(midi), "--human-track", "MELODY",
                   "--out", str(out), "--engine", args.engine, "--mode", args.mode, "--seed", str(args.seed), "--json"]
            if args.model:
                cmd += ["--model", args.model]
            cmd += shlex.split(args.sim_args)
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"{song}: simulate failed: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
                return 1
            summary = json.loads(proc.stdout)
            melody = track(midi, "MELODY")
            duration = max(n.end for n in melody) - min(n.start for n in melody)
            machine = score(track(out, "machine"), song_dir, duration)
            piano = score(track(midi, "PIANO"), song_dir, duration)
            rows.append({"song": song, "machine": machine, "reference_piano": piano,
                         "still_sounding": summary["sounding_at_end"]})
    keys = ("in_key", "chord_tone", "on_grid", "notes_per_s")
    mean = {who: {k: float(np.mean([r[who][k] for r in rows if r[who][k] is not None] or [np.nan])) for k in keys}
            for who in ("machine", "reference_piano")}
    result = {"mode": args.mode, "engine": args.engine, "sim_args": args.sim_args, "songs": songs, "mean": mean,
              "per_song": rows}
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(f"mode {args.mode}, engine {args.engine} {args.sim_args}, {len(songs)} held-out POP909 songs: "
              f"{' '.join(songs)}")
        print(f"{'':18}" + "".join(f"{k:>12}" for k in keys))
        for who in ("machine", "reference_piano"):
            print(f"{who:18}" + "".join(f"{mean[who][k]:12.3f}" for k in keys))
        print("machine notes per song:", [r["machine"]["notes"] for r in rows])
        print("notes still sounding at the end:", [r["still_sounding"] for r in rows])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
