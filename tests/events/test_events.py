"""Events v2: notes <-> rows in beats through a BeatMap, chords, bar positions, tempo, parts."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livejam.beatmap import BeatGrid, FreeTime
from livejam.events import COLUMNS, FORMAT_VERSION, EventCoder, Note, TimedNote, Vocab, assign_parts, \
    events_to_notes, events_to_timed, lead_tracks, notes_to_events, notes_to_timed, part_variants
from livejam.midi.files import read_midi_tracks, write_midi
from livejam.harmony import ChordTrack, parse_chord

VOCAB = Vocab()
HALF_TICK = 0.5 / VOCAB.ticks_per_beat
PART, DT, CHORD, PITCH, VEL, POS, TEMPO = range(7)


def rubato_grid(n_beats: int, seed: int = 0, bpm: float = 100.0, start: float = 0.25) -> BeatGrid:
    """Beats with a wandering tempo (as a human-played click), 4/4 from the first beat."""
    rng = np.random.default_rng(seed)
    periods = 60.0 / bpm * np.exp(np.cumsum(rng.normal(0, 0.01, n_beats)))
    times = start + np.concatenate([[0.0], np.cumsum(periods[:-1])])
    return BeatGrid(times, [i % 4 == 0 for i in range(n_beats)])


def random_notes(rng: np.random.Generator, n: int, grid: BeatGrid | None, jitter: float = 0.02) -> list[Note]:
    """Notes near 16ths/triplets of the grid (or anywhere in free time), gaps below 8 beats."""
    notes, busy = [], {}
    beat = 0.0
    for _ in range(n):
        beat += float(rng.choice([0.0, 0.25, 1 / 3, 0.5, 1.0, 2.0, rng.uniform(0, 3)]))
        t = (grid.time_at(beat) if grid else 0.1 + beat * 0.5) + float(rng.normal(0, jitter))
        part, pitch = int(rng.integers(0, 2)), int(rng.integers(30, 90))
        if busy.get((part, pitch), -1.0) >= t:
            continue
        end = t + float(rng.uniform(0.05, 1.5))
        busy[(part, pitch)] = end
        notes.append(Note(max(0.0, t), end, pitch, int(rng.integers(1, 128)), part))
    return notes


def test_vocab_matches_the_spec():
    assert FORMAT_VERSION == 2
    assert COLUMNS == ("part", "dt", "chord", "pitch", "vel", "pos", "tempo")
    assert VOCAB.field_sizes == (3, 97, 181, 128, 33, 97, 33)
    assert VOCAB.head_sizes == (3, 97, 181, 128, 33) and VOCAB.cond_sizes == (3, 97, 97, 181, 128)
    assert VOCAB.bos_row(5) == (2, 0, 0, 0, 0, 96, 5)


def test_tempo_bins_are_log_spaced_and_clipped():
    assert VOCAB.tempo_bin(None) == 0 and VOCAB.tempo_bpm(0) is None
    assert VOCAB.tempo_bin(10) == 1 and VOCAB.tempo_bin(40) == 1 and VOCAB.tempo_bin(500) == 32
    bins = [VOCAB.tempo_bin(b) for b in np.geomspace(40, 239.9, 200)]
    assert bins == sorted(bins) and set(bins) == set(range(1, 33))
    assert all(VOCAB.tempo_bin(VOCAB.tempo_bpm(b)) == b for b in range(1, 33))


@pytest.mark.parametrize("seed", range(5))
def test_round_trip_on_a_beat_grid_within_half_a_tick(seed):
    rng = np.random.default_rng(seed)
    grid = rubato_grid(600, seed)
    notes = random_notes(rng, 300, grid)
    events = notes_to_events(notes, VOCAB, beats=grid)
    timed = notes_to_timed(notes)
    back = events_to_timed(events, VOCAB, beats=grid, start_time=timed[0].time)
    assert len(back) == len(timed)
    for a, b in zip(timed, back):
        assert (a.part, a.pitch, a.velocity > 0) == (b.part, b.pitch, b.velocity > 0)
        assert abs(grid.beat_at(a.time) - grid.beat_at(b.time)) <= HALF_TICK + 1e-9
    sizes = VOCAB.field_sizes
    assert all((events[:, k] >= 0).all() and (events[:, k] < sizes[k]).all() for k in range(7))


def test_no_drift_over_ten_minutes():
    # 16th-note triplets at a wandering ~100 bpm with 15 ms of human jitter: 10 minutes, ~5,000 notes
    grid = rubato_grid(1100, seed=3)
    rng = np.random.default_rng(1)
    beats = np.arange(0, 1000, 1 / 6)
    times = [grid.time_at(b) + rng.normal(0, 0.015) for b in beats]
    assert times[-1] - times[0] > 600
    notes = [Note(t, t + 0.05, 60 + i % 12, 80) for i, t in enumerate(times)]
    events = notes_to_events(notes, VOCAB, beats=grid)
    back = [n.start for n in events_to_notes(events, VOCAB, beats=grid, start_time=notes[0].start)]
    err = np.abs(np.array([grid.beat_at(t) for t in back]) - np.array([grid.beat_at(t) for t in times]))
    assert err.max() <= HALF_TICK + 1e-9
    assert abs(err[-100:].mean() - err[:100].mean()) < 0.01  # the end is as close as the start


def test_bar_position_and_tempo_on_a_grid():
    times = [0.25 + 0.5 * i for i in range(40)]  # 120 bpm, the first beat at 0.25 s
    down = [i in (0, 4, 8, 10, 14) for i in range(40)]  # a 2/4 bar at beats 8-9
    grid = BeatGrid(times, down)
    onsets = [0.25, 0.5, 0.625, 0.25 + 4 * 0.5 + 1 / 6, 0.25 + 9 * 0.5, 0.25 + 10 * 0.5]
    notes = [Note(t, t + 0.05, 60 + i, 90) for i, t in enumerate(onsets)]
    events = notes_to_events(notes, VOCAB, beats=grid)
    ons = events[1:][events[1:, VEL] > 0]
    # beat 0 -> 0; 0.5 -> 6 ticks; 0.75 -> 9; bar 2 beat 1/3 -> 4; the 2/4 bar's 2nd beat -> 12; next bar -> 0
    assert list(ons[:, POS]) == [0, 6, 9, 4, 12, 0]
    assert set(events[:, TEMPO]) == {VOCAB.tempo_bin(120.0)}
    coder = EventCoder(VOCAB, grid, 0.25)
    assert coder.next_pos(3) == 3 and coder.next_pos(48) == 0 and coder.next_pos(50) == 2


def test_bars_longer_than_eight_beats_have_no_position():
    grid = BeatGrid([0.5 * i for i in range(30)], [i % 10 == 0 for i in range(30)])  # 10/4
    events = notes_to_events([Note(0.0, 0.2, 60, 80), Note(1.0, 1.2, 62, 80)], VOCAB, beats=grid)
    assert (events[:, POS] == VOCAB.pos_unknown).all()


def test_free_time_encodes_in_nominal_beats():
    rng = np.random.default_rng(7)
    notes = random_notes(rng, 200, None)
    events = notes_to_events(notes, VOCAB)  # no map: free time from the first note
    assert (events[:, POS] == VOCAB.pos_unknown).all() and (events[:, TEMPO] == 0).all()
    assert events[0, PART] == VOCAB.bos_part
    back = events_to_notes(events, VOCAB, start_time=notes[0].start)
    key = lambda n: (n.part, n.pitch, n.start)  # noqa: E731
    nominal_tick = 60.0 / 120.0 / VOCAB.ticks_per_beat
    for a, b in zip(sorted(notes, key=key), sorted(back, key=key)):
        assert (a.part, a.pitch) == (b.part, b.pitch)
        assert abs(a.start - b.start) <= nominal_tick / 2 + 1e-9


def test_chord_field_round_trip():
    grid = BeatGrid([0.5 * i for i in range(64)], [i % 4 == 0 for i in range(64)])
    labels = ["C:maj", "A:min7", "F:maj/3", "G:sus4(b7)", "N", "E:hdim7"]
    chords = ChordTrack([(2.0 * i, 2.0 * (i + 1), parse_chord(lab)) for i, lab in enumerate(labels)])
    # one note per beat, played 10 ms early: the chord is read on the grid, so a note on a change gets the new chord
    notes = [Note(0.5 * i - 0.01 if i else 0.0, 0.5 * i + 0.3, 60 + i % 5, 80) for i in range(24)]
    events = notes_to_events(notes, VOCAB, beats=grid, chords=chords)
    ons = events[1:][events[1:, VEL] > 0]
    assert [int(c) for c in ons[:, CHORD]] == [parse_chord(labels[i // 4]) for i in range(24)]


def test_coder_resyncs_after_a_long_rest():
    grid = BeatGrid([0.5 * i for i in range(100)])
    coder = EventCoder(VOCAB, grid, 0.0)
    row = coder.encode(TimedNote(10.0, 0, 60, 90))  # 20 beats: clipped to 8, the coder jumps to the true beat
    assert row[DT] == VOCAB.max_dt_ticks
    assert coder.encode(TimedNote(10.25, 0, 60, 0))[DT] == 6
    assert coder.time == pytest.approx(10.25)


def test_decode_and_peek_agree():
    coder = EventCoder(VOCAB, FreeTime(1.0), 1.0)
    t = coder.peek_time(12)
    assert coder.decode((1, 12, 0, 64, 20)).time == pytest.approx(t) == pytest.approx(1.5)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 20), st.floats(0, 3), st.integers(0, 127), st.integers(1, 127),
                          st.integers(0, 1)), max_size=80))
def test_any_notes_give_valid_balanced_rows(raw):
    notes = [Note(s, s + d, p, v, part) for s, d, p, v, part in raw]
    events = notes_to_events(notes, VOCAB, beats=rubato_grid(60))
    sizes = VOCAB.field_sizes
    assert events.shape[1] == 7
    assert all((events[:, k] >= 0).all() and (events[:, k] < sizes[k]).all() for k in range(7))
    sounding = set()
    for part, _, _, pitch, vel, _, _ in events[1:]:
        if vel > 0:
            assert (part, pitch) not in sounding
            sounding.add((part, pitch))
        else:
            assert (part, pitch) in sounding
            sounding.remove((part, pitch))
    assert not sounding  # every note-on has its note-off


def test_restrike_ends_the_sounding_note_first():
    timed = notes_to_timed([Note(0.0, 1.0, 60, 90), Note(0.5, 0.7, 60, 80)])
    assert [(t.time, t.velocity) for t in timed] == [(0.0, 90), (0.5, 0), (0.5, 80), (0.7, 0)]


def test_parts_lead_by_name_else_highest_track():
    mel, bridge, piano = [Note(0, 1, 72, 90)], [Note(1, 2, 76, 90)], [Note(0, 2, 48, 70)]
    tracks = [("PIANO", piano), ("MELODY", mel), ("BRIDGE", bridge)]
    assert lead_tracks(tracks) == [1, 2]
    variants = part_variants(tracks)
    assert len(variants) == 4
    assert {(n.pitch, n.part) for n in variants[0]} == {(72, 0), (76, 0), (48, 1)}
    assert {(n.pitch, n.part) for n in variants[1]} == {(72, 1), (76, 1), (48, 0)}
    assert {n.part for n in variants[2]} == {0}
    assert {(n.pitch, n.part) for n in variants[3]} == {(72, 0), (76, 0)}  # the melody alone
    assert assign_parts(tracks) == variants[0]
    assert lead_tracks([("a", piano), ("b", mel)]) == [1]  # no names: the highest track leads
    solo = part_variants([("x", mel + piano)])
    assert [{(n.pitch, n.part) for n in v} for v in solo] == [{(72, 0), (48, 0)}, {(72, 0), (48, 1)}]


def test_midi_file_round_trip(tmp_path):
    melody = [Note(0.0, 0.5, 72, 100), Note(0.5, 1.0, 74, 90)]
    piano = [Note(0.0, 1.0, 48, 70), Note(0.0, 1.0, 55, 70)]
    write_midi(tmp_path / "x.mid", [("human", melody), ("machine", piano)])
    tracks = dict(read_midi_tracks(tmp_path / "x.mid"))
    assert set(tracks) == {"human", "machine"}
    assert [(n.pitch, round(n.start, 3), round(n.end, 3)) for n in tracks["human"]] == [(72, 0.0, 0.5), (74, 0.5, 1.0)]
    assert len(tracks["machine"]) == 2


def test_the_coder_follows_a_late_note_up_to_the_next_tick_never_back():
    """A note played 30 ms after its tick (held to its minimum length) moves the timeline to the next
    tick: the next event cannot be placed before the note that was just played (a duet once
    replayed one instant for ever when rounding to the nearest tick fell back behind it)."""
    from livejam.beatmap import BeatGrid

    coder = EventCoder(Vocab(), BeatGrid([0.6 * i for i in range(100)]), 12.0)  # 100 bpm: a tick is 50 ms
    assert coder.time == pytest.approx(12.0)
    coder.follow(12.03)
    assert coder.time >= 12.03 and coder.time == pytest.approx(12.05)
    coder.follow(12.01)  # earlier than where it is: stays
    assert coder.time == pytest.approx(12.05)
    coder.follow(12.05)  # on a tick: that tick
    assert coder.time == pytest.approx(12.05)
