"""Delivery at frame offsets against rtmidi's, measured bare (livejam/measure/frames.py) and through
livejam's output process (livejam/measure/output_frames.py), on the test JACK server."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import checkout_env

pytestmark = pytest.mark.jack


def measured(module: str) -> dict:
    """A 2-second run of a measurement, in a process of its own (JACK-Client's libjack must not meet
    rtmidi's copy in one process)."""
    out = subprocess.run([sys.executable, "-m", module, "--seconds", "2", "--seed", "1", "--json"],
                         env=checkout_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_notes_written_at_frame_offsets_arrive_at_their_frames_and_rtmidi_at_period_starts(jack_server):
    pytest.importorskip("jack")
    r = measured("livejam.measure.frames")
    at_frames, rtmidi = r["frames"], r["rtmidi"]
    assert at_frames["sent"] > 20 and rtmidi["sent"] > 20
    assert at_frames["arrived"] == at_frames["sent"] and rtmidi["arrived"] == rtmidi["sent"]
    # queued ahead, each note is heard at the very frame it was meant for, whatever the machine's speed
    assert at_frames["lateness"]["max_ms"] == 0.0 and at_frames["early"] == 0
    assert at_frames["at_period_start"] < at_frames["sent"]  # offsets within the period, not all at 0
    # rtmidi's JACK backend writes every message at the start of a period: what the frame path wins
    assert rtmidi["at_period_start"] == rtmidi["sent"]


def test_the_output_process_heard_at_frame_offsets_and_through_rtmidi(jack_server):
    r = measured("livejam.measure.output_frames")
    frames, rtmidi = r["frames"], r["rtmidi"]
    assert frames["sent"] > 20 and rtmidi["sent"] > 20
    assert frames["arrived"] == frames["sent"] and rtmidi["arrived"] == rtmidi["sent"]
    assert r["note_offs"] == frames["sent"] + rtmidi["sent"]  # every note ended
    assert rtmidi["at_period_start"] == rtmidi["sent"] and frames["at_period_start"] < frames["sent"] // 2


@pytest.mark.parametrize("module", ["livejam.measure.frames", "livejam.measure.output_frames"])
def test_a_bad_option_is_one_line_and_exit_2(module):
    out = subprocess.run([sys.executable, "-m", module, "--period", "8"], env=checkout_env(),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and out.stderr.strip().count("\n") == 0 and "--period" in out.stderr
