"""What the status screen, the plain log and OSC status show: a snapshot read without locks.

`StatusReader.read(now)` reads attributes and counters other threads write
(ints, floats, appends to deques and lists: single GIL-atomic operations) and
never takes a lock the scheduler waits on. Percentiles are over a window of
the last `window_s` seconds, which the reader keeps itself: the scheduler's
lateness deque grows by `counters.timed` per value, so the new values since
the previous read are its tail.
"""
from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from livejam.harmony import chord_name

HUMAN, MACHINE = "human", "machine"
MAX_NEW = 5000  # lateness values taken per read at most (10 reads a second: 50,000 events/s)


@dataclass(frozen=True)
class RollNote:
    who: str
    pitch: int
    start: float  # session seconds
    end: float | None  # None: still sounding


@dataclass
class Snapshot:
    t: float  # session seconds
    mode: str
    engine: str
    controls: dict  # temperature, density, harmony, grid, range, key
    bpm: float | None
    beat: float | None  # beats since the MIDI clock's start, when it runs
    counters: dict
    lateness_ms: dict  # p50/p99/n over the window
    step_ms: dict
    notes: list[RollNote] = field(default_factory=list)
    events: list[str] = field(default_factory=list)  # recent one-line events (port lost/found, errors)
    sound: dict | None = None  # --sound: level of the last block, blocks, underflows
    chord: str = "N"  # the chord the performer plays in (livejam.harmony.chord_name)
    chord_source: str = ""  # where it came from: chart, heard, predicted, listening; "" none


def _tail(d: deque, n: int) -> list:
    """The last n items of a deque another thread appends to, oldest first.

    list(islice(reversed(d), n)) runs as one C call under the GIL (no bytecode in between, so no
    append can interleave) and costs O(n), not O(len(d)): the scheduler's 100,000-value deque is
    never copied whole while the scheduler waits for the GIL."""
    if n <= 0:
        return []
    return list(itertools.islice(reversed(d), n))[::-1]


def _new_since(items: list, suffix: tuple) -> list:
    """Items after the last occurrence of `suffix` (what we saw last time) in a bounded deque's copy;
    all of them when it is gone (more arrived than the deque holds)."""
    k = len(suffix)
    if k:
        for i in range(len(items) - k, -1, -1):
            if tuple(items[i:i + k]) == suffix:
                return items[i + k:]
    return items


def _pct(values) -> dict:
    a = np.asarray(values, dtype=float)
    if a.size == 0:
        return {"n": 0, "p50": None, "p99": None}
    return {"n": int(a.size), "p50": round(float(np.percentile(a, 50)), 3),
            "p99": round(float(np.percentile(a, 99)), 3)}


class StatusReader:
    def __init__(self, session, window_s: float = 60.0, roll_s: float = 8.0, events: deque | None = None):
        self.s = session
        self.window_s = window_s
        self.roll_s = roll_s
        self.events = events if events is not None else deque(maxlen=50)
        self._late: deque[tuple[float, float]] = deque()  # (read time, lateness ms)
        self._timed_seen = 0
        self._step: deque[tuple[float, float]] = deque()
        self._step_suffix: tuple = ()

    def read(self, now: float | None = None) -> Snapshot:
        s = self.s
        now = s.clock.now() if now is None else now
        t = now - s.recorder.t0
        perf = s.dispatcher.performer
        sched = s.scheduler.counters
        # lateness: the values appended since the last read, stamped now
        timed = sched.timed
        for v in _tail(sched.lateness, min(timed - self._timed_seen, MAX_NEW)):
            self._late.append((now, v * 1000.0))
        self._timed_seen = timed
        items = list(perf.step_ms)  # the neural performer's feed/sample times (ms); () for the others
        for v in _new_since(items, self._step_suffix):
            self._step.append((now, v))
        self._step_suffix = tuple(items[-8:])
        for window in (self._late, self._step):
            while window and window[0][0] < now - self.window_s:
                window.popleft()
        return Snapshot(
            t=t, mode=str(perf.mode), engine=type(perf).__name__,
            controls=perf.settings(), bpm=self._bpm(), beat=self._beat(),
            counters=self._counters(), lateness_ms=_pct([v for _, v in self._late]),
            step_ms=_pct([v for _, v in self._step]), notes=self._roll(t), events=list(self.events)[-5:],
            sound=self._sound(), chord=chord_name(int(perf.chord or 0)), chord_source=str(perf.chord_source or ""))

    def _sound(self) -> dict | None:
        return next((m for m in (a.meter() for a in self.s.addons) if m is not None), None)

    def _bpm(self) -> float | None:
        beat = self.s.dispatcher.beat  # the live beat clock: reads take no lock
        bpm = beat.bpm_at(self.s.clock.now())
        return round(bpm, 1) if bpm else None

    def _beat(self) -> float | None:
        beat = self.s.dispatcher.beat
        if beat.source == "free":
            return None
        return beat.beat_at(self.s.clock.now())

    def _counters(self) -> dict:
        s = self.s
        inc, sched = s.normaliser.counters, s.scheduler.counters
        perf = dict(s.dispatcher.performer.counters)
        return {"in": inc.received, "heard": perf.get("heard", 0), "played": perf.get("played", 0),
                "sent": sched.sent, "late": sched.late, "dropped": sched.dropped_late,
                "cancels": s.dispatcher.cancels, "watchdog": sched.watchdog_offs, "overflow": s.inq.overflow,
                "xruns": s.xruns.value, "sounding": len(s.scheduler.ledger.sounding())}

    def _roll(self, t: float) -> list[RollNote]:
        """Notes of the last `roll_s` seconds from the recorder's append-only lists (machine by channel)."""
        out: list[RollNote] = []
        for who, events in ((HUMAN, self.s.recorder.human), (MACHINE, self.s.recorder.machine)):
            recent = events[-400:]  # a slice of a list another thread appends to: one C call
            open_: dict[tuple[int, int], float] = {}
            for e in recent:
                key = (e.part, e.pitch)
                if e.velocity > 0:
                    open_[key] = e.time
                elif key in open_:
                    start = open_.pop(key)
                    if e.time >= t - self.roll_s:
                        out.append(RollNote(who, e.pitch, start, e.time))
            out += [RollNote(who, p, start, None) for (_, p), start in open_.items()]
        return out
