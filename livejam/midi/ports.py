"""Thin rtmidi port adapters, backend selection, and the callback-to-thread queue.

Everything above this module is testable without a MIDI system. Backend
choice: rtmidi's default API when it works; JACK when a JACK server runs and
the default is unusable (these machines have no ALSA sequencer: creating an
ALSA port raises rtmidi.SystemError, an OSError); `--backend` overrides.
"""
from __future__ import annotations

import os
import queue
import threading
import time
from typing import Callable

import rtmidi

from livejam import quiet_stderr
from livejam.midi.spec import Message

# Never let the JACK client library start a server behind our back (it would
# pick ~/.jackdrc settings and outlive us); we only use servers that run.
os.environ.setdefault("JACK_NO_START_SERVER", "1")

BACKENDS = {
    "default": rtmidi.API_UNSPECIFIED,
    "alsa": rtmidi.API_LINUX_ALSA,
    "jack": rtmidi.API_UNIX_JACK,
    "coremidi": rtmidi.API_MACOSX_CORE,
    "winmm": rtmidi.API_WINDOWS_MM,
}


class MidiUnavailable(RuntimeError):
    """No usable MIDI system; the message is one line telling what to do."""




def _probe(api: int) -> tuple[int | None, str]:
    """(API really in use, '') if a client can be created, else (None, error)."""
    try:
        with quiet_stderr():
            midi = rtmidi.MidiOut(api, name="livejam-probe")
            current = midi.get_current_api()
            midi.delete()
        return current, ""
    except (rtmidi.RtMidiError, OSError) as e:
        return None, str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def api_name(api: int) -> str:
    return rtmidi.get_api_name(api)


def select_backend(name: str = "auto") -> int:
    """The rtmidi API to use; raises MidiUnavailable with a one-line reason."""
    compiled = set(rtmidi.get_compiled_api())
    if name != "auto":
        if name not in BACKENDS:
            raise MidiUnavailable(f"unknown MIDI backend {name!r}; choose one of auto, {', '.join(BACKENDS)}")
        api = BACKENDS[name]
        if api != rtmidi.API_UNSPECIFIED and api not in compiled:
            raise MidiUnavailable(f"MIDI backend {name} is not compiled into python-rtmidi here")
        current, err = _probe(api)
        if current is None:
            hint = " (start one: jackd -d dummy -r 48000 -p 64 &)" if api == rtmidi.API_UNIX_JACK else ""
            raise MidiUnavailable(f"MIDI backend {name} is not usable: {err}{hint}")
        return current
    current, default_err = _probe(rtmidi.API_UNSPECIFIED)
    if current is not None:
        return current
    if rtmidi.API_UNIX_JACK in compiled:
        current, _ = _probe(rtmidi.API_UNIX_JACK)
        if current is not None:
            return current
    raise MidiUnavailable(
        f"no usable MIDI system: the default MIDI API failed ({default_err}) and no JACK server is running; "
        "start one (e.g. `jackd -d dummy -r 48000 -p 64 &`) or run `make run`, which does")


def port_names(midi) -> list[str]:
    """The names of the ports an rtmidi object sees. rtmidi counts the ports and then
    asks each one's name, so a port that vanishes between the two (a device
    unplugged, a client killed) raises InvalidPortError: the list changed under us,
    so ask again; after a few tries the system is churning and the list is empty."""
    for _ in range(5):
        try:
            return midi.get_ports()
        except rtmidi.InvalidPortError:
            time.sleep(0.005)
    return []


def list_ports(api: int) -> tuple[list[str], list[str]]:
    """(input port names, output port names) as seen by this backend."""
    with quiet_stderr():
        midi_in = rtmidi.MidiIn(api, name="livejam-list")
        midi_out = rtmidi.MidiOut(api, name="livejam-list-out")
    try:
        return port_names(midi_in), port_names(midi_out)
    finally:
        midi_in.delete()
        midi_out.delete()


def _open_virtual(midi, name: str) -> None:
    """A virtual port; Windows' MIDI API has none, so say what to do instead."""
    try:
        midi.open_virtual_port(name)
    except (NotImplementedError, rtmidi.RtMidiError) as e:
        raise MidiUnavailable(f"this MIDI backend cannot create virtual ports ({type(e).__name__}): create ports "
                              "with loopMIDI (Windows) or the IAC driver (macOS) and pass --in NAME --out NAME") from None


def _find(ports: list[str], wanted: str, own_prefix: str) -> int:
    """Index of the first port whose name contains `wanted`, skipping our own ports."""
    for i, name in enumerate(ports):
        if wanted.lower() in name.lower() and not name.startswith(own_prefix):
            return i
    raise MidiUnavailable(f"no MIDI port matching {wanted!r}; available: {', '.join(ports) or 'none'}")


def _index(ports: list[str], target: str) -> int:
    if target not in ports:
        raise MidiUnavailable(f"MIDI port {target!r} is not there")
    return ports.index(target)


class InputQueue:
    """Bounded hand-off from the MIDI callback to the performer thread.

    Callback contract: count, timestamp and append, nothing else: no logging,
    no Python-level lock, never blocks, never raises. queue.SimpleQueue's put
    is a C call that cannot block; the bound is enforced by a size check and
    overflow is counted (only the callback thread writes the counters). Once
    `close`d, the callback only counts (`after_close`): the port may still
    deliver, but nothing reaches the performer any more.
    """

    STOP = None
    INPUT_LOST = ("input lost",)  # the input port vanished: the performer thread lets go of held keys

    def __init__(self, maxsize: int = 4096):
        self.maxsize = maxsize
        self.arrived = 0  # every callback, whatever became of it
        self.overflow = 0
        self.after_close = 0
        self.closed = False
        self._q: queue.SimpleQueue = queue.SimpleQueue()

    def callback(self, event, data=None, _now=time.perf_counter) -> None:
        self.arrived += 1
        if self.closed:
            self.after_close += 1
            return
        q = self._q
        if q.qsize() >= self.maxsize:
            self.overflow += 1
            return
        q.put((_now(), event[0]))

    def put(self, t: float, raw) -> None:
        """Enqueue from code (tests, simulation) with an explicit timestamp."""
        self.callback((raw, 0.0), _now=lambda: t)

    def close(self) -> None:
        self.closed = True

    def stop(self) -> None:
        self._q.put(self.STOP)  # the sentinel bypasses the bound: stopping must always work

    def input_lost(self) -> None:
        self._q.put(self.INPUT_LOST)  # bypasses the bound too: held keys must be let go

    def get(self, timeout: float | None):
        """Next (time, raw) or STOP; raises queue.Empty after `timeout`."""
        return self._q.get(timeout=timeout)

    def drain(self) -> int:
        """Empty the queue (the performer has stopped); how many messages were left."""
        n = 0
        while True:
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                return n
            if item is not self.STOP and item is not self.INPUT_LOST:
                n += 1


class MidiInput:
    """An rtmidi input: a virtual port, or a connection to a port found by name.

    SysEx always passes rtmidi (the normaliser ignores it): rtmidi joins every
    event after an unterminated SysEx into it until a byte F7 comes, and only
    when it hands that over can the input recover (see InputHeartbeat).

    `kept` (the daemon's): a named port is connected by a Keeper (midi/keeper.py),
    which waits for it and reconnects it. On JACK our own port is virtual and
    libjack connects the target to it: never closed (below); on other backends
    rtmidi's port is opened on the target (`open_target`) and closed when it
    vanishes (`close_target`). Without `kept` a named port is connected at once
    or MidiUnavailable says what is there (`livejam learn`).

    Closing: rtmidi's JACK backend unregisters the port while its client is
    still active, so a JACK process thread in the middle of a callback (a
    flood) reads a freed port and the process crashes (issue 10 #1), and
    cancel_callback races the same thread. On JACK the port is therefore left
    open: `close` leaves the callback in place (the queue is closed, so it only
    counts) and `left_open` tells the owner to end the process without
    finalising the interpreter (os._exit), which removes the client whole.
    """

    def __init__(self, api: int, callback: Callable, name: str = "", client: str = "livejam in",
                 ignore_active_sensing: bool = True, kept: bool = False):
        with quiet_stderr():
            self._midi = rtmidi.MidiIn(api, name=client)
        self.api = self._midi.get_current_api()
        self.jack = self.api == rtmidi.API_UNIX_JACK
        # MIDI clock must come through (tempo sync); active sensing is cheaper
        # to drop inside rtmidi than after a callback. SysEx is let through here and
        # dropped (or kept) by the normaliser, which also recovers an unterminated one.
        self._midi.ignore_types(sysex=False, timing=False, active_sense=ignore_active_sensing)
        self._midi.set_callback(callback)
        self.own_port = f"{client}:in"  # the port's own name, for connecting to it
        self.wanted = name if kept else ""
        if name and not kept:
            self._midi.open_port(_find(port_names(self._midi), name, client), name="in")
            self.port_name = name
        elif name and not self.jack:
            self.port_name = f"(waiting for {name!r})"  # opened by the keeper
        else:
            _open_virtual(self._midi, "in")
            self.port_name = f"(waiting for {name!r})" if name else self.own_port
        self.left_open = False

    def available(self) -> list[str]:
        """The ports this input could listen to (other clients' outputs)."""
        return port_names(self._midi)

    def open_target(self, target: str) -> None:
        """Other backends than JACK: open rtmidi's port on `target` (closing the previous one)."""
        index = _index(port_names(self._midi), target)
        self._midi.close_port()
        self._midi.open_port(index, name="in")

    def close_target(self) -> None:
        self._midi.close_port()

    def close(self) -> None:
        if self.jack:
            self.left_open = True
            return
        self._midi.cancel_callback()
        self._midi.close_port()
        self._midi.delete()


class InputHeartbeat:
    """A small output connected to our own input that sends a lone EOX (F7).

    It does two jobs: the F7 ends any unterminated SysEx rtmidi is collecting
    (so a stray `F0 7E 01` deafens the input for at most one beat, and what it
    swallowed comes out and is recovered by the normaliser), and its arrival
    proves the transport still runs: silence despite beats means the MIDI
    system (the JACK server) is gone. The normaliser counts lone F7s as
    heartbeats, not input.
    """

    def __init__(self, api: int, target: str, client: str = "livejam heartbeat"):
        with quiet_stderr():
            self._midi = rtmidi.MidiOut(api, name=client)
        self.api = api
        ports = port_names(self._midi)
        index = next((i for i, p in enumerate(ports) if p == target or p.endswith(target)), None)
        if index is None:
            self._midi.delete()
            raise MidiUnavailable(f"heartbeat: our own input {target!r} is not listed")
        self._midi.open_port(index, name="out")
        self.sent = 0

    def beat(self) -> None:
        self._midi.send_message([0xF7])
        self.sent += 1

    def close(self) -> None:
        if self.api != rtmidi.API_UNIX_JACK:  # JACK: left to the process's end, as MidiInput
            self._midi.close_port()
            self._midi.delete()


def transport_alive(api: int) -> bool:
    """True when a new client of this backend can still be created (the JACK server runs)."""
    return _probe(api)[0] is not None


class MidiOutput:
    """An rtmidi output: a virtual port, or (named) a connection to a port a Keeper
    (midi/keeper.py) finds, waits for and reconnects. On JACK our own port is
    virtual and libjack connects it to the target, so it is never closed; on other
    backends rtmidi's port is opened on the target (`open_target`) and closed when
    the target vanishes (`close_target`), under a lock that sends take too (only a
    reopening ever waits for it)."""

    def __init__(self, api: int, name: str = "", client: str = "livejam out"):
        with quiet_stderr():
            self._midi = rtmidi.MidiOut(api, name=client)
        self.jack = self._midi.get_current_api() == rtmidi.API_UNIX_JACK
        self.wanted = name
        self._lock = threading.Lock()
        self._open = not name or self.jack
        if self._open:
            _open_virtual(self._midi, "out")
        self.own_port = f"{client}:out"  # the port's own name (JACK), for connecting and watching it
        self.port_name = f"(waiting for {name!r})" if name else self.own_port
        self.existing = bool(name)  # connected to a port that was there before us (a synth)
        self.dead = False  # set when the MIDI system died: sends would fill rtmidi's ring and block
        self.send_errors = 0

    def send(self, msg: Message, at: float | None = None) -> None:
        """Send now (rtmidi has no timestamps: `at`, the time it is meant for, is not used)."""
        if self.dead:  # nothing can reach a synth any more; never block trying
            return
        with self._lock:
            if not self._open:  # the target vanished (not JACK): nothing to send to
                return
            try:
                self._midi.send_message(msg.bytes())
            except rtmidi.RtMidiError:  # a device unplugged under a send (untested here: not JACK)
                self.send_errors += 1

    def available(self) -> list[str]:
        """The ports this output could connect to (other clients' inputs)."""
        return port_names(self._midi)

    def open_target(self, target: str) -> None:
        """Other backends than JACK: open rtmidi's port on `target` (closing the previous one)."""
        index = _index(port_names(self._midi), target)
        with self._lock:
            if self._open:
                self._midi.close_port()
            self._open = False
            self._midi.open_port(index, name="out")
            self._open = True

    def close_target(self) -> None:
        with self._lock:
            if self._open:
                self._midi.close_port()
            self._open = False

    def close(self) -> None:
        if self.dead:  # closing talks to the server: with none left it could hang
            return
        with self._lock:
            if self._open:
                self._midi.close_port()
            self._open = False
        self._midi.delete()
