"""Timing as a receiving process hears it (livejam/measure/heard.py): the matching and the grid."""
from __future__ import annotations

import pytest

from livejam.measure.heard import grid_jitter, match_notes, note_key


def test_notes_are_matched_by_key_and_occurrence_and_untimed_ones_keep_the_count():
    on, off = note_key(0x90, 60), note_key(0x80, 60)
    other = note_key(0x81, 60)  # the same key on another channel is another note
    assert note_key(0x90 | 3, 64) == (1, 3, 64) and other == (0, 1, 60)
    intended = [(off, None), (on, 1.0), (other, 2.0), (off, 1.5), (on, 3.0)]  # a panic's note-off first
    arrived = [(off, 0.1), (on, 1.002), (off, 1.504), (other, 2.01), (on, 3.001)]
    assert match_notes(intended, arrived) == pytest.approx([0.002, 0.004, 0.01, 0.001])


def test_an_arrival_nobody_sent_is_not_timed():
    assert match_notes([(note_key(0x90, 60), 1.0)], [(note_key(0x90, 60), 1.001), (note_key(0x90, 60), 9.0)]) \
        == pytest.approx([0.001])


def test_grid_jitter_is_the_distance_from_the_even_grid_and_a_lost_tick_leaves_a_gap():
    period = 0.025
    arrivals = [0.5 + k * period + 0.001 for k in range(10)]  # a constant delay is no jitter
    arrivals[4] += 0.003
    del arrivals[7]  # lost: the later ones stay on their own grid points
    jitter = grid_jitter(arrivals, period)
    assert len(jitter) == 9 and max(jitter) == pytest.approx(0.003)
    assert sorted(jitter)[:8] == pytest.approx([0.0] * 8, abs=1e-9)
