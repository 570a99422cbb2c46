"""The chord keeper: one precedence (chart > heard > predicted), a listening cold start, slots that
hold, and the memory of the song's progression. A fake predictor stands in for the model."""
import numpy as np

from livejam.chart import ChordChart
from livejam.beatmap import BeatGrid
from livejam.config import ChordConfig
from livejam.harmony import N_CHORDS, NO_CHORD, chord_id
from livejam.performers.chords import ChordKeeper, tonic_chord
from livejam.performers.memory import MAX_SLOTS, ProgressionMemory

C, F, G, AM = chord_id(0, 0), chord_id(5, 0), chord_id(7, 0), chord_id(9, 1)
GRID = BeatGrid([0.5 * i for i in range(400)])  # 120 bpm, 4/4, beat 0 at t = 0


def leaning_to(chord, nats=3.0):
    logp = np.full(N_CHORDS, -10.0)
    logp[chord] = -10.0 + nats
    return logp


class Predictor:
    def __init__(self, chord):
        self.chord, self.calls = chord, []

    def __call__(self, t):
        self.calls.append(t)
        return leaning_to(self.chord)


def test_cold_start_listens_before_committing_a_prediction():
    k = ChordKeeper(ChordConfig(listen_beats=2.0, slot_beats=1.0))
    predict = Predictor(F)
    assert k.at(0.0, GRID, "C:major", predict) == C and k.source == "listening"  # nothing heard: the tonic
    k.hear(64, 90, 0.0, GRID)
    assert k.at(0.9, GRID, "C:major", predict) == C and k.source == "listening" and not predict.calls
    assert k.at(0.9, GRID, None, predict) == NO_CHORD  # no key: no chord, only safe notes
    assert k.at(1.0, GRID, "C:major", predict) == F and k.source == "predicted"  # two beats heard
    assert tonic_chord("A:minor") == AM


def test_a_slot_holds_its_chord_once_it_began_and_is_predicted_again_before():
    k = ChordKeeper(ChordConfig(listen_beats=0.0, slot_beats=2.0, memory=False, heard=False))  # a melody only
    k.hear(60, 90, 0.0, GRID)
    predict = Predictor(F)
    assert k.at(0.8, GRID, None, predict, now=0.5) == F  # slot 0 (beats 0-2, 0-1 s): begun, so committed
    predict.chord = G
    k.hear(62, 90, 0.6, GRID)
    assert k.at(0.9, GRID, None, predict, now=0.7) == F  # more melody, but the slot began: it holds
    assert k.at(1.1, GRID, None, predict, now=0.8) == G  # the next slot (from 1.0 s) is still ahead
    predict.chord = AM
    k.hear(64, 90, 0.9, GRID)
    assert k.at(1.1, GRID, None, predict, now=0.9) == AM  # ... so new melody may change it
    predict.chord = C
    k.hear(65, 90, 1.05, GRID)
    assert k.at(1.2, GRID, None, predict, now=1.05) == AM  # from its start on it holds


def test_precedence_chart_then_heard_then_predicted():
    k = ChordKeeper(ChordConfig(listen_beats=0.0))
    k.hear(72, 90, 0.0, GRID)
    predict = Predictor(G)
    assert k.at(0.1, GRID, None, predict) == G and k.source == "predicted"
    for pitch in (57, 60, 64):  # the human plays A minor under the melody
        k.hear(pitch, 80, 0.2, GRID)
    assert k.at(0.3, GRID, None, predict) == AM and k.source == "heard"
    assert k.context_chord() == AM  # a heard chord goes into the context; a predicted one does not
    k.set_chart(ChordChart.parse("F C"))
    assert k.at(0.3, GRID, None, predict) == F and k.source == "chart"
    assert k.at(2.1, GRID, None, predict) == C  # the second bar
    assert k.at(4.1, GRID, None, predict) == F  # the loop
    k.set_chart(None)
    for pitch in (57, 60, 64):
        k.hear(pitch, 0, 0.4, GRID)
    assert k.at(5.0, GRID, None, predict) == G and k.source == "predicted" and k.context_chord() == NO_CHORD


def test_the_memory_recalls_a_repeated_sections_chords():
    """A section whose melody comes back gets the chords its first time ended up with, even where
    the prediction alone leans elsewhere."""
    mem = ProgressionMemory()
    melody = {0: (60, 64, 67), 1: (65, 69, 72), 2: (67, 71, 74), 3: (60, 64, 67)}  # C F G C, two beats each
    chords = {0: C, 1: F, 2: G, 3: C}
    for rep in range(2):
        for slot in range(4):
            s = rep * 4 + slot
            logp = leaning_to(chords[slot]) if rep == 0 else leaning_to(AM, nats=1.0)  # the 2nd time: unsure, wrong
            out = mem.adjust(logp, s * 2.0, 2.0)
            if rep == 1 and slot >= 2:  # two slots of the repeat heard: the memory knows where it is
                assert int(np.argmax(out)) == chords[slot], slot
            for pitch in melody[slot]:
                mem.note(s * 2.0 + 0.5, pitch)
    assert mem.recalls >= 2


def test_the_memory_recalls_nothing_for_new_material():
    mem = ProgressionMemory()
    rng = np.random.default_rng(0)
    for s in range(12):
        logp = leaning_to(AM)
        assert int(np.argmax(mem.adjust(logp, s * 2.0, 2.0))) == AM
        for pitch in rng.integers(48, 84, 3):
            mem.note(s * 2.0 + 0.5, int(pitch) if s % 2 else 61 + s)


def test_a_release_falls_on_the_change_not_before_it():
    """Notes that leave the coming chord end where it begins (the start of its slot), never at `now`
    when the change is still ahead: ending them early let the next note be struck in the old chord
    and released again, over and over at one instant."""
    from livejam.events import TimedNote
    from livejam.performers.output import MachineNotes
    from livejam.performers.texture import release_off_chord

    sent: list[TimedNote] = []
    notes = MachineNotes(sent.append)
    notes.start(1, 60, 0.55, 80, C)  # C, struck in C major, 0.05 s before a half-beat change (0.75 s)
    notes.start(1, 64, 0.55, 80, C)  # E: a tone of A minor, it stays
    assert release_off_chord(notes, AM, GRID, now=0.72, ahead=0.77, last_event=0.55, slot_beats=0.5) == []
    notes.start(1, 67, 0.7, 80, C)  # G is not: C is a tone of A minor, and E
    ended = release_off_chord(notes, AM, GRID, now=0.72, ahead=0.77, last_event=0.7, slot_beats=0.5)
    assert ended == [(1, 67, 0.75)] and sent[-1] == TimedNote(0.75, 1, 67, 0)
    assert (1, 64) in notes.sounding and (1, 60) in notes.sounding


def test_a_note_never_ends_at_its_own_start():
    """An end at the very instant a note began would reach the wire first and leave it stuck: it
    comes at least the minimum note length later."""
    from livejam.events import TimedNote
    from livejam.performers.output import MachineNotes

    sent: list[TimedNote] = []
    notes = MachineNotes(sent.append, min_note_s=0.03)
    notes.start(1, 60, 1.0, 80, C)
    assert notes.end(1, 60, 1.0) == 1.03 and sent[-1] == TimedNote(1.03, 1, 60, 0)
    assert notes.end(1, 60, 2.0) is None  # not sounding: nothing
    notes.start(1, 62, 1.0, 80, C)
    assert notes.close(0.5) == [TimedNote(1.03, 1, 62, 0)]


def test_an_answer_is_as_long_as_its_call_in_its_voices_and_ends_on_the_calls_last_tones():
    from livejam.config import PerformerConfig
    from livejam.performers.base import Phrase
    from livejam.performers.call import CallPhrasing

    call = CallPhrasing(PerformerConfig(answer_length_ratio=1.0, min_answer_s=1.0, max_answer_s=10.0))
    for pitch in (60, 62, 64, 67):  # a line: one note at a time
        call.hear(pitch, 90)
        call.hear(pitch, 0)
    end = call.answer(5.0, Phrase(1.0, 4.0, 4))
    assert end == 8.0 and call.voices == 1 and call.cadence_pcs == (4, 7)
    assert not call.in_cadence(6.0, end, 120.0) and call.in_cadence(7.1, end, 120.0)  # the last 2 beats
    for pitch in (48, 52, 55):  # a chord
        call.hear(pitch, 90)
    assert call.answer(9.0, Phrase(8.0, 8.2, 3)) == 10.0 and call.voices == 3  # at least min_answer_s


def test_lean_pcs_replace_the_chords_tones():
    from livejam.engine.sampling import Constraints, EventSampler, NoteTracker
    from livejam.events import Vocab

    class OneStep:  # a fake engine: flat logits, a note-on of the machine's part
        def logits(self, k, cond=None):
            sizes = Vocab().head_sizes
            out = np.zeros(sizes[k], np.float32)
            if k == 0:
                out[:] = -30.0
                out[1] = 0.0
            return out

    v = Vocab()
    sampler, notes, rng = EventSampler(v), NoteTracker(v), np.random.default_rng(0)
    c = Constraints(temperature=1.0, harmony=3.0, lean_pcs=(4, 7), pitch_range=(48, 72))
    pitches = [int(sampler.sample(OneStep(), c, notes, rng, chord_for=lambda dt: C)[3]) for _ in range(200)]
    assert sum(p % 12 in (4, 7) for p in pitches) >= 190  # E and G, not C major's C


def test_the_progression_memory_forgets_its_oldest_slots_in_a_long_session():
    """Issue 20: a session of hours must not grow the memory (nor the search every prediction runs)."""
    memory = ProgressionMemory()
    logp = np.zeros(len(memory._tones))
    for slot in range(3 * MAX_SLOTS):
        memory.note(slot * 2.0, 60 + slot % 12)
        memory.adjust(logp, slot * 2.0, 2.0)
    assert len(memory.pcs) == len(memory.predicted) == MAX_SLOTS
    assert min(memory.pcs) == min(memory.predicted) == 2 * MAX_SLOTS  # the newest kept
