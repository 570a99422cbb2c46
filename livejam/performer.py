"""The decision loop: what the machine hears, and what it plays and when.

Contract between the engine and a performer (the engine thread calls these; a
performer never reads a clock, every method gets `now` from the engine's Clock,
so the same performer runs on the real clock and on a virtual one):

- `hear(note, now)`: a human note-on/off (velocity 0 = off); part 0; `note.time`
  is its arrival time on the clock.
- `control(number, value, now)`: a control change from the human.
- `poll(now)`: what the machine decided since the last poll, in time order:
  `TimedNote`s with absolute play times (>= now, at most `lookahead_s` ahead;
  part 0 continues the human's part, part 1 is the machine's own part) and
  `Cancel` (barge-in: drop every machine event queued but not yet sent and end
  the machine's sounding notes now).
- `next_wakeup(now)`: when it wants `poll` again (always a finite time).
- `close(now)`: end of session; note-offs for anything it considers sounding.

A performer must not raise on odd input (note-offs without note-ons, repeated
note-ons, unknown controllers): the engine feeds it whatever the port delivers.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from livejam.events import EventCoder, TimedNote, Vocab

log = logging.getLogger(__name__)

HUMAN_PART = 0
MACHINE_PART = 1
# Controllers that mean "everything off" from the human's side (all sound off,
# reset all controllers, all notes off): the keys the detector holds are gone.
ALL_OFF_CCS = (120, 121, 123)


@dataclass(frozen=True)
class Cancel:
    """Barge-in: drop every queued machine event, end the machine's sounding notes now."""

    time: float


@dataclass(frozen=True)
class PerformerConfig:
    """Settings shared by every performer (markov now, neural later)."""

    # A phrase ends after this much silence with all keys up ...
    phrase_end_silence_s: float = 0.5
    # ... or at once when this controller is pressed (value >= 64). CC 80 is
    # "General Purpose 5", an on/off button nothing else uses; CC 64 (sustain)
    # would cut every pedalled phrase. -1 turns the CC off.
    phrase_end_cc: int = 80
    # The answer lasts phrase duration * ratio, clamped to [min, max] seconds.
    answer_length_ratio: float = 1.0
    min_answer_s: float = 1.0
    max_answer_s: float = 16.0
    # How far ahead of its play time a note is handed to the scheduler
    # (>= p99 step + p99 scheduler lateness, see DESIGN.md).
    lookahead_s: float = 0.015
    # A machine note is ended after this long even if the model holds it.
    max_note_s: float = 4.0
    max_polyphony: int = 6
    pitch_low: int = 21
    pitch_high: int = 108
    # Longest context (in events) the Markov continuator conditions on.
    markov_order: int = 4
    # Cap on events in one answer: a model stuck on dt = 0 cannot spin forever.
    max_answer_events: int = 2000
    # Wake-up interval when nothing is pending (keeps the engine loop alive).
    idle_wakeup_s: float = 0.25
    # Keys "held" this long with no other input are taken as lost note-offs,
    # so a dropped message cannot stop phrases from ever ending.
    held_key_timeout_s: float = 10.0


@runtime_checkable
class Performer(Protocol):
    def hear(self, note: TimedNote, now: float) -> None: ...

    def control(self, number: int, value: int, now: float) -> None: ...

    def poll(self, now: float) -> list[TimedNote | Cancel]: ...

    def next_wakeup(self, now: float) -> float: ...

    def close(self, now: float) -> list[TimedNote]: ...


def human_note(note: TimedNote, n_pitch: int) -> TimedNote | None:
    """A heard note as the human's part with its velocity clamped to MIDI's range; None off the keyboard."""
    if not 0 <= note.pitch < n_pitch:
        return None
    return TimedNote(note.time, HUMAN_PART, note.pitch, max(0, min(127, note.velocity)))


@dataclass(frozen=True)
class Phrase:
    """A finished human phrase: first note-on to last activity."""

    start: float
    end: float
    note_count: int

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)


class PhraseDetector:
    """Tracks the human's keys and cuts the input into phrases. Pure: no clock, no I/O.

    A phrase starts with a note-on while no phrase is open and ends when all
    keys are up and `silence_s` has passed since the last note event (seen by
    `poll`), or at once on `end_phrase` (the phrase-end CC), keys held or not.
    """

    def __init__(self, silence_s: float = 0.5, held_key_timeout_s: float = 10.0):
        self.silence_s = silence_s
        self.held_key_timeout_s = held_key_timeout_s
        self.held: set[int] = set()
        self.last_activity: float | None = None
        self.phrase_start: float | None = None  # None while no phrase is open
        self.note_count = 0

    @property
    def in_phrase(self) -> bool:
        return self.phrase_start is not None

    def note(self, note: TimedNote) -> tuple[bool, bool]:
        """Feed a human note; returns (valid, started_phrase).

        valid is False for a note-off of a key not held and a repeated note-on
        of a held key (garbage the model should not learn from); started_phrase
        is True when this note-on opened a new phrase (the human plays again).
        """
        self.last_activity = note.time
        if note.velocity <= 0:
            if note.pitch not in self.held:
                return False, False
            self.held.discard(note.pitch)
            return True, False
        if note.pitch in self.held:
            return False, False
        self.held.add(note.pitch)
        started = self.phrase_start is None
        if started:
            self.phrase_start = note.time
            self.note_count = 0
        self.note_count += 1
        return True, started

    def release_all(self, now: float) -> None:
        """The human's all-notes-off: no key counts as held any more."""
        self.held.clear()
        self.last_activity = now

    def deadline(self) -> float | None:
        """When silence would end the open phrase (None: no phrase open)."""
        if self.phrase_start is None or self.last_activity is None:
            return None
        if self.held:
            return self.last_activity + self.held_key_timeout_s
        return self.last_activity + self.silence_s

    def poll(self, now: float) -> Phrase | None:
        """The phrase that silence ended by `now`, if any."""
        deadline = self.deadline()
        if deadline is None or now < deadline:
            return None
        if self.held:
            log.warning("keys %s held %.1f s with no input: taken as released", sorted(self.held),
                        self.held_key_timeout_s)
            self.held.clear()
        return self._close(self.last_activity)

    def end_phrase(self, now: float) -> Phrase | None:
        """Explicit end (the phrase-end CC); None if no phrase is open."""
        if self.phrase_start is None:
            return None
        return self._close(max(now, self.last_activity or now))

    def _close(self, end: float) -> Phrase:
        phrase = Phrase(self.phrase_start, end, self.note_count)
        self.phrase_start = None
        self.note_count = 0
        return phrase


def make_performer(engine: str, config: PerformerConfig | None = None, seed: int | None = None,
                   neural=None) -> Performer:
    """The performer for an engine name; ValueError for an unknown one.

    "neural" loads its model file here (livejam.engine.session.ModelError, one
    line, if it is missing or corrupt); `neural` is its NeuralConfig.
    """
    config = config or PerformerConfig()
    if engine == "markov":
        return MarkovPerformer(config, seed)
    if engine == "neural":
        from livejam.engine.session import load_model
        from livejam.neural import NeuralConfig, NeuralPerformer
        from livejam.paths import DEFAULT_MODEL

        neural = neural or NeuralConfig()
        model = load_model(neural.model or DEFAULT_MODEL, intra_op_threads=neural.intra_op_threads)
        return NeuralPerformer(config, neural, model, seed)
    raise ValueError(f"unknown performer engine {engine!r}; known: markov, neural")


class MarkovPerformer:
    """Call and response with a Markov continuator learning the human's phrases.

    It learns every valid human note (as event tokens on the human's own timeline).
    When a phrase ends (silence or the CC) it answers for about the phrase's length
    by sampling part 0 from the model, continuing the phrase's context, at the
    human's pitches (no transposition). Notes are handed out `lookahead_s` ahead of
    their play time, one pending sampled event at a time. A human note-on during an
    answer yields `Cancel` at once and ends the answer. The machine's own tokens are
    context only: after an answer the model's context is restored to the human's,
    so the machine never learns from (and drifts on) its own output.
    """

    def __init__(self, config: PerformerConfig | None = None, seed: int | None = None,
                 vocab: Vocab | None = None):
        # Imported here so `make_performer` stays the one place that picks engines.
        from livejam.markov import MarkovContinuator

        self.config = config or PerformerConfig()
        self.vocab = vocab or Vocab()
        self.rng = np.random.default_rng(seed)
        self.model = MarkovContinuator(self.vocab, self.config.markov_order)
        self.detector = PhraseDetector(self.config.phrase_end_silence_s, self.config.held_key_timeout_s)
        self.human_coder: EventCoder | None = None  # started by the first heard note
        self.out: list[TimedNote | Cancel] = []  # decided, not yet polled
        self.sounding: dict[int, float] = {}  # machine pitch -> its note-on time (after what was handed out)
        self.busy_until = -np.inf  # time of the last machine event handed out
        # The answer in progress (None when listening).
        self.answer_end: float | None = None
        self.answer_coder: EventCoder | None = None
        self.answer_events = 0
        self.pending: tuple[int, int, int, int] | None = None
        self.pending_time = 0.0
        self.saved_context: tuple | None = None
        self.counters = {"heard": 0, "ignored": 0, "answers": 0, "cancels": 0, "played": 0, "forced_offs": 0,
                         "skipped_offs": 0}

    # --- input --------------------------------------------------------------------

    def hear(self, note: TimedNote, now: float) -> None:
        self.counters["heard"] += 1
        note = human_note(note, self.vocab.n_pitch)
        if note is None:
            self.counters["ignored"] += 1
            return
        valid, _ = self.detector.note(note)
        if note.velocity > 0 and (self.answer_end is not None or self.busy_until > now):
            self._cancel(now)
        if not valid:
            self.counters["ignored"] += 1
            return
        if self.human_coder is None:
            self.human_coder = EventCoder(self.vocab, note.time)
        if note.time < self.human_coder.time:  # out-of-order arrival: keep the timeline monotonic
            note = TimedNote(self.human_coder.time, note.part, note.pitch, note.velocity)
        self.model.observe(self.human_coder.encode(note))

    def control(self, number: int, value: int, now: float) -> None:
        if number in ALL_OFF_CCS:
            self.detector.release_all(now)
        elif number == self.config.phrase_end_cc and value >= 64:
            phrase = self.detector.end_phrase(now)
            if phrase is not None:
                self._start_answer(phrase, now)

    # --- output -------------------------------------------------------------------

    def poll(self, now: float) -> list[TimedNote | Cancel]:
        if self.answer_end is None:
            phrase = self.detector.poll(now)
            if phrase is not None:
                self._start_answer(phrase, now)
        if self.answer_end is not None:
            self._advance(now)
        out, self.out = self.out, []
        return out

    def next_wakeup(self, now: float) -> float:
        if self.out:
            return now
        if self.answer_end is not None:
            due = min(self._next_due(), self.answer_end) - self.config.lookahead_s
            return max(now, due)
        deadline = self.detector.deadline()
        if deadline is not None:
            return max(now, min(deadline, now + self.config.idle_wakeup_s))
        return now + self.config.idle_wakeup_s

    def close(self, now: float) -> list[TimedNote]:
        offs = [TimedNote(max(now, on_time), HUMAN_PART, pitch, 0) for pitch, on_time in sorted(self.sounding.items())]
        self.sounding.clear()
        self.out = []
        self._stop_answer()
        return offs

    # --- the answer -----------------------------------------------------------------

    def _start_answer(self, phrase: Phrase, now: float) -> None:
        c = self.config
        length = min(c.max_answer_s, max(c.min_answer_s, phrase.duration * c.answer_length_ratio))
        # Leave room for the lookahead, so the first note is never already late.
        start = max(now, self.busy_until) + c.lookahead_s
        self.answer_end = start + length
        self.answer_coder = EventCoder(self.vocab, start)
        self.answer_events = 0
        self.pending = None
        self.saved_context = self.model.context_state()
        # Keys the human still holds are not the machine's to end: its voice starts
        # with nothing sounding (else held keys would fill max_polyphony with offs it must skip).
        self.model.restore_context((self.saved_context[0], frozenset()))
        self.counters["answers"] += 1
        log.debug("phrase %.2f-%.2f s (%d notes): answering %.2f-%.2f s", phrase.start, phrase.end,
                  phrase.note_count, start, self.answer_end)

    def _next_due(self) -> float:
        """Time of the next machine event: the pending token or a forced note-off."""
        if self.pending is None:
            self._sample_pending()
        due = self.pending_time
        if self.sounding:
            due = min(due, min(self.sounding.values()) + self.config.max_note_s)
        return due

    def _sample_pending(self) -> None:
        c = self.config
        token = self.model.sample(self.rng, parts=(HUMAN_PART,), pitch_range=(c.pitch_low, c.pitch_high),
                                  max_polyphony=c.max_polyphony)
        self.model.push(token)  # the continuation goes on from what the machine plays
        self.pending = token
        self.pending_time = self.answer_coder.decode(token).time

    def _advance(self, now: float) -> None:
        """Hand out every machine event due by now + lookahead; end the answer at its end."""
        c = self.config
        horizon = now + c.lookahead_s
        while self.answer_end is not None:
            if self.answer_events >= c.max_answer_events:
                log.warning("answer cut at %d events", self.answer_events)
                self._finish(max(now, self.busy_until))
                return
            due = self._next_due()
            if due > self.answer_end:  # everything left falls after the answer
                if self.answer_end <= horizon:
                    self._finish(max(now, self.answer_end))
                return
            if due > horizon:
                return
            if self.sounding:
                oldest = min(self.sounding, key=self.sounding.get)
                forced_time = self.sounding[oldest] + c.max_note_s
                if forced_time <= self.pending_time:  # held too long: end it before the next event
                    self._emit(TimedNote(max(now, forced_time), HUMAN_PART, oldest, 0))
                    self.counters["forced_offs"] += 1
                    continue
            self._play(self.pending, max(now, self.pending_time))
            self.pending = None
            self.answer_events += 1

    def _play(self, token: tuple[int, int, int, int], time: float) -> None:
        _, _, pitch, vel_bin = token
        if vel_bin == 0:
            if pitch not in self.sounding:  # ended early (max_note_s) or never started
                self.counters["skipped_offs"] += 1
                return
            self._emit(TimedNote(time, HUMAN_PART, pitch, 0))
        elif pitch not in self.sounding:
            self._emit(TimedNote(time, HUMAN_PART, pitch, self.vocab.velocity(vel_bin)))

    def _emit(self, note: TimedNote) -> None:
        time = max(note.time, self.busy_until)  # hand-out order is play order
        note = TimedNote(time, note.part, note.pitch, note.velocity)
        if note.velocity > 0:
            self.sounding[note.pitch] = time
        else:
            self.sounding.pop(note.pitch, None)
        self.busy_until = time
        self.out.append(note)
        self.counters["played"] += 1

    def _finish(self, time: float) -> None:
        """Regular end of an answer: every note it started gets its note-off."""
        for pitch in sorted(self.sounding):
            self._emit(TimedNote(time, HUMAN_PART, pitch, 0))
        self._stop_answer()

    def _cancel(self, now: float) -> None:
        """Barge-in: the engine drops what is queued and ends what sounds."""
        self.out = [Cancel(now)]  # what was decided but not yet polled is dropped here
        self.sounding.clear()
        self.busy_until = -np.inf
        self.counters["cancels"] += 1
        self._stop_answer()

    def _stop_answer(self) -> None:
        if self.saved_context is not None:
            self.model.restore_context(self.saved_context)
        self.saved_context = None
        self.answer_end = None
        self.answer_coder = None
        self.pending = None
