"""The live daemon: ports, threads, and the shutdown that never leaves a note on.

    MIDI in (rtmidi thread) --timestamp+append--> InputQueue --> performer thread
        (Dispatcher: normalise, hear/control, poll) --> Scheduler thread --> ledger --> MIDI out

With scheduler.output_process on JACK, the Scheduler thread, its ledger and MIDI out live in the output
process (livejam/output/):
the Dispatcher hands its notes to an OutputProcess, which stands where the Scheduler stands here,
and what was sent comes back to be recorded and shown. A dead output process is a failed scheduler:
one line, then the shutdown below.

The main thread only installs signal handlers, watches health (output port
still there, worker threads alive, the MIDI system alive; a named port that
vanishes is waited for and reconnected, midi/keeper.py) and runs the shutdown
sequence. Panic is sent at start and in a `finally` that every exit path goes
through: normal stop, SIGINT (once or twice), SIGTERM, SIGHUP, SIGQUIT, SIGUSR1/2,
SIGALRM, SIGPIPE, an exception in any thread, a vanished port (--exit-on-port-loss),
a dead JACK server. Each add-on's close has a deadline (`stopping.CLOSE_DEADLINE_S`): a stuck
audio or OSC library delays the panic-recording-counters that follow by that much only.

Signal handlers do nothing but store the signal's name: no lock, no Event.set
(which takes the Event's lock: the handler runs on the main thread, which may
hold that very lock). The main loop polls the flag every `_POLL_S`.
"""
from __future__ import annotations

import logging
import os
import queue
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from livejam.beat.start import start_beat_clock
from livejam.clock import RealClock, make_nicer
from livejam.config import DaemonConfig
from livejam.dispatch import Dispatcher, build_performer
from livejam.midi.normalise import EchoFilter, InputNormaliser
from livejam.midi.ports import InputQueue
from livejam.midi.spec import Message
from livejam.midi.system import MidiSystem
from livejam.midi.xruns import XrunWatch
from livejam.output.remote import OutputLost, OutputProcess
from livejam.recording import Recorder, check_writable, default_path
from livejam.scheduler import Scheduler, build_scheduler
from livejam.session import AddOn, Session, build_normaliser, counters
from livejam.stopping import STOP_SIGNALS, LeftBehind, install_stop_signals, restore_signals, with_deadline

log = logging.getLogger(__name__)

# livejam's own beat 0 (with --bpm) comes this long after start, past the count-in
_POLL_S = 0.02  # the main loop's poll of the signal flag and the stop event
_HEARTBEAT_S = 0.25  # a heartbeat goes to our input when nothing arrived for this long
_SILENCE_S = 0.6  # no input at all (heartbeats included) this long: is the MIDI system still there?
_RECORD_SAVE_S = 5.0  # the recording is rewritten this often: a crash loses at most this much
_RECORD_FLUSH_S = 1.0  # what came since is encoded this often: a flush or save stays a few ms


@dataclass
class DaemonResult:
    rc: int
    reason: str
    summary: dict = field(default_factory=dict)
    recording: Path | None = None
    # The process must end with os._exit (leave_process): a port was left open (JACK, see
    # MidiInput.close), a libjack callback into Python is still registered (the xrun watch), or a
    # thread could not be stopped; finalising the interpreter under them could crash or abort.
    hard_exit: bool = False


@dataclass
class Ports:
    """The live transport's side of a session: what the watch checks and the shutdown closes."""

    inp: object  # MidiInput (or a fake's): port_name, own_port, left_open, close()
    out: object  # MidiOutput: send(), dead, existing, port_name, close()
    keeper: object  # midi/keeper.py Keeper: listening_now(), poll()
    heartbeat: object | None  # InputHeartbeat: beat(), close(); None where it could not be made
    system: MidiSystem
    record_path: Path | None = None
    worker: threading.Thread | None = None  # the performer thread, once started


def leave_process(rc: int) -> NoReturn:
    """End the process now with `rc`, its output flushed, without finalising the interpreter (what a
    DaemonResult with hard_exit asks of whoever ran the daemon: the CLI, the duet measurement)."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)


class Daemon:
    """Add-ons (livejam.stage.sound, livejam.stage.ui, livejam.stage.osc) are livejam.session.AddOn:
    `start(session)` after the scheduler starts, the taps `on_human` (performer thread) and `on_sent`
    (scheduler thread) where they ask for them, `on_event(text)` (a session event, see `event`) and
    `close()` after the final panic. Both taps must never block."""

    def __init__(self, config: DaemonConfig, performer=None, record_path: str | Path | None = None,
                 on_ready=None, addons: tuple[AddOn, ...] = (), midi: MidiSystem | None = None):
        self.config = config
        self.midi = midi  # None: rtmidi's, picked by config.midi.backend when run() starts
        self.addons = tuple(addons)
        self.performer = performer
        self.record_path = record_path
        self.on_ready = on_ready  # called with (input name, output name, backend) once listening
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self.reason = "stopped"
        self.recording: Path | None = None
        self.signalled: str | None = None  # written by the signal handler only
        self.signals = 0
        self._stopping = False  # the performer thread ends at its next item, backlog or not
        self._old_handlers: dict = {}
        self._left_behind = False  # a close passed its deadline: its thread still runs
        self.started = self.ended = 0.0  # monotonic seconds: the session's length in the summary
        self.xruns = XrunWatch()  # reads "unknown" until run() watches JACK
        self.discarded = 0  # input still queued when the performer stopped

    def event(self, text: str) -> None:
        """A one-line session event (an output port lost or found, ...): shown by the add-ons that show
        events (the status screen, the plain log), else logged as a warning."""
        shown = False
        for addon in self.addons:
            if addon.shows_events:
                addon.on_event(text)
                shown = True
        log.log(logging.INFO if shown else logging.WARNING, "%s", text)

    def request_stop(self, reason: str = "stopped") -> None:
        if not self.stop_event.is_set():
            self.reason = reason
        self.stop_event.set()

    def _on_signal(self, signum, frame) -> None:
        # Nothing else here (module docstring): the main loop polls this flag.
        self.signals += 1
        if self.signalled is None:
            self.signalled = signal.Signals(signum).name

    def run(self) -> DaemonResult:
        """Run until stopped. Raises MidiUnavailable (or a port-opening error) before
        anything plays; once playing, every failure ends in the shutdown sequence and rc 1.
        The signal handlers stay installed until `restore_signals` (after the caller printed)."""
        cfg = self.config
        system = self.midi or MidiSystem(cfg.midi.backend)
        clock = RealClock(cfg.scheduler.spin_s)
        performer = self.performer or build_performer(cfg)
        recorder = Recorder(clock.now(), keep=cfg.record.enabled)  # its beat clock: below, before any note
        record_path = None
        if cfg.record.enabled:
            record_path = Path(self.record_path or default_path(cfg.record.folder)).expanduser()
            check_writable(record_path)  # a bad path is an error now, not at the end of the session
        echo = EchoFilter(cfg.midi.echo_window_s)
        sent_taps = tuple(a.on_sent for a in self.addons if a.taps_sent)

        def delivered(port: int, msg: Message, t: float) -> None:  # what went out: recorded, shown
            if port == 0:  # 1: the human's notes passed through, recorded as heard; 2: clearing
                recorder.record_machine(msg, t)
            for tap in sent_taps:
                tap(port, msg, t)

        def sink(port: int, msg: Message, t: float) -> None:
            if port != scheduler.aside_port:  # blanket clearing: see Scheduler.aside_port
                echo.sent(msg, t)  # before sending: the echo may come back before send() returns
            # `out` is opened below, after the scheduler its keeper resets; nothing is sent before
            out.send(msg)
            delivered(port, msg, t)

        output = None  # the output port opened here; else by the output process (livejam/output/)
        if cfg.scheduler.output_process and system.output_elsewhere:
            scheduler = OutputProcess(cfg, echo, delivered)
            output = scheduler.open_port
        else:
            scheduler = build_scheduler(cfg, clock, sink)
        inq = InputQueue(cfg.midi.queue_size)
        normaliser = build_normaliser(cfg, echo)
        beat, clock_out, clicks = start_beat_clock(cfg.beat, clock.now())
        recorder.beats, recorder.click_channel = beat, cfg.beat.click_channel
        dispatcher = Dispatcher(performer, scheduler, normaliser, recorder, beat, clock_out, thru=cfg.midi.thru,
                                taps=tuple(a.on_human for a in self.addons if a.taps_human))
        # input messages queue up until the performer thread starts: nothing is lost
        inp, out, keeper = system.open_ports(cfg.midi, inq.callback, output, on_event=self.event,
                                             reset_output=scheduler.reset_output,
                                             input_lost=inq.input_lost, listener_joined=scheduler.clear_for_listener)
        try:
            heartbeat = system.heartbeat(inp.own_port, client=f"{cfg.midi.client_name} heartbeat")
        except Exception as e:  # MidiUnavailable, or rtmidi's own error types
            log.info("no input heartbeat (%s): an unterminated SysEx may deafen the input", e)
            heartbeat = None
        self.xruns = system.xruns(f"{cfg.midi.client_name} xruns")
        ports = Ports(inp, out, keeper, heartbeat, system, record_path)
        session = Session(cfg, clock, scheduler, dispatcher, recorder, inq, normaliser, self, self.xruns, self.addons)
        self._old_handlers = self._install_signals()
        self.started = time.monotonic()
        old_switch = sys.getswitchinterval()
        sys.setswitchinterval(cfg.scheduler.gil_switch_interval_s)
        try:
            # clear whatever a previous crash left sounding, on its channels whatever ours are;
            # a synth listening (an existing port, a connection) may hold notes from it:
            # explicit note-offs for every note. One that connects later: listener_joined
            scheduler.panic(all_notes=keeper.listening_now() or out.existing, startup=True)
            scheduler.submit_raw(clicks)
            scheduler.start()
            ports.worker = threading.Thread(target=self._performer_loop, args=(dispatcher, inq, clock),
                                            name="livejam-performer", daemon=True)
            ports.worker.start()
            for addon in self.addons:  # optional: one failing must not end the session
                try:
                    addon.start(session)
                except Exception as e:
                    log.error("%s did not start: %s: %s", type(addon).__name__, type(e).__name__, e)
            log.info("listening on %s, playing on %s (%s)", inp.port_name, out.port_name, system.name)
            if self.on_ready:
                self.on_ready(inp.port_name, out.port_name, system.name)
            self._watch(session, ports)
        except BaseException as e:  # KeyboardInterrupt too: it may land outside the handler's reach
            self.error = e
            self.reason = f"exception: {type(e).__name__}: {e}"
            log.exception("daemon failed")
        finally:
            self._shutdown(session, ports)
            self.ended = time.monotonic()
            sys.setswitchinterval(old_switch)
        ok_reasons = ("stopped", "quit") + STOP_SIGNALS
        rc = 0 if self.error is None and self.reason in ok_reasons else 1
        summary = self._summary(scheduler, normaliser, inq, dispatcher)
        # libjack's threads may still call into Python (the xrun watch's callback, a port left open):
        # finalising the interpreter under them crashed the process after its work was done
        worker = ports.worker
        hard = (inp.left_open or (worker is not None and worker.is_alive()) or out.dead or self._left_behind
                or self.xruns.counting)
        return DaemonResult(rc, self.reason, summary, self.recording, hard_exit=hard)

    def _watch(self, session: Session, ports: Ports) -> None:
        """The main loop: poll the signal flag and the stop event; check health and the ports."""
        cfg, inq, heartbeat, record_path = session.config, session.inq, ports.heartbeat, ports.record_path
        now = time.monotonic()
        next_health = now + cfg.health_check_s
        next_beat = now + _HEARTBEAT_S
        next_save, next_flush = now + _RECORD_SAVE_S, now + _RECORD_FLUSH_S
        seen, last_arrival = inq.arrived, now
        while not self.stop_event.is_set():
            if self.signalled is not None:
                self.request_stop(self.signalled)
                break
            time.sleep(_POLL_S)
            now = time.monotonic()
            if inq.arrived != seen:
                seen, last_arrival = inq.arrived, now
            if heartbeat is not None and now >= next_beat:
                next_beat = now + _HEARTBEAT_S
                if now - last_arrival >= _HEARTBEAT_S:
                    heartbeat.beat()
                if now - last_arrival >= _SILENCE_S and not ports.system.alive():
                    ports.out.dead = True  # from now on sends return at once (a dead server's ring would block)
                    self.error = None
                    log.error("the MIDI system is gone (JACK server died): stopping")
                    self.request_stop("JACK server died")
                    break
            if now >= next_health:
                next_health = now + cfg.health_check_s
                if (failed := session.scheduler.error) is not None:
                    self.error = failed
                    self.request_stop(str(failed) if isinstance(failed, OutputLost) else "scheduler failed")
                elif not ports.worker.is_alive():
                    self.request_stop("performer thread ended")
                elif (lost := ports.keeper.poll()) is not None:  # a port vanished, --exit-on-port-loss
                    self.request_stop(lost)
            if record_path is not None and now >= next_save:
                next_save, next_flush = now + _RECORD_SAVE_S, now + _RECORD_FLUSH_S
                self._save(session.recorder, record_path, quiet=True)
            elif now >= next_flush:  # encode what came (with --no-record: only trim to the screen's notes)
                next_flush = now + _RECORD_FLUSH_S
                session.recorder.flush()

    def _performer_loop(self, dispatcher: Dispatcher, inq: InputQueue, clock: RealClock) -> None:
        """Performer thread: wait for input until the performer's next wake-up, feed, poll.
        Ends at the next item once `_stopping` is set, however much input is queued."""
        try:
            if self.config.scheduler.performer_nice:  # this thread only (Linux: niceness is per thread)
                make_nicer(self.config.scheduler.performer_nice, "the performer")
            while not self._stopping:
                now = clock.now()
                timeout = min(1.0, max(0.0, dispatcher.wakeup(now) - now))
                try:
                    item = inq.get(timeout)
                except queue.Empty:
                    item = ()
                if item is InputQueue.STOP or self._stopping:
                    return
                now = clock.now()
                if item is InputQueue.INPUT_LOST:  # the keyboard is gone: its held keys are let go
                    dispatcher.release_held(now)
                elif item:
                    dispatcher.feed(item[0], item[1], now)
                    # hearing may have run the model (a chord read flushes the deferred rows): what the
                    # performer ends "now" is stamped with the time it is handed over, not before that run
                    now = clock.now()
                dispatcher.pump(now)
        except BaseException as e:  # surfaced by the main thread, which then panics
            self.error = e
            self.request_stop(f"performer failed: {type(e).__name__}: {e}")

    def _shutdown(self, session: Session, ports: Ports) -> None:
        """Every exit path: stop input, stop the performer (backlog or not) and let it end its
        notes, flush offs, panic, close ports whose callbacks have stopped, record."""
        self.recording = None
        clock, inq, dispatcher, scheduler = session.clock, session.inq, session.dispatcher, session.scheduler
        worker, record_path = ports.worker, ports.record_path

        def stop_performer() -> None:
            self._stopping = True
            inq.stop()  # wakes it if it waits for input
            worker.join(10.0)  # one item at most: an inference step, not the backlog
            if worker.is_alive():
                log.error("performer thread did not stop within 10 s")

        def drain() -> None:
            if worker is None or not worker.is_alive():
                self.discarded = inq.drain()

        steps = [("stop input", inq.close)]
        if worker is not None:
            steps.append(("stop performer", stop_performer))
            steps.append(("performer close", lambda: dispatcher.close(clock.now())
                          if not worker.is_alive() else None))
        steps.append(("count the backlog", drain))
        steps.append(("stop scheduler", lambda: scheduler.stop(flush=True)))
        if dispatcher.clock_out is not None:  # a DAW following our clock stops with us
            steps.append(("send clock stop", lambda: [scheduler.send_now(m)
                                                      for _, m in dispatcher.clock_out.stop(clock.now())]))
        steps.append(("panic", scheduler.panic))
        if dispatcher.beat.link is not None:
            steps.append(("leave Link", with_deadline(dispatcher.beat.link.close)))
        steps.append(("close output", ports.out.close))
        steps += [(f"close {type(a).__name__}", with_deadline(a.close)) for a in self.addons]
        steps.append(("close input", ports.inp.close))
        if ports.heartbeat is not None:
            steps.append(("close heartbeat", ports.heartbeat.close))
        if record_path is not None:
            steps.append(("save recording", lambda: self._save(session.recorder, record_path)))
        for what, step in steps:
            try:  # one failing step (e.g. a dead port) must not skip the rest
                step()
            except Exception as e:
                log.error("shutdown: %s failed: %s", what, e)
                self._left_behind = self._left_behind or isinstance(e, LeftBehind)
                if what == "save recording":
                    self.error = self.error or e

    def _save(self, recorder: Recorder, path: Path, quiet: bool = False) -> None:
        if recorder.empty():  # nothing was played: no session file
            return
        if quiet:  # the periodic save: the recording thread writes it (and says a failure, once)
            recorder.save_in_background(path)
            return
        self.recording = recorder.save(path)

    def _install_signals(self) -> dict:
        if threading.current_thread() is not threading.main_thread():
            return {}  # only the main thread may; tests running the daemon in a thread stop it directly
        return install_stop_signals(self._on_signal)

    def restore_signals(self) -> None:
        """Put back the handlers run() replaced; call after the last output is printed
        (a second Ctrl-C before that must not cut the counters short)."""
        restore_signals(self._old_handlers)
        self._old_handlers = {}

    def _summary(self, scheduler: Scheduler, normaliser: InputNormaliser, inq: InputQueue,
                 dispatcher: Dispatcher) -> dict:
        inc = normaliser.counters
        out = counters(normaliser, scheduler, dispatcher)
        out["input"].update({  # the live transport's own
            "echoes": inc.echoes, "queue_overflow": inq.overflow, "arrived": inq.arrived, "after_close": inq.after_close,
            "discarded_at_stop": self.discarded, "heartbeats": inc.heartbeats,
            "unterminated_sysex": inc.unterminated_sysex, "recovered": inc.recovered, "xruns": self.xruns.value,
            "clock_rate_limited": dict(dispatcher.beat.dropped)})
        return {"reason": self.reason, "seconds": round(self.ended - self.started, 3),
                "error": repr(self.error) if self.error else None, **out,
                "sounding_at_exit": len(scheduler.ledger.sounding())}
