"""BeatMap: free time and a beat grid from a click track (POP909's beat_midi.txt format)."""
from __future__ import annotations

import pytest

from livejam.clock import BeatGrid, FreeTime


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
