"""Build the training set: MIDI folders -> event shards (numpy memmap) split by song.

    python -m tools.prepare_data                       # POP909 (--pop909 DIR or $LIVEJAM_DATA)
    python -m tools.prepare_data --midi ~/my-midi      # plus a folder of your own MIDI files
    python -m tools.prepare_data --music21             # plus the music21 corpus (converted once, cached)

Writes OUT/{train,val}.tokens.npy (uint8, (N, 7) rows in livejam.events.COLUMNS order),
OUT/{train,val}.songs.npy (int64 start offsets of each sequence) and OUT/meta.json
(format version, vocab, counts, which songs went where - `held_out` is the
validation song list quality measurement uses - and skipped files with reasons).

Time: a POP909 song is encoded on its annotated beats (beat_midi.txt, through a
BeatGrid: the MIDI file's tick grid is not the music's - some songs start their
first beat at 0.25 s) with its chords (chord_midi.txt). A stable share of songs
(--free-frac) is also written as a free-time copy (FreeTime: no bar, no tempo),
so the model knows input without a beat clock. Other MIDI files have no
annotations and are written in free time with no chords.

Parts: each song is written under every assignment of livejam.events.part_variants
(melody/accompaniment, the swap, all as one part), the same split evaluation uses.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from livejam.beatmap import BeatGrid
from livejam.config import to_dict
from livejam.events import COLUMNS, FORMAT_VERSION, Vocab, notes_to_events, part_variants
from livejam.midi.files import read_midi_tracks
from livejam.harmony import ChordTrack

log = logging.getLogger("prepare_data")
REPO = Path(__file__).resolve().parents[1]
# a worktree or checkout beside the shared data folder (this machine's layout)
DEFAULT_DATA = REPO.parent / "shared" / "data"
MIN_NOTES = 16
GET_POP909 = ("POP909 (MIT licence) is at https://github.com/music-x-lab/POP909-Dataset: clone it and pass "
              "--pop909 .../POP909-Dataset/POP909, or set LIVEJAM_DATA to a folder holding pop909/")


def find_pop909(arg: str | None) -> tuple[Path | None, list[Path]]:
    """The POP909 folder (NNN/NNN.mid inside) and every place looked at.

    Order: --pop909, $LIVEJAM_DATA (the folder itself or its pop909/ or POP909/), the
    shared data folder beside this checkout."""
    candidates = []
    if arg:
        candidates.append(Path(arg).expanduser())
    else:
        env = os.environ.get("LIVEJAM_DATA")
        roots = [Path(env).expanduser()] if env else [DEFAULT_DATA]
        for root in roots:
            candidates += [root / "pop909", root / "POP909", root]
    for c in candidates:
        if c.is_dir() and any(c.glob("*/*.mid")):
            return c, candidates
    return None, candidates


def song_files(args, pop909: Path | None) -> list[tuple[str, Path]]:
    """(song id, path) for every MIDI file to use; the id decides the split."""
    files = []
    if pop909 is not None:
        for path in sorted(pop909.glob("*/*.mid")):
            files.append((f"pop909/{path.parent.name}", path))
    for folder in args.midi:
        for path in sorted(Path(folder).expanduser().rglob("*")):
            if path.suffix.lower() in (".mid", ".midi"):
                files.append((f"user/{path.relative_to(Path(folder).expanduser())}", path))
    if args.music21:
        files.extend(music21_files(Path(args.cache) / "music21"))
    return files


def music21_files(cache: Path) -> list[tuple[str, Path]]:
    """Convert the music21 corpus to MIDI once (slow: ~23 min) and list the cached files."""
    done = cache / ".complete"
    if not done.exists():
        try:
            from music21 import corpus
        except ImportError:
            raise SystemExit("--music21 needs the music21 package: pip install music21") from None
        cache.mkdir(parents=True, exist_ok=True)
        paths = corpus.getPaths()
        for i, src in enumerate(tqdm(paths, desc="music21 -> MIDI")):
            dst = cache / f"{i:05d}.mid"
            if dst.exists():
                continue
            try:
                corpus.parse(src).write("midi", fp=str(dst))
            except Exception as e:  # music21 fails on some works; skip them
                log.warning("music21: skipped %s (%s)", src, type(e).__name__)
        done.touch()
    return [(f"music21/{p.stem}", p) for p in sorted(cache.glob("*.mid"))]


def share(song_id: str, seed: int, salt: str) -> float:
    """A stable number in [0, 1) per song: the same songs are held out whatever else changes."""
    digest = hashlib.sha256(f"{seed}:{salt}{song_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little") / 2**64


def is_val(song_id: str, val_frac: float, seed: int) -> bool:
    return share(song_id, seed, "") < val_frac


def annotations(path: Path) -> tuple[BeatGrid | None, ChordTrack | None]:
    """POP909's beat and chord files beside a song's MIDI file (None where absent)."""
    beats = path.parent / "beat_midi.txt"
    chords = path.parent / "chord_midi.txt"
    return (BeatGrid.from_file(beats) if beats.is_file() else None,
            ChordTrack.from_file(chords) if chords.is_file() else None)


def encode_song(path: Path, vocab: Vocab, free_copy: bool) -> tuple[list[np.ndarray], int, bool]:
    """Every sequence one song is trained on, its note count and whether it has a beat grid.

    ValueError (one line) for an unreadable file or annotation."""
    tracks = read_midi_tracks(path)
    n_notes = sum(len(notes) for _, notes in tracks)
    if n_notes < MIN_NOTES:
        raise ValueError(f"only {n_notes} notes")
    grid, chords = annotations(path)
    maps = [grid] if grid is not None else []
    if grid is None or free_copy:
        maps.append(None)  # None: free time from the first note
    seqs = [notes_to_events(notes, vocab, beats=m, chords=chords).astype(np.uint8)
            for m in maps for notes in part_variants(tracks)]
    return seqs, n_notes, grid is not None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pop909", help="POP909 folder (NNN/NNN.mid, beat_midi.txt, chord_midi.txt); "
                                    "default: $LIVEJAM_DATA/pop909, else ../shared/data/pop909")
    p.add_argument("--no-pop909", action="store_true", help="leave POP909 out")
    p.add_argument("--midi", action="append", default=[], help="a folder of your own MIDI files (repeatable)")
    p.add_argument("--music21", action="store_true", help="add the music21 corpus (converted once and cached)")
    p.add_argument("--cache", default="data/cache", help="where converted corpora are cached")
    p.add_argument("--out", default="data/events", help="output folder")
    p.add_argument("--val-frac", type=float, default=0.1, help="fraction of songs held out for validation")
    p.add_argument("--free-frac", type=float, default=0.1,
                   help="fraction of beat-annotated songs also written in free time")
    p.add_argument("--limit", type=int, default=0, help="use only the first N songs (quick runs)")
    p.add_argument("--ticks-per-beat", type=int, default=Vocab().ticks_per_beat,
                   help="time resolution (ticks of a beat; 8 beats of dt and bar position either way): "
                        "for comparing encodings; train with the same model.vocab.* settings")
    p.add_argument("--seed", type=int, default=0, help="seed of the song split")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    pop909 = None
    if not args.no_pop909:
        pop909, looked = find_pop909(args.pop909)
        if pop909 is None:
            p.exit(2, "prepare_data: no POP909 songs (NNN/NNN.mid) in " + ", ".join(map(str, looked))
                   + f".\n{GET_POP909}; or --no-pop909 --midi DIR for your own files.\n")
    files = song_files(args, pop909)
    if args.limit:
        files = files[: args.limit]
    if not files:
        p.error("no MIDI files found (check --pop909 / --midi)")
    tpb = args.ticks_per_beat
    if not 1 <= tpb <= 30:  # rows are stored as uint8: 8 beats of ticks must stay below 256
        p.error("--ticks-per-beat must be within 1..30")
    vocab = Vocab(ticks_per_beat=tpb, max_dt_ticks=8 * tpb, max_bar_ticks=8 * tpb)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    splits = {"train": ([], [], []), "val": ([], [], [])}  # arrays, song ids, note counts
    skipped, free_songs, gridded = [], [], 0
    for song_id, path in tqdm(files, desc="songs", unit="song", mininterval=2.0):
        free_copy = share(song_id, args.seed, "free:") < args.free_frac
        try:
            seqs, n_notes, has_grid = encode_song(path, vocab, free_copy)
        except ValueError as e:
            skipped.append((song_id, str(e)))
            log.warning("skipped %s: %s", song_id, e)
            continue
        gridded += has_grid
        if has_grid and free_copy:
            free_songs.append(song_id)
        split = "val" if is_val(song_id, args.val_frac, args.seed) else "train"
        arrays, ids, counts = splits[split]
        arrays.extend(seqs)
        ids.extend([song_id] * len(seqs))
        counts.extend([n_notes] * len(seqs))

    meta = {"format_version": FORMAT_VERSION, "columns": list(COLUMNS), "vocab": to_dict(vocab),
            "skipped": skipped, "sources": sorted({s.split("/")[0] for s, _ in files}),
            "split": {"seed": args.seed, "val_frac": args.val_frac, "free_frac": args.free_frac},
            "beat_annotated_songs": gridded, "free_time_copies": sorted(free_songs)}
    for split, (arrays, ids, counts) in splits.items():
        tokens = np.concatenate(arrays) if arrays else np.zeros((0, len(COLUMNS)), np.uint8)
        offsets = np.cumsum([0] + [len(a) for a in arrays])[:-1].astype(np.int64)
        mm = np.lib.format.open_memmap(out / f"{split}.tokens.npy", mode="w+", dtype=np.uint8, shape=tokens.shape)
        mm[:] = tokens
        mm.flush()
        np.save(out / f"{split}.songs.npy", offsets)
        meta[split] = {"events": int(len(tokens)), "sequences": len(arrays), "songs": sorted(set(ids))}
    meta["held_out"] = meta["val"]["songs"]  # stable (hash of the song id): quality scores these songs
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    log.info("train: %d events in %d sequences (%d songs); val: %d events (%d songs); %d songs on a beat grid, "
             "%d also in free time; skipped %d files", meta["train"]["events"], meta["train"]["sequences"],
             len(meta["train"]["songs"]), meta["val"]["events"], len(meta["val"]["songs"]), gridded,
             len(free_songs), len(skipped))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
