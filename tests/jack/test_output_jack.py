"""The output process over JACK (issue 20 #1): the main process killed while notes sound, and
the output process killed under a playing session."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from livejam.config import MidiConfig
from livejam.midi.ports import port_names

from tests.jack.jack_player import wait_for
from tests.jack.test_e2e_jack import start_daemon, unmatched_note_ons

pytestmark = pytest.mark.jack
PROCESS = ("--set", "scheduler.output_process=true")  # the default on JACK, said so these tests keep it


def output_process_of(pid: int) -> int:
    """The pid of the output process the daemon `pid` started."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == pid and b"livejam.output.child" in cmdline:
            return int(stat.parent.name)
    raise AssertionError(f"no output process under {pid}")


@pytest.fixture
def wired():
    """A keyboard into livejam and ears on its output, connected once the session is ready."""
    import rtmidi

    heard: list[tuple[float, list[int]]] = []
    ears = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="output test ears")
    ears.set_callback(lambda event, data: heard.append((time.monotonic(), list(event[0]))))
    keys = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="output test keys")

    def connect():
        ears.open_port(next(i for i, p in enumerate(port_names(ears)) if "livejam out" in p))
        keys.open_port(next(i for i, p in enumerate(port_names(keys)) if "livejam in" in p))

    yield heard, keys, connect
    for port in (ears, keys):
        port.close_port()


def test_the_main_process_killed_leaves_no_note_sounding(jack_server, wired):
    heard, keys, connect = wired
    proc, lines = start_daemon("--performer", "echo", "--thru", "--no-record", *PROCESS)
    try:
        child = output_process_of(proc.pid)
        connect()
        keys.send_message([0x90, 62, 100])  # held when the main process is killed
        thru, machine = MidiConfig().thru_channel, MidiConfig(thru=True).machine_channels[0]
        sounding = {(0x90 | thru, 62), (0x90 | machine, 62)}  # passed through and echoed
        assert wait_for(lambda: {(m[0], m[1]) for _, m in list(heard) if m[2]} >= sounding, 30), (heard, lines)
        killed = time.monotonic()
        proc.kill()
        proc.wait(60)
        # the output process ends what it sent, then itself (the bar, 1 s, is measured by
        # `python -m livejam.measure.orphan`; here only that it happens)
        assert wait_for(lambda: unmatched_note_ons([m for _, m in list(heard)]) == [], 30), heard
        assert wait_for(lambda: not Path(f"/proc/{child}").exists(), 30)
        ended = max(t for t, m in heard if m[0] & 0xF0 == 0x80 or (m[0] & 0xF0 == 0x90 and m[2] == 0))
        print(f"every note ended {ended - killed:.3f} s after SIGKILL")
    finally:
        if proc.poll() is None:
            proc.kill()


def test_the_output_process_killed_stops_the_session_with_one_line(jack_server, wired):
    heard, keys, connect = wired
    proc, lines = start_daemon("--performer", "echo", "--no-record", *PROCESS)
    try:
        connect()
        keys.send_message([0x90, 64, 100])
        assert wait_for(lambda: any(m[0] & 0xF0 == 0x90 and m[2] for _, m in list(heard)), 30), lines
        os.kill(output_process_of(proc.pid), signal.SIGKILL)
        rc = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = "".join(lines)
    assert rc == 1, out
    assert out.count("the output process ended (killed by signal 9)") >= 1, out
    assert "stopped (the output process ended (killed by signal 9))" in out, out
    assert "Traceback" not in out, out


def test_the_output_process_and_the_performer_run_at_the_niceness_asked_for(jack_server):
    """scheduler.output_nice for every thread of the output process (its JACK thread included),
    scheduler.performer_nice for the performer thread alone; raises (5, 7) are allowed to anyone."""
    proc, lines = start_daemon("--performer", "markov", "--no-record", "--set", "scheduler.output_nice=5",
                               "--set", "scheduler.performer_nice=7", *PROCESS)
    try:
        child = output_process_of(proc.pid)

        def nices(pid: int) -> list[int]:
            return [int((t / "stat").read_text().rsplit(")", 1)[1].split()[16])
                    for t in Path(f"/proc/{pid}/task").iterdir()]

        assert wait_for(lambda: 7 in nices(proc.pid), 10.0), nices(proc.pid)
        main = nices(proc.pid)
        assert main.count(7) == 1 and 0 in main  # the performer thread; the main thread and the rest as they were
        assert set(nices(child)) == {5} and len(nices(child)) >= 3  # loop, scheduler, libjack's thread
    finally:
        proc.terminate()
        assert proc.wait(60) == 0
