"""Musicianship of the machine's part, scored against POP909's own annotations.

    python -m tools.quality                               # 24 held-out songs, every row of the table
    python -m tools.quality --songs 004 005 --rows duet   # a quick look
    python -m tools.quality --json > quality.json

For each held-out song (prepare_data's meta.json `held_out`, never trained on), the
song's MELODY plays the human in `livejam simulate` with the song's annotated beats as
the beat clock (`--beats beat_midi.txt`, as a drummer or a DAW would give it), and the
machine's note-ons are scored:
- in_key:     pitch class in the annotated key (key_audio.txt)
- chord_tone: pitch class a tone of the annotated chord at the onset (chord_midi.txt;
              onsets under "N" are not counted)
- on_grid:    onset within 35 ms of the song's 16th-note grid (each annotated beat in four)
- notes_per_s: note-ons per second of the melody's span
- chord_match: the chord the machine played each note-on in (the chord it sampled, toward whose
              tones `harmony` leans) is the annotated chord or nests with it (C in Cmaj7, C in Am7)
- chord_root: ... has the annotated chord's root (both: onsets under "N" are not counted)
Rows: the neural performer in duet and in call mode, the Markov continuator (call), the
song's real PIANO part (the bar a human arranger sets) and random in-key notes (as many
as the piano plays, at random times: what chance gives). `grid_vs_piano` and
`nps_vs_piano` are the machine's rates over the piano's on the same song, averaged.

The bars of the musicianship issue (duet, mean over songs): chord_tone >= 0.85,
grid_vs_piano >= 0.9, nps_vs_piano in 0.6..1.5, nothing sounding at the end.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from livejam.clock import BeatGrid
from livejam.config import DaemonConfig, load
from livejam.dispatch import build_performer
from livejam.events import Note
from livejam.midi.files import read_midi_tracks
from livejam.harmony import chord_tones, parse_chord, root_pc, split_id

log = logging.getLogger("quality")
POP909 = Path(__file__).resolve().parents[2] / "shared" / "data" / "pop909"
MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10, 11)  # natural minor plus the harmonic leading tone
GRID_TOLERANCE_S = 0.035
ROWS = ("duet", "call", "markov", "piano", "random")
BARS = {"chord_tone": 0.85, "grid_vs_piano": 0.9, "nps_vs_piano": (0.6, 1.5)}


class Song:
    """One POP909 song's file and annotations."""

    def __init__(self, folder: Path, seconds: float = 0.0):
        self.id = folder.name
        self.midi = folder / f"{folder.name}.mid"
        self.beat_file = folder / "beat_midi.txt"
        self.beats = BeatGrid.from_file(self.beat_file)
        self.chords = []
        for line in (folder / "chord_midi.txt").read_text().splitlines():
            start, end, label = line.split("\t")
            self.chords.append((float(start), float(end), parse_chord(label.strip()) or None))  # chord id; N: None
        self.keys = []
        for line in (folder / "key_audio.txt").read_text().splitlines():
            start, end, label = line.split("\t")
            root, mode = label.strip().split(":")
            scale = MINOR if mode.startswith("min") else MAJOR
            self.keys.append((float(start), float(end), frozenset((root_pc(root) + i) % 12 for i in scale)))
        tracks = dict(read_midi_tracks(self.midi))
        melody = tracks.get("MELODY", [])
        self.start = min(n.start for n in melody)
        end = max(n.end for n in melody)
        if seconds > 0:  # the first `seconds` from the melody's first note: the scored span
            end = min(end, self.start + seconds)
        self.duration = end - self.start
        within = (lambda n: self.start <= n.start < end)  # noqa: E731
        self.melody = [n for n in melody if within(n)]
        self.piano = [n for n in tracks.get("PIANO", []) if within(n)]

    def on_grid(self, t: float) -> bool:
        sixteenth = round(self.beats.beat_at(t) * 4) / 4
        return abs(self.beats.time_at(sixteenth) - t) <= GRID_TOLERANCE_S

    def score(self, notes: list[Note], played_chords: list[tuple[float, int]] | None = None) -> dict:
        """Rates of `notes`; with `played_chords` ((time, chord id) at each machine note-on) also
        how often that chord agrees with the annotation."""
        in_key = chord_hit = chord_total = grid = 0
        for n in notes:
            scale = _at(self.keys, n.start)
            in_key += scale is None or (n.pitch % 12) in scale
            cid = _at(self.chords, n.start)
            if cid is not None:
                chord_total += 1
                chord_hit += (n.pitch % 12) in chord_tones(cid)
            grid += self.on_grid(n.start)
        count = len(notes)
        ratio = (lambda a, b: a / b if b else None)  # noqa: E731  no notes: nothing to score, not a zero
        out = {"notes": count, "in_key": ratio(in_key, count), "chord_tone": ratio(chord_hit, chord_total),
               "on_grid": ratio(grid, count), "notes_per_s": count / max(self.duration, 1e-9)}
        if played_chords is not None:
            match = root = total = 0
            for t, played in played_chords:
                annotated = _at(self.chords, t)
                if annotated is None or not self.start <= t < self.start + self.duration:
                    continue
                total += 1
                a, b = chord_tones(annotated), chord_tones(played)
                match += bool(b) and (a <= b or b <= a)
                root += bool(b) and split_id(played)[0] == split_id(annotated)[0]
            out.update(chord_match=ratio(match, total), chord_root=ratio(root, total))
        return out

    def random_in_key(self, count: int, rng: np.random.Generator) -> list[Note]:
        """`count` notes at uniform random times over the melody's span, random pitches of the key."""
        out = []
        for t in np.sort(rng.uniform(self.start, self.start + self.duration, count)):
            scale = sorted(_at(self.keys, t) or MAJOR)
            pitch = 48 + int(rng.integers(0, 2)) * 12 + int(rng.choice(scale))
            out.append(Note(float(t), float(t) + 0.25, pitch, 80))
        return out


def _at(segments, t: float):
    for start, end, value in segments:
        if start <= t < end:
            return value
    return None


def simulate(song: Song, config: DaemonConfig) -> tuple[list[Note], int, list[tuple[float, int]] | None]:
    """The machine's notes when the song's MELODY (within the scored span) is the human, on the
    song's annotated beats: what `livejam simulate --human-track MELODY --beats beat_midi.txt` does;
    also the number left sounding and (the neural performer) the chord of each of its note-ons."""
    from livejam.events import timed_to_notes
    from livejam.simulate import human_events, run_virtual

    performer = build_performer(config, strict=True)
    performer.set_beats(song.beats)
    chords = None
    if hasattr(performer, "chord"):  # the neural performer: its `chord` is the one it plays in when it emits
        chords, emit = [], performer._emit

        def emit_noting_chord(note):
            if note.velocity > 0:
                chords.append((note.time, int(performer.chord)))
            emit(note)

        performer._emit = emit_noting_chord
    run = run_virtual(human_events(song.melody), performer, config, tail_s=2.0)
    machine = [n for n in timed_to_notes(run.machine_notes()) if n.start < song.start + song.duration]
    return machine, int(run.summary["sounding_at_end"]), chords


def row_config(row: str, base: DaemonConfig) -> DaemonConfig:
    if row == "markov":
        return replace(base, performer=replace(base.performer, kind="markov"))
    return replace(base, performer=replace(base.performer, kind="neural"), neural=replace(base.neural, mode=row))


def held_out(meta: Path) -> list[str]:
    data = json.loads(meta.read_text())
    songs = data.get("held_out") or data["val"]["songs"]
    return [s.split("/")[-1] for s in songs]


def summarise(per_song: list[dict], rows: list[str]) -> dict:
    mean = {}
    for row in rows:
        cells = [s[row] for s in per_song if row in s]
        keys = ("in_key", "chord_tone", "chord_match", "chord_root", "on_grid", "notes_per_s", "grid_vs_piano",
                "nps_vs_piano")
        mean[row] = {k: _mean([c.get(k) for c in cells]) for k in keys}
        mean[row]["sounding_at_end"] = int(sum(c.get("sounding_at_end", 0) for c in cells))
    return mean


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def verdicts(mean: dict) -> list[str]:
    d = mean.get("duet")
    if not d:
        return []
    lo, hi = BARS["nps_vs_piano"]
    checks = [("chord tones >= 0.85", d["chord_tone"], d["chord_tone"] is not None and d["chord_tone"] >= 0.85),
              ("onsets on the 16th grid >= 0.9x the piano's", d["grid_vs_piano"],
               d["grid_vs_piano"] is not None and d["grid_vs_piano"] >= 0.9),
              ("notes/s 0.6x..1.5x the piano's", d["nps_vs_piano"],
               d["nps_vs_piano"] is not None and lo <= d["nps_vs_piano"] <= hi),
              ("nothing sounding at the end", d["sounding_at_end"], d["sounding_at_end"] == 0)]
    return [f"  duet: {name:<44} {value if value is None else round(value, 3)!s:>8}  {'MET' if ok else 'MISSED'}"
            for name, value, ok in checks]


def format_table(result: dict) -> str:
    cols = ("in_key", "chord_tone", "chord_match", "chord_root", "on_grid", "grid_vs_piano", "notes_per_s",
            "nps_vs_piano")
    span = f"first {result['seconds']:g} s of each" if result["seconds"] else "whole songs"
    lines = [f"{len(result['songs'])} held-out POP909 songs ({span}): {' '.join(result['songs'])}",
             f"settings: {result['settings']}", "",
             f"{'':8}" + "".join(f"{c:>14}" for c in cols) + f"{'sounding':>10}"]
    for row, m in result["mean"].items():
        cells = "".join(f"{m[c]:14.3f}" if m[c] is not None else f"{'-':>14}" for c in cols)
        lines.append(f"{row:8}{cells}{m['sounding_at_end']:>10}")
    lines += ["", *verdicts(result["mean"])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--songs", nargs="*", help="POP909 song numbers (default: held-out songs from --meta)")
    p.add_argument("--meta", default="data/events/meta.json", help="prepare_data's meta.json (the held-out list)")
    p.add_argument("--max-songs", type=int, default=24)
    p.add_argument("--skip-songs", type=int, default=0,
                   help="start this far into the held-out list (tune on one slice, report on another)")
    p.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, of {', '.join(ROWS)}")
    p.add_argument("--pop909", default=str(POP909))
    p.add_argument("--config", help="a livejam TOML config (sampling settings)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="livejam settings, e.g. --set neural.harmony=0.8")
    p.add_argument("--model", help="model file (default: the shipped model)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seconds", type=float, default=60.0,
                   help="score the first N seconds of each song, from its melody's first note (0 = whole songs)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    if not rows or set(rows) - set(ROWS):
        p.error(f"--rows takes a list of {', '.join(ROWS)}")
    songs = args.songs or held_out(Path(args.meta))[args.skip_songs: args.skip_songs + args.max_songs]
    base = load(DaemonConfig, args.config, [*args.overrides, f"seed={args.seed}", "record.enabled=false"])
    if args.model:
        base = replace(base, neural=replace(base.neural, model=args.model))
    rng = np.random.default_rng(args.seed)
    per_song = []
    for sid in songs:
        song = Song(Path(args.pop909) / sid, args.seconds)
        piano = song.score(song.piano)
        cells = {"song": sid, "piano": {**piano, "grid_vs_piano": 1.0, "nps_vs_piano": 1.0}}
        for row in rows:
            if row == "piano":
                continue
            if row == "random":
                notes, sounding, chords = song.random_in_key(len(song.piano), rng), 0, None
            else:
                notes, sounding, chords = simulate(song, row_config(row, base))
            s = song.score(notes, chords)
            s["sounding_at_end"] = sounding
            s["grid_vs_piano"] = s["on_grid"] / piano["on_grid"] if s["on_grid"] is not None else None
            s["nps_vs_piano"] = s["notes_per_s"] / piano["notes_per_s"] if piano["notes_per_s"] else None
            cells[row] = s
        per_song.append(cells)
        log.info("%s done", sid)
    settings = " ".join(args.overrides) or "defaults"
    result = {"songs": songs, "settings": settings, "model": args.model or "shipped", "seconds": args.seconds,
              "mean": summarise(per_song, [r for r in ROWS if r in rows or r == "piano"]), "per_song": per_song}
    print(json.dumps(result, indent=1) if args.json else format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
