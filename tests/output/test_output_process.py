"""The output process (livejam/output/): its command loop on a virtual clock, then the real process
(no transport: what it sends is only reported) driven through its pipes as the daemon drives it."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from livejam.clock import RealClock, VirtualClock
from livejam.config import DaemonConfig
from livejam.events import TimedNote
from livejam.midi.normalise import EchoFilter
from livejam.output.child import NoPort, OutputServer
from livejam.output.remote import OutputLost, OutputProcess
from livejam.output.wire import COUNTERS, DONE, SENT
from livejam.scheduler import build_scheduler

CFG = DaemonConfig()


class Pipe:
    """One end of a pipe, in this process: commands to poll, reports kept."""

    def __init__(self, items=()):
        self.items, self.sent = list(items), []

    def poll(self, timeout):
        return True  # as a real pipe's end: readable with an item, or at end of file

    def recv(self):
        if not self.items:
            raise EOFError
        return self.items.pop(0)

    def send(self, item):
        self.sent.append(item)


def notes(t0: float, pitches, held: float = 0.2) -> list[TimedNote]:
    out = []
    for i, p in enumerate(pitches):
        out += [TimedNote(t0 + 0.1 * i, 0, p, 90), TimedNote(t0 + 0.1 * i + held, 0, p, 0)]
    return out


def sent_of(reports: list) -> list:
    return [x for item in reports if item[0] == SENT for x in item[1]]


def test_commands_drive_the_scheduler_in_order_and_on_time_on_a_virtual_clock():
    clock = VirtualClock()
    commands, reports = Pipe(), Pipe()
    server = OutputServer(commands, reports, lambda sink: build_scheduler(CFG, clock, sink), NoPort())
    assert server.handle(("notes", list(reversed(notes(1.0, [60, 64, 67])))))
    server.scheduler.run_until(1.15)
    server.report()
    assert [(t, m.kind, m.note) for _, m, t, _ in sent_of(reports.sent)] == [
        (1.0, "note_on", 60), (1.1, "note_on", 64)]  # in time order, each at its time
    assert server.handle(("cancel",))  # barge-in: what sounds ends now, the rest never goes
    server.scheduler.run_until(2.0)
    assert server.handle(("stop", True))
    assert reports.sent[-1] == (DONE, "stop")
    sent = sent_of(reports.sent)
    assert [(m.kind, m.note) for _, m, _, _ in sent[2:]] == [("note_off", 60), ("note_off", 64)]
    assert all(t == 1.15 for _, _, t, _ in sent[2:])
    counters = [item for item in reports.sent if item[0] == COUNTERS][-1]
    assert counters[1]["cancelled"] == 4 and counters[3] == []  # nothing sounding
    assert not server.handle(("close",))


def test_the_main_process_gone_ends_every_note_it_sent():
    clock = VirtualClock()
    commands = Pipe([("notes", [TimedNote(0.5, 0, 60, 90), TimedNote(0.5, 1, 48, 90)])])
    reports = Pipe()
    server = OutputServer(commands, reports, lambda sink: build_scheduler(CFG, clock, sink), NoPort())
    server.handle(commands.recv())
    server.scheduler.run_until(1.0)
    server.serve()  # end of file on the command pipe: the main process died
    ons = {(m.channel, m.note) for _, m, _, _ in server.sent if m.kind == "note_on"}
    offs = {(m.channel, m.note) for _, m, _, _ in server.sent if m.kind == "note_off"}
    assert len(ons) == 2 and ons <= offs


@pytest.fixture
def output():
    sent = []
    proc = OutputProcess(CFG, EchoFilter(), lambda port, msg, t: sent.append((port, msg, t)))
    proc.open_port(None, "", "livejam test out")
    yield proc, sent
    proc.close()


def test_notes_handed_ahead_are_sent_at_their_time_in_order(output):
    proc, sent = output
    proc.panic(startup=True)  # answered: what it sent is reported when it returns
    assert sent and all(m.kind == "control_change" for _, m, _ in sent)
    del sent[:]
    proc.start()
    t0 = RealClock().now() + 0.3
    given = notes(t0, range(60, 70), held=0.05)
    proc.submit(list(reversed(given)))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.counters.timed < len(given):
        time.sleep(0.05)
    played = [(t, m) for _, m, t in sent]
    assert [(m.kind, m.note) for _, m in played] == [
        ("note_on" if n.velocity else "note_off", n.pitch) for n in sorted(given, key=lambda n: n.time)]
    assert all(t >= n.time - 1e-4 for (t, _), n in zip(played, sorted(given, key=lambda n: n.time)))
    assert proc.counters.timed == len(given) and proc.counters.dropped_late == 0
    assert proc.ledger.sounding() == []


def test_cancel_and_panic_go_through_the_pipe(output):
    proc, sent = output
    proc.start()
    now = RealClock().now()
    proc.submit([TimedNote(now, 0, 60, 90), TimedNote(now + 30, 0, 60, 0), TimedNote(now + 30, 0, 62, 90)])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not proc.ledger.sounding():
        time.sleep(0.02)
    assert proc.ledger.sounding()
    proc.cancel()
    proc.stop()
    proc.panic(all_notes=True)
    kinds = [(m.kind, m.note) for _, m, _ in sent if m.channel == CFG.midi.machine_channels[0]]
    assert kinds[0] == ("note_on", 60) and ("note_off", 60) in kinds and ("note_on", 62) not in kinds
    assert proc.counters.cancelled == 2 and proc.ledger.sounding() == []
    # the panic with all_notes: a note-off for every note, on the machine's channels
    offs = {(m.channel, m.note) for _, m, _ in sent if m.kind == "note_off"}
    assert {(c, n) for c in CFG.midi.machine_channels for n in range(128)} <= offs


def test_the_process_killed_is_said_once_and_commands_then_return(output, caplog):
    proc, sent = output
    proc.start()
    os.kill(proc._proc.pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.error is None:
        time.sleep(0.02)
    assert isinstance(proc.error, OutputLost) and "killed by signal 9" in str(proc.error)
    assert not proc.alive()
    proc.submit([TimedNote(0.0, 0, 60, 90)])  # nothing to hand to: returns at once
    proc.stop()
    proc.panic()
    assert sum("the output process ended" in r.getMessage() for r in caplog.records) == 1


def test_the_output_process_runs_at_the_niceness_asked_for_and_says_which():
    """scheduler.output_nice is asked for before the port opens, so every thread of the process has it;
    a raise (5) is always allowed, so this checks the mechanism whoever runs the tests."""
    from livejam.config import load

    proc = OutputProcess(load(DaemonConfig, None, ["scheduler.output_nice=5"]), EchoFilter(), lambda *a: None)
    proc.open_port(None, "", "livejam nice test")
    try:
        proc.start()  # the scheduler thread too, once the command is read
        deadline = time.monotonic() + 30
        while len(tasks := list(Path(f"/proc/{proc._proc.pid}/task").iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(tasks) == 2  # the command loop and the scheduler: no thread started before the niceness
        assert {int((t / "stat").read_text().rsplit(")", 1)[1].split()[16]) for t in tasks} == {5}
        proc.stop()  # answered: the counters come with the answer
        assert proc.counters.nice == 5
    finally:
        proc.close()
