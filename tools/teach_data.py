"""The human's part of recorded sessions (and of plain MIDI files) as event rows, split by file.

A livejam session file (livejam/recording.py) has tracks `human`, `machine` and `count-in`: only
the `human` track is read. Any other MIDI file is taken as the user's own playing: every track is
the human's. Either way the drums channel (10; count-in clicks live there) is dropped, every note
is the human's part (part 0, the part call mode continues), and the rows are encoded as training
encodes them (livejam.events.notes_to_events, as tools/prepare_data.py does): on the file's beat
grid (its tempo map and meter) when it carries one, else in free time, with no chords.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from livejam.beatmap import beat_grid_from_midi
from livejam.events import COLUMNS, PITCH, VEL, Note, Vocab, notes_to_events
from livejam.midi.files import load_midi, tempo_map_of, track_notes
from livejam.recording import PARTS
from tools.prepare_data import MIN_NOTES, share

log = logging.getLogger("teach")

HUMAN_TRACK = PARTS[0]  # the human track of a session file
DRUMS = 9  # MIDI channel 10: drums and the count-in clicks
MIDI_SUFFIXES = (".mid", ".midi")
DEFAULT_TEMPO = 500_000  # MIDI's 120 bpm: a file with only this tempo and no meter is free time


class TeachError(ValueError):
    """Bad input to `teach` (one line)."""


@dataclass
class Session:
    name: str  # the file's path relative to the sessions folder
    rows: np.ndarray  # (N, 7) int64 event rows, a start row first
    notes: int  # the human's notes
    gridded: bool  # encoded on the file's beat grid (else free time)
    session: bool  # a livejam session file (only its human track read)
    beats: object = None  # the BeatMap the rows were encoded on (None: free time from `start`)
    start: float = 0.0  # the first note's time (seconds): the rows' time origin

    def pitches(self) -> np.ndarray:
        """The pitches of the human's note-ons, in order (for the replay check)."""
        return self.rows[1:][self.rows[1:, VEL] > 0, PITCH]


def midi_files(folder: str | Path) -> list[Path]:
    """Every MIDI file under `folder`, sorted; TeachError (one line) when there is none."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise TeachError(f"{folder}: not a folder of sessions")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES and p.is_file())
    if not files:
        raise TeachError(f"{folder}: no MIDI files (.mid) in it: record some sessions first (livejam run)")
    return files


def human_notes(path: Path) -> tuple[list[Note], bool, bool]:
    """(the human's notes, part 0; whether the file has a beat grid; whether it is a session file).
    ValueError (one line) for a file that cannot be read."""
    mid = load_midi(path)
    names = [(t.name or "").strip().lower() for t in mid.tracks]
    session = HUMAN_TRACK in names
    tempo_map = tempo_map_of(mid)
    notes: list[Note] = []
    metered = tempos = False
    for track, name in zip(mid.tracks, names):
        metered |= any(m.type == "time_signature" for m in track)
        tempos |= any(m.type == "set_tempo" and m.tempo != DEFAULT_TEMPO for m in track)
        if session and name != HUMAN_TRACK:
            continue  # the machine's notes and the count-in: never the human's style
        notes += track_notes(_without_drums(track), tempo_map, mid.ticks_per_beat)
    notes.sort(key=lambda n: (n.start, n.pitch))
    return [replace(n, part=0) for n in notes], metered or tempos, session


def _without_drums(track):
    """The track with channel 10's messages taken out (their delta times kept)."""
    import mido

    out, carry = mido.MidiTrack(), 0
    for msg in track:
        if getattr(msg, "channel", None) == DRUMS:
            carry += msg.time
            continue
        out.append(msg.copy(time=msg.time + carry))
        carry = 0
    return out


def read_session(path: Path, name: str, vocab: Vocab) -> Session:
    """One file's human part as rows. ValueError (one line) if unreadable or too short."""
    notes, gridded, session = human_notes(path)
    if len(notes) < MIN_NOTES:
        raise ValueError(f"only {len(notes)} notes of the human's part (at least {MIN_NOTES})")
    beats = beat_grid_from_midi(path) if gridded else None
    rows = notes_to_events(notes, vocab, beats=beats)
    return Session(name, rows, len(notes), gridded, session, beats, notes[0].start)


def read_sessions(folder: str | Path, vocab: Vocab) -> tuple[list[Session], list[tuple[str, str]]]:
    """The usable sessions under `folder` and the skipped files with their reasons.
    TeachError when no file is usable."""
    root = Path(folder).expanduser()
    sessions, skipped = [], []
    for path in midi_files(root):
        name = str(path.relative_to(root))
        try:
            sessions.append(read_session(path, name, vocab))
        except ValueError as e:
            reason = str(e).replace(f"{path}: ", "")
            skipped.append((name, reason))
            log.warning("skipped %s: %s", name, reason)
    if not sessions:
        first = f" ({skipped[0][0]}: {skipped[0][1]})" if skipped else ""
        raise TeachError(f"{folder}: no usable session among {len(skipped)} MIDI files{first}")
    return sessions, skipped


def split(sessions: list[Session], val_frac: float, seed: int = 0) -> tuple[list[Session], list[Session]]:
    """(train, held out) by file: a stable share of the files (by name; at least one) is held out.
    TeachError with fewer than two sessions."""
    if len(sessions) < 2:
        raise TeachError(f"{len(sessions)} usable session: teaching needs at least 2 (one is held out to check "
                         "the result)")
    n_val = min(len(sessions) - 1, max(1, int(round(val_frac * len(sessions)))))
    order = sorted(sessions, key=lambda s: share(s.name, seed, "teach:"))
    held = {id(s) for s in order[:n_val]}
    return [s for s in sessions if id(s) not in held], [s for s in sessions if id(s) in held]


def write_shards(sessions: list[Session], folder: Path, split_name: str) -> None:
    """The rows in tools/train.py's shard layout (SPLIT.tokens.npy, SPLIT.songs.npy), for its Shards."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = [s.rows.astype(np.uint8) for s in sessions]
    tokens = np.concatenate(arrays) if arrays else np.zeros((0, len(COLUMNS)), np.uint8)
    np.save(folder / f"{split_name}.tokens.npy", tokens)
    np.save(folder / f"{split_name}.songs.npy", np.cumsum([0] + [len(a) for a in arrays])[:-1].astype(np.int64))
