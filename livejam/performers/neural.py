"""The neural performer: the ONNX event model plays live (call-and-response or duet).

Notochord-style anytime loop over one interleaved event sequence of everything heard
and played, on one quantised timeline (`EventCoder`) counted in the beats of a BeatMap
(the live beat clock, a file's beats in simulate, or free time). Every event carries
its bar position and tempo; a heard event also the chord the model hears under it (its
chord head's best guess), a played one the chord it sampled, toward whose tones the
`harmony` control leans the pitches (`grid` leans its onsets to the beat's 16ths). At most
one *pending* prediction (the next machine event and its time) is held: human input that
comes first is fed and the prediction dropped; when its time comes within the lookahead it
is committed (fed, handed out) and the next is sampled, "only future times" allowed.

Modes: call listens, and when the human's phrase ends continues the human's part (part 0)
until the human plays again (barge-in: `Cancel`) or `max_answer_s` passes; duet plays
part 1 from the human's first note, through rests, until `duet_idle_stop_s` of silence.

Contract as in livejam/performers/base.py: no clock reads for musical time (only `now`
arguments), never raises on odd input; `perf_counter` only measures inference latency.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import replace

import numpy as np

from livejam.clock import FreeTime
from livejam.config import MODES, ChordConfig, NeuralConfig, PerformerConfig
from livejam.events import EventCoder, TimedNote, notes_to_events
from livejam.midi.files import read_midi_tracks
from livejam.harmony import NO_CHORD, chord_tones
from livejam.performers.base import ALL_OFF_CCS, HUMAN_PART, MACHINE_PART, Cancel, PhraseDetector, human_note
from livejam.performers.chords import ChordKeeper
from livejam.performers.knobs import turn
from livejam.stats import summary_ms

log = logging.getLogger(__name__)

# A heard message that waited longer than this in the input queue means more wait behind it:
# poll() then hands back what is due without sampling, so the loop takes the next message
# at once and the burst goes into the engine as one prefill (Engine.defer).
BEHIND_S = 0.002
# With this much time before anything is due, poll() runs one step of the engine's shadow context
# (~0.3-1 ms) so that feeds do not: a feed after idle() is one backbone run, two without.
IDLE_ROOM_S = 0.004
# The chord listener's context (events of the human alone): as long as training windows reach.
LISTEN_CONTEXT = 1024

class NeuralPerformer:
    follows_live_beats = True  # rebases its timeline when the live beat clock renumbers (see _coder)

    def __init__(self, config: PerformerConfig, neural: NeuralConfig, model, seed: int | None = None,
                 chords: ChordConfig | None = None):
        from livejam.engine.kv import Engine, live_context
        from livejam.engine.sampling import Constraints, EventSampler, NoteTracker

        self.config = config
        self.neural = neural
        self.engine = Engine(model, defer_shadow=True, context=live_context(model.info.max_len))
        # The chord listener: the same network over the human's notes alone, chords hidden (as the
        # melody-alone training sequences), whose chord head predicts the coming slot's chord. Apart
        # from the duet context, the machine's own notes (which follow its guesses) cannot talk it
        # into its own mistakes, and a melody alone fills the window slowly: minutes of the song.
        self.listener = Engine(model, defer_shadow=True, context=live_context(model.info.max_len, LISTEN_CONTEXT))
        self.listen_coder: EventCoder | None = None
        self._listen_timeline: tuple | None = None  # (beat map, its generation) the listener counts on
        self._listen_last = 0.0  # time of the listener's last event (seconds: survives a renumbering)
        self.vocab = model.info.vocab
        self.rng = np.random.default_rng(seed)
        self.sampler = EventSampler(self.vocab)
        self.tracker = NoteTracker(self.vocab)
        self.detector = PhraseDetector(config.phrase_end_silence_s, config.held_key_timeout_s)
        self.mode = neural.mode
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {neural.mode!r}")
        self.constraints = Constraints(
            temperature=neural.temperature, dt_temperature=neural.dt_temperature, top_p=neural.top_p,
            min_p=neural.min_p, grid=neural.grid, chord_temperature=neural.chord_temperature,
            pitch_range=(config.pitch_low, config.pitch_high), max_polyphony=config.max_polyphony,
            min_note_ms=neural.min_note_ms, max_note_ms=config.max_note_s * 1000.0, density=neural.density,
            key=neural.key if neural.key not in ("", "auto") else None, harmony=neural.harmony)
        self.beats = None  # the BeatMap given by set_beats; None: free time from the first event
        self.coder: EventCoder | None = None  # the shared timeline, started by the first event
        self.chords = ChordKeeper(chords or ChordConfig())  # chart > heard > predicted
        self.chart = None
        self.pending_chord = NO_CHORD  # the chord the pending event is played in
        self._now = 0.0  # the time of the sample being drawn
        self.onset_chord: dict[tuple[int, int], int] = {}  # machine (part, pitch) -> the chord it began in
        self._answer_voices = 1  # call mode: voices of the answer (the call's) ...
        self._call_voices = 0  # ... the most notes the human held at once in the phrase ...
        self._human_sounding: set[int] = set()  # ... counted over these
        self._generation = None  # of the live BeatClock the coder counts on
        self._last_time = 0.0  # time of the last event fed
        self.pending: np.ndarray | None = None
        self.pending_time = 0.0
        self.out: list[TimedNote | Cancel] = []
        self.sounding: dict[tuple[int, int], float] = {}  # machine (part, pitch) -> note-on time
        self.answer_end: float | None = None  # call mode: answering until then
        self.last_human: float | None = None  # duet mode: time of the human's last note
        self.last_machine_on = -np.inf  # time of the machine's last note-on
        self.human_pitches: deque[int] = deque(maxlen=64)  # for key = "auto"
        self._human_ons = 0  # every 8th re-estimates the key (the deque's length stops at 64)
        self._behind = False  # the last heard message waited > BEHIND_S: catch up before sampling
        self.step_ms: deque[float] = deque(maxlen=4096)  # feed + sample latency, for the counters
        self.clock_follower = None  # a MidiClockFollower, given by the dispatcher
        self.counters = {"heard": 0, "ignored": 0, "played": 0, "cancels": 0, "resampled": 0, "answers": 0,
                         "controls": 0}
        self._warm_up()
        if neural.prompt:
            self.prime(neural.prompt)

    @property
    def chord(self) -> int:
        """The chord the machine plays in now (harmony id; the status display, the quality measures)."""
        return self.chords.chord

    @property
    def chord_source(self) -> str:
        return self.chords.source

    def set_chart(self, chart) -> None:
        """Play in this chart's chords (None: hear or predict them)."""
        self.chart = chart
        self.chords.set_chart(chart)
        self.pending = None

    def _warm_up(self, steps: int = 32) -> None:
        """Run the graphs before the ports open, so the first real step is not the slowest."""
        for _ in range(steps):
            self.engine.feed(self.sampler.sample(self.engine, self.constraints, self.tracker, self.rng))
        self.engine.reset()
        for _ in range(steps // 4):
            self.listener.feed(self.vocab.bos_row())
            self.listener.logits(2, (HUMAN_PART, 0, self.vocab.pos_unknown))
        self.listener.reset()
        self.tracker.reset()
        self.rng = np.random.default_rng(self.rng.integers(2**63))

    def prime(self, path: str) -> None:
        """Prefill the context with a MIDI file (all its tracks as the human's part)."""
        notes = [n for _, track in read_midi_tracks(path) for n in track]
        events = notes_to_events(notes, self.vocab, bos=False)
        window = events[-(self.engine.context // 2):]
        self.engine.prefill(window)
        for token in window:
            self.tracker.observe(token)
        self.tracker.reset()  # the prompt's notes are not sounding now
        log.info("primed the context with %d events of %s", len(window), path)

    # --- input -------------------------------------------------------------------------

    def hear(self, note: TimedNote, now: float) -> None:
        self.counters["heard"] += 1
        note = human_note(note, self.vocab.n_pitch)
        if note is None:
            self.counters["ignored"] += 1
            return
        valid, _ = self.detector.note(note)
        if not valid:
            self.counters["ignored"] += 1
            return
        if note.velocity > 0:
            if self.mode == "call" and self.answer_end is not None:
                self._stop(now, cancel=True)  # barge-in
            self.last_human = note.time
            self._human_sounding.add(note.pitch)
            self._call_voices = max(self._call_voices, len(self._human_sounding))
            self.human_pitches.append(note.pitch)
            self._human_ons += 1
            if self.neural.key == "auto" and self._human_ons % 8 == 0:
                self._estimate_key()
        else:
            self._human_sounding.discard(note.pitch)
        coder = self._coder(note.time)
        self.chords.hear(note.pitch, note.velocity, note.time, coder.beats)
        self._listen(note)
        row = np.asarray(coder.encode(TimedNote(max(note.time, coder.time), HUMAN_PART, note.pitch, note.velocity)),
                         np.int64)
        if not self.engine.queued:  # inside a burst the state is behind it: the chord resolved at its first note holds
            self._chord_at(note.time)
        row[2] = self.chords.context_chord()
        self.engine.defer(row)  # run with the rest of a burst at the engine's next use
        self._observe(row)
        self._behind = now - note.time > BEHIND_S
        if self.pending is not None:
            self.pending = None  # the human came first: predict again from what was heard
            self.counters["resampled"] += 1

    def control(self, number: int, value: int, now: float) -> None:
        cc = self.neural.controls
        turned = turn(self.constraints, cc, number, value, self.neural.pitch_span)
        if number in ALL_OFF_CCS:
            self.detector.release_all(now)
        elif number == self.config.phrase_end_cc and value >= 64:
            phrase = self.detector.end_phrase(now)
            if phrase is not None and self.mode == "call":
                self._start_answer(now, phrase)
        elif turned is not None:
            self.constraints = turned
        elif number == cc.mode:
            self.set_mode("duet" if value >= 64 else "call", now)
        elif number == cc.reset and value >= 64:
            self._stop(now, cancel=True)
            self.engine.reset()
            self.listener.reset()
            self.listen_coder = None
            self.tracker.reset()
            self.chords.reset()
            self.coder = None
            log.info("context reset by CC %d", number)
        elif number == cc.panic and value >= 64:
            self._stop(now, cancel=True)
        else:
            return
        self.counters["controls"] += 1
        self.pending = None  # sample again under the new settings

    def set_beats(self, beats) -> None:
        """Count beats on this BeatMap from now on (None: free time). The context's timeline
        is carried over: the last event keeps its time, now counted on the new map."""
        self.beats = beats
        self._generation = getattr(beats, "generation", None)
        if self.coder is not None:
            t = self.coder.time
            self.coder.reset(t, beats if beats is not None else FreeTime(t))

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
            self._release_off_chord(now)
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
        offs = [TimedNote(max(now, t), part, pitch, 0) for (part, pitch), t in sorted(self.sounding.items())]
        self.sounding.clear()
        self.out = []
        self.pending = None
        self.answer_end = None
        return offs

    def _active(self, now: float) -> bool:
        if self.mode == "call":
            return self.answer_end is not None and now < self.answer_end
        return self.last_human is not None and now - self.last_human <= self.neural.duet_idle_stop_s

    def _start_answer(self, now: float, phrase=None) -> None:
        """Answer for the call's length times answer_length_ratio, within [min_answer_s, max_answer_s],
        in the call's texture: a line is answered with a line (at most as many voices as the call held)."""
        c = self.config
        length = c.max_answer_s if phrase is None else phrase.duration * c.answer_length_ratio
        self.answer_end = now + min(c.max_answer_s, max(c.min_answer_s, length))
        self._answer_voices = max(1, self._call_voices)
        self._call_voices = len(self._human_sounding)
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
        v = self.vocab
        silence = (coder.beats.beat_at(now) - coder.beat) * v.ticks_per_beat  # ticks since the last event
        if silence >= v.max_dt_ticks:  # longer than dt reaches: the model cannot be told; keep it in range
            coder.beat += (int(silence) - v.max_dt_ticks // 2) / v.ticks_per_beat
            silence -= int(silence) - v.max_dt_ticks // 2
        # only future times (strictly after now; + 1e-6: a whole tick of silence may compute a hair short)
        min_dt = min(int(np.floor(silence + 1e-6)) + 1, v.max_dt_ticks) if silence > 0 else 0
        bpm = coder.beats.bpm_at(now)
        self.tracker.ms_per_tick = 60000.0 / ((bpm or 120.0) * v.ticks_per_beat)
        if self.mode == "call":
            parts = (HUMAN_PART,)
        elif not self.neural.duet_turn_taking or (
                not self.sounding and now - self.last_machine_on > self.neural.duet_restart_s):
            parts = (MACHINE_PART,)
        else:
            parts = (HUMAN_PART, MACHINE_PART)
        phase = round(coder.beat * v.ticks_per_beat) % v.ticks_per_beat if bpm else None  # free time: no grid
        # notes end within max_note_beats (a pianist's note belongs to its beat and chord), and within
        # max_note_s; in free time the beats are nominal (120 bpm)
        beat_ms = 60000.0 / (bpm or 120.0)
        max_note_ms = min(self.config.max_note_s * 1000.0, self.config.max_note_beats * beat_ms)
        c = replace(self.constraints, parts=parts, min_dt_bin=min_dt, beat_phase=phase, max_note_ms=max_note_ms)
        if self.mode == "call" and self.answer_end is not None:  # answer a line with a line
            c = replace(c, max_polyphony=min(c.max_polyphony or 128, self._answer_voices))
        self._draw(c, coder)
        if self._expects_human() and self.pending_time <= now:  # "the human, at once", and nothing came:
            self._draw(replace(c, min_dt_bin=max(min_dt, 1)), coder)  # ask for later (or the machine now)
        if self._expects_human() and self.sounding:
            deadline = min(self.sounding.values()) + self.config.max_note_s
            if self.pending_time > deadline:  # its held notes must end before then: the machine moves
                self._draw(replace(c, parts=(MACHINE_PART,)), coder)
        self.step_ms.append((time.perf_counter() - t0) * 1e3)

    def _draw(self, c, coder: EventCoder) -> None:
        """Sample the pending event under constraints `c`: its time, bar position and tempo, and the
        chord it is played in (the chord keeper's at that time: its pitch is drawn under it)."""
        row = self.sampler.sample(self.engine, c, self.tracker, self.rng, next_pos=coder.next_pos,
                                  chord_for=lambda dt: self._chord_at(coder.peek_time(dt), self._now))
        self.pending_time = coder.peek_time(int(row[1]))
        row[6] = coder.tempo_now(self.pending_time)
        self.pending_chord = int(row[2])
        row[2] = self.chords.context_chord()  # what the model reads back: a predicted chord stays hidden
        self.pending = row

    def _chord_at(self, t: float, now: float | None = None) -> int:
        """The chord at time t from the keeper (chart > heard > predicted), predicting with the model."""
        coder = self._coder(t)
        return self.chords.at(t, coder.beats, self.constraints.key, self._predict_chord, now)

    def _listen(self, note: TimedNote) -> None:
        """Feed a human note to the chord listener (its own timeline: the human's events alone)."""
        beats = self.coder.beats
        timeline = (id(beats), getattr(beats, "generation", None))  # a new map, or the live clock renumbered
        if self.listen_coder is None or timeline != self._listen_timeline:
            start = self._listen_last if self.listen_coder is not None else note.time
            self.listen_coder = EventCoder(self.vocab, beats, min(start, note.time))
            self._listen_timeline = timeline
        lc = self.listen_coder
        self.listener.defer(np.asarray(lc.encode(TimedNote(max(note.time, lc.time), HUMAN_PART, note.pitch,
                                                           note.velocity), NO_CHORD), np.int64))
        self._listen_last = lc.time

    def _predict_chord(self, t: float) -> np.ndarray | None:
        """Log-probabilities of the chord at time t: the listener's chord head for the melody's next
        note placed then (what chord a melody note on that beat would sound in)."""
        lc = self.listen_coder
        if lc is None:
            return None
        v = self.vocab
        ticks = int(round((lc.beats.beat_at(t) - lc.beat) * v.ticks_per_beat))
        dt = min(max(ticks, 0), v.max_dt_ticks)
        logits = self.listener.logits(2, (HUMAN_PART, dt, lc.next_pos(dt))).astype(np.float64)
        logits[NO_CHORD] = -np.inf  # something is always played in some chord; N is the model's "unknown"
        return logits - np.logaddexp.reduce(logits[np.isfinite(logits)])

    def _release_off_chord(self, now: float) -> None:
        """At a chord change, end the machine's notes that are not tones of the new chord, on the
        beat of the change (a pianist lifts what no longer fits: held notes are where clashes live)."""
        if not self.sounding:
            return
        coder = self._coder(now)
        ahead = now + self.config.lookahead_s
        chord = self._chord_at(ahead, now)
        if chord == NO_CHORD:
            return
        tones = chord_tones(chord)
        stale = [key for key in self.sounding
                 if key[1] % 12 not in tones and self.onset_chord.get(key, NO_CHORD) != chord]
        if not stale:
            return
        beat = coder.beats.beat_at(ahead)
        off = max(now, coder.time, coder.beats.time_at(float(np.floor(beat + 1e-6))))
        for part, pitch in sorted(stale):
            del self.sounding[(part, pitch)]
            self._emit(TimedNote(off, part, pitch, 0))
            row = np.asarray(coder.encode(TimedNote(max(off, coder.time), part, pitch, 0),
                                          self.chords.context_chord()), np.int64)
            self._feed(row)
        self.counters["chord_releases"] = self.counters.get("chord_releases", 0) + len(stale)
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
            coder.reset(play_time)
        self._feed(token)
        self.step_ms.append((time.perf_counter() - t0) * 1e3)
        key = (note.part, note.pitch)
        if note.velocity > 0:
            if key not in self.sounding:
                self.sounding[key] = play_time
                self.onset_chord[key] = self.pending_chord
                self.last_machine_on = play_time
                self._emit(TimedNote(play_time, note.part, note.pitch, note.velocity))
        elif key in self.sounding:
            del self.sounding[key]
            self._emit(TimedNote(play_time, note.part, note.pitch, 0))

    def _stop(self, now: float, cancel: bool) -> None:
        """End the machine's part: with `cancel` (barge-in) the queue is dropped at once; else note-offs now."""
        if cancel and (self.sounding or self.answer_end is not None):
            self.out = [Cancel(now)]
            self.counters["cancels"] += 1
        coder = self._coder(now)
        for (part, pitch), _ in sorted(self.sounding.items()):
            if not cancel:
                self._emit(TimedNote(now, part, pitch, 0))
            # the model hears its notes end too, so its context matches what sounds
            row = np.asarray(coder.encode(TimedNote(max(now, coder.time), part, pitch, 0), self.chords.context_chord()),
                             np.int64)
            self._feed(row)
        self.sounding.clear()
        self.pending = None
        self.answer_end = None
        self.last_human = None  # a duet starts again with the human's next note

    def _emit(self, note: TimedNote) -> None:
        self.out.append(note)
        self.counters["played"] += 1

    def _feed(self, token) -> None:
        self.engine.feed(token)
        self._observe(token)

    def _observe(self, token) -> None:
        self.tracker.observe(token)
        if self.coder is not None:
            self._last_time = self.coder.time  # in seconds: survives a renumbering of the beats

    def _coder(self, now: float) -> EventCoder:
        if self.coder is None:
            self.coder = EventCoder(self.vocab, self.beats if self.beats is not None else FreeTime(now), now)
            self._generation = getattr(self.beats, "generation", None)
        else:
            generation = getattr(self.beats, "generation", None)  # a live BeatClock renumbered its beats
            if generation != self._generation:
                self._generation = generation
                self.coder.reset(self._last_time)
        return self.coder

    def _estimate_key(self) -> None:
        from livejam.engine.keys import estimate_key, pitch_class_histogram

        key, r = estimate_key(pitch_class_histogram(self.human_pitches))
        if r > 0.5 and key != self.constraints.key:
            self.constraints = replace(self.constraints, key=key)
            log.info("key estimated from the human: %s (r=%.2f)", key, r)

    def latency_stats(self) -> dict[str, float]:
        """Median / p99 / max of feed-or-sample times in ms (the per-event cost)."""
        return summary_ms(self.step_ms)
