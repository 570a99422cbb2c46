"""Phrase detection and the Markov call-and-response performer, on a virtual clock (plain floats)."""
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livejam.beatmap import BeatGrid
from livejam.events import TimedNote, Vocab
from livejam.config import ConfigError, DaemonConfig, PerformerConfig, load
from livejam.daemon import build_performer
from livejam.performers.base import Cancel, Performer, PhraseDetector
from livejam.performers.markov import MarkovPerformer

CONFIG = PerformerConfig()


def phrase(start: float, pitches, step: float = 0.25, length: float = 0.2) -> list[TimedNote]:
    notes = []
    for i, pitch in enumerate(pitches):
        t = start + i * step
        notes += [TimedNote(t, 0, pitch, 80), TimedNote(t + length, 0, pitch, 0)]
    return sorted(notes, key=lambda n: n.time)


SCALE = [60, 62, 64, 65, 67, 65, 64, 62, 60, 64, 67, 72]  # 12 notes, 2.95 s from first on to last off


class Session:
    """Drives a performer like the engine does: deliver human input, poll at its wake-ups,
    and keep a ledger of machine notes (a Cancel drops queued events and ends sounding ones)."""

    def __init__(self, performer: Performer):
        self.performer = performer
        self.now = 0.0
        self.played: list[TimedNote] = []  # what reached the wire, in order
        self.queued: list[TimedNote] = []  # handed out, play time not reached
        self.sounding: set[int] = set()
        self.cancels: list[float] = []
        self.handed_early: list[float] = []  # note.time - poll time, to check the lookahead

    def _flush(self, until: float) -> None:
        due = [n for n in self.queued if n.time <= until]
        self.queued = [n for n in self.queued if n.time > until]
        for note in due:
            if note.velocity > 0:
                assert note.pitch not in self.sounding, f"note-on for sounding {note}"
                self.sounding.add(note.pitch)
            else:
                assert note.pitch in self.sounding, f"note-off for silent {note}"
                self.sounding.discard(note.pitch)
            self.played.append(note)

    def _poll(self) -> None:
        for item in self.performer.poll(self.now):
            if isinstance(item, Cancel):
                self.cancels.append(item.time)
                self.queued.clear()
                for pitch in sorted(self.sounding):
                    self.played.append(TimedNote(self.now, 0, pitch, 0))
                self.sounding.clear()
            else:
                assert item.time >= self.now - 1e-9
                self.handed_early.append(item.time - self.now)
                self.queued.append(item)

    def advance(self, until: float) -> None:
        while True:
            wake = max(self.now, self.performer.next_wakeup(self.now))
            if wake > until:
                break
            self._flush(wake)
            self.now = wake
            self._poll()
            if self.performer.next_wakeup(self.now) <= self.now:  # guard: it must make progress
                self._poll()
                assert self.performer.next_wakeup(self.now) > self.now
        self._flush(until)
        self.now = until

    def hear(self, notes) -> None:
        for note in notes:
            self.advance(note.time)
            self.performer.hear(note, self.now)
            self._poll()

    def control(self, number: int, value: int, at: float) -> None:
        self.advance(at)
        self.performer.control(number, value, self.now)
        self._poll()

    def close(self, at: float) -> None:
        self.advance(at)
        self._flush(float("inf"))
        for note in self.performer.close(self.now):
            if note.pitch in self.sounding:
                self.sounding.discard(note.pitch)
                self.played.append(note)


# --- phrase detection ------------------------------------------------------------------

def test_phrase_ends_after_silence_with_all_keys_up():
    detector = PhraseDetector(silence_s=0.5)
    assert detector.note(TimedNote(1.0, 0, 60, 90)) == (True, True)
    assert detector.note(TimedNote(1.2, 0, 62, 90)) == (True, False)
    detector.note(TimedNote(1.4, 0, 60, 0))
    detector.note(TimedNote(1.5, 0, 62, 0))
    assert detector.deadline() == pytest.approx(2.0)
    assert detector.poll(1.99) is None
    found = detector.poll(2.0)
    assert (found.start, found.end, found.note_count) == (1.0, 1.5, 2)
    assert not detector.in_phrase and detector.poll(5.0) is None


def test_keys_still_held_do_not_end_a_phrase():
    detector = PhraseDetector(silence_s=0.5, held_key_timeout_s=10.0)
    detector.note(TimedNote(0.0, 0, 60, 90))
    assert detector.poll(3.0) is None  # a long held note is not silence
    detector.note(TimedNote(3.0, 0, 60, 0))
    assert detector.poll(3.5) is not None


def test_lost_note_off_cannot_block_phrase_ends_forever():
    detector = PhraseDetector(silence_s=0.5, held_key_timeout_s=10.0)
    detector.note(TimedNote(0.0, 0, 60, 90))
    assert detector.poll(10.0) is not None and not detector.held


def test_cc_ends_the_phrase_at_once_even_with_keys_held():
    detector = PhraseDetector()
    assert detector.end_phrase(0.0) is None  # nothing open
    detector.note(TimedNote(0.0, 0, 60, 90))
    found = detector.end_phrase(0.3)
    assert found is not None and found.end == 0.3
    assert detector.note(TimedNote(0.4, 0, 62, 90)) == (True, True)  # the human plays again


def test_garbage_notes_are_flagged_invalid():
    detector = PhraseDetector()
    assert detector.note(TimedNote(0.0, 0, 60, 0)) == (False, False)  # off without on
    detector.note(TimedNote(0.1, 0, 60, 90))
    assert detector.note(TimedNote(0.2, 0, 60, 90)) == (False, False)  # repeated on


# --- call and response ------------------------------------------------------------------------

def answer_to(seed: int = 1, config: PerformerConfig = CONFIG) -> Session:
    session = Session(MarkovPerformer(config, seed))
    session.hear(phrase(0.0, SCALE))
    session.advance(10.0)
    return session


def test_answer_starts_after_the_phrase_ends_and_lasts_about_its_length():
    session = answer_to()
    ons = [n for n in session.played if n.velocity > 0]
    assert ons, "no answer"
    phrase_end = 11 * 0.25 + 0.2
    first = session.played[0].time
    last = session.played[-1].time
    assert phrase_end + CONFIG.phrase_end_silence_s <= first <= phrase_end + CONFIG.phrase_end_silence_s + 0.5
    assert abs((last - first) - phrase_end) < 0.5  # ~ the phrase's 2.95 s
    assert all(0 <= early <= CONFIG.lookahead_s + 1e-9 for early in session.handed_early)
    assert not session.sounding and not session.cancels


def test_every_answered_note_on_gets_its_note_off():
    session = answer_to(config=replace(CONFIG, max_note_s=0.3))
    balance = {}
    for note in session.played:
        balance[note.pitch] = balance.get(note.pitch, 0) + (1 if note.velocity > 0 else -1)
        assert balance[note.pitch] in (0, 1)
    assert all(v == 0 for v in balance.values())


def test_answer_is_deterministic_under_a_seed():
    assert answer_to(seed=5).played == answer_to(seed=5).played


def test_cc_ends_the_phrase_and_the_machine_answers():
    session = Session(MarkovPerformer(CONFIG, 2))
    session.hear(phrase(0.0, SCALE[:6]))
    session.hear([TimedNote(1.5, 0, 60, 90)])  # still held when the CC comes
    session.control(CONFIG.phrase_end_cc, 127, 1.6)
    assert session.performer.answer_end is not None  # answering from the CC on, not after silence
    session.advance(1.6 + CONFIG.phrase_end_silence_s)
    assert any(n.velocity > 0 for n in session.played)


def test_keys_held_through_the_cc_do_not_block_the_answer():
    session = Session(MarkovPerformer(CONFIG, 6))
    chord = [TimedNote(0.0, 0, 60 + i, 90) for i in range(CONFIG.max_polyphony + 1)]
    session.hear(chord)
    session.control(CONFIG.phrase_end_cc, 127, 1.0)
    session.advance(3.0)
    assert any(n.velocity > 0 for n in session.played)  # not only offs of the human's keys (skipped)


def test_human_barge_in_cancels_the_answer_at_once():
    session = Session(MarkovPerformer(CONFIG, 3))
    session.hear(phrase(0.0, SCALE))
    session.advance(4.5)  # the answer (from ~3.65 s) is under way
    assert session.played
    session.hear([TimedNote(4.5, 0, 48, 100)])
    assert session.cancels == [4.5]
    assert not session.sounding
    before = len(session.played)
    session.hear([TimedNote(4.6, 0, 48, 0)])
    session.advance(4.6 + CONFIG.phrase_end_silence_s - 0.01)
    assert len(session.played) == before  # the answer stopped; the next waits for the new phrase


def test_close_ends_every_machine_note():
    session = Session(MarkovPerformer(replace(CONFIG, max_note_s=8.0), 4))
    session.hear(phrase(0.0, SCALE))
    session.advance(4.0)
    session.close(4.0)
    assert not session.sounding


def test_factory():
    performer = build_performer(load(DaemonConfig, None, ["performer.kind='markov'", "seed=0"]))
    assert isinstance(performer, Performer) and isinstance(performer, MarkovPerformer)
    with pytest.raises(ConfigError):
        load(DaemonConfig, None, ["performer.kind='nope'"])


# --- robustness ------------------------------------------------------------------------------------

human_input = st.lists(
    st.tuples(st.floats(0.0, 0.8), st.integers(0, 127), st.sampled_from([0, 0, 1, 64, 127]),
              st.sampled_from(["note", "note", "note", "cc"])),
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(human_input, st.integers(0, 3))
def test_garbage_input_never_crashes_and_leaves_nothing_sounding(stream, seed):
    session = Session(MarkovPerformer(replace(CONFIG, max_note_s=1.0), seed))
    t = 0.0
    for gap, number, value, kind in stream:
        t += gap
        if kind == "cc":
            session.control(number if number % 2 else CONFIG.phrase_end_cc, value, t)
        else:
            session.hear([TimedNote(t, 0, number, value)])  # offs without ons, repeated ons
    session.advance(t + 20.0)
    session.close(t + 20.0)
    assert not session.sounding


# --- beats ------------------------------------------------------------------------------------------

def test_with_a_beat_map_the_answer_lands_on_its_tick_lattice_and_knows_the_bar():
    grid = BeatGrid([0.6 * i for i in range(200)])  # 100 bpm, 4/4: a tick (1/12 beat) is 50 ms
    performer = MarkovPerformer(CONFIG, 1)
    performer.set_beats(grid)
    session = Session(performer)
    session.hear(phrase(0.0, SCALE, step=0.3, length=0.15))  # 8ths
    session.advance(10.0)
    ons = [n for n in session.played if n.velocity > 0]
    assert len(ons) >= 4
    ticks = [grid.beat_at(n.time) * 12 for n in ons]
    assert all(abs(t - round(t)) < 1e-6 for t in ticks)  # free time would put them anywhere
    assert performer.model.context_state()[5] != Vocab().pos_unknown  # the bar position was known


def test_set_beats_none_is_free_time():
    performer = MarkovPerformer(CONFIG, 1)
    performer.set_beats(BeatGrid([0.6 * i for i in range(200)]))
    performer.set_beats(None)
    session = Session(performer)
    session.hear(phrase(0.0, SCALE))
    session.advance(10.0)
    assert any(n.velocity > 0 for n in session.played)
    assert performer.model.context_state()[5] == Vocab().pos_unknown
