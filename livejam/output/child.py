"""The output process itself: `python -m livejam.output.child CMD_FD REPORT_FD`, started by
livejam/output/remote.py (see livejam/output/__init__.py for the whole picture).

Three things run here and nothing else: the command loop (this module's main thread: it reads the
command pipe and writes the report pipe), the scheduler thread (livejam/scheduler.py, unchanged:
sleep, spin, send through the ledger) and rtmidi's port. The scheduler's sink only sends and appends
to a deque; the loop reports that deque every REPORT_S, so a main process that is slow to read
never delays a note.

Signals: the process starts in a session of its own, so a Ctrl-C at the terminal or a hang-up
reaches the main process only, which then stops this one through the pipe, after its last notes
went out here. A signal sent here by hand (SIGINT, SIGTERM, SIGHUP) is ignored for the same
reason; SIGKILL is the main process's business (it notices and stops).
"""
from __future__ import annotations

import logging
import os
import signal
import sys
from collections import deque
from multiprocessing.connection import Connection

from livejam.clock import RealClock, make_nicer
from livejam.midi.spec import Message
from livejam.output.wire import ANSWERED, COUNTERS, DONE, ERROR, READY, REPORT_S, SENT
from livejam.scheduler import Scheduler, build_scheduler

log = logging.getLogger("livejam.output")

_IGNORED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGPIPE")


class NoPort:
    """The output of an output process opened without a transport (api None): what it sends is
    only reported. The tests of the process's own logic use it; a session never does."""

    own_port = "(no port)"
    dead = False

    def send(self, msg: Message, at: float | None = None) -> None:
        pass

    def close(self) -> None:
        pass


class OutputServer:
    """The command loop and the scheduler it feeds; `serve` returns when told to close or when the
    main process is gone (then every note it sent has ended)."""

    def __init__(self, commands: Connection, reports: Connection, scheduler_for, out):
        self.commands, self.reports, self.out = commands, reports, out
        self.sent: deque = deque()  # (port, Message, t): appended by the scheduler thread only
        self.scheduler: Scheduler = scheduler_for(self._sink)
        self._timed = 0  # the scheduler's `timed` when it last sent (its thread only)
        self._reported = -1  # the counters' `sent` when they were last reported
        self._error_said = False

    def _sink(self, port: int, msg: Message, t: float) -> None:
        self.out.send(msg, t)
        # a timed note's lateness was counted just before it is sent: it goes with it, so the main
        # process knows which message it belongs to (the duet measurement's intended times)
        c, lateness = self.scheduler.counters, None
        if c.timed != self._timed:
            self._timed, lateness = c.timed, c.lateness[-1]
        self.sent.append((port, msg, t, lateness))

    def serve(self) -> None:
        while True:
            try:
                if self.commands.poll(REPORT_S) and not self.handle(self.commands.recv()):
                    return
                self.report()
            except (EOFError, OSError):  # the main process is gone (killed, crashed): end what sounds
                self.orphaned()
                return

    def handle(self, item: tuple) -> bool:
        """One command; False once told to close."""
        name, args = item[0], item[1:]
        s = self.scheduler
        if name == "notes":
            s.submit(args[0])
        elif name == "raw":
            s.submit_raw(args[0])
        elif name == "cancel":
            s.cancel()
        elif name == "reset":
            s.reset_output(args[0])
        elif name == "clear":
            s.clear_for_listener()
        elif name == "dead":
            self.out.dead = True
        elif name == "start":
            s.start()
        elif name == "stop":
            s.stop(flush=args[0])
        elif name == "send":
            s.send_now(args[0])
        elif name == "panic":
            s.panic(all_notes=args[0], startup=args[1])
        elif name == "close":
            self.out.close()
        else:
            log.error("unknown command %r", name)
        if name in ANSWERED:
            self.report(final=True)  # the counters as they are now, whatever changed
            self.reports.send((DONE, name))
        return name != "close"

    def report(self, final: bool = False) -> None:
        """What was sent since the last report, the counters, and a failure of the scheduler thread."""
        if self.sent:
            batch = []
            while self.sent:
                batch.append(self.sent.popleft())
            self.reports.send((SENT, batch))
        c = self.scheduler.counters
        c.transport_late = getattr(self.out, "written_late", 0)
        if c.sent != self._reported or final:
            self._reported = c.sent
            scalars = {k: v for k, v in c.__dict__.items() if k not in ("lateness", "timed")}
            ledger = self.scheduler.ledger
            self.reports.send((COUNTERS, scalars, dict(ledger.counters.__dict__), ledger.sounding()))
        if self.scheduler.error is not None and not self._error_said:
            self._error_said = True
            self.reports.send((ERROR, f"{type(self.scheduler.error).__name__}: {self.scheduler.error}"))

    def orphaned(self) -> None:
        """The main process died: queued note-offs now, then an off for every note still sounding."""
        try:
            self.scheduler.stop(flush=True)
            self.scheduler.panic()
        finally:
            self.out.close()


def open_output(api: int | None, client: str, frames: bool = True):
    """The port: with `frames` (scheduler.jack_frames) our own JACK client that writes each message
    at its frame (livejam/midi/jack_frames.py), else (or where JACK-Client cannot load) rtmidi's.
    The output process runs on JACK only, so a transport here is JACK."""
    if api is None:
        return NoPort()
    if frames:
        try:
            from livejam.midi.jack_frames import FrameOutput

            return FrameOutput(client)
        except (ImportError, OSError, RuntimeError) as e:
            log.warning("MIDI out through rtmidi, at the start of each JACK period (no frame-accurate output: %s)",
                        str(e).splitlines()[0] if str(e) else type(e).__name__)
    from livejam.midi.ports import MidiOutput

    out = MidiOutput(api, "", client=client)
    if out.jack:  # libjack's notices (a dozen lines when the server dies) into the log, as in the main process
        from livejam.midi.jack import libjack

        libjack()
    return out


def main(argv: list[str]) -> int:
    for name in _IGNORED:
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="livejam output process: %(message)s")
    commands = Connection(int(argv[0]), writable=False)
    reports = Connection(int(argv[1]), readable=False)
    try:
        name, config, api, client = commands.recv()
        assert name == "open", name
        sys.setswitchinterval(config.scheduler.gil_switch_interval_s)
        # before the port opens: libjack's thread, and the scheduler's, inherit it
        nice = make_nicer(config.scheduler.output_nice, "the output process") if config.scheduler.output_nice else 0
        out = open_output(api, client, config.scheduler.jack_frames)
    except EOFError:
        return 0
    except Exception as e:  # the port could not be opened: the main process says it and exits 2
        reports.send((ERROR, f"{type(e).__name__}: {e}"))
        return 2
    clock = RealClock(config.scheduler.spin_s)
    server = OutputServer(commands, reports, lambda sink: build_scheduler(config, clock, sink), out)
    server.scheduler.counters.nice = nice
    server.scheduler.lead_s = getattr(out, "lead_s", 0.0)  # a port that delivers at a time: hand over ahead
    reports.send((READY, out.own_port))
    try:
        server.serve()
    except BrokenPipeError:  # the main process vanished while we reported: it is gone
        server.orphaned()
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    # without finalising the interpreter: a libjack thread (a port left open on a dead server)
    # must not call into a Python being torn down (as daemon.leave_process)
    logging.shutdown()
    os._exit(code)
