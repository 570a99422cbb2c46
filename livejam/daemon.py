"""The live daemon: ports, threads, and the shutdown that never leaves a note on.

    MIDI in (rtmidi thread) --timestamp+append--> InputQueue --> performer thread
        (Dispatcher: normalise, hear/control, poll) --> Scheduler thread --> ledger --> MIDI out

The main thread only installs signal handlers, watches health (output port
still there, worker threads alive) and runs the shutdown sequence. Panic is
sent at start and in a `finally` that every exit path goes through: normal
stop, SIGINT, SIGTERM, an exception in any thread, a vanished output port.
"""
from __future__ import annotations

import logging
import queue
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from livejam.clock import MidiClockFollower, RealClock
from livejam.config import DaemonConfig
from livejam.events import TimedNote
from livejam.midi.normalise import EchoFilter, InputNormaliser
from livejam.midi.ports import InputQueue, MidiInput, MidiOutput, api_name, select_backend
from livejam.midi.spec import REALTIME_CLOCK, Message
from livejam.recording import Recorder, default_path
from livejam.scheduler import THRU_PART, Scheduler

log = logging.getLogger(__name__)


def build_performer(engine: str, config: DaemonConfig, seed: int | None, strict: bool = True):
    """The performer for `engine`: "echo" is ours (benchmark/tests), the rest the performer factory's.

    A neural model that is missing or corrupt raises ModelError when `strict`
    (the user asked for the neural engine); otherwise it is reported in one
    line and the Markov continuator plays instead.
    """
    if engine == "echo":
        from livejam.echo import EchoPerformer

        return EchoPerformer()
    from livejam.performer import make_performer

    if engine == "neural":
        from livejam.engine.session import ModelError

        try:
            return make_performer("neural", config.performer, seed, neural=config.neural)
        except ModelError as e:
            if strict:
                raise
            log.warning("%s: falling back to the Markov continuator", e)
            return make_performer("markov", config.performer, seed)
    return make_performer(engine, config.performer, seed)


class Dispatcher:
    """The performer thread's work, independent of threads and ports.

    Owns the performer: only the thread that calls these methods touches it.
    Used by the live daemon and, on a virtual clock, by simulate and the tests.
    """

    def __init__(self, performer, scheduler: Scheduler, normaliser: InputNormaliser,
                 recorder: Recorder | None = None, clock_follower: MidiClockFollower | None = None,
                 thru: bool = False, taps: tuple = ()):
        self.performer = performer
        self.thru = thru  # pass the human's notes to the output (through the scheduler's ledger)
        self.taps = taps  # callables (note, now) told of every human note: non-blocking (sound, screen)
        self.scheduler = scheduler
        self.normaliser = normaliser
        self.recorder = recorder
        self.clock_follower = clock_follower or MidiClockFollower()
        if hasattr(performer, "follow_clock"):  # tempo sync: the performer may snap to the MIDI clock's grid
            performer.follow_clock(self.clock_follower)
        self.cancels = 0

    def feed(self, t: float, raw, now: float) -> None:
        """One raw input message that arrived at clock time `t`."""
        msg = self.normaliser(raw, t)
        if msg is None:
            return
        kind = msg.kind
        if kind == "note_on" or kind == "note_off":
            if self.recorder is not None:
                self.recorder.record_human(msg, t)
            note = TimedNote(t, 0, msg.a, msg.b if kind == "note_on" else 0)
            if self.thru:
                self.scheduler.submit([TimedNote(now, THRU_PART, note.pitch, note.velocity)])
            for tap in self.taps:
                tap(note, now)
            self.performer.hear(note, now)
        elif kind == "control_change":
            self.performer.control(msg.a, msg.b, now)
        elif kind in REALTIME_CLOCK:
            self.clock_follower.handle(kind, t)

    def pump(self, now: float) -> None:
        """Hand what the performer decided to the scheduler, in order."""
        batch: list[TimedNote] = []
        for item in self.performer.poll(now):
            if isinstance(item, TimedNote):
                batch.append(item)
            else:  # Cancel: what was handed over before it goes, then the barge-in
                if batch:
                    self.scheduler.submit(batch)
                    batch = []
                self.scheduler.cancel()
                self.cancels += 1
        if batch:
            self.scheduler.submit(batch)

    def wakeup(self, now: float) -> float:
        return self.performer.next_wakeup(now)

    def close(self, now: float) -> None:
        self.scheduler.submit(self.performer.close(now))


@dataclass
class DaemonResult:
    rc: int
    reason: str
    summary: dict = field(default_factory=dict)
    recording: Path | None = None


@dataclass
class Session:
    """What a running session shows to its add-ons (sound, status screen, OSC): read, or enqueue into."""

    config: DaemonConfig
    clock: RealClock
    scheduler: Scheduler
    dispatcher: Dispatcher
    recorder: Recorder
    inq: InputQueue
    normaliser: InputNormaliser
    daemon: "Daemon"


class Daemon:
    """Add-ons (livejam.sound, livejam.ui, livejam.osc) are objects with any of: `start(session)`
    (after the scheduler starts), `on_human(note, now)` (performer thread), `on_sent(port, msg, t)`
    (scheduler thread), `on_event(text)` (a session event, see `event`) and `close()` (after the
    final panic). Both taps must never block."""

    def __init__(self, config: DaemonConfig, performer=None, record_path: str | Path | None = None,
                 on_ready=None, addons: tuple = ()):
        self.config = config
        self.addons = tuple(addons)
        self.performer = performer
        self.record_path = record_path
        self.on_ready = on_ready  # called with (input name, output name, backend) once listening
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self.reason = "stopped"
        self.recording: Path | None = None

    def event(self, text: str) -> None:
        """A one-line session event (an output port lost or found, ...): shown by the add-ons that show
        events (the status screen, the plain log), else logged as a warning."""
        shown = False
        for addon in self.addons:
            if hasattr(addon, "on_event"):
                addon.on_event(text)
                shown = True
        log.log(logging.INFO if shown else logging.WARNING, "%s", text)

    def request_stop(self, reason: str = "stopped") -> None:
        if not self.stop_event.is_set():
            self.reason = reason
        self.stop_event.set()

    def _on_signal(self, signum, frame) -> None:
        self.request_stop(signal.Signals(signum).name)

    def run(self) -> DaemonResult:
        """Run until stopped. Raises MidiUnavailable (or a port-opening error) before
        anything plays; once playing, every failure ends in the shutdown sequence and rc 1."""
        cfg = self.config
        api = select_backend(cfg.midi.backend)
        clock = RealClock(cfg.scheduler.spin_s)
        performer = self.performer or build_performer(cfg.engine, cfg, cfg.seed)
        recorder = Recorder(clock.now())
        echo = EchoFilter(cfg.midi.echo_window_s)
        out = MidiOutput(api, cfg.midi.output, client=f"{cfg.midi.client_name} out")

        sent_taps = tuple(a.on_sent for a in self.addons if hasattr(a, "on_sent"))

        def sink(port: int, msg: Message, t: float) -> None:
            echo.sent(msg, t)  # before sending: the echo may come back before send() returns
            out.send(msg)
            if port == 0:  # port 1 is the human's notes passed through: recorded as heard
                recorder.record_machine(msg, t)
            for tap in sent_taps:
                tap(port, msg, t)

        scheduler = Scheduler(clock, sink, channels=cfg.midi.channels, late_drop_s=cfg.scheduler.late_drop_s,
                              watchdog_s=cfg.scheduler.watchdog_s,
                              thru_channel=cfg.midi.thru_channel if cfg.midi.thru else None)
        inq = InputQueue(cfg.midi.queue_size)
        normaliser = InputNormaliser(cfg.midi.ignore_sysex, cfg.midi.ignore_active_sensing, echo)
        dispatcher = Dispatcher(performer, scheduler, normaliser, recorder, thru=cfg.midi.thru,
                                taps=tuple(a.on_human for a in self.addons if hasattr(a, "on_human")))
        try:  # input messages queue up until the performer thread starts: nothing is lost
            inp = MidiInput(api, inq.callback, cfg.midi.input, client=f"{cfg.midi.client_name} in",
                            ignore_sysex=cfg.midi.ignore_sysex, ignore_active_sensing=cfg.midi.ignore_active_sensing)
        except BaseException:
            out.close()
            raise
        worker = None
        old_handlers = self._install_signals()
        old_switch = sys.getswitchinterval()
        sys.setswitchinterval(cfg.scheduler.gil_switch_interval_s)
        try:
            scheduler.panic()  # clear whatever a previous crash left sounding
            scheduler.start()
            worker = threading.Thread(target=self._performer_loop, args=(dispatcher, inq, clock),
                                      name="livejam-performer", daemon=True)
            worker.start()
            session = Session(cfg, clock, scheduler, dispatcher, recorder, inq, normaliser, self)
            for addon in self.addons:  # optional: one failing must not end the session
                try:
                    if hasattr(addon, "start"):
                        addon.start(session)
                except Exception as e:
                    log.error("%s did not start: %s: %s", type(addon).__name__, type(e).__name__, e)
            log.info("listening on %s, playing on %s (%s)", inp.port_name, out.port_name, api_name(api))
            if self.on_ready:
                self.on_ready(inp.port_name, out.port_name, api_name(api))
            while not self.stop_event.wait(cfg.health_check_s):
                if out.vanished():
                    self.event(f"output port lost: {out.port_name}")
                    self.request_stop("output port vanished")
                elif scheduler.error is not None:
                    self.error = scheduler.error
                    self.request_stop("scheduler failed")
                elif not worker.is_alive():
                    self.request_stop("performer thread ended")
        except BaseException as e:  # KeyboardInterrupt too: it may land outside the handler's reach
            self.error = e
            self.reason = f"exception: {type(e).__name__}: {e}"
            log.exception("daemon failed")
        finally:
            self._shutdown(clock, inq, worker, dispatcher, scheduler, inp, out, recorder)
            self._restore_signals(old_handlers)
            sys.setswitchinterval(old_switch)
        rc = 0 if self.error is None and self.reason in ("stopped", "SIGINT", "SIGTERM") else 1
        summary = self._summary(scheduler, normaliser, inq, dispatcher)
        return DaemonResult(rc, self.reason, summary, self.recording)

    def _performer_loop(self, dispatcher: Dispatcher, inq: InputQueue, clock: RealClock) -> None:
        """Performer thread: wait for input until the performer's next wake-up, feed, poll."""
        try:
            while True:
                now = clock.now()
                timeout = min(1.0, max(0.0, dispatcher.wakeup(now) - now))
                try:
                    item = inq.get(timeout)
                except queue.Empty:
                    item = ()
                if item is InputQueue.STOP:
                    return
                now = clock.now()
                if item:
                    dispatcher.feed(item[0], item[1], now)
                dispatcher.pump(now)
        except BaseException as e:  # surfaced by the main thread, which then panics
            self.error = e
            self.request_stop(f"performer failed: {type(e).__name__}: {e}")

    def _shutdown(self, clock, inq, worker, dispatcher, scheduler, inp, out, recorder) -> None:
        """Every exit path: stop input, let the performer end its notes, flush offs, panic, record."""
        self.recording = None
        steps = [("close input", inp.close)]
        if worker is not None:
            steps.append(("stop performer", lambda: (inq.stop(), worker.join(2.0))))
            steps.append(("performer close", lambda: dispatcher.close(clock.now())
                          if not worker.is_alive() else None))
        steps.append(("stop scheduler", lambda: scheduler.stop(flush=True)))
        steps.append(("panic", scheduler.panic))
        steps.append(("close output", out.close))
        steps += [(f"close {type(a).__name__}", a.close) for a in self.addons if hasattr(a, "close")]
        if self.config.record.enabled:
            steps.append(("save recording", lambda: self._save(recorder)))
        for what, step in steps:
            try:  # one failing step (e.g. a dead port) must not skip the rest
                step()
            except Exception as e:
                log.error("shutdown: %s failed: %s", what, e)

    def _save(self, recorder: Recorder) -> None:
        if recorder.empty():
            log.info("nothing was played: no recording saved")
            return
        path = self.record_path or default_path(self.config.record.folder)
        self.recording = recorder.save(path)

    def _install_signals(self) -> dict:
        if threading.current_thread() is not threading.main_thread():
            return {}  # only the main thread may; tests running the daemon in a thread stop it directly
        return {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}

    @staticmethod
    def _restore_signals(old: dict) -> None:
        for sig, handler in old.items():
            signal.signal(sig, handler)

    def _summary(self, scheduler: Scheduler, normaliser: InputNormaliser, inq: InputQueue,
                 dispatcher: Dispatcher) -> dict:
        inc = normaliser.counters
        return {
            "reason": self.reason,
            "error": repr(self.error) if self.error else None,
            "input": {"received": inc.received, "invalid": inc.invalid, "ignored": inc.ignored,
                      "echoes": inc.echoes, "queue_overflow": inq.overflow, "by_kind": inc.by_kind},
            "scheduler": scheduler.counters.summary(),
            "ledger": dict(scheduler.ledger.counters.__dict__),
            "sounding_at_exit": len(scheduler.ledger.sounding()),
            "cancels": dispatcher.cancels,
            "performer": dict(getattr(dispatcher.performer, "counters", {}) or {}),
        }
