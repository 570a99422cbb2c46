"""Ableton Link as a beat source: tempo and beat shared with the apps on the local network.

A thin adapter over LinkPython-extern (the `link` module; `pip install livejam[link]`).
`LinkSource.read(now)` captures the session state (Link's "app" capture, meant for a
thread that is not an audio callback: here the performer thread's pump, through
`BeatClock.expire`) and says the tempo and Link's beat at `now`, where `now` is on livejam's
clock: Link keeps its own microsecond clock, and the offset between the two is measured at
each read. The beat is Link's with the quantum set to the meter, so that beat modulo the
meter is where the bar is, in phase with every peer that uses the same quantum.

livejam follows the session only while it has peers (alone in a session, the tempo is
just our own initial proposal). It never writes the session's tempo: the DAW or the
drummer's app leads. When livejam joins, it proposes `bpm` (its own or 120), but a session
that already runs keeps its tempo, as Link defines.

Link finds its peers by multicast on every network interface. The tests run two peers in
a network namespace of their own with only the loopback device (tests/beat/test_link.py).
"""
from __future__ import annotations

import logging
import time
from typing import NamedTuple

log = logging.getLogger(__name__)


class LinkUnavailable(RuntimeError):
    """The Link package is not installed or cannot start (one line for the user)."""


def check_available() -> None:
    """Raise LinkUnavailable (one line) if the Link package cannot be imported."""
    try:
        import link  # noqa: F401
    except ImportError:
        raise LinkUnavailable(INSTALL_HINT) from None


INSTALL_HINT = "--link needs the Link package: pip install 'livejam[link]' (LinkPython-extern)"


class LinkState(NamedTuple):
    bpm: float
    beat: float  # Link's beat at the `now` given to read(), quantum = the meter
    peers: int


class LinkSource:
    """One Link session member. `session`: an object with the `link.Link` API (tests may give
    a fake one); by default a new, enabled `link.Link`."""

    def __init__(self, bpm: float = 120.0, quantum: int = 4, clock=time.perf_counter, session=None):
        if session is None:
            check_available()
            import link  # LinkPython-extern

            session = link.Link(float(bpm))
            session.enabled = True
            log.info("Link: joined (proposing %.1f bpm, quantum %d)", bpm, quantum)
        self.session, self.quantum, self._clock = session, quantum, clock

    @property
    def peers(self) -> int:
        return int(self.session.numPeers())

    def read(self, now: float) -> LinkState | None:
        """The session at our time `now`; None while there are no peers."""
        peers = self.peers
        if peers == 0:
            return None
        state = self.session.captureAppSessionState()
        offset = self.session.clock().micros() - self._clock() * 1e6  # Link's clock minus ours, in us
        micros = int(round(now * 1e6 + offset))
        return LinkState(float(state.tempo()), float(state.beatAtTime(micros, self.quantum)), peers)

    def close(self) -> None:
        """Leave the session (the peers see one fewer)."""
        self.session.enabled = False
