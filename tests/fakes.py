"""The test fakes, shared by the test modules.

- FakeCallResponse: a tiny performer with known behaviour, for engine tests independent of the
  real performers: it answers each phrase (silence after all keys up) with the phrase's own
  notes shifted up an octave, and cancels on barge-in.
- session(): a Session on a virtual clock (no MIDI ports, no threads started), for the add-ons.
- FakeLink, FakePort, FakeJack: the port keeper's view of a MIDI system (ports listed, connected
  or not; JACK's connections), no MIDI system needed.
- FakeMidiSystem: the fake port backend a Daemon runs on (`Daemon(..., midi=FakeMidiSystem())`):
  its real threads, signals and shutdown, with an input the test plays into, an output that keeps
  what was sent, a keeper whose loss the test decides and a transport the test can kill.
"""
from __future__ import annotations

import threading
import time

from livejam.clock import VirtualClock
from livejam.config import DaemonConfig
from livejam.session import Session
from livejam.dispatch import Dispatcher
from livejam.events import TimedNote
from livejam.midi.normalise import InputNormaliser
from livejam.midi.ports import InputQueue
from livejam.midi.xruns import XrunWatch
from livejam.performers.base import Cancel, PerformerBase
from livejam.recording import Recorder
from livejam.scheduler import Scheduler


class FakeCallResponse(PerformerBase):  # keeps the chart it is given
    def __init__(self, silence_s: float = 0.5, lookahead_s: float = 0.01):
        self.silence_s = silence_s
        self.lookahead_s = lookahead_s
        self.held: set[int] = set()
        self.phrase: list[TimedNote] = []
        self.last = None
        self.answer: list[TimedNote] = []  # decided, handed out as they come within the lookahead
        self.out: list = []
        self.counters = {"answers": 0, "cancels": 0}

    def hear(self, note: TimedNote, now: float) -> None:
        if note.velocity > 0:
            if self.answer or self.out:
                self.answer, self.out = [], [Cancel(now)]
                self.counters["cancels"] += 1
            self.held.add(note.pitch)
        else:
            self.held.discard(note.pitch)
        self.phrase.append(note)
        self.last = now

    def control(self, number: int, value: int, now: float) -> None:
        pass

    def poll(self, now: float) -> list:
        if self.phrase and not self.held and now >= self.last + self.silence_s:
            start = self.phrase[0].time
            base = now + self.lookahead_s
            self.answer = [TimedNote(base + n.time - start, 0, min(127, n.pitch + 12), n.velocity)
                           for n in self.phrase]
            self.phrase = []
            self.counters["answers"] += 1
        while self.answer and self.answer[0].time <= now + self.lookahead_s:
            self.out.append(self.answer.pop(0))
        out, self.out = self.out, []
        return out

    def next_wakeup(self, now: float) -> float:
        if self.answer:
            return max(now, self.answer[0].time - self.lookahead_s)
        if self.phrase and not self.held:
            return max(now, self.last + self.silence_s)
        return now + 0.25

    def close(self, now: float) -> list[TimedNote]:
        return []  # relies on the engine's ledger/panic to end what sounds


def session(performer, config=None):
    config = config or DaemonConfig()
    clock = VirtualClock(10.0)
    sched = Scheduler(clock, lambda port, msg, t: None, channels=config.midi.machine_channels)
    normaliser = InputNormaliser()
    return Session(config, clock, sched, Dispatcher(performer, sched, normaliser), Recorder(10.0),
                   InputQueue(64), normaliser, None)


class FakeLink:
    """The ports there are (what rtmidi lists) and what our port is connected to (what JACK says)."""

    def __init__(self, *ports: str):
        self.there = list(ports)
        self.attached_to: set[str] = set()
        self.refuse = False

    def ports(self):
        return list(self.there)

    def exists(self, target):
        return target in self.there

    def attached(self, target):
        return target in self.attached_to

    def connect(self, target):
        if self.refuse:
            return False
        self.attached_to.add(target)
        return True

    def disconnect(self):
        pass

    def vanish(self, name):
        self.there.remove(name)
        self.attached_to.discard(name)


class FakePort:
    def __init__(self, wanted="", own="livejam out:out"):
        self.wanted, self.own_port, self.port_name, self.dead = wanted, own, own, False


class FakeJack:
    """Connections of livejam's output (`conn`) and of its input (`ins`, ports named ...:in)."""

    def __init__(self):
        self.conn: set[str] = set()
        self.ins: set[str] = set()

    def connections(self, port):
        return frozenset(self.ins if port.endswith(":in") else self.conn)


class FakeInput:
    """livejam's input port: the test plays into it as rtmidi's callback thread would."""

    own_port = port_name = "livejam in:in"

    def __init__(self, system: "FakeMidiSystem", callback):
        self.system, self.callback = system, callback
        self.left_open = self.closed = False

    def play(self, *raw: int) -> None:
        if not self.system.dead:  # a dead transport delivers nothing, heartbeats included
            self.callback(([*raw], 0.0), None)

    def close(self) -> None:
        self.closed = True


class FakeOutput:
    """livejam's output port: keeps (monotonic time, bytes) of everything sent."""

    own_port = port_name = "livejam out:out"
    existing = False

    def __init__(self, fail_on_send: bool = False):
        self.sent: list[tuple[float, list[int]]] = []
        self.dead = self.closed = False
        self.fail_on_send = fail_on_send
        self._lock = threading.Lock()

    def send(self, msg) -> None:
        if self.dead:  # as MidiOutput: nothing reaches a synth on a dead transport
            return
        if self.fail_on_send:
            raise OSError("the synth's port vanished under a send")
        with self._lock:
            self.sent.append((time.monotonic(), msg.bytes()))

    def messages(self) -> list[list[int]]:
        with self._lock:
            return [raw for _, raw in self.sent]

    def sounding(self) -> set[tuple[int, int]]:
        """(channel, key) of the notes still on at the end of what was sent (all notes off counted)."""
        on: set[tuple[int, int]] = set()
        for raw in self.messages():
            kind, channel = raw[0] & 0xF0, raw[0] & 0x0F
            if kind == 0x90 and raw[2] > 0:
                on.add((channel, raw[1]))
            elif kind in (0x80, 0x90):
                on.discard((channel, raw[1]))
            elif kind == 0xB0 and raw[1] == 123:
                on = {k for k in on if k[0] != channel}
        return on

    def close(self) -> None:
        self.closed = True


class FakeKeeper:
    """The keeper of named ports: `lost` is what poll() reports (a port gone with --exit-on-port-loss)."""

    def __init__(self):
        self.lost: str | None = None

    def listening_now(self) -> bool:
        return False

    def poll(self) -> str | None:
        return self.lost


class FakeHeartbeat:
    def __init__(self, inp: FakeInput):
        self.inp, self.sent = inp, 0

    def beat(self) -> None:
        self.sent += 1
        self.inp.play(0xF7)

    def close(self) -> None:
        pass


class FakeMidiSystem:
    """livejam.midi.system.MidiSystem's five answers, in this process: see the module docstring."""

    name = "fake"
    output_elsewhere = False  # the output port is this process's: the scheduler runs here

    def __init__(self, fail_on_send: bool = False):
        self.dead = False
        self.ready = threading.Event()  # the ports are open: the test may play
        self.out = FakeOutput(fail_on_send)
        self.inp: FakeInput | None = None
        self.keeper = FakeKeeper()
        self.beats: FakeHeartbeat | None = None
        self.reactions: dict = {}

    def open_ports(self, cfg, callback, output=None, **reactions):
        self.inp, self.reactions = FakeInput(self, callback), reactions
        self.ready.set()
        return self.inp, self.out, self.keeper

    def heartbeat(self, target: str, client: str) -> FakeHeartbeat:
        self.beats = FakeHeartbeat(self.inp)
        return self.beats

    def xruns(self, client: str) -> XrunWatch:
        return XrunWatch()  # not JACK: nothing to count

    def alive(self) -> bool:
        return not self.dead
