"""The MIDI message table and parsing of raw messages into immutable values.

One table (status byte -> type, length) drives parsing, encoding and
validation, as in mido. rtmidi hands us one complete message per callback, so
running status and byte-stream reassembly are not needed here; anything that
does not fit the table is rejected (returned as None), never raised.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

# Channel messages: high nibble -> (type, total length in bytes).
CHANNEL = {
    0x80: ("note_off", 3),
    0x90: ("note_on", 3),
    0xA0: ("polytouch", 3),
    0xB0: ("control_change", 3),
    0xC0: ("program_change", 2),
    0xD0: ("aftertouch", 2),
    0xE0: ("pitchwheel", 3),
}
# System messages: status byte -> (type, total length; None = variable, SysEx).
SYSTEM = {
    0xF0: ("sysex", None),
    0xF1: ("quarter_frame", 2),
    0xF2: ("songpos", 3),
    0xF3: ("song_select", 2),
    0xF6: ("tune_request", 1),
    0xF8: ("clock", 1),
    0xFA: ("start", 1),
    0xFB: ("continue", 1),
    0xFC: ("stop", 1),
    0xFE: ("active_sensing", 1),
    0xFF: ("reset", 1),
}
STATUS = {kind: status for status, (kind, _) in CHANNEL.items()}
REALTIME_CLOCK = frozenset({"clock", "start", "continue", "stop"})

CC_SUSTAIN = 64
CC_ALL_NOTES_OFF = 123


@dataclass(frozen=True)
class Message:
    """A validated MIDI message. For channel messages `a`/`b` are the data bytes
    (note/velocity, control/value, ...); system messages keep their bytes in `data`."""

    kind: str
    channel: int = 0
    a: int = 0
    b: int = 0
    data: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.channel <= 15 or not 0 <= self.a <= 127 or not 0 <= self.b <= 127:
            raise ValueError(f"MIDI value out of range in {self}")

    # mido's names for the data bytes, so code reads as MIDI does
    @property
    def note(self) -> int:
        return self.a

    @property
    def velocity(self) -> int:
        return self.b

    @property
    def control(self) -> int:
        return self.a

    @property
    def value(self) -> int:
        return self.b

    def bytes(self) -> list[int]:
        if self.kind in STATUS:
            status = STATUS[self.kind] | self.channel
            return [status, self.a, self.b][: CHANNEL[STATUS[self.kind]][1]]
        return list(self.data)


def note_on(channel: int, note: int, velocity: int) -> Message:
    return Message("note_on", channel, note, velocity)


def note_off(channel: int, note: int) -> Message:
    # Sent as note_on velocity 0 would save nothing over JACK; an explicit
    # note_off is the most widely understood form.
    return Message("note_off", channel, note, 0)


def control_change(channel: int, control: int, value: int) -> Message:
    return Message("control_change", channel, control, value)


def parse(raw: Sequence[int]) -> Message | None:
    """Raw bytes of one message -> Message, or None if malformed."""
    if not raw:
        return None
    status = raw[0]
    if not isinstance(status, int) or not 0x80 <= status <= 0xFF:
        return None
    if status < 0xF0:
        kind, length = CHANNEL[status & 0xF0]
        if len(raw) != length or any(not 0 <= b <= 0x7F for b in raw[1:]):
            return None
        a = raw[1]
        b = raw[2] if length == 3 else 0
        return Message(kind, status & 0x0F, a, b)
    entry = SYSTEM.get(status)
    if entry is None:
        return None
    kind, length = entry
    if length is None:
        if raw[-1] != 0xF7 or any(not 0 <= b <= 0x7F for b in raw[1:-1]):
            return None
    elif len(raw) != length or any(not 0 <= b <= 0x7F for b in raw[1:]):
        return None
    return Message(kind, data=tuple(raw))
