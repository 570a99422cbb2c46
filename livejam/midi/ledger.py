"""The note ledger: every outgoing note passes through it; it alone decides panic.

Keyed by (port, channel, note). A note-on for a key already sounding and a
note-off for a silent key are refused (and counted), so whatever the
performer does, the wire never sees a doubled note-on or a stray note-off and
every note that was started can be ended explicitly. The ledger is owned by
the scheduler thread (or the single simulation thread): no lock.
"""
from __future__ import annotations

from dataclasses import dataclass

from livejam.midi.spec import CC_ALL_NOTES_OFF, CC_SUSTAIN, Message, control_change, note_off

Key = tuple[int, int, int]  # (port, channel, note)


@dataclass
class LedgerCounters:
    note_ons: int = 0
    note_offs: int = 0
    refused_on: int = 0
    refused_off: int = 0
    resolved: int = 0  # note-offs sent by resolve()/panic rather than the performer


class NoteLedger:
    def __init__(self, channels: dict[int, set[int]] | None = None):
        # port -> channels to clear on panic even before anything was played
        # there (the start-up panic clears what a previous crash may have left).
        self._channels: dict[int, set[int]] = {p: set(c) for p, c in (channels or {}).items()}
        self._on: dict[Key, float] = {}  # sounding key -> time its note-on was sent
        self.counters = LedgerCounters()

    def note_on(self, port: int, channel: int, note: int, t: float) -> bool:
        """Record a note-on; False means refused (already sounding): do not send."""
        key = (port, channel, note)
        self._channels.setdefault(port, set()).add(channel)
        if key in self._on:
            self.counters.refused_on += 1
            return False
        self._on[key] = t
        self.counters.note_ons += 1
        return True

    def note_off(self, port: int, channel: int, note: int) -> bool:
        """Record a note-off; False means refused (not sounding): do not send."""
        if self._on.pop((port, channel, note), None) is None:
            self.counters.refused_off += 1
            return False
        self.counters.note_offs += 1
        return True

    def sounds(self, key: Key) -> bool:
        return key in self._on

    def sounding(self) -> list[Key]:
        return sorted(self._on)

    def held_since(self, before: float, port: int | None = None) -> list[Key]:
        """Keys whose note-on was sent before `before` (watchdog candidates), on `port` or any."""
        return sorted(k for k, t in self._on.items() if t < before and (port is None or k[0] == port))

    def oldest_on(self, port: int | None = None) -> float:
        """Send time of the longest-held sounding note (on `port` or any); inf when all are silent."""
        return min((t for k, t in self._on.items() if port is None or k[0] == port), default=float("inf"))

    def resolve(self, keys: list[Key] | None = None, port: int | None = None) -> list[tuple[int, Message]]:
        """Explicit note-offs for `keys` (default: all sounding, on `port` or any); marks them silent."""
        if keys is None:
            keys = [k for k in self.sounding() if port is None or k[0] == port]
        else:
            keys = [k for k in keys if k in self._on]
        out = []
        for key in keys:
            del self._on[key]
            self.counters.resolved += 1
            port, channel, note = key
            out.append((port, note_off(channel, note)))
        return out

    def panic(self, all_notes: bool = False, also: dict[int, set[int]] | None = None) -> list[tuple[int, Message]]:
        """Everything panic sends: note-offs for sounding notes, then sustain off
        and all-notes-off on every channel used (explicit offs first, because
        some synths ignore CC123 and sustain would keep released notes ringing).
        `all_notes`: a note-off for each of the 128 notes on every channel used,
        whatever the ledger knows: the start-up panic on a synth that a crashed
        session (whose ledger died with it) may have left sounding. `also`: port -> more
        channels to clear this once (those an earlier session may have used); a channel
        already cleared on another port is not cleared twice."""
        out = self.resolve()
        channels = {p: set(c) for p, c in self._channels.items()}
        done = set().union(*channels.values())
        for port, more in (also or {}).items():
            channels.setdefault(port, set()).update(set(more) - done)
        for port in sorted(channels):
            for channel in sorted(channels[port]):
                if all_notes:
                    out.extend((port, note_off(channel, note)) for note in range(128))
                out.append((port, control_change(channel, CC_SUSTAIN, 0)))
                out.append((port, control_change(channel, CC_ALL_NOTES_OFF, 0)))
        return out

    def clear_silent(self, channels: list[int]) -> list[Message]:
        """For a synth that just connected: a note-off for every note on `channels` that no
        sounding key holds (those play on: the new synth never heard their note-on, and their
        note-off, when it comes, ends a leftover of that key too), then sustain off. No
        all-notes-off: it would cut the notes sounding on the synths already listening."""
        held = {(channel, note) for _, channel, note in self._on}
        out = []
        for channel in channels:
            out.extend(note_off(channel, note) for note in range(128) if (channel, note) not in held)
            out.append(control_change(channel, CC_SUSTAIN, 0))
        return out
