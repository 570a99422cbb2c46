"""The live beat clock: the tempo and the beat position now, from whichever source is active.

Sources, by precedence: incoming MIDI clock (24 ppqn, start/stop/continue, song position)
> livejam's own tempo (`bpm`, livejam is the master) > free time. `BeatClock` is written by
the performer thread (writers serialise on a lock) and read from any thread: every write
publishes a new immutable `BeatSnapshot` (a BeatMap) and swapping one reference is atomic,
so readers take no lock, and a reader holding a snapshot sees one consistent map.

Numbering: within one `generation` the map is continuous and increasing (piecewise linear
in time). The generation changes whenever the source or the numbering changes (MIDI Start:
beat 0 at the first tick after it, as MIDI defines; Continue; a Song Position Pointer while
running; the master's `start`; a fall back to our tempo or free time when the clock stops).
An event coder that sees a new generation rebases: it re-reads `beat_at` of its last event.
Tempo updates within a source (every MIDI tick, a new `bpm`) keep the generation.

Also here, pure and driven by whoever owns time: `ClockOut` (the MIDI clock we send as
master) and `count_in` (the click notes before beat 0).
"""
from __future__ import annotations

import bisect
import logging
import math
import threading
from dataclasses import dataclass

from livejam.clock import NOMINAL_BPM, TempoFit
from livejam.config import BeatConfig
from livejam.midi.spec import Message, note_off, note_on

log = logging.getLogger(__name__)

TICKS_PER_BEAT = 24  # MIDI clock: 24 per quarter note
TICKS_PER_SIXTEENTH = 6  # the Song Position Pointer counts 16ths
HISTORY = 48  # segments kept per generation (a steady clock adds one only when the map drifts)
POS_TOLERANCE = 0.002  # beats (1 ms at 120 bpm) the map may be off before a tick corrects it
BPM_TOLERANCE = 0.002  # relative; the event coder's tempo bins are ~6% apart
CLOCK_TIMEOUT_S = 0.5  # no tick for this long: the clock is gone (20 bpm ticks every 125 ms)


@dataclass(frozen=True)
class Segment:
    """From time t0 on, beats advance linearly from beat0 at `bpm` (None: free time, at NOMINAL_BPM)."""

    t0: float
    beat0: float
    bpm: float | None

    @property
    def rate(self) -> float:  # beats per second
        return (self.bpm or NOMINAL_BPM) / 60.0


class BeatSnapshot:
    """An immutable BeatMap: the segments of one generation (increasing in time and beat)
    and the bar starts (beat, beats per bar), each in force until the next."""

    __slots__ = ("segments", "bars", "generation", "source", "_t0s", "_b0s", "_bar0s")

    def __init__(self, segments: tuple[Segment, ...], bars: tuple[tuple[float, int], ...],
                 generation: int, source: str):
        self.segments, self.bars, self.generation, self.source = segments, bars, generation, source
        self._t0s = [s.t0 for s in segments]
        self._b0s = [s.beat0 for s in segments]
        self._bar0s = [b for b, _ in bars]

    def _seg_at_time(self, t: float) -> Segment:
        return self.segments[max(0, bisect.bisect_right(self._t0s, t) - 1)]

    def _seg_at_beat(self, beat: float) -> Segment:
        return self.segments[max(0, bisect.bisect_right(self._b0s, beat) - 1)]

    def beat_at(self, t: float) -> float:
        s = self._seg_at_time(t)
        return s.beat0 + (t - s.t0) * s.rate

    def time_at(self, beat: float) -> float:
        s = self._seg_at_beat(beat)
        return s.t0 + (beat - s.beat0) / s.rate

    def bar_at(self, beat: float) -> tuple[float, int] | None:
        if self._seg_at_beat(beat).bpm is None or not self.bars:
            return None  # free time has no bar, even if bars were known before it
        start, meter = self.bars[max(0, bisect.bisect_right(self._bar0s, beat + 1e-9) - 1)]
        return float((beat - start) % meter), meter

    def bpm_at(self, t: float) -> float | None:
        return self._seg_at_time(t).bpm


class BeatClock:
    """The live BeatMap, fed by the performer thread, readable from any thread.

    Writers: `handle(kind, t, data)` for MIDI real-time input ("clock", "start", "continue",
    "stop", "songpos" with the raw bytes), `set_tempo(bpm, t, meter)` for our own tempo,
    `start(t)` to put the master's beat 0 at time t (after a count-in).
    Readers: `snapshot()` or the BeatMap methods, `generation`, `source`, `running`.
    Writers serialise on a lock (the performer thread, perhaps a control thread); readers
    never take it. A running clock that goes silent is dropped by `expire(now)`.
    """

    def __init__(self, config: BeatConfig | None = None, t0: float = 0.0):
        self.config = config or BeatConfig()
        self._follow = self.config.clock_in and not self.config.clock_out
        self._own_bpm = self.config.bpm
        self._meter = self.config.meter
        self.fit = TempoFit(self.config.clock_in_window)
        self.running = False  # the incoming MIDI clock's transport
        self._pending: str | None = None  # "start"/"continue": the next tick takes over the map
        self._jump = False  # a song position arrived while running
        self.next_tick = 0  # the song position (in ticks) of the next incoming tick
        self._segments: list[Segment] = []
        self._bars: list[tuple[float, int]] = []
        self._snap: BeatSnapshot | None = None
        self._write = threading.Lock()
        self._rebase(Segment(t0, 0.0, self._own_bpm), "bpm" if self._own_bpm else "free")

    # --- readers (any thread) ---------------------------------------------------------
    def snapshot(self) -> BeatSnapshot:
        return self._snap

    @property
    def generation(self) -> int:
        return self._snap.generation

    @property
    def source(self) -> str:
        """'midi' (following incoming clock), 'bpm' (our own tempo) or 'free'."""
        return self._snap.source

    @property
    def song_position(self) -> float:
        """Where the incoming MIDI clock's next tick will be, in beats (frozen while stopped)."""
        return self.next_tick / TICKS_PER_BEAT

    def beat_at(self, t: float) -> float:
        return self._snap.beat_at(t)

    def time_at(self, beat: float) -> float:
        return self._snap.time_at(beat)

    def bar_at(self, beat: float) -> tuple[float, int] | None:
        return self._snap.bar_at(beat)

    def bpm_at(self, t: float) -> float | None:
        return self._snap.bpm_at(t)

    def next_grid(self, t: float, division_beats: float) -> float | None:
        """The first grid line (every `division_beats` beats) at or after `t`; None in
        free time. Same contract as MidiClockFollower.next_grid, for the performers."""
        snap = self._snap
        if snap.bpm_at(t) is None or division_beats <= 0:
            return None
        line = math.ceil(snap.beat_at(t) / division_beats - 1e-9) * division_beats
        return snap.time_at(line)

    # --- writers (the performer thread only) ------------------------------------------
    def handle(self, kind: str, t: float, data: tuple[int, ...] = ()) -> None:
        """A MIDI real-time/system message that arrived at time t (`data`: its raw bytes)."""
        if not self._follow:
            return
        with self._write:
            self._handle(kind, t, data)

    def _handle(self, kind: str, t: float, data: tuple[int, ...]) -> None:
        if kind == "clock":
            self._tick(t)
        elif kind == "start":
            self.next_tick, self._pending = 0, "start"
        elif kind == "continue":
            self._pending = "continue"
        elif kind == "stop":
            self._pending = None
            if self.running:
                self.running = False
                self._fall_back(t)
        elif kind == "songpos" and len(data) == 3:
            self.next_tick = (data[1] | data[2] << 7) * TICKS_PER_SIXTEENTH  # MIDI counts 16ths
            self._jump = self.running  # while stopped it only takes effect on Continue

    def song_position_pointer(self, sixteenths: int, t: float) -> None:
        """The Song Position Pointer: the next tick plays `sixteenths` 16ths from the song's start."""
        self.handle("songpos", t, song_position_message(sixteenths).data)

    def expire(self, now: float) -> None:
        """Call now and then (the performer's wakeups): a running clock silent for
        CLOCK_TIMEOUT_S (cable pulled, master crashed) counts as stopped."""
        with self._write:
            if self.running and self.fit.times and now - self.fit.times[-1] > CLOCK_TIMEOUT_S:
                log.info("MIDI clock silent for %.1f s: treated as stopped", now - self.fit.times[-1])
                self.running, self._pending = False, None
                self._fall_back(now)

    def set_tempo(self, bpm: float | None, t: float, meter: int | None = None) -> None:
        """Our own tempo from time t on (None: none); the numbering stays continuous. A new
        meter starts at the next downbeat. An incoming clock keeps precedence: then this
        only takes effect when it stops."""
        if bpm is not None and not 20.0 <= bpm <= 300.0:
            raise ValueError(f"bpm must be within 20..300, got {bpm}")
        with self._write:
            self._set_tempo(bpm, t, meter)

    def _set_tempo(self, bpm: float | None, t: float, meter: int | None) -> None:
        self._own_bpm = bpm
        snap = self._snap
        if meter is not None and meter != self._meter:
            self._meter = meter
            beat = snap.beat_at(t)
            pos = snap.bar_at(beat)
            start = beat if pos is None else beat - pos[0] + (pos[1] if pos[0] > 1e-9 else 0)
            self._bars.append((start, meter))
        if snap.source == "midi":
            self._publish(snap.source)
        elif (bpm is None) != (snap.source == "free"):  # the source changes
            self._append(Segment(t, snap.beat_at(t), bpm))
            self._publish("bpm" if bpm else "free", new_generation=True)
        else:
            self._append(Segment(t, snap.beat_at(t), bpm))
            self._publish(snap.source)

    def start(self, t: float) -> None:
        """The master's beat 0 is at time t (later than now after a count-in: the beats
        before it are negative). Ignored while an incoming clock runs."""
        with self._write:
            if self.source == "midi":
                log.info("start ignored: following the incoming MIDI clock")
                return
            self._rebase(Segment(t, 0.0, self._own_bpm), "bpm" if self._own_bpm else "free")

    # --- internals --------------------------------------------------------------------
    def _tick(self, t: float) -> None:
        self.fit.add(t)  # the tempo, whatever the transport: many masters tick while stopped
        if self._pending is None and not self.running:
            return
        pos = self.next_tick / TICKS_PER_BEAT
        self.next_tick += 1
        bpm = self.fit.bpm or self._own_bpm or NOMINAL_BPM
        if self._pending is not None or self._jump:  # the first tick after Start/Continue/SPP
            self.running, self._pending, self._jump = True, None, False
            self._rebase(Segment(t, pos, bpm), "midi")
        else:  # a new piece only when the map is off: a steady clock keeps a long history
            snap = self._snap
            now_bpm = snap.segments[-1].bpm or bpm
            if abs(snap.beat_at(self.fit.last) - pos) > POS_TOLERANCE or abs(bpm / now_bpm - 1) > BPM_TOLERANCE:
                self._append(Segment(self.fit.last, pos, bpm))  # the fitted time, not the jittery arrival
                self._publish("midi")

    def _fall_back(self, t: float) -> None:
        """The clock stopped: carry on from the beat we are at, at our tempo or in free time."""
        self._append(Segment(t, self._snap.beat_at(t), self._own_bpm))
        self._publish("bpm" if self._own_bpm else "free", new_generation=True)

    def _rebase(self, seg: Segment, source: str) -> None:
        self._segments = [seg]
        self._bars = [(0.0, self._meter)]  # beat 0 starts a bar (MIDI: song position 0)
        self._publish(source, new_generation=True)

    def _append(self, seg: Segment) -> None:
        segs = self._segments
        while segs and segs[-1].t0 >= seg.t0:
            segs.pop()  # a newer piece replaces what it overlaps (a fitted tick time moved)
        segs.append(seg)
        del segs[:-HISTORY]

    def _publish(self, source: str, new_generation: bool = False) -> None:
        generation = (self._snap.generation if self._snap else 0) + (1 if new_generation else 0)
        del self._bars[:-HISTORY]
        self._snap = BeatSnapshot(tuple(self._segments), tuple(self._bars), generation, source)


# --- what the master sends ------------------------------------------------------------
CLOCK, START, CONTINUE, STOP = (Message(k, data=(b,)) for k, b in
                                (("clock", 0xF8), ("start", 0xFA), ("continue", 0xFB), ("stop", 0xFC)))


def song_position_message(sixteenths: int) -> Message:
    sixteenths = min(sixteenths, 0x3FFF)  # 14 bits: ~34 min at 120 bpm; MIDI has no further
    return Message("songpos", data=(0xF2, sixteenths & 0x7F, sixteenths >> 7))


class ClockOut:
    """The MIDI clock livejam sends as master. Pure: the scheduler thread pulls what is due.

    Tick i sits at beat i/24 exactly and its time comes from the beat clock's current map,
    so a tempo change takes effect on the next tick and nothing accumulates (no drift).
    Start goes out with the tick of beat 0; with `preroll` the ticks before it (a count-in)
    go out too, so slaves know the tempo when they start. Joining after beat 0, or after the
    numbering changed, it sends Song Position Pointer + Continue on the next 16th instead.
    While the map is not ours (an incoming clock leads, or free time) it stops and stays quiet.
    """

    def __init__(self, beats, now: float, preroll: bool = True):
        self._beats = beats  # a BeatClock (anything with snapshot())
        self._preroll = preroll
        self._last = now  # the time of the last message out (or of the creation)
        self._next = 0  # the next tick's index, in the current generation
        self._start_tick = 0
        self._gen: int | None = None
        self._playing = False
        self._first = True
        self._stopped = False

    @property
    def playing(self) -> bool:
        return self._playing

    def pull(self, until: float) -> list[tuple[float, Message]]:
        """Every message due before `until` not pulled yet, as (time, message) in order."""
        out: list[tuple[float, Message]] = []
        snap = self._beats.snapshot()
        if self._stopped:
            return out
        if snap.source != "bpm":
            if self._playing:
                out.append((max(self._last, snap.segments[-1].t0), STOP))
                self._playing = False
            self._gen = None
            return out
        if snap.generation != self._gen:
            self._sync(snap, out)
        while True:
            i = self._next
            t = snap.time_at(i / TICKS_PER_BEAT)
            if t >= until:
                return out
            t = max(t, self._last)  # a tempo change inside the lookahead never reorders
            if i == self._start_tick and not self._playing:
                if i == 0:
                    out.append((t, START))
                else:
                    out += [(t, song_position_message(i // TICKS_PER_SIXTEENTH)), (t, CONTINUE)]
                self._playing = True
            out.append((t, CLOCK))
            self._last, self._next = t, i + 1

    def next_due(self) -> float | None:
        """When the next message is due (for the scheduler's sleep), None when none is coming."""
        snap = self._beats.snapshot()
        if self._stopped or (snap.source != "bpm" and not self._playing):
            return None
        if snap.source != "bpm" or snap.generation != self._gen:
            return self._last  # a Stop or a re-sync: due at once
        return max(self._last, snap.time_at(self._next / TICKS_PER_BEAT))

    def stop(self, t: float) -> list[tuple[float, Message]]:
        """What is due before t, then Stop at t; nothing after."""
        out = self.pull(t)
        if self._playing:
            out.append((max(t, self._last), STOP))
            self._playing = False
        self._stopped = True
        return out

    def _sync(self, snap: BeatSnapshot, out: list) -> None:
        """A new generation (or the first pull): find the next tick in the new numbering."""
        if self._playing:  # the numbering jumped: the slaves must stop and re-locate
            out.append((self._last, STOP))
            self._playing = False
        self._gen = snap.generation
        ticks = snap.beat_at(self._last) * TICKS_PER_BEAT
        self._next = math.ceil(ticks - 1e-9) if self._first else math.floor(ticks + 1e-9) + 1
        self._first = False
        # start on beat 0, or on the next 16th when joining later (SPP counts 16ths)
        self._start_tick = 0 if self._next <= 0 else -(-self._next // TICKS_PER_SIXTEENTH) * TICKS_PER_SIXTEENTH
        if not self._preroll:
            self._next = self._start_tick


def count_in(bars: int, meter: int, bpm: float, beat0_time: float = 0.0, *, channel: int = 9,
             notes: tuple[int, int] = (76, 77), velocities: tuple[int, int] = (110, 75),
             length_beats: float = 0.25) -> list[tuple[float, Message]]:
    """The clicks of `bars` bars before beat 0 (at `beat0_time`): (time, message) pairs in
    time order, a note-on and its note-off per beat, the first note/velocity on downbeats."""
    spb = 60.0 / bpm
    n = bars * meter
    out = []
    for k in range(n):
        t = beat0_time - (n - k) * spb
        down = k % meter == 0
        note = notes[0] if down else notes[1]
        out.append((t, note_on(channel, note, velocities[0] if down else velocities[1])))
        out.append((t + length_beats * spb, note_off(channel, note)))
    out.sort(key=lambda p: (p[0], p[1].kind != "note_off"))  # offs first at equal times
    return out


def count_in_for(config: BeatConfig, beat0_time: float) -> list[tuple[float, Message]]:
    """count_in with the config's bars, meter, tempo, channel and notes ([] without a tempo)."""
    if config.bpm is None or config.count_in_bars == 0:
        return []
    return count_in(config.count_in_bars, config.meter, config.bpm, beat0_time, channel=config.click_channel,
                    notes=config.click_notes, velocities=config.click_velocities)
