"""Our JACK output port as a client of its own, writing each message at the frame of its time.

rtmidi's JACK backend queues a message and writes it at the start of the next process period
(offset 0), so a note handed over on time reaches a synth up to a period later: p99 2.6 ms at 64
frames, 21 ms at 1024 (`python -m livejam.measure.frames`). This port takes each message with the
time it is meant to sound (`send(msg, at)`, the scheduler hands it over `lead_s` ahead: more than
a period) and its process callback writes it at that frame's offset within the period that holds
it: a note handed over in time arrives on its frame, whatever the period.

Only the output process uses it (livejam/output/child.py), and only there is no rtmidi loaded:
two copies of libjack in one process (python-rtmidi's wheel bundles its own; this one is the
system's, through the JACK-Client package) deadlocked in jack_client_close.

Threads: `send` (the scheduler's thread) appends to a deque; the process callback (JACK's
thread) pops from it; neither waits for the other. Messages leave in the order they were handed
over (a later one never overtakes an earlier one: offsets only grow within a period), so a
note-off handed over after its note-on always follows it.
"""
from __future__ import annotations

import logging
import time
from collections import deque

from livejam.midi.spec import Message

log = logging.getLogger(__name__)

# How much more than one period ahead the scheduler hands a message over: its wake-up (sleep, then
# spin: RealClock) and the GIL (switch interval 0.5 ms) come between its time and the callback.
LEAD_MARGIN_S = 0.003
DRAIN_S = 0.25  # close() waits at most this long (plus the lead) for queued messages to go out
ASAP = -1  # the frame of a message with no time: the next period, first
ANCHOR_CYCLES = 8  # the frame clock is read off the promptest of this many recent callbacks
# At most this many messages a period. Without a cap, the bursts a session sends at once (the
# blanket note-offs when a synth connects) were written into one period, and a listener reading
# through rtmidi (whose JACK input keeps a 16 kB ring) lost most of them: a 1-minute duet's player
# heard 292 of 804 note messages, with the cap 1026 of 1026. rtmidi's own output spreads such a
# burst over the periods its sender takes to hand it over. 128 a period: 96,000 a second at 64 frames.
MAX_PER_PERIOD = 128


def frames_after(frame: int, start: int) -> int:
    """frame - start on JACK's 32-bit frame clock (it wraps after 24.8 hours at 48 kHz)."""
    return ((frame - start + 2**31) % 2**32) - 2**31


class FrameOutput:
    """A JACK client `client` with one MIDI output port "out" (the name rtmidi's port had: the main
    process connects it by name), delivering at frame offsets. Raises OSError/ImportError when
    JACK-Client or libjack is missing, RuntimeError when no server runs (the caller falls back)."""

    jack = True  # as MidiOutput.jack: the main process connects the port through JACK's graph

    def __init__(self, client: str):
        import jack

        self._jack = jack
        # libjack prints its errors and notices on stderr (a dozen lines when the server dies, under
        # livejam's one line): into the log, as livejam/midi/jack.py does for rtmidi's copy
        jack.set_error_function(_libjack_said)
        jack.set_info_function(_libjack_said)
        try:
            self.client = jack.Client(client, no_start_server=True)
        except jack.JackError as e:
            raise RuntimeError(f"no JACK client: {e}") from None
        self.port = self.client.midi_outports.register("out")
        self.rate = self.client.samplerate
        self.period = self.client.blocksize
        self.lead_s = self.period / self.rate + LEAD_MARGIN_S
        self.own_port = self.port.name  # "<client>:out", with the name JACK really gave the client
        self.port_name = self.own_port
        self.queue: deque[tuple[int, bytes]] = deque()  # (frame, bytes): appended by send, popped by the callback
        # (frame, perf_counter) of the recent periods' starts as the callback saw them, and the anchor
        # send() reads: a period's first frame and the time it began (the callback's thread only writes)
        self._cycles: deque[tuple[int, float]] = deque(maxlen=ANCHOR_CYCLES)
        self._anchor: tuple[int, float] | None = None
        self.written_late = 0  # messages whose frame had passed when the callback took them
        self.dead = False  # the server went away: sends are dropped, close talks to no one
        self.send_errors = 0
        self.client.set_process_callback(self._process)
        self.client.set_shutdown_callback(self._shutdown)
        self.client.activate()

    def send(self, msg: Message, at: float | None = None) -> None:
        """Queue msg to sound at `at` (time.perf_counter seconds; None or past: as soon as possible)."""
        if self.dead:
            return
        frame = ASAP
        anchor = self._anchor
        if at is not None and anchor is not None:
            frame = (anchor[0] + int(round((at - anchor[1]) * self.rate))) % 2**32
        self.queue.append((frame, bytes(msg.bytes())))

    def _process(self, frames: int) -> None:
        """JACK's thread, once a period: write the queued messages whose frame falls before its end.
        Never raises (an exception here would make JACK drop the client)."""
        try:
            now = time.perf_counter()
            self.port.clear_buffer()
            start = self.client.last_frame_time
            self._reanchor(start, now)
            q = self.queue
            last = written = 0
            while q and written < MAX_PER_PERIOD:
                frame, data = q[0]
                ahead = 0 if frame == ASAP else frames_after(frame, start)
                if ahead >= frames:  # a later period's (and so is everything after it)
                    break
                offset = min(max(ahead, last), frames - 1)
                try:
                    self.port.write_midi_event(offset, data)
                except self._jack.JackError:  # the period's buffer is full: the rest in the next one
                    break
                q.popleft()
                written += 1
                if ahead < 0 and frame != ASAP:
                    self.written_late += 1
                last = offset
        except Exception:  # noqa: BLE001 (the callback must return; the counter says something failed)
            self.send_errors += 1

    def _reanchor(self, start: int, now: float) -> None:
        """Where frames are in perf_counter time, from this period's start and the recent ones'.

        Not JACK's own estimate (jack_frame_time): after servers on this machine were killed and
        started again it ran 35 ms behind the periods, and with a dummy driver under load the frame
        clock runs slow by up to 0.3%. A callback runs late (a busy core, the GIL), never early, so
        the promptest of the recent ones says best when a period began."""
        self._cycles.append((start, now))
        began = min(t - frames_after(f, start) / self.rate for f, t in self._cycles)
        self._anchor = (start, began)

    def _shutdown(self, status, reason) -> None:
        self.dead = True

    def close(self) -> None:
        """Let the queued messages go out (note-offs among them), then leave the server."""
        if self.dead:  # closing talks to the server: with none left it could hang
            return
        deadline = time.perf_counter() + self.lead_s + DRAIN_S
        while self.queue and not self.dead and time.perf_counter() < deadline:
            time.sleep(0.002)
        if self.queue:
            log.warning("%d MIDI messages were still queued when the output closed", len(self.queue))
        # the last period written reaches the clients after ours within its cycle: leaving the graph
        # before that cycle ends lost it (up to MAX_PER_PERIOD messages, the end of a stop's panic)
        time.sleep(2 * self.period / self.rate + 0.005)
        try:
            self.client.deactivate()
            self.client.close()
        except self._jack.JackError as e:
            log.warning("closing the JACK output: %s", e)


def _libjack_said(message: str) -> None:
    log.debug("libjack: %s", message)
