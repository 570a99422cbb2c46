"""The live beat clock: the tempo and the beat position now, from whichever source is active.

Sources, by precedence: incoming MIDI clock (24 ppqn, start/stop/continue, song position)
> an Ableton Link session with peers (livejam/beat/link.py) > livejam's own tempo (`bpm`, livejam
is the master) > the human's tempo, followed from their note-ons (livejam/beat/tempo.py) while the
tracker is confident > free time. `BeatClock` is written by
the performer thread (writers serialise on a lock) and read from any thread: every write
publishes a new immutable `BeatSnapshot` (a BeatMap) and swapping one reference is atomic,
so readers take no lock, and a reader holding a snapshot sees one consistent map.

Numbering: within one `generation` the map is continuous and increasing (piecewise linear
in time). The generation changes whenever the source or the numbering changes (MIDI Start:
beat 0 at the first tick after it, as MIDI defines; Continue; a Song Position Pointer while
running; the master's `start`; a fall back to a lower source when one stops; Link's timeline
jumping; the followed tempo jumping by more than a quarter or its phase by more than a
quarter beat). An event coder that sees a new generation rebases: it re-reads `beat_at` of
its last event. Tempo updates within a source (every MIDI tick, a new `bpm`, Link's tempo,
the follower's small corrections, spread over a couple of beats) keep the generation.

Link and the follower are read in `expire(now)` (the performer thread's pump), never in a
MIDI callback. Link numbers the beats (its beat mod the meter is the bar); the follower
knows no downbeat, so its map has no bar (`bar_at` None) while it knows the tempo.

Incoming clock is bounded: its tempo is clamped to BPM_MIN..BPM_MAX (the range of `--bpm`), and
floods of ticks or of start/stop/continue/song position are rate-limited (dropped, counted).

`ClockOut` (the MIDI clock we send as master) and `count_in` live in livejam/beat/midiclock.py.
"""
from __future__ import annotations

import logging
import math
import threading

from livejam.beat.midiclock import TICKS_PER_BEAT, TICKS_PER_SIXTEENTH, song_position_message
from livejam.beat.snapshot import BeatSnapshot, Segment
from livejam.beat.tempo import TempoTracker
from livejam.beatmap import NOMINAL_BPM, TempoFit
from livejam.config import BeatConfig
from livejam.midi.ratelimit import RateLimit

log = logging.getLogger(__name__)

HISTORY = 48  # segments kept per generation (a steady clock adds one only when the map drifts)
POS_TOLERANCE = 0.002  # beats (1 ms at 120 bpm) the map may be off before a tick corrects it
BPM_TOLERANCE = 0.002  # relative; the event coder's tempo bins are ~6% apart
CLOCK_TIMEOUT_S = 0.5  # no tick for this long: the clock is gone (20 bpm ticks every 125 ms)
LINK_POLL_S = 0.02  # read the Link session at most this often (a capture costs microseconds)
LINK_JUMP_BEATS = 0.25  # Link's timeline moved by more than this (a peer re-quantised): renumber
FOLLOW_POLL_S = 0.2  # re-estimate the human's tempo at most this often (the tracker takes ~2 ms)
FOLLOW_DROP = 0.75  # once following, free time only below this share of the threshold (no flapping)
FOLLOW_CATCH_UP_BEATS = 2.0  # a phase correction is spread over this many beats: no jump
FOLLOW_POS_TOLERANCE = 0.02  # beats; the tracker's estimate moves a little with every note
FOLLOW_BPM_TOLERANCE = 0.005
FOLLOW_RENUMBER = 0.25  # a tempo jump beyond 25% (another metrical level) or a phase jump beyond
# a quarter beat renumbers: smoothing it would bend the map for beats on end
BPM_MIN, BPM_MAX = 20.0, 300.0  # the tempi livejam believes, from any source (as --bpm)
# Incoming floods: ticks beyond BPM_MAX's rate (5% over it, bursts of a beat: USB bunches ticks) and
# transport messages (start, stop, continue, song position) beyond 4 a second are dropped and counted.
TICK_RATE, TICK_BURST = BPM_MAX * 1.05 * TICKS_PER_BEAT / 60.0, TICKS_PER_BEAT
TRANSPORT_RATE, TRANSPORT_BURST = 4.0, 8


class BeatClock:
    """The live BeatMap, fed by the performer thread, readable from any thread.

    Writers: `handle(kind, t, data)` for MIDI real-time input ("clock", "start", "continue",
    "stop", "songpos" with the raw bytes), `set_tempo(bpm, t, meter)` for our own tempo,
    `start(t)` to put the master's beat 0 at time t (after a count-in), `onset(t)` for each
    note-on the human plays (tempo following), `expire(now)` now and then (the pump).
    Readers: `snapshot()` or the BeatMap methods, `generation`, `source`, `running`.
    Writers serialise on a lock (the performer thread, perhaps a control thread); readers
    never take it. A running clock that goes silent is dropped by `expire(now)`.
    `link`: a Link session (livejam.beat.link.LinkSource, or anything with `read(now)` giving
    None without peers, else an object with `bpm` and `beat` at `now`).
    """

    def __init__(self, config: BeatConfig | None = None, t0: float = 0.0, link=None):
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
        self.link = link
        self.tracker = TempoTracker(prior_bpm=self.config.follow_prior_bpm) if self.config.follow else None
        self._link_at = self._tracked_at = -math.inf  # when each was last read
        self._tick_rate = RateLimit(TICK_RATE, TICK_BURST)
        self._transport_rate = RateLimit(TRANSPORT_RATE, TRANSPORT_BURST)
        self.dropped = {"clock": 0, "transport": 0}  # incoming messages over the rate limits
        self._rebase(Segment(t0, 0.0, self._own_bpm), "bpm" if self._own_bpm else "free")

    # --- readers (any thread) ---------------------------------------------------------
    def snapshot(self) -> BeatSnapshot:
        return self._snap

    @property
    def generation(self) -> int:
        return self._snap.generation

    @property
    def source(self) -> str:
        """'midi' (incoming clock), 'link', 'bpm' (our own tempo), 'follow' (the human's) or 'free'."""
        return self._snap.source

    @property
    def poll_s(self) -> float | None:
        """How often `expire` has work to do (Link or tempo following); None: only for MIDI clock."""
        if self.link is not None:
            return LINK_POLL_S
        return FOLLOW_POLL_S if self.tracker is not None else None

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
        free time (grid_beats: the performers snap note-ons to it)."""
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
        limit, counter = (self._tick_rate, "clock") if kind == "clock" else (self._transport_rate, "transport")
        if not limit.allow(t):  # a flood: the beat must not race, nor the map renumber hundreds of times
            self.dropped[counter] += 1
            return
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
            if self.running:
                return  # the incoming clock leads: Link and the follower wait
            if self.link is not None and now - self._link_at >= LINK_POLL_S:
                self._link_at = now
                self._read_link(now)
            if self.tracker is not None and now - self._tracked_at >= FOLLOW_POLL_S:
                self._tracked_at = now
                self._track(now)

    def onset(self, t: float) -> None:
        """A note-on the human played at time t (tempo following; cheap: estimates wait for expire)."""
        if self.tracker is not None:
            with self._write:
                self.tracker.onset(t)

    def set_tempo(self, bpm: float | None, t: float, meter: int | None = None) -> None:
        """Our own tempo from time t on (None: none); the numbering stays continuous. A new
        meter starts at the next downbeat. An incoming clock keeps precedence: then this
        only takes effect when it stops."""
        if bpm is not None and not BPM_MIN <= bpm <= BPM_MAX:
            raise ValueError(f"bpm must be within {BPM_MIN:g}..{BPM_MAX:g}, got {bpm}")
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
        if snap.source in ("midi", "link"):  # they outrank our tempo: it waits
            self._publish(snap.source)
        elif bpm is None:
            if snap.source == "bpm":
                self._fall_back(t)
            else:
                self._publish(snap.source)
        else:
            self._append(Segment(t, snap.beat_at(t), bpm))
            self._publish("bpm", new_generation=snap.source != "bpm")

    def start(self, t: float) -> None:
        """The master's beat 0 is at time t (later than now after a count-in: the beats
        before it are negative). Ignored while an incoming clock runs."""
        with self._write:
            if self.source in ("midi", "link"):
                log.info("start ignored: following %s", "the incoming MIDI clock" if self.source == "midi" else "Link")
                return
            self._rebase(Segment(t, 0.0, self._own_bpm), "bpm" if self._own_bpm else "free")

    # --- internals --------------------------------------------------------------------
    def _tick(self, t: float) -> None:
        self.fit.add(t)  # the tempo, whatever the transport: many masters tick while stopped
        if self._pending is None and not self.running:
            return
        pos = self.next_tick / TICKS_PER_BEAT
        self.next_tick += 1
        bpm = min(BPM_MAX, max(BPM_MIN, self.fit.bpm or self._own_bpm or NOMINAL_BPM))
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
        """The leading source stopped: carry on with the next one down (Link with peers, our
        tempo from the beat we are at, the human's tempo if the tracker is sure, free time)."""
        state = self.link.read(t) if self.link is not None else None
        if state is not None:
            self._rebase(Segment(t, state.beat, state.bpm), "link")
            return
        estimate = self.tracker.estimate(t) if self.tracker is not None and not self._own_bpm else None
        if estimate is not None and estimate.bpm and estimate.confidence >= self.config.follow_confidence:
            self._renumber_follow(t, estimate)
            return
        self._append(Segment(t, self._snap.beat_at(t), self._own_bpm))
        self._publish("bpm" if self._own_bpm else "free", new_generation=True)

    def _read_link(self, now: float) -> None:
        """Follow the Link session while it has peers; without, the sources below lead."""
        state, source = self.link.read(now), self._snap.source
        if state is None:
            if source == "link":
                log.info("Link: no peers left: on with the sources below")
                self._fall_back(now)
            return
        if source != "link":
            log.info("Link: following the session (%.1f bpm)", state.bpm)
            self._rebase(Segment(now, state.beat, state.bpm), "link")  # Link's beats, its bars
            return
        drift = self._snap.beat_at(now) - state.beat
        if abs(drift) > LINK_JUMP_BEATS:
            self._rebase(Segment(now, state.beat, state.bpm), "link")
        elif abs(drift) > POS_TOLERANCE or abs(state.bpm / self._snap.bpm_at(now) - 1) > BPM_TOLERANCE:
            self._append(Segment(now, state.beat, state.bpm))
            self._publish("link")

    def _track(self, now: float) -> None:
        """Follow the human's tempo while the tracker is sure of it, below Link and our bpm."""
        source = self._snap.source
        if source in ("link", "bpm"):
            return
        est = self.tracker.estimate(now)
        threshold = self.config.follow_confidence
        if source == "free":
            if est.bpm is not None and est.confidence >= threshold:
                log.info("tempo follow: %.1f bpm (confidence %.2f)", est.bpm, est.confidence)
                self._renumber_follow(now, est)
            return
        if est.bpm is None or est.confidence < threshold * FOLLOW_DROP:
            log.info("tempo follow: lost the beat (confidence %.2f): free time", est.confidence)
            self._append(Segment(now, self._snap.beat_at(now), None))
            self._publish("free", new_generation=True)
            return
        beat, bpm = self._snap.beat_at(now), self._snap.segments[-1].bpm
        error = (est.phase - beat + 0.5) % 1.0 - 0.5  # beats the map is behind the human's beat
        if abs(math.log(est.bpm / bpm)) > math.log1p(FOLLOW_RENUMBER) or abs(error) > FOLLOW_RENUMBER:
            log.info("tempo follow: %.1f bpm, renumbered", est.bpm)
            self._renumber_follow(now, est)
        elif abs(error) > FOLLOW_POS_TOLERANCE or abs(est.bpm / bpm - 1) > FOLLOW_BPM_TOLERANCE:
            # catch up over a couple of beats, then on at the new tempo: continuous, increasing
            span = FOLLOW_CATCH_UP_BEATS * 60.0 / est.bpm
            self._append(Segment(now, beat, est.bpm * (1 + error / FOLLOW_CATCH_UP_BEATS), bars=False))
            self._append(Segment(now + span, beat + FOLLOW_CATCH_UP_BEATS + error, est.bpm, bars=False))
            self._publish("follow")

    def _renumber_follow(self, t: float, est) -> None:
        """Start (or restart) following: the beat at t gets the tracker's phase, new generation."""
        now_beat = self._snap.beat_at(t)
        beat = math.floor(now_beat) + est.phase
        if beat < now_beat:  # forward only: the map stays increasing, past times keep their beats
            beat += 1.0
        self._append(Segment(t, beat, est.bpm, bars=False))
        self._publish("follow", new_generation=True)

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
