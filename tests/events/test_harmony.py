"""Chord vocabulary: POP909 labels -> ids -> chord tones and names."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from livejam.harmony import N_CHORDS, QUALITIES, ChordTrack, chord_id, chord_name, chord_tones, parse_chord, \
    split_id, tone_table, transpose_ids

POP909 = Path(__file__).resolve().parents[3] / "shared" / "data" / "pop909"


def q(name: str) -> int:
    return QUALITIES.index(name)


@pytest.mark.parametrize("label, root, quality", [
    ("G:maj", 7, "maj"), ("E:min7", 4, "min7"), ("C:maj/3", 0, "maj"), ("Bb:sus4(b7)", 10, "7sus4"),
    ("C#:hdim7", 1, "hdim7"), ("Db:dim7", 1, "dim7"), ("F#:minmaj7/5", 6, "minmaj7"), ("Ab:aug", 8, "aug"),
    ("A:maj6", 9, "maj6"), ("D:min6/b3", 2, "min6"), ("Cb:maj", 11, "maj"),
    # qualities outside the list: the nearest listed one
    ("C:maj9", 0, "maj7"), ("G:9", 7, "7"), ("A:min11", 9, "min7"), ("F:maj(9)", 5, "maj"), ("E:min(b13)", 4, "min"),
])
def test_labels_parse_to_root_and_quality(label, root, quality):
    assert split_id(parse_chord(label)) == (root, q(quality))


@pytest.mark.parametrize("label", ["N", "X", "", "H:maj", "C:weird", "nonsense"])
def test_no_chord_and_unreadable_labels_are_n(label):
    assert parse_chord(label) == 0 and chord_tones(0) == frozenset() and chord_name(0) == "N"


def test_ids_cover_the_spec_range_and_names_round_trip():
    assert N_CHORDS == 181 and chord_id(11, len(QUALITIES) - 1) == 180
    for cid in range(N_CHORDS):
        assert parse_chord(chord_name(cid)) == cid


def test_chord_tones():
    assert chord_tones(parse_chord("C:maj")) == {0, 4, 7}
    assert chord_tones(parse_chord("A:min7")) == {9, 0, 4, 7}
    assert chord_tones(parse_chord("G:sus4(b7)")) == {7, 0, 2, 5}
    table = tone_table()
    assert table.shape == (N_CHORDS, 12) and not table[0].any()
    assert all(set(np.flatnonzero(table[c])) == chord_tones(c) for c in range(N_CHORDS))


def test_transpose_moves_roots_and_keeps_n():
    ids = np.array([0, parse_chord("C:maj"), parse_chord("B:min7"), parse_chord("F#:dim")])
    moved = transpose_ids(ids, 2)
    assert [chord_name(int(c)) for c in moved] == ["N", "D:maj", "C#:min7", "Ab:dim"]
    assert (transpose_ids(moved, -2) == ids).all()


def test_chord_track_from_file(tmp_path):
    path = tmp_path / "chord_midi.txt"
    path.write_text("0.05\t0.72\tN\n0.72\t2.0\tB:maj\n2.0\t3.5\tE:min7/b7\n")
    track = ChordTrack.from_file(path)
    assert track.at(0.0) == 0 and track.at(0.8) == parse_chord("B:maj")
    assert track.at(2.0) == parse_chord("E:min7") and track.at(3.5) == 0  # spans are [start, end)
    path.write_text("0.0\tabc\tC:maj\n")
    with pytest.raises(ValueError, match="chord_midi.txt:1"):
        ChordTrack.from_file(path)


@pytest.mark.skipif(not POP909.is_dir(), reason="POP909 not present")
def test_every_pop909_label_is_known():
    unknown = set()
    for path in sorted(POP909.glob("*/chord_midi.txt")):
        for line in path.read_text().splitlines():
            cols = line.split()
            if len(cols) >= 3 and cols[2] != "N" and parse_chord(cols[2]) == 0:
                unknown.add(cols[2])
    assert not unknown
