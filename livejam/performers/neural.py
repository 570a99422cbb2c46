"""The neural performer: the ONNX event model plays live (call-and-response or duet).

Notochord-style anytime loop over one interleaved event sequence of everything heard and
played, on one timeline counted in the beats of a BeatMap (performers/timeline.py). At most one
*pending* prediction (the next event and its time) is held: human input that comes first is fed
and the prediction dropped; when its time comes within the lookahead it is committed (fed,
handed out) and the next is sampled, "only future times" allowed. Its roles live beside it:
the chord it plays in (chords.py: chart > heard > predicted by listener.py), its texture
(texture.py), call phrasing (call.py), duet turns (duet.py), the key (keyfollow.py).

Modes: call listens, and when the human's phrase ends continues the human's part (part 0) for
about the call's length, until the human plays again (barge-in: `Cancel`); duet plays part 1
from the human's first note, through rests, until `duet_idle_stop_s` of silence.

Contract as in livejam/performers/base.py: no clock reads for musical time (only `now`
arguments), never raises on odd input; `perf_counter` only measures inference latency.
"""
from __future__ import annotations

import logging
import time
from collections import deque

import numpy as np

from livejam.config import MODES, ChordConfig, NeuralConfig, PerformerConfig
from livejam.events import CHORD, DT, PART, TEMPO, EventCoder, TimedNote
from livejam.harmony import NO_CHORD
from livejam.performers.base import HUMAN_PART, Cancel, PhraseDetector, human_note
from livejam.performers.call import CallPhrasing
from livejam.performers.chords import ChordKeeper, FollowsChords
from livejam.performers.draw import draw_constraints
from livejam.performers.keyfollow import KeyFollower
from livejam.performers.duet import HumanVoices, draw_turn
from livejam.performers.listener import ChordListener
from livejam.performers.output import MachineNotes
from livejam.performers.prompt import prime_context
from livejam.performers.texture import note_cap_ms, release_off_chord, release_overdue, release_wakeup
from livejam.performers.timeline import Timeline
from livejam.performers.knobs import action, starting_constraints, turn
from livejam.stats import summary_ms

log = logging.getLogger(__name__)

# A heard message that waited longer than this in the input queue means more wait behind it:
# poll() then hands back what is due without sampling, so the loop takes the next message
# at once and the burst goes into the engine as one prefill (Engine.defer).
BEHIND_S = 0.002
# With this much time before anything is due, poll() runs one step of the engine's shadow context
# (~0.3-1 ms) so that feeds do not: a feed after idle() is one backbone run, two without.
IDLE_ROOM_S = 0.004
# A note handed out and due within this long goes to the scheduler before poll() steps the model
# (a sampling step takes a few ms: the note would wait behind it and leave late).
HANDOVER_S = 0.005

class NeuralPerformer(FollowsChords):
    follows_live_beats = True  # rebases its timeline when the live beat clock renumbers (see _coder)

    def __init__(self, config: PerformerConfig, neural: NeuralConfig, model, seed: int | None = None,
                 chords: ChordConfig | None = None):
        from livejam.engine.kv import Engine, live_context
        from livejam.engine.sampling import EventSampler, NoteTracker

        self.config = config
        self.neural = neural
        self.engine = Engine(model, defer_shadow=True, context=live_context(model.info.max_len))
        self.listener = ChordListener(model)  # predicts the coming chord from the human's notes alone
        self.vocab = model.info.vocab
        self.rng = np.random.default_rng(seed)
        self.sampler = EventSampler(self.vocab)
        self.tracker = NoteTracker(self.vocab)
        self.detector = PhraseDetector(config.phrase_end_silence_s, config.held_key_timeout_s)
        self.mode = neural.mode
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {neural.mode!r}")
        self.constraints = starting_constraints(config, neural)
        self.timeline = Timeline(self.vocab)  # one coder for everything heard and played
        self.chords = ChordKeeper(chords or ChordConfig())  # chart > heard > predicted
        self.phrasing = CallPhrasing(config)
        self.human_voices = HumanVoices(neural.line_over_chords)  # duet: a line over the human's chords
        self.pending_chord = NO_CHORD  # the chord the pending event is played in
        self._now = 0.0  # the time of the sample being drawn
        self.pending: np.ndarray | None = None
        self.pending_time = 0.0
        self.out: list[TimedNote | Cancel] = []
        self.notes = MachineNotes(lambda note: self._emit(note), neural.min_note_ms / 1000.0)  # what sounds
        self.answer_end: float | None = None  # call mode: answering until then
        self.last_human: float | None = None  # duet mode: time of the human's last note
        self.key_follower = KeyFollower()  # for key = "auto": the key, and before it the pitch classes heard
        self._behind = False  # the last heard message waited > BEHIND_S: catch up before sampling
        self.step_ms: deque[float] = deque(maxlen=4096)  # feed + sample latency, for the counters
        self.clock_follower = None  # the beat clock, given by the dispatcher (grid_beats snaps to it)
        self.counters = {"heard": 0, "ignored": 0, "played": 0, "cancels": 0, "resampled": 0, "answers": 0,
                         "controls": 0}
        # run every graph before the ports open, so the first real step is not the slowest
        self.sampler.warm_up(self.engine, self.constraints, self.tracker, self.rng)
        self.listener.warm_up()
        self.rng = np.random.default_rng(self.rng.integers(2**63))
        if neural.prompt:  # prefill the context with a MIDI file (all its tracks as the human's part)
            prime_context(self.engine, self.tracker, self.vocab, neural.prompt)

    # --- input -------------------------------------------------------------------------

    def hear(self, note: TimedNote, now: float) -> None:
        self.counters["heard"] += 1
        note = human_note(note, self.vocab.n_pitch)
        if note is None or not self.detector.note(note)[0]:  # off the keyboard, or a stray note-off
            self.counters["ignored"] += 1
            return
        if note.velocity > 0:
            if self.mode == "call" and self.answer_end is not None:
                self._stop(now, cancel=True)  # barge-in
            self.last_human = note.time
            if self.neural.key == "auto":
                key = self.key_follower.hear(note.pitch, self.constraints.key)
                self.constraints = self.key_follower.constrain(self.constraints, key)
        self.phrasing.hear(note.pitch, note.velocity)
        self.human_voices.hear(note.pitch, note.velocity, note.time)
        coder = self._coder(note.time)
        self.chords.hear(note.pitch, note.velocity, note.time, coder.beats)
        self.listener.hear(note, coder.beats)
        row = np.asarray(coder.encode(TimedNote(max(note.time, coder.time), HUMAN_PART, note.pitch, note.velocity)),
                         np.int64)
        if not self.engine.queued:  # inside a burst the state is behind it: the chord resolved at its first note holds
            self._chord_at(note.time)
        row[CHORD] = self.chords.context_chord()
        self.engine.defer(row)  # run with the rest of a burst at the engine's next use
        self._observe(row)
        self._behind = now - note.time > BEHIND_S
        if self.pending is not None:
            self.pending = None  # the human came first: predict again from what was heard
            self.counters["resampled"] += 1

    def control(self, number: int, value: int, now: float) -> None:
        turned = turn(self.constraints, self.neural.controls, number, value, self.neural.pitch_span)
        act = action(self.neural.controls, self.config.phrase_end_cc, number, value)
        if act == "release_all":
            self.detector.release_all(now)
        elif act == "end_phrase":
            phrase = self.detector.end_phrase(now)
            if phrase is not None and self.mode == "call":
                self._start_answer(now, phrase)
        elif turned is not None:
            self.constraints = turned
        elif act in MODES:
            self.set_mode(act, now)
        elif act == "reset":
            self._stop(now, cancel=True)
            self.engine.reset()
            self.listener.reset()
            self.tracker.reset()
            self.chords.reset()
            self.timeline.reset()
            log.info("context reset by CC %d", number)
        elif act == "panic":
            self._stop(now, cancel=True)
        else:
            return
        self.counters["controls"] += 1
        self.pending = None  # sample again under the new settings

    def set_beats(self, beats) -> None:
        """Count beats on this BeatMap from now on (None: free time). The context's timeline
        is carried over: the last event keeps its time, now counted on the new map."""
        self.timeline.set_beats(beats)

    @property
    def coder(self) -> EventCoder | None:
        return self.timeline.coder

    @property
    def sounding(self) -> dict[tuple[int, int], float]:
        """The machine's sounding (part, pitch) -> note-on time."""
        return self.notes.sounding

    def follow_clock(self, follower) -> None:
        """Snap note-ons to `follower`'s grid while its MIDI clock runs (NeuralConfig.grid_beats)."""
        self.clock_follower = follower

    def set_mode(self, mode: str, now: float) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if mode != self.mode:
            self._stop(now, cancel=False)
            self.mode = mode
            log.info("mode: %s", mode)

    # --- output --------------------------------------------------------------------------

    def poll(self, now: float) -> list[TimedNote | Cancel]:
        if self._behind:  # input is queued behind the last message: take it before sampling
            self._behind = False
            out, self.out = self.out, []
            return out
        if self.mode == "call" and self.answer_end is None:
            phrase = self.detector.poll(now)
            if phrase is not None:
                self._start_answer(now, phrase)
        if self._active(now):
            self._release(now)
            if not self._due(now):  # a note ended now goes out before the model runs; the next poll samples
                self._advance(now)
        elif self.sounding or self.answer_end is not None:
            self._stop(now, cancel=False)  # answer over / the human left the duet
        if self.pending is None and not self.out:
            self.engine.idle(max_steps=4)  # build the next context window while nothing is due
            self.listener.idle(max_steps=2)
        elif self._room(now) > IDLE_ROOM_S:  # one shadow step now keeps it off the next event's feed
            self.engine.idle(max_steps=1)
        out, self.out = self.out, []
        return out

    def _due(self, now: float) -> bool:
        """Something handed out is due within HANDOVER_S: hand it over before stepping the model."""
        return any(isinstance(n, TimedNote) and n.time <= now + HANDOVER_S for n in self.out)

    def _room(self, now: float) -> float:
        """Seconds until the first thing due: a note handed over now, or the pending event's commit."""
        due = [n.time for n in self.out if isinstance(n, TimedNote)]
        if self.pending is not None:
            due.append(self.pending_time - self.config.lookahead_s)
        return min(due, default=np.inf) - now

    def next_wakeup(self, now: float) -> float:
        if self.out:
            return now
        idle = now + self.config.idle_wakeup_s
        if self._active(now) and self.sounding:  # a lookahead before a held note may have to end
            idle = min(idle, release_wakeup(self.notes, self.config, self._coder(now).beats, now,
                                            self.chords.config.slot_beats))
        if self._active(now):
            if self.pending is None:
                return now
            if self._expects_human():
                return max(now, min(self.pending_time, idle))
            due = self.pending_time - self.config.lookahead_s
            if self.answer_end is not None:
                due = min(due, self.answer_end)
            return max(now, min(due, idle))
        deadline = self.detector.deadline()
        if self.mode == "call" and deadline is not None:
            return max(now, min(deadline, idle))
        return idle

    def close(self, now: float) -> list[TimedNote]:
        offs = self.notes.close(now)
        self.out = []
        self.pending = None
        self.answer_end = None
        return offs

    def _active(self, now: float) -> bool:
        if self.mode == "call":
            return self.answer_end is not None and now < self.answer_end
        return self.last_human is not None and now - self.last_human <= self.neural.duet_idle_stop_s

    def _start_answer(self, now: float, phrase=None) -> None:
        if self.neural.key == "auto":  # the call is all heard: answer it in its key
            key = self.key_follower.phrase_end(self.constraints.key)
            self.constraints = self.key_follower.constrain(self.constraints, key)
        self.answer_end = self.phrasing.answer(now, phrase)  # as long as the call, in its voices
        self.pending = None
        self.counters["answers"] += 1

    def _advance(self, now: float) -> None:
        horizon = now + self.config.lookahead_s
        for _ in range(self.neural.max_events_per_poll):
            if self.pending is None:
                self._sample(now)
            if self._expects_human():
                # The model said the human plays next, by pending_time. Until then there is
                # nothing to do; once it passed in silence, ask again given that silence.
                if self.pending_time > now:
                    return
                self.pending = None
                self.counters["resampled"] += 1
                continue
            if self.pending_time > horizon:
                return
            if self.answer_end is not None and self.pending_time > self.answer_end:
                return
            self._commit(now)

    def _expects_human(self) -> bool:
        """The pending event is the human's (duet turn-taking), not one the machine plays."""
        return self.mode == "duet" and self.pending is not None and int(self.pending[0]) == HUMAN_PART

    def _sample(self, now: float) -> None:
        """The next event after `now`. In duet the model also predicts the human's events: the machine
        plays only when its own part comes next, so it does not crowd every gap the human leaves."""
        t0 = time.perf_counter()
        self._now = now  # a chord for a coming time is provisional until its slot begins
        coder = self._coder(now)
        bpm = coder.beats.bpm_at(now)
        self.tracker.ms_per_tick = 60000.0 / ((bpm or 120.0) * self.vocab.ticks_per_beat)
        c = draw_constraints(self, coder, now)
        cap_s = note_cap_ms(self.config, bpm) / 1000.0
        deadline = min(self.sounding.values()) + cap_s if self.sounding else None
        draw_turn(lambda c: self._draw(c, coder), c, now, deadline)
        self.step_ms.append((time.perf_counter() - t0) * 1e3)

    def _draw(self, c, coder: EventCoder) -> tuple[int, float]:
        """Sample the pending event under constraints `c`: its time, bar position and tempo, and the
        chord it is played in (the chord keeper's at that time: its pitch is drawn under it)."""
        row = self.sampler.sample(self.engine, c, self.tracker, self.rng, next_pos=coder.next_pos,
                                  chord_for=lambda dt: self._chord_at(coder.peek_time(dt), self._now))
        self.pending_time = coder.peek_time(int(row[DT]))
        row[TEMPO] = coder.tempo_now(self.pending_time)
        self.pending_chord = int(row[CHORD])
        row[CHORD] = self.chords.context_chord()  # what the model reads back: a predicted chord stays hidden
        self.pending = row
        return int(row[PART]), self.pending_time

    def _chord_at(self, t: float, now: float | None = None) -> int:
        """The chord at time t from the keeper (chart > heard > predicted), predicting with the model."""
        coder = self._coder(t)
        return self.chords.at(t, coder.beats, self.constraints.key, self.listener.predict, now)

    def _release(self, now: float) -> None:
        """End the machine's notes that are held too long (performer.max_note_beats) or, at a chord
        change, are not tones of the new chord, on the change (a pianist lifts what no longer fits:
        held notes are where clashes live); the model hears the ends too."""
        if not self.sounding:
            return
        coder = self._coder(now)
        ahead = now + self.config.lookahead_s
        cap_s = note_cap_ms(self.config, coder.beats.bpm_at(now)) / 1000.0
        ended = release_overdue(self.notes, cap_s, now, ahead, coder.time)
        ended += release_off_chord(self.notes, self._chord_at(ahead, now), coder.beats, now, ahead, coder.time,
                                   self.chords.config.slot_beats)
        for part, pitch, off in sorted(ended, key=lambda e: e[2]):
            self._feed_end(coder, part, pitch, off)
        if ended:
            self.counters["chord_releases"] = self.counters.get("chord_releases", 0) + len(ended)
            self.pending = None  # predicted before these ends: predict again

    def _commit(self, now: float) -> None:
        t0 = time.perf_counter()
        token, self.pending = self.pending, None
        coder = self._coder(now)
        note = coder.decode(token)
        play_time = max(now, note.time)
        if note.velocity > 0 and self.neural.grid_beats > 0 and self.clock_follower is not None:
            play_time = self.clock_follower.next_grid(play_time, self.neural.grid_beats) or play_time
        elif note.velocity == 0 and (note.part, note.pitch) in self.sounding:  # never before its (snapped) on
            play_time = max(play_time, self.sounding[(note.part, note.pitch)] + self.neural.min_note_ms / 1000)
        if play_time > note.time:  # late, a long rest, or a grid snap: the model's timeline follows the wire
            coder.follow(play_time)
        self._feed(token)
        self.step_ms.append((time.perf_counter() - t0) * 1e3)
        if note.velocity > 0:
            self.notes.start(note.part, note.pitch, play_time, note.velocity, self.pending_chord)
        else:
            self.notes.end(note.part, note.pitch, play_time)

    def _stop(self, now: float, cancel: bool) -> None:
        """End the machine's part: with `cancel` (barge-in) the queue is dropped at once; else note-offs now."""
        if cancel and (self.sounding or self.answer_end is not None):
            self.out = [Cancel(now)]
            self.counters["cancels"] += 1
        coder = self._coder(now)
        for part, pitch in sorted(self.sounding):  # (one handed out ahead of its time ends after it begins)
            self._feed_end(coder, part, pitch, self.notes.end(part, pitch, now, send=not cancel))
        self.pending = None
        self.answer_end = None
        self.last_human = None  # a duet starts again with the human's next note

    def _emit(self, note: TimedNote) -> None:
        self.out.append(note)
        self.counters["played"] += 1

    def _feed_end(self, coder: EventCoder, part: int, pitch: int, t: float) -> None:
        """The model hears a machine note end too, so its context matches what sounds. Deferred (run
        at the engine's next use, with the others of a release in one run): the note-off it follows
        is handed out first, not after a model step per note (they were 3-9 ms late that way)."""
        row = np.asarray(coder.encode(TimedNote(max(t, coder.time), part, pitch, 0), self.chords.context_chord()),
                         np.int64)
        self.engine.defer(row)
        self._observe(row)

    def _feed(self, token) -> None:
        self.engine.feed(token)
        self._observe(token)

    def _observe(self, token) -> None:
        self.tracker.observe(token)
        self.timeline.moved()

    def _coder(self, now: float) -> EventCoder:
        return self.timeline.at(now)

    def latency_stats(self) -> dict[str, float]:
        """Median / p99 / max of feed-or-sample times in ms (the per-event cost)."""
        return summary_ms(self.step_ms)
