"""The Markov performer: call and response with a Markov continuator that learns
the human's phrases during the session (a Pachet-style baseline; no model file).
Contract: livejam/performers/base.py. Rows are format 2 (livejam.events), counted
in beats of a BeatMap given by `set_beats` (free time without one)."""
from __future__ import annotations

import logging

import numpy as np

from livejam.beatmap import FreeTime
from livejam.config import PerformerConfig
from livejam.events import PITCH, VEL, EventCoder, TimedNote, Vocab
from livejam.performers.base import ALL_OFF_CCS, PerformerBase, HUMAN_PART, Cancel, Phrase, PhraseDetector, human_note
from livejam.performers.continuator import MarkovContinuator
from livejam.performers.timeline import Timeline

log = logging.getLogger(__name__)


class MarkovPerformer(PerformerBase):
    """Call and response with a Markov continuator learning the human's phrases.

    It learns every valid human note (as event rows on the human's own timeline, in
    beats of the BeatMap given by `set_beats`, free time without one). The chord
    column of what it hears is N: nothing here reads harmony from the human, so
    the chord field only ever learns N and the answer plays in no chord.
    When a phrase ends (silence or the CC) it answers for about the phrase's length
    by sampling part 0 from the model, continuing the phrase's context, at the
    human's pitches (no transposition), on the same beat map (the bar position
    of each answered event is the coder's). Notes are handed out `lookahead_s` ahead of
    their play time, one pending sampled event at a time. A human note-on during an
    answer yields `Cancel` at once and ends the answer. The machine's own tokens are
    context only: after an answer the model's context is restored to the human's,
    so the machine never learns from (and drifts on) its own output.
    """

    def __init__(self, config: PerformerConfig | None = None, seed: int | None = None,
                 vocab: Vocab | None = None):
        self.config = config or PerformerConfig()
        self.vocab = vocab or Vocab()
        self.rng = np.random.default_rng(seed)
        self.model = MarkovContinuator(self.vocab, self.config.markov_order)
        self.detector = PhraseDetector(self.config.phrase_end_silence_s, self.config.held_key_timeout_s)
        self.timeline = Timeline(self.vocab)  # the human's, as the neural performer's: set_beats, rebased
        self.out: list[TimedNote | Cancel] = []  # decided, not yet polled
        self.sounding: dict[int, float] = {}  # machine pitch -> its note-on time (after what was handed out)
        self.busy_until = -np.inf  # time of the last machine event handed out
        # The answer in progress (None when listening).
        self.answer_end: float | None = None
        self.answer_coder: EventCoder | None = None
        self.answer_events = 0
        self.pending: tuple[int, ...] | None = None  # a row (livejam.events.COLUMNS)
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
        coder = self.timeline.at(note.time)
        if note.time < coder.time:  # out-of-order arrival: keep the timeline monotonic
            note = TimedNote(coder.time, note.part, note.pitch, note.velocity)
        self.model.observe(coder.encode(note))
        self.timeline.moved()

    def set_beats(self, beats) -> None:
        """Count beats on this BeatMap from now on (None: free time). The human's timeline is
        carried over: the last heard event keeps its time, now counted on the new map."""
        self.timeline.set_beats(beats)

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

    def settings(self) -> dict:
        """The continuator has no sampling knobs: its range is its config's."""
        return {"range": (self.config.pitch_low, self.config.pitch_high)}

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
        beats = self.timeline.beats
        self.answer_coder = EventCoder(self.vocab, beats if beats is not None else FreeTime(start), start)
        self.answer_events = 0
        self.pending = None
        self.saved_context = self.model.context_state()
        # Keys the human still holds are not the machine's to end: its voice starts
        # with nothing sounding (else held keys would fill max_polyphony with offs it must skip).
        self.model.restore_context(self.model.without_sounding(self.saved_context))
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
        coder = self.answer_coder
        token = self.model.sample(self.rng, parts=(HUMAN_PART,), pitch_range=(c.pitch_low, c.pitch_high),
                                  max_polyphony=c.max_polyphony, next_pos=coder.next_pos)
        self.pending_time = coder.decode(token).time
        self.pending = token[:6] + (coder.tempo_now(self.pending_time),)
        self.model.push(self.pending)  # the continuation goes on from what the machine plays

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

    def _play(self, token: tuple[int, ...], time: float) -> None:
        pitch, vel_bin = token[PITCH], token[VEL]
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
