"""What `teach` checks before it hands a model over: held-out NLL before and after (through the
live engine, as `livejam eval` scores), and that the model does not replay a training session.

Replay: the model continues held-out prompts (the first events of each held-out session) with the
live sampler (livejam.engine: call mode's part 0, the shipped sampling settings); the longest run
of consecutive note-on pitches of any continuation found verbatim in a training session is the
figure. For scale, the same run between the held-out sessions themselves and the training ones
(what the style alone shares) is reported beside it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from livejam.beatmap import FreeTime
from livejam.config import NeuralConfig
from livejam.engine import Constraints, Engine, EventSampler, NoteTracker, load_model
from livejam.events import DT, FIELDS, PART, PITCH, TEMPO, VEL, EventCoder
from livejam.measure.evaluate import evaluate
from tools.teach_data import Session
from tools.teach_tune import TAUGHT

REPLAY_BAR = 8  # a continuation may not copy this many consecutive notes of a training session


def nll(model_path, sessions: list[Session], threads: int = 1) -> dict:
    """NLL per event (nats) of a model file on the sessions' rows, through the live engine (`livejam
    eval`): per field, and "event", the sum over the fields a session teaches (no chord: TAUGHT)."""
    r = evaluate(str(model_path), [s.rows for s in sessions], threads=threads)
    per_field = r["model_nll"]
    return {**per_field, "event": sum(per_field[FIELDS[k]] for k in TAUGHT), "events": r["events"]}


def longest_shared_run(seq: np.ndarray, others: list[np.ndarray]) -> int:
    """The longest run of consecutive values of `seq` that stands, in the same order, in one of `others`."""
    seq = np.asarray(seq)
    best = 0
    for other in others:
        other = np.asarray(other)
        if not len(seq) or not len(other):
            continue
        run = np.zeros(len(other), np.int64)  # run[j]: length of the match ending at seq[i], other[j]
        for value in seq:
            nxt = np.zeros_like(run)
            nxt[1:] = run[:-1] + 1
            nxt[0] = 1
            run = np.where(other == value, nxt, 0)
            best = max(best, int(run.max()))
    return best


@dataclass
class ReplayCheck:
    longest: int  # the longest run of a continuation copied from a training session (notes)
    style: int  # the longest run a held-out session itself shares with the training sessions
    answers: int  # continuations sampled
    notes: int  # their note-ons in all

    @property
    def ok(self) -> bool:
        return self.longest < REPLAY_BAR


def continue_prompt(engine: Engine, sampler: EventSampler, session: Session, prompt_events: int, n_events: int,
                    rng: np.random.Generator, neural: NeuralConfig) -> np.ndarray:
    """The pitches of the note-ons the model plays after the session's first `prompt_events` events."""
    vocab = engine.vocab
    prompt = session.rows[:prompt_events + 1]  # its start row first
    beats = session.beats if session.beats is not None else FreeTime(session.start)
    coder = EventCoder(vocab, beats, session.start)
    notes = NoteTracker(vocab)
    engine.reset(start=False)
    engine.prefill(prompt)
    for row in prompt:
        notes.observe(row)
        if row[PART] < vocab.n_parts:
            coder.decode(row)
    c = Constraints(temperature=neural.temperature, dt_temperature=neural.dt_temperature,
                    chord_temperature=neural.chord_temperature, top_p=neural.top_p, min_p=neural.min_p,
                    parts=(0,), max_polyphony=4, max_note_ms=4000.0)
    played = []
    for _ in range(n_events):
        bpm = beats.bpm_at(coder.time)
        notes.ms_per_tick = 60000.0 / ((bpm or 120.0) * vocab.ticks_per_beat)
        row = sampler.sample(engine, c, notes, rng, next_pos=coder.next_pos)
        row[TEMPO] = coder.tempo_now(coder.peek_time(int(row[DT])))
        coder.decode(row)
        notes.observe(row)
        engine.feed(row)
        if row[VEL] > 0:
            played.append(int(row[PITCH]))
    return np.asarray(played, np.int64)


def replay_check(model_path, train: list[Session], held_out: list[Session], answers: int = 3,
                 prompt_events: int = 64, n_events: int = 128, seed: int = 0) -> ReplayCheck:
    """`answers` continuations of each held-out session's opening, checked against the training sessions."""
    model = load_model(str(model_path))
    engine = Engine(model)
    sampler = EventSampler(engine.vocab)
    neural = NeuralConfig()
    rng = np.random.default_rng(seed)
    known = [s.pitches() for s in train]
    longest = notes = count = 0
    for session in held_out:
        for _ in range(answers):
            played = continue_prompt(engine, sampler, session, prompt_events, n_events, rng, neural)
            longest = max(longest, longest_shared_run(played, known))
            notes += len(played)
            count += 1
    style = max((longest_shared_run(s.pitches(), known) for s in held_out), default=0)
    return ReplayCheck(longest, style, count, notes)
