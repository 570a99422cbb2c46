"""`python -m livejam.measure.duet`: the long-duet measurement runs end to end over JACK.

Correctness only (the figures are for README, not asserted): the session ends
cleanly, every row is there, and nothing is left sounding on either side."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def test_short_duet_measurement_ends_clean(jack_server):
    out = subprocess.run([sys.executable, "-m", "livejam.measure.duet", "--minutes", "0.25", "--period-s", "5",
                          "--performer", "markov", "--json"], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    r = json.loads(out.stdout[out.stdout.index("{"):])
    assert r["rc"] == 0 and r["reason"] == "stopped"
    assert [row["t_s"] for row in r["minutes"]][:4] == [0.0, 5.0, 10.0, 15.0]
    assert all(row["rss_mb"] > 0 for row in r["minutes"])
    assert r["daemon"]["sounding_at_exit"] == 0
    player = r["player"]
    assert player["sent"] > 0 and player["sounding"] == 0
    assert player["on"] > 0 and player["clock"] > 0  # the machine played, and sent clock as master
    assert r["daemon"]["input"]["received"] >= player["sent"]  # nothing the player sent went missing
    heard = r["heard"]  # what the player's process heard, beside the bare transport (figures not asserted)
    assert heard["notes"]["n"] > 0 and heard["notes_arrived"] >= heard["notes"]["n"]
    assert heard["clock_jitter"]["n"] > 0
    assert heard["bare"]["sent"] > 0 and heard["bare"]["lateness"]["n"] > 0


def test_a_recording_of_200000_notes_is_saved_while_nothing_plays_late(jack_server):
    """Issue 20: over JACK, a session whose recording already holds 200,000 notes per part saves it every
    5 s while it plays (the recording thread writes it; the notes leave from the output process): the
    receiving process hears every note-on ended, nothing is dropped late, and the file holds them all."""
    pytest.importorskip("pythonosc")  # --stage: the status screen and OSC beside the recording (extras)
    pytest.importorskip("rich")
    out = subprocess.run([sys.executable, "-m", "livejam.measure.duet", "--minutes", "0.25", "--period-s", "5",
                          "--performer", "markov", "--stage", "--preload-notes", "200000", "--json"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    r = json.loads(out.stdout[out.stdout.index("{"):])
    assert r["rc"] == 0 and r["daemon"]["sounding_at_exit"] == 0
    assert r["player"]["on"] > 0 and r["player"]["sounding"] == 0  # it played, and every note-on was ended
    assert r["daemon"]["scheduler"]["dropped_late"] == 0
    assert r["stage"]["recording_notes"] >= 400_000  # note-ons: the preloaded two parts and what was played
    assert r["stage"]["recording_bytes"] > 400_000 * 2 * 3  # at least 3 bytes per note message
