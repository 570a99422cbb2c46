"""BeatMap: free time and a beat grid from a click track (POP909's beat_midi.txt format)."""
from __future__ import annotations

import pytest

from livejam.beatmap import BeatGrid, FreeTime


def test_free_time_counts_nominal_beats_without_a_bar():
    f = FreeTime(origin=1.0)
    assert f.beat_at(2.0) == pytest.approx(2.0) and f.time_at(2.0) == pytest.approx(2.0)
    assert f.bar_at(3.0) is None and f.bpm_at(0.0) is None


def test_beat_grid_from_file_interpolates_and_knows_the_bar(tmp_path):
    # 4/4 at 120 bpm from 0.25 s, one 2/4 bar in the middle; flags as in POP909 (col 3 = downbeat)
    times = [0.25 + 0.5 * i for i in range(14)]
    down = [i in (0, 4, 6, 10) for i in range(14)]
    path = tmp_path / "beat_midi.txt"
    path.write_text("".join(f"{t} 1.0 {1.0 if d else 0.0}\n" for t, d in zip(times, down)))
    g = BeatGrid.from_file(path)
    assert g.beat_at(0.25) == pytest.approx(0.0) and g.beat_at(0.5) == pytest.approx(0.5)
    assert g.beat_at(0.0) == pytest.approx(-0.5)  # before the first beat: the first interval's tempo
    assert g.time_at(g.beat_at(5.123)) == pytest.approx(5.123)
    assert g.bar_at(1.0) == (pytest.approx(1.0), 4)
    assert g.bar_at(5.0) == (pytest.approx(1.0), 2)  # the 2/4 bar
    assert g.bar_at(7.5) == (pytest.approx(1.5), 4)
    assert g.bar_at(-0.5) == (pytest.approx(3.5), 4)
    assert g.bpm_at(2.0) == pytest.approx(120.0)


def test_beat_grid_rejects_bad_files_with_one_line(tmp_path):
    bad = tmp_path / "b.txt"
    bad.write_text("0.0\nabc\n")
    with pytest.raises(ValueError, match="b.txt:2"):
        BeatGrid.from_file(bad)
    bad.write_text("1.0\n0.5\n")
    with pytest.raises(ValueError, match="increasing"):
        BeatGrid.from_file(bad)


def write_midi(path, tempos=(), sigs=(), end_beat=16, tpb=480):
    """A type 1 file: a conductor track (tempo and time signatures at beats) and a note track."""
    import mido

    mid = mido.MidiFile(type=1, ticks_per_beat=tpb)
    meta = [(b * tpb, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))) for b, bpm in tempos]
    meta += [(b * tpb, mido.MetaMessage("time_signature", numerator=n, denominator=d)) for b, n, d in sigs]
    conductor, now = mido.MidiTrack(), 0
    for tick, msg in sorted(meta, key=lambda p: p[0]):
        conductor.append(msg.copy(time=tick - now))
        now = tick
    notes = mido.MidiTrack()
    notes.append(mido.Message("note_on", note=60, velocity=90, time=0))
    notes.append(mido.Message("note_off", note=60, time=end_beat * tpb))
    mid.tracks += [conductor, notes]
    mid.save(path)
    return path


def test_beat_grid_from_midi_follows_the_tempo_map_and_time_signatures(tmp_path):
    from livejam.beatmap import beat_grid_from_midi

    # 4/4 at 120 for 2 bars, then 3/4 at 60 from beat 8
    path = write_midi(tmp_path / "song.mid", tempos=[(0, 120), (8, 60)], sigs=[(0, 4, 4), (8, 3, 4)], end_beat=14)
    g = beat_grid_from_midi(path)
    assert g.time_at(8.0) == pytest.approx(4.0) and g.time_at(10.0) == pytest.approx(6.0)
    assert g.beat_at(1.25) == pytest.approx(2.5) and g.beat_at(5.5) == pytest.approx(9.5)
    assert g.bar_at(4.0) == (pytest.approx(0.0), 4) and g.bar_at(7.5) == (pytest.approx(3.5), 4)
    assert g.bar_at(9.0) == (pytest.approx(1.0), 3) and g.bar_at(11.0) == (pytest.approx(0.0), 3)
    assert g.bpm_at(1.0) == pytest.approx(120.0) and g.bpm_at(7.0) == pytest.approx(60.0)
    assert g.beat_at(20.0) == pytest.approx(8 + 16.0)  # past the end: the last tempo goes on
    assert g.bar_at(26.0) == (pytest.approx(0.0), 3)


def test_beat_grid_from_midi_defaults_and_compound_meter(tmp_path):
    from livejam.beatmap import beat_grid_from_midi

    bare = beat_grid_from_midi(write_midi(tmp_path / "bare.mid", end_beat=6))  # no meta: 4/4 at 120
    assert bare.time_at(3.0) == pytest.approx(1.5) and bare.bar_at(5.0) == (pytest.approx(1.0), 4)
    assert beat_grid_from_midi(tmp_path / "bare.mid", meter=3).bar_at(5.0) == (pytest.approx(2.0), 3)
    six8 = beat_grid_from_midi(write_midi(tmp_path / "six8.mid", tempos=[(0, 90)], sigs=[(0, 6, 8)]))
    assert six8.bar_at(4.0) == (pytest.approx(1.0), 3)  # 6/8: bars of three quarter-note beats
    assert six8.bpm_at(2.0) == pytest.approx(90.0)


def test_beat_grid_from_midi_rejects_unreadable_files_with_one_line(tmp_path):
    from livejam.beatmap import beat_grid_from_midi

    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"not a midi file")
    with pytest.raises(ValueError, match="bad.mid") as e:
        beat_grid_from_midi(bad)
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="missing.mid"):
        beat_grid_from_midi(tmp_path / "missing.mid")
