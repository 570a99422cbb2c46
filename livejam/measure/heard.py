"""Timing as a receiving process hears it: arrival times against intended times, beside the bare transport.

The duet measurement (duet.py) runs its player in a second process. That process stamps every
message it receives from livejam (time.perf_counter: CLOCK_MONOTONIC on Linux, one clock for
every process) and, all along the session, sends itself timed messages through a second pair
of JACK ports with nothing else on the way: the bare transport, measured in the same run and
under the same load. The daemon's side logs, for each timed note it sends, when it was meant to
sound (the send time less the lateness the scheduler recorded for it).

- Note lateness as heard: arrival minus intended, for each machine note matched in order
  (status, channel, key and its occurrence: JACK keeps a port's order).
- MIDI clock jitter as heard: at a steady tempo the ticks are meant to be evenly spaced; a
  tick's jitter is its arrival less the evenly spaced grid through the arrivals (offset: their
  median), in absolute value. The bare transport's jitter is computed the same way.
"""
from __future__ import annotations

import threading
import time
from collections import defaultdict

import numpy as np

from livejam.stats import summary_ms

BARE_PERIOD_S = 0.02  # the bare transport's messages: one every 20 ms, all along the session
BARE_CC = 102  # an undefined controller number: nothing reads it


def note_key(status: int, data1: int) -> tuple[int, int, int]:
    """(on/off, channel, key) of a note message; a note-on at velocity 0 counts as an off."""
    return (1 if status & 0xF0 == 0x90 else 0, status & 0x0F, data1)


def match_notes(intended: list[tuple[tuple, float | None]], arrived: list[tuple[tuple, float]]) -> list[float]:
    """Arrival minus intended (s) of each note both sides have, matched by key and occurrence.
    `intended` lists every note message sent, None for one sent at once (a panic's note-offs):
    it keeps the occurrences aligned and is not timed."""
    meant: dict[tuple, list[float]] = defaultdict(list)
    for key, t in intended:
        meant[key].append(t)
    seen: dict[tuple, int] = defaultdict(int)
    out = []
    for key, t in arrived:
        i = seen[key]
        seen[key] += 1
        if i < len(meant[key]) and meant[key][i] is not None:
            out.append(t - meant[key][i])
    return out


def grid_jitter(arrivals: list[float], period_s: float) -> list[float]:
    """|arrival - the evenly spaced grid through them| (s) of messages meant `period_s` apart."""
    if len(arrivals) < 2:
        return []
    a = np.asarray(arrivals, np.float64)
    k = np.round((a - a[0]) / period_s)  # a lost message leaves a gap, not a shift
    rest = a - k * period_s
    return list(np.abs(rest - np.median(rest)))


def summary(values_s: list[float]) -> dict:
    return summary_ms(values_s, 1e3)


class BareTransport:
    """Timed messages from one JACK client of this process to another and back to a callback:
    sent on a grid (sleep, then spin the last millisecond), stamped on arrival."""

    def __init__(self, api: int, name: str):
        import rtmidi

        from livejam.measure.jack_server import port_index
        from livejam.midi.ports import port_names

        self.out, self.inp = rtmidi.MidiOut(api, name=f"{name} bare out"), rtmidi.MidiIn(api, name=f"{name} bare in")
        self.inp.set_callback(self._on_message)
        self.inp.open_virtual_port("in")  # the sender connects to it
        self.out.open_port(port_index(port_names(self.out), f"{name} bare in:"), name="out")
        self.sent: list[float] = []  # intended times, in order
        self.arrived: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bare-transport", daemon=True)

    def _on_message(self, event, data=None) -> None:
        self.arrived.append((time.perf_counter(), event[0][2]))  # (arrival, k mod 128)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        t = time.perf_counter() + BARE_PERIOD_S
        k = 0
        while not self._stop.is_set():
            left = t - time.perf_counter()
            if left > 0.001:
                time.sleep(left - 0.001)
            while time.perf_counter() < t:
                pass
            self.out.send_message([0xB0 | 15, BARE_CC, k % 128])
            self.sent.append(t)
            k += 1
            t += BARE_PERIOD_S

    def stop(self) -> dict:
        """Lateness (arrival - intended, matched in order) and grid jitter of what came back."""
        self._stop.set()
        self._thread.join(2.0)
        time.sleep(0.1)  # the last ones in flight
        late, k = [], -1
        for t, mod in list(self.arrived):
            k += (mod - k) % 128 or 128  # the next message number with this value (a loss skips ahead)
            if k < len(self.sent):
                late.append(t - self.sent[k])
        return {"sent": len(self.sent), "arrived": len(self.arrived), "lateness": late,
                "jitter": grid_jitter([t for t, _ in self.arrived], BARE_PERIOD_S)}
