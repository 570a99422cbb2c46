"""Wall clocks: the real one (perf_counter) and a virtual one for simulation and tests, and
the thread priority that lets the real one wake on time (make_realtime).

Everything in the engine reads time through a Clock so the same performer and
scheduler code runs live or faster than real time, deterministically. Musical time
(beats, bars, tempo) is livejam/beatmap.py and the live beat clock livejam/beat/.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from typing import Protocol

log = logging.getLogger(__name__)


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


def make_nicer(nice: int, who: str) -> int:
    """Ask for niceness `nice` (negative: ahead of other work) for the calling thread and the threads
    it starts after this (on Linux each thread has its own; new ones inherit it). Returns the niceness
    in force: the old one (logged once, naming `who`) where the system refuses (no CAP_SYS_NICE, RLIMIT_NICE)."""
    if not hasattr(os, "setpriority"):
        return 0
    try:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    except OSError as e:
        log.info("niceness %d not allowed (%s); %s runs at normal priority (allow it with a nice limit, as "
                 "for audio users: docs/latency.md)", nice, e.strerror, who)
    return os.getpriority(os.PRIO_PROCESS, 0)


def make_realtime(priority: int) -> bool:
    """Put the calling thread under SCHED_FIFO at `priority`, timer slack 1 ns; False (logged
    once) where the system does not allow it (no rtprio limit, not Linux)."""
    if not hasattr(os, "sched_setscheduler"):
        log.info("real-time priority: not available on %s; the scheduler runs at normal priority", sys.platform)
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))  # 0: this thread (Linux)
    except OSError as e:
        log.info("real-time priority not allowed (%s); the scheduler runs at normal priority "
                 "(allow it with an rtprio limit, as for JACK: docs/latency.md)", e.strerror)
        return False
    try:
        import ctypes

        ctypes.CDLL(None).prctl(29, 1, 0, 0, 0)  # PR_SET_TIMERSLACK: wake from sleep on time, not 50 us late
    except (OSError, AttributeError):
        pass
    return True
