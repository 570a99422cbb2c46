"""Tempo over a real JACK server: `livejam run --bpm` is a clock master a second process can follow.
Correctness only: what arrives and in what order; rates are checked loosely from the receiver's own
timestamps (a loaded machine delays delivery, it does not change how many ticks a beat has)."""
from __future__ import annotations

import json
import signal
import time

import pytest

from tests.jack.jack_player import wait_for
from tests.jack.test_e2e_jack import start_daemon

pytestmark = pytest.mark.jack

CLOCK, START, STOP = 0xF8, 0xFA, 0xFC


def test_run_with_bpm_sends_midi_clock_a_second_process_receives(jack_server):
    import rtmidi

    from livejam.midi.ports import port_names

    proc, lines = start_daemon("--performer", "markov", "--bpm", "120", "--count-in", "2", "--no-record")
    received: list[tuple[float, list[int]]] = []
    inp = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="clock follower")
    try:
        inp.ignore_types(sysex=True, timing=False, active_sense=True)
        inp.set_callback(lambda event, data: received.append((time.monotonic(), list(event[0]))))
        ports = port_names(inp)
        inp.open_port(next(i for i, name in enumerate(ports) if "livejam out" in name))
        ticks = lambda: [t for t, m in received if m == [CLOCK]]  # noqa: E731
        started = lambda: [t for t, m in received if m == [START]]  # noqa: E731
        # ticks run through the count-in (a follower learns the tempo); Start comes at beat 0
        assert wait_for(lambda: started() and sum(t > started()[0] for t in ticks()) >= 100, 60.0), \
            f"{len(ticks())} ticks, {len(started())} starts"
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(60)
        assert wait_for(lambda: any(m == [STOP] for _, m in received), 10.0)
    finally:
        if proc.poll() is None:
            proc.kill()
        inp.close_port()
    out = "".join(lines)
    assert rc == 0, out
    kinds = [m[0] for _, m in received if m[0] in (START, STOP)]
    assert kinds[0] == START and kinds[-1] == STOP  # start before the ticks that follow, stop at the end
    t = sorted(ticks())
    gaps = sorted(b - a for a, b in zip(t, t[1:]))
    median_rate = 1.0 / gaps[len(gaps) // 2]
    assert 40 <= median_rate <= 58, median_rate  # 24 per beat at 120 bpm = 48/s
    clicks = [m for _, m in received if m[0] & 0xF0 == 0x90 and m[0] & 0x0F == 9 and m[2] > 0]
    # a two-bar count-in on channel 10 (4 s): the follower connects after "ready", so it may miss the first
    assert 1 <= len(clicks) <= 8
    counters = json.loads(out.split("livejam: counters ", 1)[1].splitlines()[0])
    assert counters["sounding_at_exit"] == 0
