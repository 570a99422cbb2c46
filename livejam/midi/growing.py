"""A MIDI file written as it grows: each track's events are encoded once, when they are added, so
rewriting the whole file costs writing its bytes, never a re-encoding of the session (a recording
of 200,000 notes is rewritten every few seconds while the music plays). A track's bytes are sealed
into immutable pieces (`image`), so another thread can write a file image while events go on
being added: nothing is copied, nothing it holds changes.

Standard MIDI File format 1 (mido reads it back); the meta track (tempo, meter) is small and is
encoded whole each time.
"""
from __future__ import annotations

import struct

from mido.midifiles.midifiles import encode_variable_int

END_OF_TRACK = b"\x00\xff\x2f\x00"


def _meta(kind: int, data: bytes) -> bytes:
    return bytes([0xFF, kind]) + bytes(encode_variable_int(len(data))) + data


class GrowingTrack:
    """One track's note events, encoded as they are added (ticks never go back)."""

    def __init__(self, name: str):
        self.name = name
        self._open = bytearray(b"\x00" + _meta(0x03, name.encode("utf-8", "replace")))  # not yet sealed
        self._sealed: list[bytes] = []
        self._sealed_bytes = 0
        self.last_tick = 0
        self.events = 0
        self.sounding: set[tuple[int, int]] = set()  # (channel, pitch) with an open note-on

    def note(self, tick: int, channel: int, pitch: int, velocity: int) -> None:
        tick = max(tick, self.last_tick)
        key = (channel & 15, pitch & 127)
        if velocity > 0:
            status = 0x90 | key[0]
            self.sounding.add(key)
        else:
            if key not in self.sounding:
                return  # an end without a start (before the file began): nothing to end
            status = 0x80 | key[0]
            self.sounding.discard(key)
        delta = tick - self.last_tick
        if delta < 0x80:  # most deltas: one byte (a flush encodes a second of events on the live path)
            self._open += bytes((delta, status, key[1], velocity & 127))
        else:
            self._open += bytes(encode_variable_int(delta))
            self._open += bytes((status, key[1], velocity & 127))
        self.last_tick = tick
        self.events += 1

    def image(self, end_tick: int | None = None) -> list[bytes]:
        """The track's chunk as pieces to write in order; notes still sounding end at `end_tick`
        (default: the last event). Seals what was added since the last image: the pieces never
        change, whatever is added after (call it from the thread that adds)."""
        if self._open:
            self._sealed.append(bytes(self._open))  # the events since the last image: a small copy
            self._sealed_bytes += len(self._open)
            self._open = bytearray()
        tail = bytearray()
        if self.sounding:
            delta = max(0, (end_tick if end_tick is not None else self.last_tick) - self.last_tick)
            for i, (channel, pitch) in enumerate(sorted(self.sounding)):
                tail += bytes(encode_variable_int(delta if i == 0 else 0)) + bytes((0x80 | channel, pitch, 0))
        tail += END_OF_TRACK
        return [b"MTrk" + struct.pack(">I", self._sealed_bytes + len(tail)), *self._sealed, bytes(tail)]


def meta_chunk(tempos: list[tuple[int, float]], meter: int | None) -> bytes:
    """The first track: the meter (n/4) and each tempo (tick, bpm)."""
    body = bytearray()
    if meter:
        body += b"\x00" + _meta(0x58, bytes((int(meter) & 127, 2, 24, 8)))
    last = 0
    for tick, bpm in tempos:
        us = max(1, min(0xFFFFFF, int(round(60e6 / bpm))))
        body += bytes(encode_variable_int(max(0, tick - last))) + _meta(0x51, us.to_bytes(3, "big"))
        last = max(last, tick)
    body += END_OF_TRACK
    return b"MTrk" + struct.pack(">I", len(body)) + bytes(body)


def header(ticks_per_beat: int, tracks: int) -> bytes:
    return b"MThd" + struct.pack(">IHHH", 6, 1, tracks, ticks_per_beat)
