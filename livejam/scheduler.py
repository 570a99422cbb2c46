"""The scheduler: emits timed notes on the output, through the note ledger.

Real-time contract of the scheduler thread (as sounddevice states its
callback's): it never blocks on anything but its own condition variable, it
does no file or terminal I/O, and exceptions from the sink (a vanished port)
are caught, stored in `error`, and end the thread; the daemon sees them.

Policy:
- sleep until ~1 ms before an event, spin the rest (RealClock.sleep_until);
- a note-on later than `late_drop_s` is dropped; its note-off is then refused
  by the ledger (the note is not sounding), so the pair goes together;
- a note-off is never dropped, however late;
- at equal times note-offs go first, so a re-struck note ends then starts;
- a watchdog ends notes held longer than `watchdog_s`.

MIDI thru: notes of part THRU_PART (the human's, passed through) go out on
`thru_channel` and are kept in the ledger under their own port key
(`port + 1`), so panic ends them too, while a barge-in (`cancel`) and the
machine's watchdog leave them (a held chord of the human's stays). Every note
sent has an owner that ends it: a thru note held longer than `thru_timeout_s`
is taken as one whose note-off a flood lost upstream and is ended (its late
note-off, if it comes, is refused by the ledger: never a second one); a
note-on for a thru key still sounding means its note-off was lost: the old
note ends, the new one sounds and its timeout counts from then.

Priority: where the system allows it (Linux, root or an rtprio limit, as JACK
itself asks for), the thread runs SCHED_FIFO with 1 ns timer slack: a busy
machine then delays it by the GIL's switch interval, not by the OS scheduler's
time slices (DESIGN.md measured p99 1.4 ms that way under heavy load). Where
it is not allowed it says so once and runs at normal priority.

The same object runs without a thread on a VirtualClock: the simulation loop
calls `run_until(t)` and everything happens at exactly its scheduled time.
"""
from __future__ import annotations

import heapq
import itertools
import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterable

from livejam.clock import make_realtime
from livejam.config import DaemonConfig
from livejam.events import TimedNote
from livejam.midi.ledger import NoteLedger
from livejam.midi.spec import Message, note_off, note_on
from livejam.stats import summary_ms

log = logging.getLogger(__name__)

Sink = Callable[[int, Message, float], None]  # (port, message, time to sound: now, or <= lead_s on); may raise OSError
THRU_PART = -1  # a TimedNote of this part is the human's, passed through (--thru)


@dataclass
class SchedulerCounters:
    submitted: int = 0
    sent: int = 0
    late: int = 0  # sent more than 1 ms after its time
    dropped_late: int = 0  # note-ons dropped for lateness
    cancelled: int = 0  # queued events dropped by barge-in
    watchdog_offs: int = 0
    thru_timeouts: int = 0  # human notes passed through, ended after thru_timeout_s (note-off lost or late)
    thru_restruck: int = 0  # thru notes ended by a new note-on of their key (their note-off was lost)
    past_submissions: int = 0  # handed over with a time already passed
    realtime: bool = False  # the thread got SCHED_FIFO
    nice: int = 0  # the niceness the output process runs at (scheduler.output_nice, where allowed)
    transport_late: int = 0  # written after their time by a port that writes at frames (their period had begun)
    timed: int = 0  # values ever appended to `lateness` (readers find the new ones by difference)
    lateness: deque = field(default_factory=lambda: deque(maxlen=100_000))

    def summary(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k != "lateness"}
        out["lateness"] = summary_ms(self.lateness, 1e3)
        return out


def channel_of(part: int, channels: tuple[int, ...]) -> int:
    """The MIDI channel a machine part plays on (parts past the last share the last channel)."""
    return channels[part] if 0 <= part < len(channels) else channels[-1]


def route(part: int, channels: tuple[int, ...], thru_channel: int | None) -> int | None:
    """The channel a note of `part` goes out on: the human's passed through (THRU_PART) on the thru
    channel, None when there is no thru; a machine part on its own (channel_of)."""
    if part == THRU_PART:
        return thru_channel
    return channel_of(part, channels)


class Scheduler:
    def __init__(self, clock, sink: Sink, ledger: NoteLedger | None = None, *, channels: tuple[int, ...] = (0, 1),
                 port: int = 0, late_drop_s: float = 0.030, watchdog_s: float = 8.0, late_s: float = 0.001,
                 thru_channel: int | None = None, thru_timeout_s: float = 10.0,
                 stale_channels: tuple[int, ...] = (), realtime_priority: int = 0):
        self.clock = clock
        self.realtime_priority = realtime_priority  # SCHED_FIFO priority of the thread; 0 = normal
        self.sink = sink
        self.channels = channels
        self.port = port
        self.thru_port = port + 1  # the ledger's key for the human's notes passed through
        # the sink's label for blanket clearing (a note-off for every note, the stale channels): for
        # a synth only, so neither recorded nor played inside, and not remembered as an echo (a
        # human's note-off identical to one of them must not be taken for it and dropped)
        self.aside_port = port + 2
        self.thru_channel = thru_channel
        self.thru_timeout_s = thru_timeout_s
        # channels an earlier session may have left notes on though this one may not play there
        # (thru, clicks: a session killed with --thru, restarted without): the start-up panic and
        # the clear for a synth that connects cover them too
        self.stale_channels = tuple(stale_channels)
        initial = {port: set(channels)}
        if thru_channel is not None:
            initial[self.thru_port] = {thru_channel}
        self.ledger = ledger or NoteLedger(initial)
        self.late_drop_s = late_drop_s
        self.watchdog_s = watchdog_s
        self.late_s = late_s
        # timed events go to the sink this long before their time, with it: the JACK frame port's lead (it
        # writes each at the frame of its time, livejam/midi/jack_frames.py); 0 for every other sink
        self.lead_s = 0.0
        self.counters = SchedulerCounters()
        self.error: BaseException | None = None
        self._heap: list[tuple[float, int, int, TimedNote | Message]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._resolve_requested = False  # any of the requests below: the thread wakes for them
        self._cancel_requested = False
        self._all_notes_requested = False
        self._reset_requested = False
        self._clear_requested = False
        self._stopping = False
        self._thread: threading.Thread | None = None

    # --- called from any thread ---------------------------------------------------
    def submit(self, notes: Iterable[TimedNote]) -> None:
        now = self.clock.now()
        with self._cond:
            for n in notes:
                if n.time < now:
                    self.counters.past_submissions += 1
                # offs (0) before ons (1) at equal times; seq keeps submission order
                heapq.heappush(self._heap, (n.time, 1 if n.velocity > 0 else 0, next(self._seq), n))
                self.counters.submitted += 1
            self._cond.notify()

    def submit_raw(self, items: Iterable[tuple[float, Message]]) -> None:
        """Timed messages that are not the performers' notes: MIDI clock out (sent as they are)
        and count-in clicks (notes: through the ledger, so panic ends them too). A barge-in
        does not drop them; stopping drops them like note-ons (a Stop is sent with `send_now`)."""
        now = self.clock.now()
        with self._cond:
            for t, msg in items:
                if t < now:
                    self.counters.past_submissions += 1
                heapq.heappush(self._heap, (t, 1, next(self._seq), msg))
            self._cond.notify()

    def send_now(self, msg: Message) -> None:
        """Send one message at once. Only call when the thread is not running (like panic)."""
        assert self._thread is None, "send_now() belongs to the ledger's owner thread"
        self._send(self.port, msg, self.clock.now())

    def cancel(self) -> None:
        """Barge-in: drop every queued event and end the machine's sounding notes now."""
        with self._cond:
            # the clock goes on, and the human's own notes passed through stay
            keep = [e for e in self._heap if isinstance(e[3], Message) or e[3].part == THRU_PART]
            self.counters.cancelled += len(self._heap) - len(keep)
            self._heap[:] = keep
            heapq.heapify(self._heap)
            self._resolve_requested = self._cancel_requested = True
            self._cond.notify()
        if self._thread is None:  # virtual mode: the caller's thread owns the ledger
            self._do_resolve()

    def reset_output(self, all_notes: bool = True) -> None:
        """The output's connections changed (a synth vanished, came back, was plugged back):
        end every sounding note, the machine's and the human's passed through, and with
        `all_notes` send a note-off for every note on their channels and the stale ones, since
        offs sent while disconnected never reached the synth (and a synth that was away may hold
        what an earlier session left). Queued events stay: the performance goes on."""
        with self._cond:
            self._resolve_requested = True
            self._reset_requested = True
            self._all_notes_requested = self._all_notes_requested or all_notes
            self._cond.notify()
        if self._thread is None:
            self._do_resolve()

    def clear_for_listener(self) -> None:
        """A synth connected to the output: it may hold notes a killed session left on it (that
        session's start-up panic, and ours, went out before it listened). The start-up panic again,
        but for the notes sounding now: a note-off for every other note on every channel livejam
        may use, and sustain off. The notes sounding play on (their offs reach the new synth too)."""
        with self._cond:
            self._resolve_requested = self._clear_requested = True
            self._cond.notify()
        if self._thread is None:
            self._do_resolve()

    def pending(self) -> int:
        with self._cond:
            return len(self._heap)

    # --- threaded mode --------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="livejam-scheduler", daemon=True)
        self._thread.start()

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, flush: bool = True, timeout: float = 2.0) -> None:
        """Stop the thread. Queued note-ons are dropped; with `flush` queued
        note-offs are sent at once (the ledger refuses those of silent notes)."""
        with self._cond:
            keep = [e for e in self._heap if flush and e[1] == 0]
            self.counters.cancelled += len(self._heap) - len(keep)
            self._heap[:] = keep
            heapq.heapify(self._heap)
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("scheduler thread did not stop within %.1f s", timeout)
            self._thread = None

    def panic(self, all_notes: bool = False, startup: bool = False) -> None:
        """Send the ledger's panic (with `all_notes`, a note-off for every note on every
        channel: what a crashed session left on a synth; with `startup`, on `stale_channels`
        too: an earlier session may have played there). Only call when the thread is not running."""
        assert self._thread is None, "panic() belongs to the ledger's owner thread"
        also = {self.aside_port: set(self.stale_channels)} if startup else None
        for port, msg in self.ledger.panic(all_notes, also):
            self._send(port, msg, self.clock.now())

    def _run(self) -> None:
        clock = self.clock
        if self.realtime_priority:
            self.counters.realtime = make_realtime(self.realtime_priority)
        try:
            while True:
                due: list[tuple] = []  # heap entries: (time, order, seq, note or message)
                with self._cond:
                    now = clock.now()
                    resolve, self._resolve_requested = self._resolve_requested, False
                    if not resolve:
                        if self._stopping and not self._heap:
                            return
                        wake = min(self._next_time_locked(self.lead_s), now + 0.1)
                        if self._stopping:
                            wake = now  # flushing: send what is left without waiting
                        if wake - now > clock.spin_s:
                            self._cond.wait(wake - now - clock.spin_s)
                            continue
                if resolve:
                    self._do_resolve()
                    continue
                clock.sleep_until(wake)  # the spin, outside the lock
                with self._cond:
                    now = clock.now()
                    while self._heap and (self._heap[0][0] - self.lead_s <= now or self._stopping):
                        due.append(heapq.heappop(self._heap))
                for t, _, _, n in due:
                    self._emit(n, t)
                self._watchdog(clock.now())
        except BaseException as e:  # a vanished port or a bug: surface it, never die silently
            self.error = e

    # --- virtual mode --------------------------------------------------------------
    def next_time(self) -> float:
        """When the next thing is due (an event or a watchdog deadline); inf if nothing."""
        with self._cond:
            return self._next_time_locked()

    def run_until(self, t: float) -> None:
        """Single-threaded: emit everything due up to `t`, advancing the clock to each time."""
        while True:
            nxt = self.next_time()
            if nxt > t:
                break
            self.clock.advance(nxt)
            with self._cond:
                due = []
                while self._heap and self._heap[0][0] <= nxt:
                    due.append(heapq.heappop(self._heap))
            for t_due, _, _, n in due:
                self._emit(n, t_due)
            self._watchdog(nxt)
        self.clock.advance(t)

    # --- internals -----------------------------------------------------------------
    def _next_time_locked(self, lead: float = 0.0) -> float:
        nxt = self._heap[0][0] - lead if self._heap else float("inf")
        # the ledger is only touched by its owner thread, which is the caller here
        nxt = min(nxt, self.ledger.oldest_on(self.port) + self.watchdog_s)
        if self.thru_channel is not None:
            nxt = min(nxt, self.ledger.oldest_on(self.thru_port) + self.thru_timeout_s)
        return nxt

    def _emit(self, n: TimedNote | Message, t: float) -> None:
        if isinstance(n, Message):
            self._emit_raw(n, t)
            return
        channel = route(n.part, self.channels, self.thru_channel)
        if channel is None:
            return
        port = self.thru_port if n.part == THRU_PART else self.port
        now = self.clock.now()
        # it is to sound at its time, or now when handed over after it (a stop flushes now)
        lateness = max(0.0, now - n.time)
        at = now if self._stopping else n.time + lateness
        if n.velocity > 0:
            if lateness > self.late_drop_s:
                self.counters.dropped_late += 1
                return
            if port == self.thru_port and self.ledger.sounds((port, channel, n.pitch)):
                # a key struck while its note sounds: its note-off was lost upstream
                self.ledger.note_off(port, channel, n.pitch)
                self.counters.thru_restruck += 1
                self._send(port, note_off(channel, n.pitch), now)
            if not self.ledger.note_on(port, channel, n.pitch, n.time):
                return
            msg = note_on(channel, n.pitch, min(127, n.velocity))
        else:
            if not self.ledger.note_off(port, channel, n.pitch):
                return
            msg = note_off(channel, n.pitch)
        self.counters.lateness.append(lateness)
        self.counters.timed += 1
        if lateness > self.late_s:
            self.counters.late += 1
        self._send(port, msg, at)

    def _emit_raw(self, msg: Message, t: float) -> None:
        now = self.clock.now()
        if msg.kind == "note_on":
            if not self.ledger.note_on(self.port, msg.channel, msg.note, now):
                return
        elif msg.kind == "note_off":
            if not self.ledger.note_off(self.port, msg.channel, msg.note):
                return
        self._send(self.port, msg, now if self._stopping else max(now, t))

    def _send(self, port: int, msg: Message, t: float) -> None:
        self.sink(port, msg, t)
        self.counters.sent += 1

    def _do_resolve(self) -> None:
        now = self.clock.now()
        with self._cond:
            cancel, self._cancel_requested = self._cancel_requested, False
            reset, self._reset_requested = self._reset_requested, False
            all_notes, self._all_notes_requested = self._all_notes_requested, False
            clear, self._clear_requested = self._clear_requested, False
        if cancel or reset:
            for port, msg in self.ledger.resolve(port=None if reset else self.port):
                self._send(port, msg, now)
        if all_notes:
            for channel in self._every_channel():
                for note in range(128):
                    self._send(self.aside_port, note_off(channel, note), now)
        if clear:
            for msg in self.ledger.clear_silent(self._every_channel()):
                self._send(self.aside_port, msg, now)

    def _every_channel(self) -> list[int]:
        """Each channel livejam plays or an earlier session may have played on."""
        thru = {self.thru_channel} if self.thru_channel is not None else set()
        return list(self.channels) + sorted((set(self.stale_channels) | thru) - set(self.channels))

    def _watchdog(self, now: float) -> None:
        keys = self.ledger.held_since(now - self.watchdog_s + 1e-9, self.port)
        if self.thru_channel is not None:
            keys += self.ledger.held_since(now - self.thru_timeout_s + 1e-9, self.thru_port)
        for port, msg in self.ledger.resolve(keys):
            if port == self.thru_port:
                self.counters.thru_timeouts += 1
            else:
                self.counters.watchdog_offs += 1
            self._send(port, msg, now)


def build_scheduler(config: DaemonConfig, clock, sink: Sink) -> Scheduler:
    """The scheduler every session builds from its settings, live (`run`, in this process or the
    output process) or on a virtual clock (`simulate`, the soak): machine channels, lateness and
    watchdog policies, MIDI thru, the channels a killed session with other options may have left
    notes on."""
    return Scheduler(clock, sink, channels=config.midi.machine_channels, late_drop_s=config.scheduler.late_drop_s,
                     watchdog_s=config.scheduler.watchdog_s, realtime_priority=config.scheduler.realtime_priority,
                     thru_channel=config.midi.thru_channel if config.midi.thru else None,
                     thru_timeout_s=config.performer.held_key_timeout_s,
                     stale_channels=(*config.midi.any_session_channels, config.beat.click_channel))
