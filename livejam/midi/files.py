"""MIDI files <-> notes (mido): reading tracks on the file's tempo map, writing named tracks.

Used by simulate, recording, evaluation and the training tools; the live path never reads files.
"""
from __future__ import annotations

import bisect
from pathlib import Path
from typing import Sequence

from livejam.events import Note, notes_to_timed

def read_midi_tracks(path: str | Path) -> list[tuple[str, list[Note]]]:
    """(track name, notes) for each track of a MIDI file that has notes; times in seconds.

    Raises ValueError with a one-line reason for a file mido cannot read.
    """
    import mido

    try:
        mid = mido.MidiFile(str(path), clip=True)
    except Exception as e:  # mido raises many types for corrupt files
        raise ValueError(f"{path}: not a readable MIDI file ({type(e).__name__}: {e})") from None
    tempo_map = _tempo_map(mid)
    tracks = []
    for index, track in enumerate(mid.tracks):
        name = track.name or f"track{index}"
        notes = _track_notes(track, tempo_map, mid.ticks_per_beat)
        if notes:
            tracks.append((name, notes))
    return tracks


def _tempo_map(mid) -> list[tuple[int, float, int]]:
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


def _track_notes(track, tempo_map, tpb: int) -> list[Note]:
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
