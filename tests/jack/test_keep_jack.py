"""Keeps connected, over a real JACK server: `--out NAME` waited for, a synth killed and
restarted mid-session, a keyboard (`--in NAME`) unplugged and plugged back, a port
missing with --exit-on-port-loss. Every wait is for a line or a message, with a
generous timeout; nothing asserts a duration."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading

import pytest
import rtmidi

from livejam.config import MidiConfig
from livejam.midi.ports import port_names

from tests.conftest import ROOT, livejam_cmd
from tests.jack.jack_player import wait_for
from tests.jack.test_e2e_jack import start_daemon, unmatched_note_ons, wait_line

pytestmark = pytest.mark.jack

# A synth: an input port that prints each message it receives as a JSON line (from the
# main thread: the JACK callback only appends), and "end" when told to stop.
SYNTH = """
import json, signal, sys, rtmidi
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
got = []
inp = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name=sys.argv[1])
inp.ignore_types(sysex=False, timing=False, active_sense=False)
inp.set_callback(lambda event, data: got.append(list(event[0])))
inp.open_virtual_port("in")
print("ready", flush=True)
n = 0
while True:
    sig = signal.sigtimedwait({signal.SIGTERM}, 0.05)
    m = len(got)
    for msg in got[n:m]:
        print(json.dumps(msg))
    n = m
    sys.stdout.flush()
    if sig is not None:
        break
print("end", flush=True)
"""

# A keyboard: an output port that sends each line of hex bytes it reads.
KEYS = """
import sys, rtmidi
out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=sys.argv[1])
out.open_virtual_port("out")
print("ready", flush=True)
for line in sys.stdin:
    out.send_message(list(bytes.fromhex(line)))
"""


class Peer:
    """A synth or keyboard process; `got` fills with what a synth received."""

    def __init__(self, script: str, name: str):
        self.proc = subprocess.Popen([sys.executable, "-c", script, name], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.got: list[list[int]] = []
        self.ended = threading.Event()
        assert self.proc.stdout.readline().strip() == "ready"
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            if line.strip() == "end":
                self.ended.set()
            else:
                self.got.append(json.loads(line))
        self.ended.set()

    def send(self, hex_bytes: str) -> None:
        self.proc.stdin.write(hex_bytes + "\n")
        self.proc.stdin.flush()

    def heard(self, status: int, note: int) -> bool:
        return any(m[0] == status and m[1] == note and (status & 0xF0 != 0x90 or m[2] > 0) for m in list(self.got))

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        assert self.ended.wait(30) and self.proc.wait(30) == 0


def counters_of(out: str) -> dict:
    assert "livejam: counters " in out, out
    return json.loads(out.split("livejam: counters ", 1)[1].splitlines()[0])


def keys_into_livejam() -> rtmidi.MidiOut:
    keys = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="keep test keys")
    keys.open_port(next(i for i, p in enumerate(port_names(keys)) if "livejam in" in p))
    return keys


def test_synth_waited_for_then_killed_and_restarted(jack_server):
    """The synth starts after livejam, crashes while a note sounds and is started again:
    the session plays on, connects it each time, and it is left holding nothing."""
    ch = MidiConfig().machine_channels[0]  # the echo plays part 0
    on, off = 0x90 | ch, 0x80 | ch
    proc, lines = start_daemon("--performer", "echo", "--out", "keep synth", "--no-record")
    synths: list[Peer] = []
    keys = None
    try:
        listing = wait_line(lines, r"waiting for output port 'keep synth' \(available outputs: ([^)]*)\)", proc)
        assert "livejam" not in listing.group(1)  # its own ports are no choice
        keys = keys_into_livejam()
        synths.append(Peer(SYNTH, "keep synth"))
        wait_line(lines, r"output port found: keep synth:in", proc)
        keys.send_message([0x90, 60, 100])
        keys.send_message([0x80, 60, 0])
        assert wait_for(lambda: synths[0].heard(on, 60) and synths[0].heard(off, 60), 30), (synths[0].got, lines)
        keys.send_message([0x90, 62, 100])  # held: the synth is killed while it sounds
        assert wait_for(lambda: synths[0].heard(on, 62), 30), lines
        synths[0].kill()
        wait_line(lines, r"output port lost: keep synth:in \(waiting for it to come back\)", proc)
        keys.send_message([0x80, 62, 0])
        assert proc.poll() is None  # still playing
        synths.append(Peer(SYNTH, "keep synth"))
        wait_line(lines, r"output port back: keep synth:in", proc)
        keys.send_message([0x90, 64, 100])
        keys.send_message([0x80, 64, 0])
        assert wait_for(lambda: synths[1].heard(on, 64) and synths[1].heard(off, 64), 30), (synths[1].got, lines)
        keys.send_message([0x90, 65, 100])  # held at the end: the shutdown ends it
        assert wait_for(lambda: synths[1].heard(on, 65), 30), lines
        proc.terminate()
        rc = proc.wait(60)
        synths[1].stop()
    finally:
        for p in synths:
            p.kill()
        if proc.poll() is None:
            proc.kill()
        if keys is not None:
            keys.close_port()
    out = "".join(lines)
    assert rc == 0 and "stopped (SIGTERM)" in out, out
    got = synths[1].got
    assert unmatched_note_ons(got) == [], got
    # back: a note-off for every note on the machine's channels (a synth that did not restart)
    offs = {(m[0] & 0x0F, m[1]) for m in got if m[0] & 0xF0 == 0x80}
    assert offs >= {(c, n) for c in MidiConfig().machine_channels for n in range(128)}
    assert counters_of(out)["sounding_at_exit"] == 0


def test_keyboard_unplugged_and_plugged_back(jack_server):
    """--in NAME: the keyboard's process dies with a key down (its notes passed through and
    echoed end), comes back, and is heard again."""
    listener = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="keep test ears")
    heard: list[list[int]] = []
    listener.set_callback(lambda event, data: heard.append(list(event[0])))
    keyboards = [Peer(KEYS, "keep keys")]
    proc, lines = start_daemon("--performer", "echo", "--in", "keep keys", "--thru", "--no-record")
    try:
        listener.open_port(next(i for i, p in enumerate(port_names(listener)) if "livejam out" in p))
        assert "in=keep keys:out" in next(line for line in lines if "ready:" in line)
        keyboards[0].send("903C64")
        keyboards[0].send("803C00")
        keyboards[0].send("903E64")  # held when the keyboard goes
        assert wait_for(lambda: sum(1 for m in heard if m[0] & 0xF0 == 0x90 and m[2]) >= 4, 30), (heard, lines)
        keyboards[0].kill()
        wait_line(lines, r"input port lost: keep keys:out \(waiting for it to come back\)", proc)
        # the held key is let go: its note passed through and its echo both end
        assert wait_for(lambda: unmatched_note_ons(list(heard)) == [], 30), (heard, lines)
        keyboards.append(Peer(KEYS, "keep keys"))
        wait_line(lines, r"input port back: keep keys:out", proc)
        keyboards[1].send("904064")
        keyboards[1].send("804000")
        assert wait_for(lambda: any(m[0] & 0xF0 == 0x90 and m[1] == 64 and m[2] for m in heard), 30), (heard, lines)
        proc.terminate()
        rc = proc.wait(60)
    finally:
        for p in keyboards:
            p.kill()
        if proc.poll() is None:
            proc.kill()
        listener.close_port()
    out = "".join(lines)
    assert rc == 0 and "stopped (SIGTERM)" in out, out
    assert unmatched_note_ons(heard) == []
    counters = counters_of(out)
    assert counters["sounding_at_exit"] == 0 and counters["input"]["by_kind"]["note_on"] == 3


def test_missing_port_with_exit_on_port_loss_is_an_error_at_once(jack_server):
    proc = subprocess.run(livejam_cmd("run", "--out", "no such synth", "--exit-on-port-loss", "--no-record"),
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "no MIDI output port matching 'no such synth'; available outputs:" in err[0], err
    assert "livejam" not in err[0].split("available outputs:")[1]  # its own ports are no choice
    assert "ready:" not in proc.stdout


def test_ctrl_c_while_waiting_ends_cleanly(jack_server):
    proc, lines = start_daemon("--performer", "markov", "--out", "never there", "--no-record")
    try:
        wait_line(lines, r"waiting for output port 'never there'", proc)
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = "".join(lines)
    assert rc == 0 and "stopped (SIGINT)" in out, out
    assert counters_of(out)["sounding_at_exit"] == 0
