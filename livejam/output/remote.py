"""The output process as the main process sees it: `OutputProcess` stands where the Scheduler
stands (the Dispatcher submits to it, the keeper resets it, the daemon stops and panics it) and
hands everything to the output process (livejam/output/child.py) through the command pipe.

What the scheduler's sink did in the main process is split in two: what must happen before a
message goes out (the echo filter learns it: its echo may come back before the report does) is
done when it is handed over, at its intended time; what reads what went out (the recording, the
status screen, OSC) is done by the reader thread from the output process's reports.

A pipe holds 64 KiB: the command pipe is the bounded channel the issue asks for. Nothing is lost
when it is full; the sender waits, and the output process reads it all the time.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections import deque
from typing import Callable, Iterable

import rtmidi

from livejam.config import DaemonConfig
from livejam.events import TimedNote
from livejam.midi.ledger import LedgerCounters
from livejam.midi.normalise import EchoFilter
from livejam.midi.ports import MidiUnavailable, port_names
from livejam.midi.spec import Message, note_off, note_on
from livejam.output.wire import ANSWERED, COUNTERS, DONE, ERROR, READY, SENT, reader_for_child, writer_for_child
from livejam.scheduler import SchedulerCounters, route

log = logging.getLogger(__name__)

_OPEN_S = 20.0  # the output process starts (imports, the port) within this long
_ANSWER_S = 5.0  # an answered command (stop, panic, close) is done within this long


class OutputLost(RuntimeError):
    """The output process ended while the session played."""


class LedgerView:
    """The ledger's counters and sounding notes as the output process last reported them."""

    def __init__(self):
        self.counters = LedgerCounters()
        self._sounding: list = []

    def sounding(self) -> list:
        return self._sounding


class OutputPort:
    """The output port (the output process's) as the keeper and the daemon see it: its name to connect
    it by (JACK: livejam/midi/keeper.py JackLink), what it could connect to, `dead`, `close()`."""

    def __init__(self, remote: "OutputProcess", api: int, wanted: str, own_port: str, client: str):
        self.remote, self.wanted, self.own_port = remote, wanted, own_port
        self.port_name = f"(waiting for {wanted!r})" if wanted else own_port
        self.existing = bool(wanted)
        self._api, self._client = api, client
        self._lister = None  # an rtmidi client with no port, to list the others': made when first asked
        self._dead = False

    @property
    def dead(self) -> bool:
        return self._dead

    @dead.setter
    def dead(self, value: bool) -> None:
        if value and not self._dead:
            self.remote.command("dead")
        self._dead = value

    def available(self) -> list[str]:
        if self._api is None:  # no transport (the tests' output process): nothing to connect to
            return []
        if self._lister is None:
            self._lister = rtmidi.MidiOut(self._api, name=f"{self._client} list")
        return port_names(self._lister)

    def close(self) -> None:
        self.remote.close()
        if self._lister is not None and not self._dead:  # deleting talks to the server: none left, it could hang
            self._lister.delete()


class OutputProcess:
    """The Scheduler's interface, served by the output process. `open_port(api, client)` starts it
    (the keeper's `open_ports` calls it where it would open a MidiOutput); `delivered(port, msg, t)`
    is called on the reader thread for each message sent (port as the Scheduler's sink has it)."""

    port, thru_port, aside_port = 0, 1, 2  # as Scheduler's with port 0

    def __init__(self, config: DaemonConfig, echo: EchoFilter, delivered: Callable[[int, Message, float], None]):
        self.config = config
        self.echo, self.delivered = echo, delivered
        self.channels = config.midi.machine_channels
        self.thru_channel = config.midi.thru_channel if config.midi.thru else None
        self.realtime_priority = config.scheduler.realtime_priority
        self.counters = SchedulerCounters()
        self.ledger = LedgerView()
        self.error: BaseException | None = None
        self._proc: subprocess.Popen | None = None
        self._commands = None
        self._lock = threading.Lock()  # the performer thread, the main thread and the keeper all command
        self._answers: deque = deque()
        self._answered = threading.Condition()
        self._reader: threading.Thread | None = None
        self._started = False
        self._closed = False

    # --- start ----------------------------------------------------------------------
    def open_port(self, api: int | None, wanted: str, client: str) -> OutputPort:
        """Start the output process with its port `client`:out; raises MidiUnavailable when it fails."""
        cmd_fd, self._commands = reader_for_child()
        rep_fd, reports = writer_for_child()
        try:
            # numpy's BLAS would start a thread pool at import that nothing here uses (and that would
            # miss the niceness asked for later): one thread, none started
            env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
            self._proc = subprocess.Popen([sys.executable, "-m", "livejam.output.child", str(cmd_fd), str(rep_fd)],
                                          pass_fds=(cmd_fd, rep_fd), start_new_session=True, env=env)
        finally:
            os.close(cmd_fd)
            os.close(rep_fd)
        self._commands.send(("open", self.config, api, client))
        if not reports.poll(_OPEN_S):
            self._kill()
            raise MidiUnavailable(f"the output process did not start within {_OPEN_S:.0f} s")
        try:
            first = reports.recv()
        except EOFError:
            first = (ERROR, f"it ended with status {self._proc.wait()}")
        if first[0] != READY:
            self._kill()
            raise MidiUnavailable(f"the output process could not open its port: {first[1]}")
        self._reader = threading.Thread(target=self._read, args=(reports,), name="livejam-output-reports",
                                        daemon=True)
        self._reader.start()
        return OutputPort(self, api, wanted, first[1], client)

    # --- the Scheduler's interface ----------------------------------------------------
    def submit(self, notes: Iterable[TimedNote]) -> None:
        notes = list(notes)
        for n in notes:  # the echo filter learns each before it can come back (see the module docstring)
            msg = self._message(n)
            if msg is not None:
                self.echo.sent(msg, n.time)
        self.command("notes", notes)

    def submit_raw(self, items: Iterable[tuple[float, Message]]) -> None:
        items = list(items)
        if not items:
            return
        for t, msg in items:
            self.echo.sent(msg, t)
        self.command("raw", items)

    def send_now(self, msg: Message) -> None:
        self.command("send", msg)

    def cancel(self) -> None:
        self.command("cancel")

    def reset_output(self, all_notes: bool = True) -> None:
        self.command("reset", all_notes)

    def clear_for_listener(self) -> None:
        self.command("clear")

    def start(self) -> None:
        self._started = True
        self.command("start")

    def alive(self) -> bool:
        return self._started and self.error is None and self._proc is not None and self._proc.poll() is None

    def stop(self, flush: bool = True, timeout: float = 2.0) -> None:
        self.command("stop", flush)

    def panic(self, all_notes: bool = False, startup: bool = False) -> None:
        self.command("panic", all_notes, startup)

    def pending(self) -> int:
        return 0  # the output process holds them: asked only on a virtual clock, which never has one

    def close(self) -> None:
        """Close the port and let the output process end (killed if it does not within _ANSWER_S)."""
        if self._closed:
            return
        self._closed = True
        self.command("close")
        if self._proc is not None:
            try:
                self._proc.wait(_ANSWER_S)
            except subprocess.TimeoutExpired:
                log.error("the output process did not end within %.0f s: killed", _ANSWER_S)
                self._kill()

    # --- internals -------------------------------------------------------------------
    def command(self, name: str, *args) -> None:
        """Hand one command over; an answered one returns once the output process did it. Once the
        output process is gone there is nothing to hand to: the daemon is stopping (see `error`)."""
        if self.error is not None or self._commands is None:
            return
        with self._lock:
            try:
                self._commands.send((name, *args))
            except OSError:  # the reader says why, once
                return
        if name in ANSWERED:
            with self._answered:
                if not self._answered.wait_for(lambda: name in self._answers or self.error is not None, _ANSWER_S):
                    log.error("the output process did not answer %r within %.0f s", name, _ANSWER_S)
                if name in self._answers:
                    self._answers.remove(name)

    def _message(self, n: TimedNote) -> Message | None:
        """The message the output process will send for `n` (the Scheduler routes it the same way)."""
        channel = route(n.part, self.channels, self.thru_channel)
        if channel is None:
            return None
        return note_on(channel, n.pitch, min(127, n.velocity)) if n.velocity > 0 else note_off(channel, n.pitch)

    def _read(self, reports) -> None:
        """The reader thread: what the output process sent, its counters, answers, its end."""
        c = self.counters
        try:
            while True:
                item = reports.recv()
                kind = item[0]
                if kind == SENT:
                    for port, msg, t, lateness in item[1]:
                        if lateness is not None:  # as the scheduler counts it: before the message goes
                            c.lateness.append(lateness)
                            c.timed += 1
                        self.delivered(port, msg, t)
                elif kind == COUNTERS:
                    scalars, ledger, sounding = item[1:]
                    c.__dict__.update(scalars)
                    self.ledger.counters.__dict__.update(ledger)
                    self.ledger._sounding = sounding
                elif kind == ERROR:
                    self._fail(f"the output process failed: {item[1]}")
                elif kind == DONE:
                    with self._answered:
                        self._answers.append(item[1])
                        self._answered.notify_all()
        except (EOFError, OSError):
            if not self._closed:
                code = self._proc.wait() if self._proc is not None else None
                how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit status {code}"
                self._fail(f"the output process ended ({how})")

    def _fail(self, text: str) -> None:
        if self.error is None:
            self.error = OutputLost(text)
            log.error("%s: stopping", text)
        with self._answered:
            self._answered.notify_all()

    def _kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
