"""MIDI files <-> notes (mido): reading tracks on the file's tempo map, writing named tracks.

Used by simulate, recording, evaluation and the training tools; the live path never reads files.
"""
from __future__ import annotations

import bisect
from pathlib import Path
from typing import Sequence

from livejam.events import Note, notes_to_timed

# What a file we read may cost (every reader of MIDI, beat and chord files goes through these):
# a 37-byte file can claim a note 2**28 ticks long at one tick per beat, or a bar 2**-253 beats long.
MAX_FILE_BYTES = 8 << 20  # the largest MIDI or text file read (MIDI files of whole concerts are < 1 MiB)
MAX_SPAN_S = 6 * 3600.0  # the longest timeline a file may describe
MAX_BEATS = 100_000  # the most quarter-note beats it may span (6 hours at 277 BPM)


def read_bytes(path: str | Path, what: str = "file") -> bytes:
    """The file's bytes, at most MAX_FILE_BYTES (/dev/zero, a FIFO: refused, not read forever).
    ValueError with a one-line reason."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise ValueError(f"{path}: cannot read the {what} ({e.strerror or e})") from None
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"{path}: not a {what}: larger than {MAX_FILE_BYTES >> 20} MiB")
    return data


def read_text(path: str | Path, what: str = "text file") -> str:
    """A small text file (beat times, chord labels): bounded like read_bytes, UTF-8. ValueError, one line."""
    data = read_bytes(path, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a {what}: not UTF-8 text (byte {e.start})") from None


def load_midi(path: str | Path):
    """A mido.MidiFile within the budgets above, with a tempo map every reader can walk: ticks per
    beat >= 1, tempos > 0, time signatures n/d with n >= 1 and d <= 64. ValueError, one line."""
    import io

    import mido

    data = read_bytes(path, "MIDI file")
    try:
        mid = mido.MidiFile(file=io.BytesIO(data), clip=True)
    except Exception as e:  # mido raises many types for corrupt files (KeySignatureError is no ValueError)
        raise ValueError(f"{path}: not a readable MIDI file ({type(e).__name__}: {e})") from None
    if mid.ticks_per_beat < 1:  # 0, or SMPTE timing (a negative division), which we do not read
        raise ValueError(f"{path}: ticks per beat {mid.ticks_per_beat}: not a tempo-based MIDI file")
    end_tick = 0
    for track in mid.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "set_tempo" and msg.tempo < 1:
                raise ValueError(f"{path}: a tempo of 0 at tick {tick}")
            if msg.type == "time_signature" and (msg.numerator < 1 or msg.denominator > 64):
                raise ValueError(f"{path}: time signature {msg.numerator}/{msg.denominator} at tick {tick}")
        end_tick = max(end_tick, tick)
    if end_tick / mid.ticks_per_beat > MAX_BEATS:
        raise ValueError(f"{path}: {end_tick / mid.ticks_per_beat:.0f} beats long: more than {MAX_BEATS}")
    if mid.type != 2:
        t0, s0, tempo = tempo_map_of(mid)[-1]
        span = s0 + (end_tick - t0) * tempo / 1e6 / mid.ticks_per_beat
        if span > MAX_SPAN_S:
            raise ValueError(f"{path}: {span / 3600:.1f} hours long: more than {MAX_SPAN_S / 3600:g}")
    return mid


def read_midi_tracks(path: str | Path) -> list[tuple[str, list[Note]]]:
    """(track name, notes) for each track of a MIDI file that has notes; times in seconds.

    Raises ValueError with a one-line reason for a file mido cannot read or one past the budgets.
    """
    mid = load_midi(path)
    tempo_map = tempo_map_of(mid)
    tracks = []
    for index, track in enumerate(mid.tracks):
        name = track.name or f"track{index}"
        notes = track_notes(track, tempo_map, mid.ticks_per_beat)
        if notes:
            tracks.append((name, notes))
    return tracks


def tempo_map_of(mid) -> list[tuple[int, float, int]]:
    """(tick, seconds at tick, tempo from tick) segments from all tracks' set_tempo."""
    changes = []
    for track in mid.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "set_tempo":
                changes.append((tick, msg.tempo))
    changes.sort()
    segments = [(0, 0.0, 500000)]
    for tick, tempo in changes:
        t0, s0, tempo0 = segments[-1]
        seconds = s0 + (tick - t0) * tempo0 / 1e6 / mid.ticks_per_beat
        if tick == t0:
            segments[-1] = (t0, s0, tempo)
        else:
            segments.append((tick, seconds, tempo))
    return segments


def track_notes(track, tempo_map, tpb: int) -> list[Note]:
    """The notes of one track, their times in seconds through `tempo_map` (see tempo_map_of)."""
    ticks = [seg[0] for seg in tempo_map]

    def seconds(tick: int) -> float:
        t0, s0, tempo = tempo_map[bisect.bisect_right(ticks, tick) - 1]
        return s0 + (tick - t0) * tempo / 1e6 / tpb

    tick = 0
    open_notes: dict[tuple[int, int], list[tuple[float, int]]] = {}
    notes = []
    for msg in track:
        tick += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            open_notes.setdefault((msg.channel, msg.note), []).append((seconds(tick), msg.velocity))
        elif msg.type in ("note_off", "note_on"):
            stack = open_notes.get((msg.channel, msg.note))
            if stack:
                start, vel = stack.pop(0)
                notes.append(Note(start, seconds(tick), msg.note, vel))
    end = seconds(tick)
    for (_, pitch), stack in open_notes.items():
        notes.extend(Note(start, max(end, start), pitch, vel) for start, vel in stack)
    notes.sort(key=lambda n: (n.start, n.pitch))
    return notes


def write_midi(path: str | Path, tracks: Sequence[tuple[str, Sequence[Note]]], channels: Sequence[int] | None = None,
               ticks_per_beat: int = 480, tempo: int = 500000) -> None:
    """Write named tracks of notes to a type-1 MIDI file (one channel per track)."""
    import mido

    mid = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat)
    meta = mido.MidiTrack()
    meta.append(mido.MetaMessage("set_tempo", tempo=tempo, time=0))
    mid.tracks.append(meta)
    for i, (name, notes) in enumerate(tracks):
        channel = channels[i] if channels else i % 16
        track = mido.MidiTrack()
        track.append(mido.MetaMessage("track_name", name=name, time=0))
        timed = notes_to_timed(Note(n.start, n.end, n.pitch, n.velocity, 0) for n in notes)
        last_tick = 0
        for t in timed:
            tick = max(last_tick, int(round(mido.second2tick(max(0.0, t.time), ticks_per_beat, tempo))))
            kind = "note_on" if t.velocity > 0 else "note_off"
            track.append(mido.Message(kind, channel=channel, note=t.pitch, velocity=t.velocity, time=tick - last_tick))
            last_tick = tick
        mid.tracks.append(track)
    mid.save(str(path))
