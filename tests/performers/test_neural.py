"""The neural performer on a virtual clock, with a tiny random ONNX model (tests/conftest.py)."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livejam.beatmap import BeatGrid
from livejam.config import ControlMap, NeuralConfig, PerformerConfig
from livejam.engine.session import load_model
from livejam.events import TimedNote
from livejam.performers.base import Cancel
from livejam.performers.neural import NeuralPerformer


@pytest.fixture(scope="module")
def model(tiny_model):
    return load_model(tiny_model)


class Wire:
    """What reached the output: applies Cancel like the scheduler (everything sounding ends)."""

    def __init__(self):
        self.sounding: set[tuple[int, int]] = set()
        self.notes: list[TimedNote] = []
        self.cancels = 0

    def take(self, items):
        for item in items:
            if isinstance(item, Cancel):
                self.cancels += 1
                self.sounding.clear()
                continue
            self.notes.append(item)
            key = (item.part, item.pitch)
            if item.velocity > 0:
                assert key not in self.sounding, f"note-on for sounding {key}"
                self.sounding.add(key)
            else:
                assert key in self.sounding, f"note-off for silent {key}"
                self.sounding.discard(key)


def phrase(p: NeuralPerformer, wire: Wire, t: float, pitches=(60, 62, 64, 65, 67)) -> float:
    for pitch in pitches:
        p.hear(TimedNote(t, 0, pitch, 90), t)
        wire.take(p.poll(t))
        p.hear(TimedNote(t + 0.2, 0, pitch, 0), t + 0.2)
        wire.take(p.poll(t + 0.2))
        t += 0.25
    return t


def run_until(p: NeuralPerformer, wire: Wire, now: float, end: float) -> float:
    while now < end:
        now = min(end, max(now + 1e-4, p.next_wakeup(now)))
        wire.take(p.poll(now))
    return now


# answers at least this long: the untrained test model's first answer note may come seconds after the call
ANSWER_S = 8.0


def make(model, mode="call", seed=1, performer: PerformerConfig | None = None, **kw) -> NeuralPerformer:
    performer = performer or PerformerConfig(min_answer_s=ANSWER_S)
    return NeuralPerformer(performer, NeuralConfig(mode=mode, **kw), model, seed=seed)


def test_duet_plays_its_own_part_through_rests_and_leaves_nothing_sounding(model):
    p, wire = make(model, "duet"), Wire()
    t = phrase(p, wire, 0.0)
    run_until(p, wire, t, t + 3.0)  # the human rests; the machine goes on
    machine = [n for n in wire.notes if n.velocity > 0]
    assert machine and all(n.part == 1 for n in machine)
    assert any(n.time > t + 0.5 for n in machine), "the duet stopped during the human's rest"
    wire.take(p.close(t + 3.0))
    assert not wire.sounding and not p.sounding


def test_duet_stops_after_the_human_leaves(model):
    p, wire = make(model, "duet", duet_idle_stop_s=2.0), Wire()
    t = phrase(p, wire, 0.0)
    run_until(p, wire, t, t + 6.0)
    assert not wire.sounding
    assert all(n.time <= t + 2.0 + 1e-6 for n in wire.notes if n.velocity > 0)


def test_call_waits_for_the_phrase_end_then_answers_in_the_human_part(model):
    p, wire = make(model, "call"), Wire()
    t = phrase(p, wire, 0.0)
    assert not wire.notes, "answered while the human was playing"
    run_until(p, wire, t, t + 4.0)
    ons = [n for n in wire.notes if n.velocity > 0]
    assert ons and all(n.part == 0 for n in ons)
    assert min(n.time for n in ons) >= t - 0.25 + PerformerConfig().phrase_end_silence_s - 1e-6


def test_barge_in_cancels_the_answer_at_once(model):
    p, wire = make(model, "call"), Wire()
    t = phrase(p, wire, 0.0)
    t = run_until(p, wire, t, t + 2.0)
    assert p.answer_end is not None
    p.hear(TimedNote(t, 0, 72, 100), t)
    out = p.poll(t)
    assert out and isinstance(out[0], Cancel)
    wire.take(out)
    assert not wire.sounding and p.answer_end is None
    assert not [n for n in p.poll(t + 0.1) if isinstance(n, TimedNote) and n.velocity > 0]


def test_deterministic_under_seed(model):
    runs = []
    for _ in range(2):
        p, wire = make(model, "duet", seed=7), Wire()
        t = phrase(p, wire, 0.0)
        run_until(p, wire, t, t + 4.0)
        runs.append(wire.notes)
    assert runs[0] == runs[1] and runs[0]


def test_controls_switch_mode_change_sampling_and_panic(model):
    cc = ControlMap()
    p, wire = make(model, "call"), Wire()
    p.control(cc.mode, 127, 0.0)
    assert p.mode == "duet"
    p.control(cc.temperature, 0, 0.0)
    assert p.constraints.temperature == pytest.approx(0.05)
    p.control(cc.pitch_centre, 127, 0.0)
    assert p.constraints.pitch_range == (72, 108)
    p.control(cc.grid, 127, 0.0)
    p.control(cc.harmony, 0, 0.0)
    assert p.constraints.grid == 1.0 and p.constraints.harmony == 0.0
    t = phrase(p, wire, 0.0)
    run_until(p, wire, t, t + 1.0)
    assert all(72 <= n.pitch <= 108 for n in wire.notes if n.velocity > 0)
    p.control(cc.panic, 127, t + 1.0)
    wire.take(p.poll(t + 1.0))
    assert not wire.sounding and not p.sounding


def test_context_full_keeps_playing(model):
    p, wire = make(model, "duet", duet_idle_stop_s=100.0), Wire()
    t, swapped_at = 0.0, None
    for _ in range(12):
        t = phrase(p, wire, t)
        t = run_until(p, wire, t, t + 1.0)
        if swapped_at is None and p.engine.swaps:
            swapped_at = t
    assert swapped_at is not None  # max_len 64: the context filled and was swapped for a window
    assert sum(1 for n in wire.notes if n.time > swapped_at) > 0  # and the machine played on after it


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["on", "off", "cc", "wait"]), st.integers(0, 127), st.integers(0, 127),
                          st.floats(0.0, 0.7)), max_size=60), st.sampled_from(["call", "duet"]))
def test_garbage_input_never_raises_and_nothing_stays_sounding(model, actions, mode):
    p, wire, now = make(model, mode), Wire(), 0.0
    for kind, a, b, dt in actions:
        now += dt
        if kind == "on":
            p.hear(TimedNote(now, 0, a, max(1, b)), now)
        elif kind == "off":
            p.hear(TimedNote(now, 0, a, 0), now)
        elif kind == "cc":
            p.control(20 + a % 10, b, now)
        wire.take(p.poll(now))
        now = run_until(p, wire, now, now + dt)
    wire.take(p.close(now))
    assert not wire.sounding


def test_prompt_primes_the_context(model, tmp_path):
    from livejam.events import Note
    from livejam.midi.files import write_midi

    prompt = tmp_path / "prompt.mid"
    write_midi(prompt, [("lead", [Note(0.25 * i, 0.25 * i + 0.2, 60 + i % 5, 80) for i in range(40)])])
    p = make(model, "duet", prompt=str(prompt))
    assert p.engine.pos == 1 + 32  # start marker + the last max_len // 2 events of the prompt
    assert not p.tracker.sounding[0]  # the prompt's notes do not sound now
    wire = Wire()
    t = phrase(p, wire, 0.0)
    run_until(p, wire, t, t + 1.0)
    wire.take(p.close(t + 1.0))
    assert not wire.sounding


def test_tempo_sync_puts_note_ons_on_the_midi_clock_grid(model):
    from livejam.beat.live import BeatClock
    from livejam.config import BeatConfig

    clock = BeatClock(BeatConfig(), t0=0.0)  # incoming MIDI clock, as the dispatcher gives it
    p, wire = make(model, "duet", grid_beats=0.5), Wire()
    p.follow_clock(clock)
    tick = 0.5 / 24  # 120 bpm
    t0 = 0.013
    clock.handle("start", t0)
    sent = [0]  # ticks sent so far

    def advance_clock(now: float) -> None:
        while t0 + sent[0] * tick <= now:
            clock.handle("clock", t0 + sent[0] * tick)
            sent[0] += 1

    t = 0.05
    for pitch in (60, 64, 67, 72):
        advance_clock(t)
        p.hear(TimedNote(t, 0, pitch, 90), t)
        wire.take(p.poll(t))
        t += 0.3
    end = t + 2.0
    while t < end:
        t = min(end, max(t + 1e-3, p.next_wakeup(t)))
        advance_clock(t)
        wire.take(p.poll(t))
    ons = [n for n in wire.notes if n.velocity > 0]
    assert ons
    for n in ons:  # eighth notes at 120 bpm: every 0.25 s from the first tick
        phase = (n.time - t0) / 0.25
        assert abs(phase - round(phase)) < 1e-3, n
    wire.take(p.close(t))
    assert not wire.sounding


def test_on_a_beat_grid_note_ons_land_on_ticks_and_events_know_their_bar(model):
    grid = BeatGrid([0.1 + 0.6 * i for i in range(64)])  # 100 bpm, 4/4 from 0.1 s
    p, wire = make(model, "duet", duet_idle_stop_s=100.0), Wire()
    p.set_beats(grid)
    t = phrase(p, wire, 0.1)
    run_until(p, wire, t, t + 4.0)
    ons = [n for n in wire.notes if n.velocity > 0 and n.part == 1]
    assert ons
    for n in ons:  # every machine onset sits on the 1/12-beat lattice of the grid
        ticks = grid.beat_at(n.time) * 12
        assert abs(ticks - round(ticks)) < 1e-6, n
    rows = p.engine.tokens()[1:]
    v = p.vocab
    assert all(r[5] != v.pos_unknown for r in rows) and all(r[6] == v.tempo_bin(100.0) for r in rows)
    first = rows[0]  # the human's first note-on, 0.1 s = beat 0: bar position 0
    assert first[0] == 0 and first[5] == 0
    wire.take(p.close(t + 4.0))
    assert not wire.sounding


def human_soonest(p: NeuralPerformer) -> list[int]:
    """Make p's model guess "the human plays next, as soon as allowed"; returns the list of each draw's min dt."""
    sample, drawn = p.sampler.sample, []

    def guess(engine, c, notes, rng, next_pos=None, chord_for=None):
        row = sample(engine, c, notes, rng, next_pos, chord_for)
        if 0 in c.parts:
            row[0], row[1] = 0, c.min_dt_bin
        drawn.append(c.min_dt_bin)
        return row

    p.sampler.sample = guess
    return drawn


def test_the_human_predicted_at_this_very_instant_is_asked_for_later(model):
    """Duet: the guess "the human plays next, at once" (dt 0: the last event's time, which is now) when
    nothing came is drawn again for after now, not resampled again and again at the same instant."""
    p, wire = make(model, "duet", duet_idle_stop_s=100.0), Wire()
    t = phrase(p, wire, 0.0)  # free time from 0 s: these times are exact ticks
    drawn = human_soonest(p)
    p.hear(TimedNote(t, 0, 72, 90), t)
    p.notes.last_on = t  # the machine just played: whose turn is next is the model's to say
    wire.take(p.poll(t))
    assert drawn == [0, 1] and p.pending_time > t


def test_a_whole_tick_of_silence_that_computes_a_hair_short_is_still_past(model):
    """On this grid one tick after beat 0 (0.15 s) reads back as 0.9999999999999998 ticks of silence:
    the soonest time allowed is the tick after it, not now again (a resampling storm)."""
    p, wire = make(model, "duet", duet_idle_stop_s=100.0), Wire()
    p.set_beats(BeatGrid([0.1 + 0.6 * i for i in range(64)]))
    drawn = human_soonest(p)
    p.notes.last_on = 0.1
    p.hear(TimedNote(0.1, 0, 72, 90), 0.1)
    wire.take(p.poll(0.1))
    assert drawn == [0, 1] and p.pending_time == pytest.approx(0.15)
    wire.take(p.poll(0.15))
    assert drawn == [0, 1, 2] and p.pending_time == pytest.approx(0.2)


def machine_onsets(model, grid: float, beats) -> list[float]:
    p, wire = make(model, "duet", seed=3, grid=grid, density=1.0, duet_idle_stop_s=100.0), Wire()
    p.set_beats(beats)
    t = phrase(p, wire, 0.1, pitches=(60, 62, 64, 65, 67) * 3)  # every 0.25 s: off the 0.15 s 16ths
    run_until(p, wire, t, t + 20.0)
    return [n.time for n in wire.notes if n.velocity > 0 and n.part == 1]


def test_grid_puts_more_onsets_on_the_sixteenths_with_a_beat_clock_only(model):
    grid = BeatGrid([0.1 + 0.6 * i for i in range(64)])  # 100 bpm: a 16th every 0.15 s

    def on_16ths(times):
        assert len(times) > 20, len(times)
        return sum(abs(grid.beat_at(t) * 4 - round(grid.beat_at(t) * 4)) < 1e-6 for t in times) / len(times)

    off, on = on_16ths(machine_onsets(model, 0.0, grid)), on_16ths(machine_onsets(model, 1.0, grid))
    assert on > off + 0.2, (off, on)
    free = machine_onsets(model, 1.0, None)
    assert free and free == machine_onsets(model, 0.0, None)  # free time: no grid to lean to, the same notes


def test_heard_events_carry_a_given_chord_and_no_guessed_one(model):
    from livejam.chart import ChordChart
    from livejam.harmony import chord_id

    p = make(model, "call")  # no chart, a melody: the machine listens, its guesses stay out of the context
    p.hear(TimedNote(0.0, 0, 60, 90), 0.0)
    row = p.engine.tokens()[-1]
    assert row[2] == 0 and p.chord_source == "listening" and row[5] == p.vocab.pos_unknown and row[6] == 0
    p = make(model, "call")
    p.set_chart(ChordChart.parse("F C"))
    p.hear(TimedNote(0.0, 0, 60, 90), 0.0)
    assert p.engine.tokens()[-1][2] == chord_id(5, 0) == p.chord and p.chord_source == "chart"


def test_free_time_then_a_beat_grid_keeps_the_timeline(model):
    p, wire = make(model, "duet"), Wire()
    t = phrase(p, wire, 0.0)
    before = p.coder.time
    p.set_beats(BeatGrid([0.05 + 0.5 * i for i in range(64)]))
    assert p.coder.time == pytest.approx(before, abs=0.5 / 12 / 2 + 1e-9)  # within half a tick
    run_until(p, wire, t, t + 2.0)
    wire.take(p.close(t + 2.0))
    assert not wire.sounding


@pytest.mark.parametrize("ratio, call_notes, expected", [(1.0, 5, 1.2), (2.0, 5, 2.4), (1.0, 40, 6.0), (0.1, 5, 0.5)])
def test_an_answer_lasts_the_call_times_the_ratio_within_the_bounds(model, ratio, call_notes, expected):
    # the call: from its first note-on to its last note-off, (notes - 1) x 0.25 s + 0.2 s
    p = make(model, "call", performer=PerformerConfig(answer_length_ratio=ratio, min_answer_s=0.5, max_answer_s=6.0))
    wire = Wire()
    t = phrase(p, wire, 0.0, pitches=[60 + i % 12 for i in range(call_notes)])  # a note every 0.25 s
    run_until(p, wire, t, t + 0.6)  # the phrase ends after 0.5 s of silence
    assert p.answer_end is not None
    started = p.answer_end - expected
    assert t + 0.4 <= started <= t + 0.6  # it began when the phrase ended (0.5 s after its last note-off) ...
    run_until(p, wire, t + 0.6, t + 0.6 + expected + 1.0)
    assert p.answer_end is None and all(n.time <= started + expected + 1e-6 for n in wire.notes if n.part == 0
                                        and n.velocity > 0 and n.time > t)  # ... and lasted as long as said


def test_a_line_is_answered_with_a_line(model):
    p, wire = make(model, "call", density=1.0), Wire()
    t = phrase(p, wire, 0.0, pitches=(60, 62, 64, 65, 67) * 3)  # one note at a time
    run_until(p, wire, t, t + ANSWER_S)
    most, sounding = 0, set()
    for n in wire.notes:
        if n.time > t:
            (sounding.add if n.velocity else sounding.discard)(n.pitch)
            most = max(most, len(sounding))
    assert 0 < most <= 1


def test_releases_at_fast_chord_changes_never_spin_at_one_instant(model):
    """Chords changing every half beat inside the lookahead: a note struck just before a change ends
    at the change, and what follows is sampled after it; no storm of notes at one instant (a
    simulate run used to spin forever here)."""
    from livejam.chart import ChordChart

    p, wire = make(model, "duet", density=1.0, harmony=1.0, duet_idle_stop_s=100.0), Wire()
    p.set_beats(BeatGrid([0.25 * i for i in range(200)]))  # 240 bpm: a half beat is 125 ms
    p.set_chart(ChordChart.parse("C:0.5 F#:0.5 Bb:0.5 E:0.5"))
    t = phrase(p, wire, 0.0, pitches=(60, 62, 64) * 3)
    polls, now = 0, t
    while now < t + 10.0 and polls < 20000:
        now = min(t + 10.0, max(now + 1e-4, p.next_wakeup(now)))
        wire.take(p.poll(now))
        polls += 1
    assert polls < 20000, "the performer kept asking to be polled at the same instant"
    ons = [n for n in wire.notes if n.velocity > 0 and n.part == 1]
    assert ons and len(ons) < 10 * 10  # at most ~10 a second
    times = sorted(n.time for n in wire.notes if n.part == 1)
    assert max(times.count(x) for x in set(times)) <= 8  # no pile of events at one instant


def test_machine_notes_end_within_max_note_beats_and_voices_stay_within_the_setting(model):
    p = NeuralPerformer(PerformerConfig(max_note_beats=2.0, max_polyphony=3), NeuralConfig(mode="duet", density=1.0,
                        duet_idle_stop_s=100.0), model, seed=4)
    wire = Wire()
    p.set_beats(BeatGrid([0.6 * i for i in range(200)]))  # 100 bpm: 2 beats are 1.2 s
    t = phrase(p, wire, 0.0, pitches=(60, 64, 67, 72) * 4)
    run_until(p, wire, t, t + 20.0)
    wire.take(p.close(t + 20.0))
    ons, lengths, most, sounding = {}, [], 0, set()
    for n in sorted(wire.notes, key=lambda n: (round(n.time, 6), n.velocity > 0)):  # an end at a start: first
        if n.part != 1:
            continue
        if n.velocity > 0:
            ons[n.pitch] = n.time
            sounding.add(n.pitch)
            most = max(most, len(sounding))
        elif n.pitch in ons:
            lengths.append(n.time - ons.pop(n.pitch))
            sounding.discard(n.pitch)
    assert len(lengths) > 10 and max(lengths) <= 1.2 + 0.06, max(lengths)  # + the lookahead's slack
    assert most <= 3


def chords_phrase(p: NeuralPerformer, wire: Wire, t: float, bars: int) -> float:
    """The human plays block chords, one per beat of 0.6 s, held to the next."""
    for i in range(bars * 4):
        chord = ((60, 64, 67), (57, 60, 64), (53, 57, 60), (55, 59, 62))[(i // 4) % 4]
        for pitch in chord:
            p.hear(TimedNote(t, 0, pitch, 80), t)
        wire.take(p.poll(t))
        t = run_until(p, wire, t, t + 0.55)
        for pitch in chord:
            p.hear(TimedNote(t, 0, pitch, 0), t)
        wire.take(p.poll(t))
        t += 0.05
    return t


def machine_voices(notes, after: float) -> int:
    most, sounding = 0, set()
    for n in sorted(notes, key=lambda n: (round(n.time, 6), n.velocity > 0)):  # an end at a start: first
        if n.part == 1 and n.time > after:
            (sounding.add if n.velocity else sounding.discard)(n.pitch)
            most = max(most, len(sounding))
    return most


@pytest.mark.parametrize("line_over_chords", [3, 0])
def test_a_duet_over_the_humans_chords_is_a_single_line(model, line_over_chords):
    """Issue 17 (reverse duet): over someone's chords a pianist plays a line, not more chords."""
    p = NeuralPerformer(PerformerConfig(max_polyphony=4), NeuralConfig(
        mode="duet", density=2.0, duet_idle_stop_s=100.0, line_over_chords=line_over_chords), model, seed=3)
    wire = Wire()
    p.set_beats(BeatGrid([0.6 * i for i in range(400)]))
    chords_phrase(p, wire, 0.0, bars=8)
    ons = [n for n in wire.notes if n.part == 1 and n.velocity > 0 and n.time > 0.6]
    assert len(ons) > 5
    most = machine_voices(wire.notes, 0.6)
    assert most == 1 if line_over_chords else most > 1, most
