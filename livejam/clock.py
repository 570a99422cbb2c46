"""Clocks: the real one (perf_counter) and a virtual one for simulation and tests.

Everything in the engine reads time through a Clock so the same performer and
scheduler code runs live or faster than real time, deterministically.
Also holds the follower for incoming MIDI clock (24 ticks per quarter note),
which the input layer feeds; tempo sync builds on it later.
"""
from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float: ...

    def sleep_until(self, t: float) -> None: ...


class RealClock:
    """time.perf_counter, with a sleep that spins the last stretch.

    time.sleep overshoots by ~0.1-7 ms on these VMs (more under load), so we
    sleep until `spin_s` before the target and busy-wait the rest.
    """

    def __init__(self, spin_s: float = 0.001):
        self.spin_s = spin_s

    @staticmethod
    def now() -> float:
        return time.perf_counter()

    def sleep_until(self, t: float) -> None:
        remaining = t - time.perf_counter() - self.spin_s
        if remaining > 0:
            time.sleep(remaining)
        while time.perf_counter() < t:
            pass


class VirtualClock:
    """A clock that only moves when told to; sleeping jumps straight to the target.

    Used single-threaded (simulate, unit tests): whoever drives the loop calls
    `advance`, and nothing ever waits on the wall clock.
    """

    def __init__(self, start: float = 0.0):
        self._t = start

    def now(self) -> float:
        return self._t

    def advance(self, t: float) -> None:
        # Time never runs backwards, even if a caller asks for a past time.
        if t > self._t:
            self._t = t

    def sleep_until(self, t: float) -> None:
        self.advance(t)


class MidiClockFollower:
    """Follows MIDI clock/start/stop from the input (system real-time messages).

    Called from the performer thread only. Keeps the running state and a tempo
    estimate from the spacing of the last ticks; the performer may read it.
    """

    TICKS_PER_BEAT = 24

    def __init__(self, window: int = 48):
        self.running = False
        self.ticks = 0
        self._times: deque[float] = deque(maxlen=window)
        self._lock = threading.Lock()  # readers may sit on other threads (status display)

    def handle(self, kind: str, t: float) -> None:
        with self._lock:
            if kind == "clock":
                self.ticks += 1
                self._times.append(t)
            elif kind == "start":
                self.running, self.ticks = True, 0
                self._times.clear()
            elif kind == "continue":
                self.running = True
            elif kind == "stop":
                self.running = False

    @property
    def bpm(self) -> float | None:
        """Tempo from the mean tick spacing, or None with too few ticks."""
        with self._lock:
            if len(self._times) < 2:
                return None
            span = self._times[-1] - self._times[0]
            if span <= 0:
                return None
            tick = span / (len(self._times) - 1)
        return 60.0 / (tick * self.TICKS_PER_BEAT)

    def next_grid(self, t: float, division_beats: float) -> float | None:
        """The first grid line (every `division_beats` beats) at or after time `t`, or
        None while the clock is stopped or its tempo unknown. After Start, the first
        tick is beat 0 (the downbeat), as MIDI defines it."""
        bpm = self.bpm
        with self._lock:
            if not self.running or bpm is None or not self._times or division_beats <= 0:
                return None
            last_beat = (self.ticks - 1) / self.TICKS_PER_BEAT
            last_time = self._times[-1]
        beat = last_beat + (t - last_time) * bpm / 60.0
        line = math.ceil(beat / division_beats - 1e-9) * division_beats
        return last_time + (line - last_beat) * 60.0 / bpm
