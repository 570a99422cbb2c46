"""Faults without a MIDI system: the signal handler's contract, SysEx recovery,
the start-up panic, the recording path, setting range checks."""
from __future__ import annotations

import signal
import subprocess

import pytest

from livejam.config import ConfigError, DaemonConfig, load
from livejam.daemon import Daemon
from livejam.midi.ledger import NoteLedger
from livejam.midi.normalise import InputNormaliser
from livejam.recording import RecordPathError, Recorder, check_writable

from tests.conftest import ROOT, livejam_cmd


class _NoLock:
    """Stands for the stop Event: a handler that touches it could deadlock (issue 10 #4)."""

    def set(self):
        raise AssertionError("the signal handler took the Event's lock")

    def is_set(self):
        raise AssertionError("the signal handler took the Event's lock")

    wait = set


def test_signal_handler_only_sets_a_flag():
    daemon = Daemon(DaemonConfig())
    daemon.stop_event = _NoLock()
    daemon._on_signal(signal.SIGTERM, None)
    daemon._on_signal(signal.SIGINT, None)  # a second signal: still nothing but the flag
    assert daemon.signalled == "SIGTERM" and daemon.signals == 2


def test_unterminated_sysex_is_split_counted_and_recovered():
    n = InputNormaliser()
    # what rtmidi hands over once the heartbeat's F7 ends the SysEx it was collecting
    joined = [0xF0, 0x7E, 0x01, 0x90, 60, 100, 0xF8, 0x80, 60, 0, 0xF7]
    parts = n.split(joined)
    assert parts == [[0xF0, 0x7E, 0x01], [0x90, 60, 100], [0xF8], [0x80, 60, 0]]
    assert n.counters.unterminated_sysex == 1 and n.counters.recovered == 3 and n.counters.heartbeats == 1
    assert n.split([0xF7]) == [] and n.counters.heartbeats == 2
    assert n.split([0xF0, 1, 2, 0xF7]) == [[0xF0, 1, 2, 0xF7]]  # a whole SysEx stays whole
    msgs = [n(p, 0.0) for p in parts]
    assert [m.kind if m else None for m in msgs] == [None, "note_on", "clock", "note_off"]


def test_startup_panic_on_an_existing_port_ends_every_note_on_every_channel():
    ledger = NoteLedger({0: {0, 1}})
    sent = ledger.panic(all_notes=True)
    offs = {(m.channel, m.a) for _, m in sent if m.kind == "note_off"}
    assert offs == {(c, n) for c in (0, 1) for n in range(128)}
    ccs = [(m.channel, m.a) for _, m in sent if m.kind == "control_change"]
    assert ccs == [(0, 64), (0, 123), (1, 64), (1, 123)]


@pytest.mark.parametrize("bad", ["/proc/x.mid", "DIR"])
def test_record_path_is_checked_at_start(tmp_path, bad):
    path = tmp_path if bad == "DIR" else bad
    with pytest.raises(RecordPathError):
        check_writable(path)


def test_recording_is_replaced_atomically(tmp_path):
    from livejam.midi.spec import note_off, note_on

    rec = Recorder(0.0)
    rec.record_human(note_on(0, 60, 90), 0.1)
    rec.record_human(note_off(0, 60), 0.5)
    path = rec.save(tmp_path / "a.mid")
    first = path.read_bytes()
    rec.record_machine(note_on(1, 64, 90), 0.6)
    rec.record_machine(note_off(1, 64), 0.9)
    assert rec.save(path) == path and path.read_bytes() != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mid"]  # no temporary left behind


def test_bad_record_path_exits_2_with_one_line():
    proc = subprocess.run(livejam_cmd("run", "--engine", "markov", "--record", "/proc/x.mid"), cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "/proc/x.mid" in proc.stderr
