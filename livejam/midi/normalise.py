"""Input normalisation: raw bytes -> the few message kinds the engine acts on.

- note_on with velocity 0 becomes note_off (and note_off release velocity is
  dropped), so the rest of the engine sees one form of each;
- SysEx and active sensing are ignored by default (keyboards send them all
  the time and they mean nothing to a performer);
- our own output echoed back on the input (loopback routing, e.g. a patchbay
  connecting `livejam out` to `livejam in`) is recognised and ignored, so the
  machine never answers itself.
- rtmidi joins everything after an unterminated SysEx (`F0 7E 01`, no F7)
  into it until some byte F7 arrives (the input heartbeat sends one): such a
  joined message is split at its status bytes, the SysEx start is counted
  (`unterminated_sysex`, one log line) and the messages it swallowed are
  recovered; a lone F7 is the heartbeat and not input.
Runs on the performer thread, never in the MIDI callback.
"""
from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass, field

from livejam.midi.spec import Message, parse

log = logging.getLogger(__name__)
EOX = 0xF7


def _key(msg: Message) -> tuple:
    return (msg.kind, msg.channel, msg.a, msg.b, msg.data)


class EchoFilter:
    """Remembers what we sent for `window_s`; an identical input within that
    window is taken as the echo of it (each send absorbs at most one input).

    `sent` is called from the scheduler thread and `is_echo` from the
    performer thread, hence the lock (neither is the MIDI callback).
    """

    def __init__(self, window_s: float = 0.1, capacity: int = 4096):
        self.window_s = window_s
        self._sent: deque[tuple[float, tuple]] = deque(maxlen=capacity)
        self._lock = threading.Lock()

    def sent(self, msg: Message, t: float) -> None:
        with self._lock:
            self._sent.append((t, _key(normalise(msg))))

    def is_echo(self, msg: Message, t: float) -> bool:
        key = _key(msg)
        with self._lock:
            while self._sent and self._sent[0][0] < t - self.window_s:
                self._sent.popleft()
            for i, (sent_t, sent_key) in enumerate(self._sent):
                if sent_key == key and sent_t <= t + 0.001:
                    del self._sent[i]
                    return True
        return False


def normalise(msg: Message) -> Message:
    if msg.kind == "note_on" and msg.b == 0:
        return Message("note_off", msg.channel, msg.a, 0)
    if msg.kind == "note_off" and msg.b != 0:
        return Message("note_off", msg.channel, msg.a, 0)
    return msg


@dataclass
class InputCounters:
    received: int = 0
    invalid: int = 0
    ignored: int = 0
    echoes: int = 0
    heartbeats: int = 0  # lone F7s from the input heartbeat (not counted as received)
    unterminated_sysex: int = 0  # SysEx starts that another message interrupted
    recovered: int = 0  # messages taken back out of an unterminated SysEx
    by_kind: dict[str, int] = field(default_factory=dict)


class InputNormaliser:
    """Raw input -> normalised Message, or None for what the engine ignores."""

    def __init__(self, ignore_sysex: bool = True, ignore_active_sensing: bool = True,
                 echo: EchoFilter | None = None):
        self.ignored_kinds = set()
        if ignore_sysex:
            self.ignored_kinds.add("sysex")
        if ignore_active_sensing:
            self.ignored_kinds.add("active_sensing")
        self.echo = echo
        self.counters = InputCounters()

    def split(self, raw) -> list:
        """One raw message as rtmidi delivered it -> the raw messages in it (usually itself)."""
        try:
            n = len(raw)
            if n == 1 and raw[0] == EOX:
                self.counters.heartbeats += 1
                return []
            if n < 3 or raw[0] != 0xF0 or not any(b >= 0x80 for b in raw[1:-1]):
                return [raw]
        except TypeError:  # odd types: __call__ counts them as invalid
            return [raw]
        parts: list[list[int]] = []
        for b in raw:
            if b == EOX and parts and parts[-1][0] == 0xF0:
                parts[-1].append(b)  # a SysEx's own end
            elif b >= 0xF8:  # realtime bytes may sit anywhere
                parts.append([b])
            elif b >= 0x80 or not parts:
                parts.append([b])
            else:
                parts[-1].append(b)
        out = []
        for part in parts:
            if part == [EOX]:
                self.counters.heartbeats += 1
            else:
                out.append(part)
        c = self.counters
        unterminated = sum(1 for p in out if p[0] == 0xF0 and p[-1] != EOX)
        c.unterminated_sysex += unterminated
        c.recovered += len(out) - unterminated
        if unterminated and c.unterminated_sysex <= 3:
            log.warning("unterminated SysEx on the input (%s...): %d message(s) it held back recovered",
                        " ".join(f"{b:02X}" for b in raw[:3]), len(out) - unterminated)
        return out

    def __call__(self, raw, t: float) -> Message | None:
        c = self.counters
        c.received += 1
        try:
            msg = parse(raw)
        except (TypeError, ValueError):  # odd types from a misbehaving backend
            msg = None
        if msg is None:
            c.invalid += 1
            return None
        if msg.kind in self.ignored_kinds:
            c.ignored += 1
            return None
        msg = normalise(msg)
        if self.echo is not None and self.echo.is_echo(msg, t):
            c.echoes += 1
            return None
        c.by_kind[msg.kind] = c.by_kind.get(msg.kind, 0) + 1
        return msg
