"""The MIDI clock livejam sends as master (24 ticks a beat, start/stop/continue, song position).

Pure and driven by whoever owns time: the scheduler thread pulls what is due from the beat clock
(livejam/beat/live.py) it reads.
"""
from __future__ import annotations

import math

from livejam.beatmap import CLOCK_TICKS_PER_BEAT
from livejam.midi.spec import Message

TICKS_PER_BEAT = CLOCK_TICKS_PER_BEAT  # MIDI clock: 24 per quarter note
TICKS_PER_SIXTEENTH = 6  # the Song Position Pointer counts 16ths


# --- what the master sends ------------------------------------------------------------
CLOCK, START, CONTINUE, STOP = (Message(k, data=(b,)) for k, b in
                                (("clock", 0xF8), ("start", 0xFA), ("continue", 0xFB), ("stop", 0xFC)))


def song_position_message(sixteenths: int) -> Message:
    sixteenths = min(sixteenths, 0x3FFF)  # 14 bits: ~34 min at 120 bpm; MIDI has no further
    return Message("songpos", data=(0xF2, sixteenths & 0x7F, sixteenths >> 7))


class ClockOut:
    """The MIDI clock livejam sends as master. Pure: the scheduler thread pulls what is due.

    Tick i sits at beat i/24 exactly and its time comes from the beat clock's current map,
    so a tempo change takes effect on the next tick and nothing accumulates (no drift).
    Start goes out with the tick of beat 0; with `preroll` the ticks before it (a count-in)
    go out too, so slaves know the tempo when they start. Joining after beat 0, or after the
    numbering changed, it sends Song Position Pointer + Continue on the next 16th instead.
    While the map is not ours (an incoming clock leads, or free time) it stops and stays quiet.
    """

    def __init__(self, beats, now: float, preroll: bool = True):
        self._beats = beats  # a BeatClock (anything with snapshot())
        self._preroll = preroll
        self._last = now  # the time of the last message out (or of the creation)
        self._next = 0  # the next tick's index, in the current generation
        self._start_tick = 0
        self._gen: int | None = None
        self._playing = False
        self._first = True
        self._stopped = False

    @property
    def playing(self) -> bool:
        return self._playing

    def pull(self, until: float) -> list[tuple[float, Message]]:
        """Every message due before `until` not pulled yet, as (time, message) in order."""
        out: list[tuple[float, Message]] = []
        snap = self._beats.snapshot()
        if self._stopped:
            return out
        if snap.source != "bpm":
            if self._playing:
                out.append((max(self._last, snap.segments[-1].t0), STOP))
                self._playing = False
            self._gen = None
            return out
        if snap.generation != self._gen:
            self._sync(snap, out)
        while True:
            i = self._next
            t = snap.time_at(i / TICKS_PER_BEAT)
            if t >= until:
                return out
            t = max(t, self._last)  # a tempo change inside the lookahead never reorders
            if i == self._start_tick and not self._playing:
                if i == 0:
                    out.append((t, START))
                else:
                    out += [(t, song_position_message(i // TICKS_PER_SIXTEENTH)), (t, CONTINUE)]
                self._playing = True
            out.append((t, CLOCK))
            self._last, self._next = t, i + 1

    def next_due(self) -> float | None:
        """When the next message is due (for the scheduler's sleep), None when none is coming."""
        snap = self._beats.snapshot()
        if self._stopped or (snap.source != "bpm" and not self._playing):
            return None
        if snap.source != "bpm" or snap.generation != self._gen:
            return self._last  # a Stop or a re-sync: due at once
        return max(self._last, snap.time_at(self._next / TICKS_PER_BEAT))

    def stop(self, t: float) -> list[tuple[float, Message]]:
        """What is due before t, then Stop at t; nothing after."""
        out = self.pull(t)
        if self._playing:
            out.append((max(t, self._last), STOP))
            self._playing = False
        self._stopped = True
        return out

    def _sync(self, snap, out: list) -> None:
        """A new generation (or the first pull): find the next tick in the new numbering."""
        if self._playing:  # the numbering jumped: the slaves must stop and re-locate
            out.append((self._last, STOP))
            self._playing = False
        self._gen = snap.generation
        ticks = snap.beat_at(self._last) * TICKS_PER_BEAT
        self._next = math.ceil(ticks - 1e-9) if self._first else math.floor(ticks + 1e-9) + 1
        self._first = False
        # start on beat 0, or on the next 16th when joining later (SPP counts 16ths)
        self._start_tick = 0 if self._next <= 0 else -(-self._next // TICKS_PER_SIXTEENTH) * TICKS_PER_SIXTEENTH
        if not self._preroll:
            self._next = self._start_tick
