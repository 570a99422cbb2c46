"""The heard-chord reader on hand-made chords: triads in root position and inversions, sevenths, a
melody note on top, a staccato left hand; too few notes and an empty reader read nothing."""
from __future__ import annotations

import pytest

from livejam.harmony import HeardChords, chord_name


def read(pitches, min_pcs: int = 3) -> tuple[str, float]:
    heard = HeardChords(min_pcs)
    for p in pitches:
        heard.note_on(p, 1.0)
    cid, confidence = heard.read(1.0)
    return chord_name(cid), confidence


@pytest.mark.parametrize("pitches, chord", [
    ((60, 64, 67), "C:maj"), ((64, 67, 72), "C:maj"), ((67, 72, 76), "C:maj"),  # root position, inversions
    ((57, 60, 64), "A:min"), ((64, 69, 72), "A:min"), ((59, 62, 65), "B:dim"),
    ((48, 55, 64, 72), "C:maj"),  # open voicing, doubled root
    ((60, 64, 67, 70), "C:7"), ((57, 60, 64, 67), "A:min7"), ((53, 57, 60, 64), "F:maj7"),
    ((43, 53, 59, 62), "G:7"), ((50, 60, 65, 69), "D:min7"),  # spread sevenths
])
def test_triads_inversions_and_sevenths(pitches, chord):
    name, confidence = read(pitches)
    assert name == chord and confidence == 1.0


def test_a_melody_note_on_top_still_reads_the_chord():
    assert read((60, 64, 67, 74))[0] == "C:maj"  # C-E-G and D5: not Gsus4, not Csus2
    name, confidence = read((48, 52, 55, 86))  # a left hand and a melody note two octaves up
    assert name == "C:maj" and 0.8 < confidence < 1.0
    assert read((45, 52, 60, 77))[0] == "A:min"  # A-E-C under F5: the bass says A, not F
    assert read((48, 52, 55, 62))[1] < read((48, 52, 55, 86))[1] < 1.0  # the far melody weighs less


def test_too_few_pitch_classes_and_an_empty_reader_read_nothing():
    assert read(()) == ("N", 0.0)
    assert read((60, 67)) == ("N", 0.0)  # two notes
    assert read((48, 60, 67, 72)) == ("N", 0.0)  # four notes, two pitch classes
    assert read((60, 64, 67), min_pcs=4) == ("N", 0.0)
    assert read((60, 67), min_pcs=2)[0] != "N"


def test_released_notes_linger_briefly_then_the_chord_follows_the_hands():
    heard = HeardChords()
    for p in (48, 52, 55):  # a staccato left hand: pressed and released at once
        heard.note_on(p, 0.0)
        heard.note_off(p, 0.05)
    assert chord_name(heard.read(0.15)[0]) == "C:maj"
    assert heard.read(0.5) == (0, 0.0)  # gone after the linger
    for p in (53, 57, 60):
        heard.note_on(p, 1.0)
    assert chord_name(heard.read(1.0)[0]) == "F:maj"
    for p in (53, 57, 60):
        heard.note_off(p, 1.5)
    for p in (55, 59, 62):
        heard.note_on(p, 1.55)
    assert chord_name(heard.read(1.6)[0]) != "G:maj"  # F's tones still linger within 0.15 s ...
    assert chord_name(heard.read(1.8)[0]) == "G:maj"  # ... then only G sounds
    heard.note_off(99, 2.0)  # a note-off of a key never pressed: nothing breaks
    heard.reset()
    assert heard.read() == (0, 0.0)
