"""What `livejam eval` scores: MIDI files and prepared shards as pieces of format 2 event rows.

A MIDI file is encoded as training encodes it (tools/prepare_data.py): parts by
livejam.events.assign_parts, and for a POP909 song its annotated beats
(beat_midi.txt, a BeatGrid) and chords (chord_midi.txt) when they lie beside the
MIDI file; without them, free time and chord N. A shard is split at its start
markers. Start markers are context, not predictions: they are never counted.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from livejam.beatmap import BeatGrid
from livejam.events import COLUMNS, PART, Vocab, assign_parts, notes_to_events
from livejam.harmony import ChordTrack
from livejam.midi.files import read_midi_tracks

log = logging.getLogger(__name__)

MIDI_SUFFIXES = (".mid", ".midi")
WIDTH = len(COLUMNS)
BEAT_FILE, CHORD_FILE = "beat_midi.txt", "chord_midi.txt"  # POP909's annotations, beside each song's MIDI file


@dataclass
class Piece:
    """One scored unit (a file, or a song of a shard); its tokens start with a start marker."""

    name: str
    tokens: np.ndarray  # (N, 7) int64 rows (COLUMNS)
    beats: bool = False  # encoded on annotated beats (else free time)
    chords: bool = False  # with annotated chords (else N)


def midi_files(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given, folders searched recursively for .mid/.midi (sorted: a stable order)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.suffix.lower() in MIDI_SUFFIXES and f.is_file()))
        else:
            out.append(p)
    return out


def annotations(path: Path) -> tuple[BeatGrid | None, ChordTrack | None]:
    """The beat grid and chords annotated beside a MIDI file (POP909's layout); None where absent.
    ValueError (one line) for an annotation file that cannot be read."""
    beats, chords = path.parent / BEAT_FILE, path.parent / CHORD_FILE
    return (BeatGrid.from_file(beats) if beats.is_file() else None,
            ChordTrack.from_file(chords) if chords.is_file() else None)


def encode_midi(path: Path, vocab: Vocab) -> Piece:
    """One file as training encodes it (see the module docstring). ValueError (one line) if unusable."""
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    tracks = read_midi_tracks(path)
    if not tracks:
        raise ValueError(f"{path}: no notes")
    grid, chords = annotations(path)
    tokens = notes_to_events(assign_parts(tracks), vocab, beats=grid, chords=chords)
    return Piece(str(path), tokens, beats=grid is not None, chords=chords is not None)


def midi_sequences(paths: Iterable[str | Path], vocab: Vocab) -> tuple[list[Piece], list[dict]]:
    """Read MIDI files into sequences; unreadable or empty files are skipped with a one-line reason."""
    seqs, skipped = [], []
    for path in midi_files(paths):
        try:
            seqs.append(encode_midi(path, vocab))
        except Exception as e:  # noqa: BLE001 - any unreadable file is one line in the report, never a crash
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            log.info("skipped %s", reason)  # listed in the result too: one line, not two
            skipped.append({"path": str(path), "reason": reason})
    return seqs, skipped


def as_rows(tokens, name: str = "tokens") -> np.ndarray:
    """(N, 7) int64 rows; ValueError for anything else (a format-1 shard has 4 columns)."""
    tokens = np.asarray(tokens)
    if tokens.ndim != 2 or tokens.shape[1] != WIDTH:
        raise ValueError(f"{name}: expected (N, {WIDTH}) event rows ({', '.join(COLUMNS)}), got shape "
                         f"{tokens.shape} (format-1 data? prepare it again with tools/prepare_data.py)")
    return tokens.astype(np.int64)


def token_sequences(tokens: np.ndarray, vocab: Vocab, name: str = "tokens") -> list[Piece]:
    """Split an (N, 7) row array (e.g. a prepared shard) at its start markers."""
    tokens = as_rows(tokens, name)
    starts = np.flatnonzero(tokens[:, PART] == vocab.bos_part).tolist()
    if not starts or starts[0] != 0:
        starts = [0] + starts  # a leading run without a marker: the engine's reset supplies one
    bounds = starts + [len(tokens)]
    return [Piece(f"{name}[{a}:{b}]", tokens[a:b]) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def limit_events(seqs: list[Piece], max_events: int | None, vocab: Vocab,
                 per_sequence: int | None = None, order_seed: int | None = None) -> list[Piece]:
    """The first `max_events` scored events (start markers do not count), in sequence order.

    A shard lists a song's variants together, so the first N events alone are a
    handful of songs: `order_seed` takes the sequences in a random order fixed by
    that seed instead, and `per_sequence` takes at most that many events of each.
    """
    if order_seed is not None:
        seqs = [seqs[i] for i in np.random.default_rng(order_seed).permutation(len(seqs))]
    if per_sequence:
        seqs = [first_events(s, per_sequence, vocab) for s in seqs]
    if not max_events:
        return seqs
    out, left = [], max_events
    for s in seqs:
        if left <= 0:
            break
        out.append(first_events(s, left, vocab))
        left -= n_scored(out[-1], vocab)
    return out


def n_scored(piece: Piece, vocab: Vocab) -> int:
    return int((piece.tokens[:, PART] != vocab.bos_part).sum())


def first_events(piece: Piece, n: int, vocab: Vocab) -> Piece:
    """The piece cut after its n-th scored event."""
    scored = np.flatnonzero(piece.tokens[:, PART] != vocab.bos_part)
    if len(scored) <= n:
        return piece
    return Piece(piece.name, piece.tokens[: scored[n - 1] + 1], piece.beats, piece.chords)


def check_tokens(piece: Piece, vocab: Vocab) -> None:
    """Token ids outside the model's vocabulary would index past its heads: a clear error instead."""
    t = piece.tokens
    if len(t) and (t.min() < 0 or (t.max(axis=0) >= np.asarray(vocab.field_sizes)).any()):
        raise ValueError(f"{piece.name}: token ids outside the model's vocabulary {vocab.field_sizes}")
