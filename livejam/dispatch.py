"""The performer thread's work, independent of threads and ports: the one performer
factory and the Dispatcher that feeds a performer what came in and hands what it
decided to the scheduler. The live daemon runs it on its performer thread;
`livejam simulate` and the tests run it on a virtual clock.
"""
from __future__ import annotations

import logging

from livejam.beat.live import BeatClock
from livejam.beat.midiclock import ClockOut
from livejam.chart import ChartChange, ChordChart
from livejam.config import ConfigError, DaemonConfig, model_path
from livejam.events import TimedNote
from livejam.midi.normalise import InputNormaliser
from livejam.midi.spec import REALTIME_CLOCK, Message
from livejam.recording import Recorder
from livejam.scheduler import THRU_PART, Scheduler

log = logging.getLogger(__name__)

# MIDI clock out is handed to the scheduler this far ahead: the performer thread may be busy
# (inference) for a while, the scheduler thread sends each tick at its time.
CLOCK_AHEAD_S = 0.2


def build_performer(config: DaemonConfig, strict: bool = True):
    """The one performer factory: `config.performer.kind` with its settings, given the
    session's chord chart (`config.chords.chart`, parsed here once, before any model loads:
    a bad chart is a ConfigError of one line).

    The neural performer loads its model file here. A missing or corrupt model
    raises ModelError (one line) when `strict` (the user asked for the neural
    performer); otherwise it is reported in one line and the Markov performer
    plays instead.
    """
    chart = load_chart(config.chords.chart)
    performer = _build(config, strict)
    give_chart(performer, chart)
    return performer


def load_chart(spec: str) -> ChordChart | None:
    """`--chords` (chords.chart): a chart's text or file -> ChordChart; "" -> None.
    ConfigError (one line, naming the bad token) when it is no chart."""
    if not spec.strip():
        return None
    try:
        return ChordChart.load(spec)
    except ValueError as e:
        raise ConfigError(f"--chords: {e}") from None


def give_chart(performer, chart: ChordChart | None) -> None:
    """Hand the performer a chart (a performer that follows no chords keeps it: PerformerBase)."""
    performer.set_chart(chart)


def _build(config: DaemonConfig, strict: bool):
    kind, seed = config.performer.kind, config.seed
    if kind == "echo":  # the benchmark's immediate echo path: plumbing, no music
        from livejam.performers.echo import EchoPerformer

        return EchoPerformer()
    if kind == "neural":
        from livejam.engine.session import ModelError, load_model
        from livejam.performers.neural import NeuralPerformer

        if config.neural.prompt:  # the user's file: their mistake, in one line, not a "broken model" and Markov
            check_prompt(config.neural.prompt)
        try:
            try:
                model = load_model(model_path(config.neural.model), intra_op_threads=config.neural.intra_op_threads)
                return NeuralPerformer(config.performer, config.neural, model, seed, config.chords)
            except ModelError:
                raise
            except Exception as e:  # a livejam model's metadata on a graph that does not run as one
                first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
                raise ModelError(f"{config.neural.model or 'the model'}: does not run as a livejam model "
                                 f"({type(e).__name__}: {first})") from None
        except ModelError as e:
            if strict:
                raise
            log.warning("%s: falling back to the Markov continuator", e)
    elif config.neural.mode == "duet":  # it continues phrases; a duet would be silence between them
        raise ConfigError("--performer markov plays call and response only: --mode duet needs the neural "
                          "performer (--performer neural)")
    from livejam.performers.markov import MarkovPerformer

    return MarkovPerformer(config.performer, seed)


def check_prompt(path: str) -> None:
    """A --prompt file must be a readable MIDI file with notes: ConfigError (one line) otherwise."""
    from livejam.midi.files import read_midi_tracks

    try:
        tracks = read_midi_tracks(path)
    except ValueError as e:
        raise ConfigError(f"--prompt: {e}") from None
    if not tracks:
        raise ConfigError(f"--prompt: {path}: no notes to prime the model with")


def performer_name(performer) -> str:
    """The name a user knows the performer by (what really plays, after any fallback)."""
    cls = type(performer).__name__
    return next((name for name in ("neural", "markov", "echo") if name in cls.lower()), cls)


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
        performer.follow_clock(self.beat)  # tempo sync: the performer may snap to the beat clock's grid
        # the performer counts its events in these beats, if it follows a clock that can renumber
        # (the neural one rebases on a new generation; the Markov one takes fixed maps only: simulate)
        if beat is not None and performer.follows_live_beats:
            performer.set_beats(beat)
        self.cancels = 0
        self.held: set[tuple[int, int]] = set()  # the human's keys down: (channel, note)

    def feed(self, t: float, raw, now: float) -> None:
        """One raw input (as the port delivered it) that arrived at clock time `t`, or a
        ChartChange a control thread (OSC) enqueued on the same queue."""
        if isinstance(raw, ChartChange):
            give_chart(self.performer, raw.chart)
            return
        for part in self.normaliser.split(raw):
            self._feed_one(t, part, now)

    def _feed_one(self, t: float, raw, now: float) -> None:
        msg = self.normaliser(raw, t)
        if msg is None:
            return
        kind = msg.kind
        if kind == "note_on" or kind == "note_off":
            if kind == "note_on" and msg.velocity > 0:  # tempo following hears the human's onsets
                self.beat.onset(t)
            self._note(msg, t, now)
        elif kind == "control_change":
            self.performer.control(msg.control, msg.value, now)
        elif kind in REALTIME_CLOCK or kind == "songpos":
            self.beat.handle(kind, t, msg.data)

    def _note(self, msg: Message, t: float, now: float) -> None:
        on = msg.kind == "note_on" and msg.velocity > 0
        key = (msg.channel, msg.note)
        if on:
            self.held.add(key)
        else:
            self.held.discard(key)
        if self.recorder is not None:
            self.recorder.record_human(msg, t)
        note = TimedNote(t, 0, msg.note, msg.velocity if on else 0)
        if self.thru:
            self.scheduler.submit([TimedNote(now, THRU_PART, note.pitch, note.velocity)])
        for tap in self.taps:
            tap(note, now)
        self.performer.hear(note, now)

    def release_held(self, now: float) -> None:
        """The input port vanished (a keyboard unplugged): every key still down is let go as if
        the player lifted their hands. The performer hears the note-offs (its phrase ends, an echo
        stops), the notes passed through end, the recording gets them."""
        for channel, pitch in sorted(self.held):
            self._note(Message("note_off", channel, pitch, 0), now, now)

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
