"""tools/tempo_eval.py: the scoring of the tempo follower (synthetic songs; POP909 when present)."""
from __future__ import annotations

import numpy as np
import pytest

from livejam.beatmap import BeatGrid
from tests.beat.test_tempo import melody
from tools.tempo_eval import evaluate_song, phase_error, pop909_root, split_songs, summarise


def test_phase_error_is_measured_on_the_beats_both_grids_share():
    grid = BeatGrid(np.arange(0, 100) * 0.8)  # 75 bpm, a beat at every 0.8 s
    assert phase_error(8.0, 0.8, grid, 8.3) == pytest.approx(0.0)
    assert phase_error(8.4, 0.8, grid, 8.5) == pytest.approx(0.5)  # on the off-beats
    assert phase_error(8.1, 0.8, grid, 8.5) == pytest.approx(0.125)
    assert phase_error(8.4, 0.4, grid, 8.5) == pytest.approx(0.0)  # double tempo: every true beat is an estimated one
    assert phase_error(8.8, 1.6, grid, 9.0) == pytest.approx(0.0)  # half tempo on true beats


def test_a_song_at_its_tempo_scores_right():
    bpm = 84.0
    grid = BeatGrid(1.0 + np.arange(60) * 60 / bpm)
    row = evaluate_song(melody(bpm, 12, t0=1.0, jitter=0.0), grid)
    assert row["level"] == "right" and row["tempo_error"] < 0.01 and row["phase_error"] < 0.02
    s = summarise({"a": row, "b": {**row, "level": "half", "tempo_error": 0.5}}, threshold=0.3)
    assert s["tempo_within_4pct"] == 0.5 and s["half"] == 0.5 and s["tempo_and_phase_right"] == 0.5


def test_held_out_songs_are_prepare_datas_validation_split(tmp_path):
    pytest.importorskip("tqdm")  # tools.prepare_data needs the training extra
    from tools.prepare_data import is_val

    for i in range(1, 61):
        (tmp_path / f"{i:03d}").mkdir()
        (tmp_path / f"{i:03d}" / f"{i:03d}.mid").touch()
    held = split_songs(tmp_path, "held-out")
    assert held[:4] == ["004", "005", "038", "041"]
    assert held == [f"{i:03d}" for i in range(1, 61) if is_val(f"pop909/{i:03d}", 0.1, 0)]


def test_on_the_four_named_held_out_songs():
    try:
        root = pop909_root(None)
    except SystemExit:
        pytest.skip("POP909 not found (../shared/data or $LIVEJAM_DATA)")
    from tools.tempo_eval import main

    assert main(["--pop909", str(root), "--songs", "004", "005", "038", "041"]) == 0
