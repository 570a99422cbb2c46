"""Build the training set: MIDI folders -> event shards (numpy memmap) split by song.

    python tools/prepare_data.py                      # POP909 from ../shared/data/pop909
    python tools/prepare_data.py --midi ~/my-midi     # plus a folder of your own MIDI files
    python tools/prepare_data.py --music21            # plus the music21 corpus (converted once, cached)

Writes OUT/{train,val}.tokens (uint8, (N, 4) rows of part, dt, pitch, vel),
OUT/{train,val}.songs (int64 start offsets of each sequence) and OUT/meta.json
(vocab, counts, which songs went where, skipped files with reasons).

Parts: the model learns both "continue this part" and "accompany that part",
so each multi-track song is written several times with different part
assignments: melody -> part 0 with accompaniment -> part 1, the swap, and
everything as one part 0. Single-track files are written as one part and as a
right hand / left hand split at middle C.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from livejam.config import to_dict  # noqa: E402
from livejam.events import Note, Vocab, notes_to_events, read_midi_tracks  # noqa: E402

log = logging.getLogger("prepare_data")
DEFAULT_POP909 = Path(__file__).resolve().parents[2] / "shared" / "data" / "pop909"
MELODY_TRACKS = {"MELODY", "BRIDGE"}
MIN_NOTES = 16


def with_part(notes: list[Note], part: int) -> list[Note]:
    return [replace(n, part=part) for n in notes]


def part_variants(tracks: list[tuple[str, list[Note]]]) -> list[list[Note]]:
    """The part assignments one song is trained under (see module doc)."""
    every = [n for _, notes in tracks for n in notes]
    if len(tracks) == 1:
        split = [replace(n, part=0 if n.pitch >= 60 else 1) for n in every]
        return [with_part(every, 0), split]
    names = [name.upper() for name, _ in tracks]
    if any(name in MELODY_TRACKS for name in names):
        lead = [i for i, name in enumerate(names) if name in MELODY_TRACKS]
    else:  # the track with the highest mean pitch is taken as the lead
        lead = [max(range(len(tracks)), key=lambda i: np.mean([n.pitch for n in tracks[i][1]]))]
    melody = [n for i in lead for n in tracks[i][1]]
    accomp = [n for i, (_, notes) in enumerate(tracks) if i not in lead for n in notes]
    return [
        with_part(melody, 0) + with_part(accomp, 1),
        with_part(accomp, 0) + with_part(melody, 1),
        with_part(every, 0),
    ]


def song_files(args) -> list[tuple[str, Path]]:
    """(song id, path) for every MIDI file to use; the id decides the split."""
    files = []
    if not args.no_pop909:
        for path in sorted(Path(args.pop909).glob("*/*.mid")):
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


def is_val(song_id: str, val_frac: float, seed: int) -> bool:
    digest = hashlib.sha256(f"{seed}:{song_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little") / 2**64 < val_frac


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pop909", default=str(DEFAULT_POP909), help="POP909 folder (NNN/NNN.mid)")
    p.add_argument("--no-pop909", action="store_true", help="leave POP909 out")
    p.add_argument("--midi", action="append", default=[], help="a folder of your own MIDI files (repeatable)")
    p.add_argument("--music21", action="store_true", help="add the music21 corpus (converted once and cached)")
    p.add_argument("--cache", default="data/cache", help="where converted corpora are cached")
    p.add_argument("--out", default="data/events", help="output folder")
    p.add_argument("--val-frac", type=float, default=0.1, help="fraction of songs held out for validation")
    p.add_argument("--limit", type=int, default=0, help="use only the first N songs (quick runs)")
    p.add_argument("--seed", type=int, default=0, help="seed of the song split")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    files = song_files(args)
    if args.limit:
        files = files[: args.limit]
    if not files:
        p.error("no MIDI files found (check --pop909 / --midi)")
    vocab = Vocab()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    splits = {"train": ([], [], []), "val": ([], [], [])}  # token arrays, song ids, note counts
    skipped = []
    for song_id, path in tqdm(files, desc="songs", unit="song", mininterval=2.0):
        try:
            tracks = read_midi_tracks(path)
        except ValueError as e:
            skipped.append((song_id, str(e)))
            log.warning("skipped %s: %s", song_id, e)
            continue
        n_notes = sum(len(notes) for _, notes in tracks)
        if n_notes < MIN_NOTES:
            skipped.append((song_id, f"only {n_notes} notes"))
            continue
        split = "val" if is_val(song_id, args.val_frac, args.seed) else "train"
        arrays, ids, counts = splits[split]
        for notes in part_variants(tracks):
            arrays.append(notes_to_events(notes, vocab).astype(np.uint8))
            ids.append(song_id)
            counts.append(len(notes))

    meta = {"vocab": to_dict(vocab), "skipped": skipped, "sources": sorted({s.split("/")[0] for s, _ in files})}
    for split, (arrays, ids, counts) in splits.items():
        tokens = np.concatenate(arrays) if arrays else np.zeros((0, 4), np.uint8)
        offsets = np.cumsum([0] + [len(a) for a in arrays])[:-1].astype(np.int64)
        mm = np.lib.format.open_memmap(out / f"{split}.tokens.npy", mode="w+", dtype=np.uint8, shape=tokens.shape)
        mm[:] = tokens
        mm.flush()
        np.save(out / f"{split}.songs.npy", offsets)
        meta[split] = {"events": int(len(tokens)), "sequences": len(arrays), "songs": sorted(set(ids))}
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    log.info("train: %d events in %d sequences (%d songs); val: %d events (%d songs); skipped %d files",
             meta["train"]["events"], meta["train"]["sequences"], len(meta["train"]["songs"]),
             meta["val"]["events"], len(meta["val"]["songs"]), len(skipped))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
