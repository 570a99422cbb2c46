"""Events: MIDI <-> events round trip keeps every note within the dt bins' resolution."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from livejam.events import EventCoder, Note, TimedNote, Vocab, events_to_notes, notes_to_events, notes_to_timed, \
    read_midi_tracks, write_midi

VOCAB = Vocab()


def half_bin(seconds: float) -> float:
    """Half the width of the dt bin around a duration: the bound on quantisation error."""
    ms = np.asarray(VOCAB.dt_ms, float)
    i = VOCAB.dt_bin(seconds)
    lo = ms[i] - ms[i - 1] if i > 0 else 0.0
    hi = ms[i + 1] - ms[i] if i + 1 < len(ms) else lo
    return max(lo, hi) / 2000.0


def non_overlapping_notes(rng: np.random.Generator, n: int) -> list[Note]:
    """Random notes with gaps shorter than the last bin; same-pitch notes of a part never overlap."""
    notes, busy = [], {}
    t = 0.0
    for _ in range(n):
        t += float(rng.choice([0.0, rng.uniform(0.0, 0.1), rng.uniform(0.1, 1.0), rng.uniform(1.0, 3.0)]))
        part, pitch = int(rng.integers(0, 2)), int(rng.integers(30, 90))
        if busy.get((part, pitch), -1.0) >= t:
            continue
        end = t + float(rng.uniform(0.01, 2.0))
        busy[(part, pitch)] = end
        notes.append(Note(t, end, pitch, int(rng.integers(1, 128)), part))
    return notes


def test_round_trip_keeps_every_note_within_bin_resolution():
    rng = np.random.default_rng(0)
    for _ in range(20):
        notes = non_overlapping_notes(rng, 200)
        back = events_to_notes(notes_to_events(notes, VOCAB), VOCAB, start_time=notes[0].start)
        assert len(back) == len(notes)
        key = lambda n: (n.part, n.pitch, n.start)  # noqa: E731
        for a, b in zip(sorted(notes, key=key), sorted(back, key=key)):
            assert (a.part, a.pitch) == (b.part, b.pitch)
            # cumulative quantisation: each event within half of the widest bin (50 ms above 1 s)
            assert abs(a.start - b.start) <= 0.050 + 1e-9
            assert abs(a.end - b.end) <= 0.050 + 1e-9
            assert abs(a.velocity - b.velocity) <= 2


def test_no_drift_over_a_long_fast_sequence():
    notes = [Note(i * 0.1234, i * 0.1234 + 0.05, 60 + i % 12, 80) for i in range(2000)]
    back = events_to_notes(notes_to_events(notes, VOCAB), VOCAB)
    # 10 ms bins around 123 ms: error stays within 5 ms after 2000 notes, no accumulation
    assert max(abs(a.start - b.start) for a, b in zip(notes, back)) <= 0.005 + 1e-9


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 20), st.floats(0, 3), st.integers(0, 127), st.integers(1, 127),
                          st.integers(0, 1)), max_size=80))
def test_any_notes_give_valid_balanced_tokens(raw):
    notes = [Note(s, s + d, p, v, part) for s, d, p, v, part in raw]
    events = notes_to_events(notes, VOCAB)
    sizes = VOCAB.field_sizes
    assert all((events[:, k] >= 0).all() and (events[:, k] < sizes[k]).all() for k in range(4))
    sounding = set()
    for part, _, pitch, vel in events[1:]:
        if vel > 0:
            assert (part, pitch) not in sounding
            sounding.add((part, pitch))
        else:
            assert (part, pitch) in sounding
            sounding.remove((part, pitch))
    assert not sounding  # every note-on has its note-off


def test_coder_resyncs_after_a_long_rest():
    coder = EventCoder(VOCAB, 0.0)
    coder.encode(TimedNote(10.0, 0, 60, 90))  # 10 s rest: clipped to the last bin
    token = coder.encode(TimedNote(10.5, 0, 60, 0))
    assert VOCAB.dt_seconds(token[1]) == 0.5


def test_restrike_ends_the_sounding_note_first():
    timed = notes_to_timed([Note(0.0, 1.0, 60, 90), Note(0.5, 0.7, 60, 80)])
    assert [(t.time, t.velocity) for t in timed] == [(0.0, 90), (0.5, 0), (0.5, 80), (0.7, 0)]


def test_midi_file_round_trip(tmp_path):
    melody = [Note(0.0, 0.5, 72, 100), Note(0.5, 1.0, 74, 90)]
    piano = [Note(0.0, 1.0, 48, 70), Note(0.0, 1.0, 55, 70)]
    write_midi(tmp_path / "x.mid", [("human", melody), ("machine", piano)])
    tracks = dict(read_midi_tracks(tmp_path / "x.mid"))
    assert set(tracks) == {"human", "machine"}
    assert [(n.pitch, round(n.start, 3), round(n.end, 3)) for n in tracks["human"]] == [(72, 0.0, 0.5), (74, 0.5, 1.0)]
    assert len(tracks["machine"]) == 2
