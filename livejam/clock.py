"""Wall clocks: the real one (perf_counter) and a virtual one for simulation and tests.

Everything in the engine reads time through a Clock so the same performer and
scheduler code runs live or faster than real time, deterministically. Musical time
(beats, bars, tempo) is livejam/beatmap.py and the live beat clock livejam/beat/.
"""
from __future__ import annotations

import time
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
