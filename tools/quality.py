"""Musicianship of the machine's part, scored against POP909's own annotations.

    python -m tools.quality --meta META                       # 24 held-out songs, every row but memory
    python -m tools.quality --meta META --seeds 0,1,2         # the duet row under 3 seeds: mean ± std
    python -m tools.quality --songs 004 005 --rows duet,piano --seconds 30   # a quick look
    python -m tools.quality --meta META --rows duet,piano --memory           # + the memory row (180 s)
    python -m tools.quality ... --json > quality.json

For each held-out song (prepare_data's meta.json `held_out`, never trained on) a part plays the
human in a virtual run of the live engine (`livejam simulate`) on the song's annotated beats
(`beat_midi.txt`, as a drummer or a DAW would give them), and the machine's notes, held notes
included, are scored over the window [first melody note, + `--seconds`). The measures
(definitions in livejam/measure/music.py and implied.py; docs/quality.md):
- notes_per_s: onsets per second of the window;  on_grid: onsets within 35 ms of the 16th grid
- in_key: onsets in the annotated key (key_audio.txt);  chord_tone: onsets that are tones of the
  annotated chord (chord_midi.txt; onsets under N not counted)
- clash_time: of the time both the part and the melody sound, the share in which some pair
  sounding together is a minor 2nd / major 7th in any octave (interval class 1);
  tritone_time: the same for the tritone
- onset_clash: melody onsets that land against a sounding machine note of interval class 1;
  machine_onset_clash: machine onsets against the sounding melody note
- voices: machine notes sounding at once, time-weighted, while any sounds
- median_note_s; capped_share: notes that ran to performer.max_note_s
- carried: machine notes struck before an annotated chord change and sounding 50 ms after it,
  per change; carried_wrong: the share of those not tones of the new chord
- implied_root: per annotated beat, the chord template (12 roots x maj min dim aug sus4 7 maj7
  min7) that best covers the part's time-weighted pitch classes has the annotated root
- leaned_root / chord_match: the chord the neural performer says it plays in at each note-on
  (`performer.chord`) has the annotated root / is or nests with the annotated chord
- memory (--memory): implied root right from 90 s on, where the last 2 bars' annotated roots
  came earlier in the song vs where not
Rows:
  duet      the neural performer, human = MELODY (--seeds: one run per seed, mean ± std)
  chart     duet with the song's chord_midi.txt as its chord chart (`--chords`)
  markov    the Markov continuator answering the same human's phrases (call: it plays no duet)
  lefthand  duet, human = MELODY + the piano notes below the piano part's median pitch
  random    random in-key notes (as many as the piano plays, at random times): chance
  piano     the song's real PIANO part: the bar a human arranger sets
  tonic, reader2, late1   chord guesses that play nothing, scored by root on every beat with a
            chord: the key's tonic triad, the best major/minor triad of the melody's last two
            beats, the annotated chord one beat late
  reverse   human = PIANO, the machine plays the line; compared with the real MELODY
  call      call mode: each call is a melody phrase (split at rests >= 0.6 s, 4-16 s long) alone;
            answer length over call length, single-line share, last note a chord tone / tonic
The bars of issues 16 and 17 are printed as MET/MISSED lines under the tables.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from livejam.config import DaemonConfig, load
from livejam.measure import implied as im
from livejam.measure import music as mu
from tools.quality_report import format_result, mean_of, seed_spread, summarise
from tools.quality_song import Song, simulate, with_chart

log = logging.getLogger("quality")
POP909 = Path(__file__).resolve().parents[2] / "shared" / "data" / "pop909"
ROWS = ("duet", "chart", "markov", "lefthand", "random", "piano", "tonic", "reader2", "late1", "reverse", "call")
BASELINES = ("tonic", "reader2", "late1")


def row_config(row: str, base: DaemonConfig, song: Song) -> DaemonConfig:
    mode = "call" if row in ("call", "markov") else "duet"  # the continuator plays no duet: it answers
    kind = "markov" if row == "markov" else "neural"
    config = replace(base, performer=replace(base.performer, kind=kind), neural=replace(base.neural, mode=mode))
    return with_chart(config, song.chord_file) if row == "chart" else config


def played_row(song: Song, row: str, config: DaemonConfig, piano: dict) -> dict:
    """A row in which the machine plays with a human part: its scores on this song."""
    human = {"lefthand": song.melody + song.lefthand(), "reverse": song.piano}.get(row, song.melody)
    notes, sounding, leaned = simulate(song, config, sorted(human, key=lambda n: (n.start, n.pitch)))
    against = song.piano if row == "reverse" else None
    s = song.score(notes, against=against, leaned=leaned, max_note_s=config.performer.max_note_s)
    s["sounding_at_end"] = sounding
    s.update(_versus(s, piano, "piano"))
    if row == "reverse":
        melody = {"chord_tone": mu.chord_tone(song.melody, song.chords, song.lo, song.hi),
                  "on_grid": mu.on_grid(song.melody, song.beats, song.lo, song.hi),
                  "notes_per_s": mu.notes_per_s(song.melody, song.lo, song.hi)}
        s.update({f"melody_{k}": v for k, v in melody.items()})
        s.update(_versus(s, melody, "melody"))
    return s


def _versus(s: dict, ref: dict, name: str) -> dict:
    """The row's grid and density over the reference part's, on the same song."""
    div = (lambda a, b: a / b if a is not None and b else None)  # noqa: E731
    return {f"grid_vs_{name}": div(s.get("on_grid"), ref.get("on_grid")),
            f"nps_vs_{name}": div(s.get("notes_per_s"), ref.get("notes_per_s"))}


def call_row(song: Song, config: DaemonConfig, calls: int) -> dict | None:
    """Call mode: each of the song's first `calls` phrases alone as the human; the mean of the
    answers' scores (Song.score_call), the count, and the notes left sounding, summed."""
    tail = config.performer.max_answer_s + config.performer.phrase_end_silence_s + 1.0
    scores, sounding = [], 0
    for call in song.calls()[:calls]:
        notes, left, _ = simulate(song, config, call, tail_s=tail)
        sounding += left
        scores.append(song.score_call(call, [n for n in notes if n.start >= call[0].start], config))
    if not scores:
        return None
    keys = dict.fromkeys(k for s in scores for k in s)
    return {"calls": float(len(scores)), **{k: mean_of([s.get(k) for s in scores]) for k in keys},
            "sounding_at_end": sounding}


def memory_row(folder: Path, config: DaemonConfig, seconds: float) -> dict:
    """Duet over the first `seconds` of the song; implied root right from 90 s on, where the last
    two bars' progression came before and where not (livejam.measure.implied.memory)."""
    song = Song(folder, seconds)
    notes, sounding, _ = simulate(song, config, song.melody)
    beats = im.implied(notes, song.chords, song.beats.times, song.lo, song.hi)
    return {"implied_root": im.root_right(beats), **im.memory(beats, song.lo), "sounding_at_end": sounding}


def score_song(folder: Path, rows: list[str], base: DaemonConfig, args, rng: np.random.Generator) -> dict:
    song = Song(folder, args.seconds)
    piano = {**song.score(song.piano), "grid_vs_piano": 1.0, "nps_vs_piano": 1.0, "sounding_at_end": 0}
    cells = {"song": song.id, "piano": piano}
    baselines = song.baselines()
    for row in rows:
        if row in BASELINES:
            cells[row] = {"implied_root": baselines[row]}
        elif row == "random":
            notes = song.random_in_key(len(song.piano), rng)
            cells[row] = {**song.score(notes), "sounding_at_end": 0}
            cells[row].update(_versus(cells[row], piano, "piano"))
        elif row == "call":
            cell = call_row(song, row_config(row, base, song), args.calls)
            if cell is not None:
                cells[row] = cell
        elif row == "duet" and len(args.seeds) > 1:
            runs = [played_row(song, row, row_config(row, replace(base, seed=s), song), piano) for s in args.seeds]
            for s, run in zip(args.seeds, runs):
                cells[f"duet@{s}"] = run
            keys = dict.fromkeys(k for r in runs for k in r)
            cells[row] = {k: mean_of([r.get(k) for r in runs]) for k in keys}
            cells[row]["sounding_at_end"] = int(sum(r["sounding_at_end"] for r in runs))
        elif row != "piano":
            try:
                cells[row] = played_row(song, row, row_config(row, base, song), piano)
            except Exception as e:  # noqa: BLE001  a performer that refuses a mode: say so, score the rest
                log.warning("%s: row %s failed: %s", song.id, row, e)
    if args.memory:
        cells["memory"] = memory_row(folder, row_config("duet", base, song), args.memory_seconds)
    return cells


def held_out(meta: Path) -> list[str]:
    data = json.loads(meta.read_text())
    songs = data.get("held_out") or data["val"]["songs"]
    return [s.split("/")[-1] for s in songs]


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
    p.add_argument("--seeds", help="comma-separated seeds for the duet row (mean ± std); other rows use the first")
    p.add_argument("--seconds", type=float, default=60.0,
                   help="score the first N seconds of each song, from its melody's first note (0 = whole songs)")
    p.add_argument("--calls", type=int, default=3, help="call row: phrases per song")
    p.add_argument("--memory", action="store_true", help="add the memory row: duet over --memory-seconds")
    p.add_argument("--memory-seconds", type=float, default=180.0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    if not rows or set(rows) - set(ROWS):
        p.error(f"--rows takes a list of {', '.join(ROWS)}")
    try:
        args.seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else [args.seed]
    except ValueError:
        p.error("--seeds takes comma-separated integers, e.g. 0,1,2")
    songs = args.songs or held_out(Path(args.meta))[args.skip_songs: args.skip_songs + args.max_songs]
    base = load(DaemonConfig, args.config, [*args.overrides, f"seed={args.seeds[0]}", "record.enabled=false"])
    if args.model:
        base = replace(base, neural=replace(base.neural, model=args.model))
    rng = np.random.default_rng(args.seeds[0])
    per_song = []
    for sid in songs:
        per_song.append(score_song(Path(args.pop909) / sid, rows, base, args, rng))
        log.info("%s done", sid)
    mean = summarise(per_song)
    shown = [r for r in ROWS if r in rows or r == "piano"] + (["memory"] if args.memory else [])
    result = {"songs": songs, "settings": " ".join(args.overrides) or "defaults", "model": args.model or "shipped",
              "seconds": args.seconds, "seeds": args.seeds, "rows": shown, "memory_seconds": args.memory_seconds,
              "mean": mean, "seed_spread": seed_spread(mean, args.seeds), "per_song": per_song}
    print(json.dumps(result, indent=1) if args.json else format_result(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
