"""Chord charts: text and files parsed to chord ids (bad input: one line naming the token), the chart
followed on a beat map (bar lines, a meter change, the loop, free time), POP909's seconds charts,
and `--chords` on the command line."""
from __future__ import annotations

from pathlib import Path

import pytest

from livejam.chart import ChordChart, chord_symbol, parse_symbol
from livejam.beatmap import BeatGrid, FreeTime
from livejam.harmony import QUALITIES, chord_id, parse_chord

POP909 = Path(__file__).resolve().parents[3] / "shared" / "data" / "pop909"
C, F, G, AM = chord_id(0, 0), chord_id(5, 0), chord_id(7, 0), chord_id(9, 1)


def q(name: str) -> int:
    return QUALITIES.index(name)


@pytest.mark.parametrize("symbol, root, quality", [
    ("Am", 9, "min"), ("A:min", 9, "min"), ("C7", 0, "7"), ("Cmaj7", 0, "maj7"), ("CM7", 0, "maj7"),
    ("Dm7", 2, "min7"), ("Bb", 10, "maj"), ("F#m7b5", 6, "hdim7"), ("Gsus4", 7, "sus4"), ("Gsus", 7, "sus4"),
    ("C/E", 0, "maj"), ("Caug", 0, "aug"), ("C+", 0, "aug"), ("Bdim", 11, "dim"), ("Bdim7", 11, "dim7"),
    ("Ebm", 3, "min"), ("C#m", 1, "min"), ("Am/G", 9, "min"), ("C6", 0, "maj6"), ("G7b9", 7, "7"),
    ("D9", 2, "7"), ("Cmaj7#11", 0, "maj7"), ("E:min7/b7", 4, "min7"), ("Bb:sus4(b7)", 10, "7sus4"),
    ("am", 9, "min"), ("C-7", 0, "min7"), ("CmM7", 0, "minmaj7"),
])
def test_symbols_in_common_spellings(symbol, root, quality):
    assert parse_symbol(symbol) == chord_id(root, q(quality))


@pytest.mark.parametrize("symbol", ["N", "-", "NC", "N.C."])
def test_no_chord(symbol):
    assert parse_symbol(symbol) == 0


@pytest.mark.parametrize("symbol", ["Hm", "C/X", "Cfoo", "7", "", "C:weird"])
def test_not_symbols(symbol):
    assert parse_symbol(symbol) is None


def test_every_chord_id_is_written_as_a_symbol_that_reads_back():
    for cid in range(0, 181):
        assert parse_symbol(chord_symbol(cid)) == cid


def test_text_charts():
    chart = ChordChart.parse("Am F C G")
    assert chart.chords == (AM, F, C, G) and chart.beats == (None,) * 4 and not chart.seconds
    chart = ChordChart.parse("| Am:2 F:2 | C:4 |\n# a comment\nG  # and one after\nN:1.5 -")
    assert chart.chords == (AM, F, C, G, 0, 0)
    assert chart.beats == (2.0, 2.0, 4.0, None, 1.5, None)
    assert chart.text == "Am:2 F:2 C:4 G N:1.5 N" and str(chart) == chart.text
    assert ChordChart.parse(chart.text) == chart
    assert ChordChart.parse("C:7").beats == (7.0,)  # a number after the last colon is a length in beats
    assert ChordChart.parse("F#m7b5 B7 Em").chords[0] == chord_id(6, q("hdim7"))  # '#' inside a word is no comment


@pytest.mark.parametrize("text, message", [
    ("Am F Hm G", '"Hm" at position 3 is not a chord (try Am, C7, F#m7b5, N)'),
    ("| Am | Foo7 |", '"Foo7" at position 2 is not a chord'),
    ("Am:0 F", '"Am:0" at position 1: the length must be a number of beats > 0'),
    ("Am:-2", '"Am:-2" at position 1'),
    ("", "no chords"),
    ("# only a comment\n\n", "no chords"),
])
def test_bad_charts_are_one_clear_line(text, message):
    with pytest.raises(ValueError) as e:
        ChordChart.parse(text)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_files_name_the_bad_line(tmp_path):
    path = tmp_path / "song.chords"
    path.write_text("# verse\nAm F C G\n# chorus\nF G Cmaj7 |\n")
    chart = ChordChart.load(str(path))
    assert chart.chords == (AM, F, C, G, F, G, chord_id(0, q("maj7"))) and chart.name == str(path)
    path.write_text("Am F\nC Hm\n")
    with pytest.raises(ValueError, match=r'song\.chords:2: "Hm" at position 4 is not a chord'):
        ChordChart.load(str(path))
    with pytest.raises(ValueError, match="no such chart file"):
        ChordChart.load(str(tmp_path / "missing.txt"))
    assert ChordChart.load("Am F").chords == (AM, F)  # not a file: the text itself


def test_a_one_chord_a_bar_chart_follows_the_bar_lines_and_loops():
    beats = BeatGrid([0.5 * i for i in range(200)])  # 120 bpm, 4/4 from beat 0
    chart = ChordChart.parse("C F G")
    assert chart.at(beats, 0.0) == (C, 2.0)
    assert chart.at(beats, 1.99) == (C, 2.0)
    assert chart.at(beats, 2.0) == (F, 4.0)
    assert chart.at(beats, 5.0) == (G, 6.0)
    assert chart.at(beats, 6.0) == (C, 8.0)  # the loop: bar 4 is bar 1 again
    assert chart.at(beats, 6.0 * 7 + 2.5) == (F, 46.0)
    assert chart.name_at(beats, 5.0) == "G"
    assert chart.at(beats, 3.0) == (F, 4.0)  # asked again earlier than the cursor: the same answer


def test_a_meter_change_moves_the_changes_with_the_bar_lines():
    # two 4/4 bars, then 3/4 from beat 8: a beat every 0.5 s
    down = [i in (0, 4) or (i >= 8 and (i - 8) % 3 == 0) for i in range(60)]
    beats = BeatGrid([0.5 * i for i in range(60)], down)
    chart = ChordChart.parse("C F G")
    changes = [(round(beats.beat_at(t), 3), cid) for t, cid in _changes(chart, beats, 0.0, 11.0)]
    assert changes == [(0.0, C), (4.0, F), (8.0, G), (11.0, C), (14.0, F), (17.0, G), (20.0, C)]
    # a chart in beats ignores the bar lines
    chart = ChordChart.parse("C:3 F:2")
    assert [round(beats.beat_at(t), 3) for t, _ in _changes(chart, beats, 0.0, 6.0)] == [0.0, 3.0, 5.0, 8.0, 10.0]


def test_a_mixed_chart_and_a_chart_of_one_chord():
    beats = BeatGrid([0.5 * i for i in range(100)])
    chart = ChordChart.parse("C:2 F G:2")  # F lasts to the next bar line: beat 2 -> 4
    assert [round(beats.beat_at(t), 3) for t, _ in _changes(chart, beats, 0.0, 4.0)] == [0.0, 2.0, 4.0, 6.0]
    assert ChordChart.parse("Am").at(beats, 10.0) == (AM, None)  # never changes
    assert ChordChart.parse("C C F").at(beats, 0.5) == (C, 4.0)  # the next *change*: past the repeat


def test_free_time_counts_four_beat_bars_from_beat_0():
    chart = ChordChart.parse("Am F")
    free = FreeTime(origin=10.0)  # nominal 120 bpm: a bar is 2 s
    assert chart.at(free, 10.0) == (AM, 12.0)
    assert chart.at(free, 13.0) == (F, 14.0)
    assert chart.at(None, 1.0) == (AM, 2.0)  # no map at all: free time from t = 0
    assert chart.at(free, 9.0) == (0, 10.0)  # before beat 0 (a count-in): no chord yet


def test_a_long_session_stays_cheap():
    beats = BeatGrid([0.5 * i for i in range(20000)], [i % 3 == 0 for i in range(20000)])
    chart = ChordChart.parse("C F G Am")
    assert chart.at(beats, 3000.0)[0] == (C, F, G, AM)[int(6000 // 3) % 4]
    import time

    t0 = time.perf_counter()
    for k in range(200):
        chart.at(beats, 3000.0 + k * 0.01)
    assert (time.perf_counter() - t0) / 200 < 0.001  # the cursor: no walk from beat 0 each time


def test_pop909_seconds_chart(tmp_path):
    path = tmp_path / "chord_midi.txt"
    path.write_text("0.5\t2.0\tN\n2.0\t4.0\tA:min\n4.0\t6.0\tA:min\n7.0\t8.0\tF:maj/3\n")
    chart = ChordChart.load(str(path))
    assert chart.seconds
    grid = BeatGrid([0.1 * i for i in range(10)])  # ignored
    assert chart.at(grid, 0.0) == (0, 2.0)  # the first span is N: the first change is A minor's
    assert chart.at(grid, 1.0) == (0, 2.0)
    assert chart.at(grid, 2.0) == (AM, 6.0)  # two spans of the same chord: one change
    assert chart.at(grid, 6.5) == (0, 7.0)  # a gap: no chord
    assert chart.at(grid, 7.5) == (F, 8.0)
    assert chart.at(grid, 9.0) == (0, None)  # no loop
    assert "chord_midi.txt" in chart.text
    path.write_text("0.5\t2.0\tN\n2.0\tA:min\n")
    with pytest.raises(ValueError, match=r"chord_midi\.txt:2: not a chord line"):
        ChordChart.load(str(path))


@pytest.mark.skipif(not POP909.is_dir(), reason="POP909 not here")
def test_pop909_files_read_as_data_preparation_reads_them():
    from livejam.harmony import ChordTrack

    for song in sorted(POP909.iterdir())[:40]:
        path = song / "chord_midi.txt"
        chart, track = ChordChart.load(str(path)), ChordTrack.from_file(path)
        for t in [x * 0.37 for x in range(700)]:
            assert chart.at(None, t)[0] == track.at(t), (path, t)
    assert parse_chord("C:maj/3") == parse_symbol("C:maj/3")


def test_bad_chords_on_the_command_line_exit_2(capsys, tmp_path):
    from livejam.cli import main

    rc = main(["simulate", "--human", str(tmp_path / "none.mid"), "--out", str(tmp_path / "o.mid"), "--free",
               "--performer", "markov", "--chords", "Am F Hm G"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == ['livejam: error: --chords: "Hm" at position 3 is not a chord (try Am, C7, F#m7b5, N)']


def test_simulate_gives_the_performer_the_chart(tmp_path):
    from livejam.config import DaemonConfig, load
    from livejam.dispatch import build_performer

    config = load(DaemonConfig, None, ['performer.kind="markov"', 'chords.chart="Am:2 F:2"'])
    performer = build_performer(config)
    assert performer.chart.chords == (AM, F) and performer.chord == 0 and performer.chord_source == ""
    assert build_performer(load(DaemonConfig, None, ['performer.kind="markov"'])).chart is None


def _changes(chart, beats, t0: float, t1: float) -> list[tuple[float, int]]:
    """(time, chord) of each change from t0 to t1, following `at`'s next-change times."""
    out, t = [], t0
    while t is not None and t < t1:
        cid, nxt = chart.at(beats, t)
        out.append((t, cid))
        t = nxt
    return out
