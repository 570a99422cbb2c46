"""`livejam run --tempo follow` over a real JACK server: a second process plays a melody at
100 bpm into `livejam in`, and the daemon's log says it follows that tempo. The player paces
its notes with sleeps, as a person's hands would; the check allows 3% and asks only for the
tempo the tracker found (what arrives, not how exactly it was timed)."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time

import pytest

from tests.conftest import ROOT, livejam_cmd
from tests.beat.test_tempo import BAR

pytestmark = [pytest.mark.jack, pytest.mark.slow]


def test_run_follows_the_tempo_a_player_plays(jack_server):
    import rtmidi

    from livejam.midi.ports import port_names

    proc = subprocess.Popen(livejam_cmd("-v", "run", "--performer", "markov", "--tempo", "follow", "--no-record"),
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ))
    lines: list[str] = []
    ready, found = threading.Event(), threading.Event()

    def reader():
        for line in proc.stdout:
            lines.append(line)
            ready.set() if "ready:" in line else None
            found.set() if "tempo follow:" in line else None
        ready.set()

    threading.Thread(target=reader, daemon=True).start()
    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="melody player")
    try:
        assert ready.wait(60) and proc.poll() is None, "".join(lines)
        ports = port_names(out)
        out.open_port(next(i for i, name in enumerate(ports) if "livejam in" in name))
        beat = 60.0 / 100.0
        start = time.monotonic() + 0.2
        onsets = [start + (bar * 4 + x) * beat for bar in range(8) for x in BAR]
        for i, t in enumerate(onsets):
            time.sleep(max(0.0, t - time.monotonic()))
            out.send_message([0x90, 60 + i % 7, 90])
            time.sleep(0.1)
            out.send_message([0x80, 60 + i % 7, 0])
            if found.is_set() and i > len(BAR) * 5:
                break
        assert found.wait(5.0), "".join(lines)
    finally:
        out.close_port()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    log = "".join(lines)
    bpm = float(re.search(r"tempo follow: ([0-9.]+) bpm", log).group(1))
    assert bpm == pytest.approx(100.0, rel=0.03), log
