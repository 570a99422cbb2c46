"""The musicianship measures (livejam.measure.music, livejam.measure.implied) on hand-made notes
whose values are worked out by hand, and tools.quality's table on a fake two-song POP909 folder
(rows that need no model). No torch, no JACK."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from livejam.beatmap import BeatGrid
from livejam.events import Note
from livejam.harmony import chord_id, parse_chord
from livejam.measure import implied as im
from livejam.measure import music as mu

C, A_MIN, F = parse_chord("C:maj"), parse_chord("A:min"), parse_chord("F:maj")


def n(start, end, pitch):
    return Note(start, end, pitch, 80)


def test_clash_and_tritone_time():
    machine = [n(0, 2, 60)]  # a C held 2 s
    melody = [n(0, 1, 73), n(1, 1.5, 66)]  # C# a 9th up (class 1), then F# (the tritone), then a rest
    out = mu.clash_time(machine, melody, 0, 4)
    assert out["both_s"] == pytest.approx(1.5)  # both sound 0..1.5
    assert out["clash_time"] == pytest.approx(1.0 / 1.5)
    assert out["tritone_time"] == pytest.approx(0.5 / 1.5)
    assert mu.clash_time(machine, [n(3, 4, 61)], 0, 4)["clash_time"] is None  # never together


def test_clash_time_major_seventh_any_octave_and_window():
    machine = [n(0, 4, 48)]  # C3
    melody = [n(1, 3, 83)]  # B5: a major 7th two octaves up, class 1
    assert mu.clash_time(machine, melody, 2, 10)["clash_time"] == pytest.approx(1.0)
    assert mu.clash_time(machine, melody, 2, 10)["both_s"] == pytest.approx(1.0)  # cut at the window


def test_onset_clash_both_ways():
    machine = [n(0, 2, 60), n(1.5, 2, 67)]
    melody = [n(0, 1, 73), n(1, 1.5, 66), n(1.5, 2, 68)]  # C# on the held C, F# (tritone), Ab on G
    out = mu.onset_clash(machine, melody, 0, 4)
    assert out["onset_clash"] == pytest.approx(2 / 3)  # C# against C, Ab against G struck with it
    assert out["machine_onset_clash"] == pytest.approx(1.0)  # C against C#, G against Ab


def test_voices_and_single_line():
    triad = [n(0, 2, 60), n(0, 2, 64), n(0, 2, 67)]
    assert mu.voices(triad, 0, 10) == pytest.approx(3.0)  # the silence after 2 s does not count
    assert mu.voices(triad + [n(1, 2, 71)], 0, 10) == pytest.approx(3.5)  # 3 voices 1 s, 4 voices 1 s
    line = [n(0, 1, 60), n(1, 2, 62), n(1.5, 2, 55)]  # one note 1.5 s, two 0.5 s
    assert mu.single_line(line, 0, 10) == pytest.approx(0.75)
    assert mu.voices([], 0, 10) is None


def test_note_lengths_and_cap():
    notes = [n(0, 0.5, 60), n(1, 2, 62), n(2, 6, 64), n(3, 6.995, 65), n(20, 21, 60)]  # the last is outside
    out = mu.note_lengths(notes, 0, 10, max_note_s=4.0)
    assert out["median_note_s"] == pytest.approx((1 + 3.995) / 2)
    assert out["capped_share"] == pytest.approx(0.5)


def test_carried_across_a_change():
    chords = [(0, 2, C), (2, 4, F), (4, 6, F)]  # one change (F to F is none)
    machine = [n(0, 3, 60),  # C held into F: carried, a tone of F (F-A-C)
               n(0, 2.5, 64),  # E held into F: carried, not a tone of F
               n(0, 2.04, 67),  # G let go within 50 ms of the change: not carried
               n(1.97, 3, 69)]  # A struck a hair early for the change: not carried
    out = mu.carried(machine, chords, 0, 6)
    assert out["changes"] == 1
    assert out["carried"] == pytest.approx(2.0)
    assert out["carried_wrong"] == pytest.approx(0.5)
    # N to a chord, a gap (N) and into N are no changes
    assert mu.chord_changes([(0, 1, 0), (1, 2, F), (2, 3, C), (3.5, 4, F), (4, 5, 0)], 0, 10) == [(2, C)]


def test_notes_per_s_over_the_window_and_chord_tone_and_grid():
    notes = [n(0, 1, 60), n(0.5, 1, 61), n(3.9, 4, 64), n(5, 6, 60)]
    assert mu.notes_per_s(notes, 0, 4) == pytest.approx(3 / 4)
    assert mu.chord_tone(notes, [(0, 4, C)], 0, 4) == pytest.approx(2 / 3)  # C#: not a tone
    beats = BeatGrid([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    grid = [n(0.25, 1, 60), n(0.52, 1, 60), n(0.6, 1, 60)]  # on a 16th, 20 ms off, 100 ms off
    assert mu.on_grid(grid, beats, 0, 4) == pytest.approx(2 / 3)


def test_best_chord_templates():
    w = np.zeros(12)
    w[[0, 4, 7]] = 1.0
    assert im.best_chord(w) == C  # C-E-G: C major, the penalty keeps it from Cmaj7 and Am7
    # by hand: maj 3 - 0 - 0.05*3*3 = 2.55; maj7 3 - 0 - 0.05*3*4 = 2.4; A:min7 the same 2.4
    w[9] = 1.0
    assert im.best_chord(w) == parse_chord("A:min7")  # A-C-E-G: 4 - 0.8 = 3.2 against C 3 - 1 - 0.6
    assert im.best_chord(np.zeros(12)) == 0


def test_implied_root_per_beat():
    beats = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    chords = [(0, 2, C), (2, 4, A_MIN), (4, 5, 0)]
    machine = [n(0, 1.5, 60), n(0, 1.5, 64), n(0, 1.5, 67),  # C-E-G over beats 0 and half of 1
               n(2.5, 3, 69), n(2.5, 3, 60), n(2.5, 3, 64),  # A-C-E in beat 2
               n(4, 5, 62)]  # beat 4 is N: not scored; beat 3 is silent: not scored
    rows = im.implied(machine, chords, beats, 0, 5)
    assert [g for _, g, _ in rows] == [C, C, A_MIN, 0, parse_chord("D:maj")]
    assert im.root_right(rows) == pytest.approx(1.0)  # beats 0, 1, 2
    assert im.implied_root(machine, [(0, 4, C)], beats, 0, 4) == pytest.approx(2 / 3)


def test_baselines():
    beats = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    chords = [(0, 2, C), (2, 4, A_MIN)]
    keys = [(0, 10, (0, False))]  # C major
    assert im.root_right(im.tonic_guess(keys, chords, beats, 0, 4)) == pytest.approx(0.5)
    # late1: beat 0 has no beat before (not scored), beat 1 C right, beat 2 C wrong, beat 3 Am right
    assert im.root_right(im.late1_guess(chords, beats, 0, 4)) == pytest.approx(2 / 3)
    # reader2: C and E in beat 0 -> C at beats 1 and 2 (C-E ties Am; C comes first), kept through
    # the silence at beat 3: right at beat 1 only
    melody = [n(0, 0.5, 72), n(0.5, 1, 76)]
    assert [g for _, g, _ in im.reader2_guess(melody, chords, beats, 0, 4)] == [0, C, C, C]
    assert im.root_right(im.reader2_guess(melody, chords, beats, 0, 4)) == pytest.approx(1 / 3)


def test_memory_split():
    # 24 beats, one a second: the roots C C G G A A F F twice, then 8 beats never heard before
    prog = [C, C, chord_id(7, 0), chord_id(7, 0), A_MIN, A_MIN, F, F]
    other = [parse_chord("D:min")] * 8
    annotated = prog + prog + other
    guessed = prog + prog + [C] * 8  # right through the progression, wrong after it
    rows = [(float(i), g, a) for i, (g, a) in enumerate(zip(guessed, annotated))]
    out = im.memory(rows, lo=0.0, from_s=8.0)
    # scored from beat 8: beats 8..14 end windows that overlap the first time through (new), beat
    # 15 ends the whole progression again (seen), beats 16..23 end windows never heard (new)
    assert out["memory_beats_seen"] == 1 and out["memory_seen"] == pytest.approx(1.0)
    assert out["memory_beats_new"] == 15 and out["memory_new"] == pytest.approx(7 / 15)
    assert out["memory_gain"] == pytest.approx(8 / 15)


# --- the driver on a fake POP909 folder ---------------------------------------------------------
LOOP = (("C:maj", (48, 52, 55)), ("A:min", (45, 48, 52)), ("F:maj", (41, 45, 48)), ("G:maj", (43, 47, 50)))


@pytest.fixture
def pop909(tmp_path) -> Path:
    """Two songs at 100 bpm: a bar each of C, Am, F, G, looped; the PIANO holds each bar's triad,
    the MELODY plays quarter notes of the chord's root two octaves up and rests in the G bars; key
    C major."""
    from livejam.midi.files import write_midi

    beat = 0.6
    beats = 0.25 + beat * np.arange(48)
    for s in ("001", "002"):
        song = tmp_path / s
        song.mkdir()
        (song / "beat_midi.txt").write_text("".join(f"{t:.6f} 1.0 {1.0 if i % 4 == 0 else 0.0}\n"
                                                    for i, t in enumerate(beats)))
        (song / "chord_midi.txt").write_text("".join(f"{beats[i]:.6f}\t{beats[i + 4]:.6f}\t{LOOP[i // 4 % 4][0]}\n"
                                                     for i in range(0, 44, 4)))
        (song / "key_audio.txt").write_text(f"0.0\t{beats[-1]:.6f}\tC:maj\n")
        piano, melody = [], []
        for bar in range(11):
            t = float(beats[bar * 4])
            tones = LOOP[bar % 4][1]
            piano += [Note(t, t + 4 * beat - 0.05, p, 70) for p in tones]
            if bar % 4 != 3:  # the melody rests every fourth bar: three-bar phrases (calls)
                melody += [Note(t + k * beat, t + (k + 1) * beat, tones[0] + 24, 90) for k in range(4)]
        write_midi(song / f"{s}.mid", [("MELODY", melody), ("PIANO", piano)])
    return tmp_path


def test_quality_table_on_a_fake_folder(pop909, capsys):
    from tools import quality

    args = ["--songs", "001", "002", "--pop909", str(pop909), "--rows", "piano,random,tonic,reader2", "--seconds", "20"]
    assert quality.main(args) == 0
    text = capsys.readouterr().out
    assert "2 held-out POP909 songs" in text and "texture" in text and "harmony" in text
    for row in ("piano", "random", "tonic", "reader2"):
        assert f"\n{row} " in text
    assert quality.main([*args, "--json"]) == 0
    mean = json.loads(capsys.readouterr().out)["mean"]
    piano = mean["piano"]
    assert piano["chord_tone"] == pytest.approx(1.0) and piano["implied_root"] == pytest.approx(1.0)
    assert piano["voices"] == pytest.approx(3.0) and piano["clash_time"] == pytest.approx(0.0)
    assert piano["carried"] == pytest.approx(0.0)  # each triad ends 50 ms before the change
    assert piano["notes_per_s"] == pytest.approx(3 * 9 / 20)  # 9 bars start in [0.25, 20.25)
    # the window [0.25, 20.25) holds 34 beats: 8 whole bars and two beats of C; C in 10 of 34
    assert mean["tonic"]["implied_root"] == pytest.approx(10 / 34)
    assert 0.0 <= mean["reader2"]["implied_root"] <= 1.0  # worked by hand in test_baselines
    assert mean["random"]["notes"] == pytest.approx(3 * 9)


def test_best_chord_ties_go_to_the_sounding_root():
    w = np.zeros(12)
    w[[8, 3]] = 1.0  # Ab and Eb: Ab major and Eb sus4 cover both alike; the root that sounds is Ab's ... and Eb's
    assert im.best_chord(w) == parse_chord("Ab:maj")  # ... so the quality order decides: maj before sus4
    w = np.zeros(12)
    w[9] = 1.0  # a lone A: every chord holding A ties; A's own
    assert im.best_chord(w) == parse_chord("A:maj")
    w[[9, 0]] = (2.0, 1.0)  # A under C: A minor and F major tie (inside 3, 0.05*3*3); A sounds more
    assert im.best_chord(w) == parse_chord("A:min")


def test_calls_and_an_answer(pop909):
    from livejam.config import DaemonConfig
    from tools.quality_song import Song

    song = Song(pop909 / "001", 0.0)
    calls = song.calls()
    assert [round(c[0].start, 2) for c in calls] == [0.25, 9.85, 19.45]  # bars 0-2, 4-6, 8-10
    assert all(max(n.end for n in c) - c[0].start == pytest.approx(7.2) for c in calls)
    # an answer to the first call (it ends in the F bar): G, then F with 0.5 s of overlap, 3.7 s in all
    answer = [n(8.0, 9.5, 67), n(9.0, 11.7, 65)]
    out = song.score_call(calls[0], answer, DaemonConfig())
    assert out["length_ratio"] == pytest.approx(3.7 / 7.2) and out["length_ok"] == 1.0  # 3.7 s >= 0.5 x 7.2 s
    assert song.score_call(calls[0], answer[:1], DaemonConfig())["length_ok"] == 0.0  # 1.5 s: too short
    assert out["single_line"] == pytest.approx(3.2 / 3.7)
    assert out["last_chord_tone"] == 1.0 and out["last_tonic"] == 0.0  # F: in F major, not C
    assert song.score_call(calls[0], [], DaemonConfig())["answered"] == 0.0
