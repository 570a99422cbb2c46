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

from livejam.beat import BeatClock, ClockOut, count_in_for
from livejam.clock import RealClock
from livejam.config import DaemonConfig, model_path
from livejam.events import TimedNote
from livejam.midi.normalise import EchoFilter, InputNormaliser
from livejam.midi.ports import InputQueue, MidiInput, MidiOutput, api_name, select_backend
from livejam.midi.spec import REALTIME_CLOCK, Message
from livejam.recording import Recorder, default_path
from livejam.scheduler import THRU_PART, Scheduler

log = logging.getLogger(__name__)

# MIDI clock out is handed to the scheduler this far ahead: the performer thread may be busy
# (inference) for a while, the scheduler thread sends each tick at its time.
CLOCK_AHEAD_S = 0.2
# livejam's own beat 0 (with --bpm) comes this long after start, past the count-in
START_DELAY_S = 0.25


def build_performer(config: DaemonConfig, strict: bool = True):
    """The one performer factory: `config.performer.kind` with its settings.

    The neural performer loads its model file here. A missing or corrupt model
    raises ModelError (one line) when `strict` (the user asked for the neural
    performer); otherwise it is reported in one line and the Markov performer
    plays instead.
    """
    kind, seed = config.performer.kind, config.seed
    if kind == "echo":  # the benchmark's immediate echo path: plumbing, no music
        from livejam.performers.echo import EchoPerformer

        return EchoPerformer()
    if kind == "neural":
        from livejam.engine.session import ModelError, load_model
        from livejam.performers.neural import NeuralPerformer

        try:
            model = load_model(model_path(config.neural.model), intra_op_threads=config.neural.intra_op_threads)
            return NeuralPerformer(config.performer, config.neural, model, seed)
        except ModelError as e:
            if strict:
                raise
            log.warning("%s: falling back to the Markov continuator", e)
    from livejam.performers.markov import MarkovPerformer

    return MarkovPerformer(config.performer, seed)


class Dispatcher:
    """The performer thread's work, independent of threads and ports.

    Owns the performer: only the thread that calls these methods touches it.
    Used by the live daemon and, on a virtual clock, by simulate and the tests.
    """

    def __init__(self, performer, scheduler: Scheduler, normaliser: InputNormaliser,
                 recorder: Recorder | None = None, beat: BeatClock | None = None, clock_out: ClockOut | None = None,
                 thru: bool = False, taps: tuple = ()):
        self.performer = performer
        self.thru = thru  # pass the human's notes to the output (through the scheduler's ledger)
        self.taps = taps  # callables (note, now) told of every human note: non-blocking (sound, screen)
        self.scheduler = scheduler
        self.normaliser = normaliser
        self.recorder = recorder
        # the live beat clock, fed by incoming MIDI clock; without one given (simulate and the
        # tests give the performer a fixed BeatMap themselves) it only serves --grid
        self.beat = beat if beat is not None else BeatClock()
        self.clock_out = clock_out  # livejam is the master: the MIDI clock it sends
        if hasattr(performer, "follow_clock"):  # tempo sync: the performer may snap to the beat clock's grid
            performer.follow_clock(self.beat)
        if beat is not None and hasattr(performer, "set_beats"):  # it counts its events in these beats
            performer.set_beats(beat)
        self.cancels = 0

    def feed(self, t: float, raw, now: float) -> None:
        """One raw input message that arrived at clock time `t`."""
        msg = self.normaliser(raw, t)
        if msg is None:
            return
        kind = msg.kind
        if kind == "note_on" or kind == "note_off":
            if kind == "note_on" and msg.velocity > 0:  # tempo following hears the human's onsets
                self.beat.onset(t)
            if self.recorder is not None:
                self.recorder.record_human(msg, t)
            note = TimedNote(t, 0, msg.note, msg.velocity if kind == "note_on" else 0)
            if self.thru:
                self.scheduler.submit([TimedNote(now, THRU_PART, note.pitch, note.velocity)])
            for tap in self.taps:
                tap(note, now)
            self.performer.hear(note, now)
        elif kind == "control_change":
            self.performer.control(msg.control, msg.value, now)
        elif kind in REALTIME_CLOCK or kind == "songpos":
            self.beat.handle(kind, t, msg.data)

    def pump(self, now: float) -> None:
        """Hand what the performer decided to the scheduler, in order."""
        self.beat.expire(now)
        if self.clock_out is not None:  # ticks go to the scheduler ahead of time; it sends them on time
            self.scheduler.submit_raw(self.clock_out.pull(now + CLOCK_AHEAD_S))
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
        wake = self.performer.next_wakeup(now)
        if self.clock_out is not None:
            wake = min(wake, now + CLOCK_AHEAD_S / 2)
        if self.beat.poll_s is not None:  # Link / tempo following are read in pump
            wake = min(wake, now + self.beat.poll_s)
        return wake

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
        performer = self.performer or build_performer(cfg)
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
        beat, clock_out, clicks = self._beat_clock(clock.now())
        dispatcher = Dispatcher(performer, scheduler, normaliser, recorder, beat, clock_out, thru=cfg.midi.thru,
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
            scheduler.submit_raw(clicks)
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
        if dispatcher.clock_out is not None:  # a DAW following our clock stops with us
            steps.append(("send clock stop", lambda: [scheduler.send_now(m)
                                                      for _, m in dispatcher.clock_out.stop(clock.now())]))
        steps.append(("panic", scheduler.panic))
        if dispatcher.beat.link is not None:
            steps.append(("leave Link", dispatcher.beat.link.close))
        steps.append(("close output", out.close))
        steps += [(f"close {type(a).__name__}", a.close) for a in self.addons if hasattr(a, "close")]
        if self.config.record.enabled:
            steps.append(("save recording", lambda: self._save(recorder)))
        for what, step in steps:
            try:  # one failing step (e.g. a dead port) must not skip the rest
                step()
            except Exception as e:
                log.error("shutdown: %s failed: %s", what, e)

    def _beat_clock(self, now: float) -> tuple[BeatClock, ClockOut | None, list]:
        """The beat clock; with our own tempo, beat 0 after the count-in, and the clock we send."""
        cfg = self.config.beat
        link = None
        if cfg.link:
            from livejam.link import LinkSource

            link = LinkSource(bpm=cfg.bpm or 120.0, quantum=cfg.meter, clock=RealClock.now)
        beat = BeatClock(cfg, t0=now, link=link)
        if cfg.bpm is None:
            return beat, None, []
        beat0 = now + START_DELAY_S + cfg.count_in_bars * cfg.meter * 60.0 / cfg.bpm
        beat.start(beat0)
        clicks = count_in_for(cfg, beat0)
        clock_out = ClockOut(beat, now=now) if cfg.clock_out else None
        log.info("tempo %g bpm, %d/4; beat 0 in %.2f s%s", cfg.bpm, cfg.meter, beat0 - now,
                 "; sending MIDI clock" if clock_out else "")
        return beat, clock_out, clicks

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
