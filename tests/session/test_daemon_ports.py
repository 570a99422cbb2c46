"""`Daemon.run` with its real threads, signal handlers, health watch and shutdown, on the fake
port backend (tests/fakes.py FakeMidiSystem): no MIDI system needed. Every exit path ends
every note it started; the JACK tests (tests/jack/) do the same over a real transport.

The test plays from a thread of its own while the daemon runs on the main thread, as in
`livejam run` (only the main thread installs signal handlers). Conditions are waited for
with generous deadlines, never timed.
"""
from __future__ import annotations

import os
import signal
import threading

import mido
import pytest

from livejam.config import DaemonConfig, load
from livejam.daemon import Daemon
from livejam.performers.echo import EchoPerformer

from tests.fakes import FakeMidiSystem
from tests.jack.jack_player import wait_for

NOTE_ON, NOTE_OFF = (0x90, 60, 100), (0x80, 60, 0)


def run_daemon(script, *overrides: str, system: FakeMidiSystem | None = None, performer=None,
               record_path=None):
    """Run a Daemon on the fake backend until it stops; `script(daemon, system)` plays meanwhile."""
    system = system or FakeMidiSystem()
    cfg = load(DaemonConfig, None, ['performer.kind="echo"', "record.enabled=false", *overrides])
    daemon = Daemon(cfg, performer=performer, record_path=record_path, midi=system)
    failures: list[BaseException] = []

    def drive() -> None:
        try:
            assert system.ready.wait(30), "the daemon never opened its ports"
            script(daemon, system)
        except BaseException as e:  # shown below, after the daemon stopped
            failures.append(e)
            daemon.request_stop("the test's script failed")

    player = threading.Thread(target=drive, name="test player", daemon=True)
    player.start()
    try:
        result = daemon.run()
    finally:
        daemon.restore_signals()
    player.join(30)
    assert not failures, failures
    return daemon, result, system


def echoed(system: FakeMidiSystem) -> bool:
    return [0x90, 60, 100] in system.out.messages()


def key_down(system: FakeMidiSystem) -> None:
    """Press key 60 and hold it; return once the machine's echo of it sounds."""
    system.inp.play(*NOTE_ON)
    assert wait_for(lambda: echoed(system), 30)


def test_a_held_note_is_answered_and_ended_at_stop():
    def script(daemon, system):
        key_down(system)  # and never let go
        assert wait_for(lambda: system.beats.sent > 0, 30)  # idle input: a heartbeat went in
        daemon.request_stop()

    daemon, result, system = run_daemon(script)
    assert (result.rc, result.reason) == (0, "stopped")
    assert system.out.sounding() == set() and result.summary["sounding_at_exit"] == 0
    assert system.inp.closed and system.out.closed
    assert result.summary["input"]["heartbeats"] > 0 and result.summary["input"]["received"] == 1
    assert not result.hard_exit


def test_sigterm_mid_note_ends_in_the_same_shutdown():
    def script(daemon, system):
        key_down(system)
        os.kill(os.getpid(), signal.SIGTERM)  # the handler runs on the main thread: the daemon's

    daemon, result, system = run_daemon(script)
    assert (result.rc, result.reason) == (0, "SIGTERM")
    assert system.out.sounding() == set()
    assert signal.getsignal(signal.SIGTERM) is not daemon._on_signal  # put back


class FailsOnSecondKey(EchoPerformer):
    def hear(self, note, now):
        if note.pitch == 61:
            raise RuntimeError("a bug in the performer")
        super().hear(note, now)


def test_a_performer_that_raises_stops_the_session_with_its_notes_ended():
    def script(daemon, system):
        key_down(system)
        system.inp.play(0x90, 61, 100)

    daemon, result, system = run_daemon(script, performer=FailsOnSecondKey())
    assert result.rc == 1 and result.reason == "performer failed: RuntimeError: a bug in the performer"
    assert system.out.sounding() == set()


def test_a_port_lost_with_exit_on_port_loss_stops_and_ends_the_notes():
    def script(daemon, system):
        key_down(system)
        system.keeper.lost = "output port lost: synth:in"

    daemon, result, system = run_daemon(script)
    assert result.rc == 1 and result.reason == "output port lost: synth:in"
    assert system.out.sounding() == set()


def test_a_dead_midi_system_is_noticed_by_its_silence_and_stops():
    def script(daemon, system):
        key_down(system)
        system.dead = True  # nothing arrives any more, heartbeats included, and no client can be made

    daemon, result, system = run_daemon(script)
    assert result.rc == 1 and result.reason == "JACK server died"
    assert system.out.dead and result.hard_exit  # nothing was sent to a dead server's ring
    assert result.summary["sounding_at_exit"] == 0  # the ledger let go of what could not be ended


def test_a_failing_send_stops_the_session_and_the_recording_is_still_saved(tmp_path):
    path = tmp_path / "session.mid"

    def script(daemon, system):
        key_down(system)
        system.inp.play(*NOTE_OFF)
        assert wait_for(lambda: [0x80, 60, 0] in system.out.messages() or [0x90, 60, 0] in system.out.messages(), 30)
        system.out.fail_on_send = True  # the synth's port vanishes under the scheduler's next send
        system.inp.play(0x90, 62, 100)

    daemon, result, system = run_daemon(script, "record.enabled=true", record_path=path)
    assert result.rc == 1 and result.reason == "scheduler failed"
    assert "OSError" in result.summary["error"]
    assert daemon.recording == path
    notes = [(track.name, m.note) for track in mido.MidiFile(path).tracks for m in track if m.type == "note_on"]
    assert {n for _, n in notes} >= {60, 62}  # the human's 60 and 62 (heard), the machine's 60 (sent)


class SlowToHear(EchoPerformer):
    """Hears its second key only when the test lets it: the input behind it queues up."""

    def __init__(self):
        super().__init__()
        self.hearing, self.go_on = threading.Event(), threading.Event()

    def hear(self, note, now):
        if note.pitch == 61:
            self.hearing.set()
            self.go_on.wait(30)
        super().hear(note, now)


@pytest.mark.parametrize("stop", ["stop", "SIGINT"])
def test_backlogged_input_is_counted_not_played_after_stop(stop):
    """A stop with input still queued: the performer thread ends after the item it is on, the
    rest is counted as discarded, and nothing sounds after the shutdown."""
    performer = SlowToHear()

    def script(daemon, system):
        key_down(system)
        system.inp.play(0x90, 61, 100)
        assert performer.hearing.wait(30)
        for key in range(70, 80):  # queued behind the performer
            system.inp.play(0x90, key, 100)
        if stop == "SIGINT":
            os.kill(os.getpid(), signal.SIGINT)
        else:
            daemon.request_stop()
        assert wait_for(lambda: daemon._stopping, 30)  # the shutdown has begun: no more items
        performer.go_on.set()

    daemon, result, system = run_daemon(script, performer=performer)
    assert (result.rc, result.reason) == (0, "stopped" if stop == "stop" else "SIGINT")
    assert result.summary["input"]["discarded_at_stop"] == 10
    assert not any(raw[0] == 0x90 and raw[1] >= 70 for raw in system.out.messages())
    assert system.out.sounding() == set()


def test_the_performer_is_polled_at_the_time_after_hearing():
    """Hearing may run the model (a chord read flushes the deferred rows). What the performer ends
    "now" in the poll that follows must carry the time it is handed over, not the time the input was
    taken: the poll reads the clock again (notes ended at the stale time were handed over late)."""
    from livejam.midi.ports import InputQueue

    class Clock:  # each read a millisecond on; hearing takes 5 ms
        t = 100.0

        def now(self):
            self.t += 0.001
            return self.t

    clock = Clock()

    class Dispatcher:
        fed, pumped = [], []

        def wakeup(self, now):
            return now

        def feed(self, t, raw, now):
            self.fed.append(now)
            clock.t += 0.005

        def pump(self, now):
            self.pumped.append(now)
            host._stopping = bool(self.fed)

    class Host:  # the parts of a Daemon its performer loop reads
        _stopping = False
        config = load(DaemonConfig, overrides=["scheduler.performer_nice=0"])
        error = None

        def request_stop(self, why):
            raise AssertionError(why)

    host, dispatcher, inq = Host(), Dispatcher(), InputQueue()
    inq.put(99.9, [0x90, 60, 100])
    Daemon._performer_loop(host, dispatcher, inq, clock)
    assert len(dispatcher.fed) == 1 and dispatcher.pumped[-1] >= dispatcher.fed[0] + 0.005
