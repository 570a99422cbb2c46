"""The lines a person reads: what to connect at start (issue 19 #2), one line at exit with the counters
behind --json (issue 19 #9), usage errors in one line."""
from __future__ import annotations

import subprocess

from livejam.config import DaemonConfig, load
from livejam.lines import connect_lines, exit_line
from tests.conftest import ROOT, livejam_cmd


def summary(**over) -> dict:
    base = {"reason": "SIGINT", "seconds": 192.4, "input": {"by_kind": {"note_on": 412}, "queue_overflow": 0,
                                                            "invalid": 0},
            "scheduler": {"dropped_late": 0, "watchdog_offs": 0}, "ledger": {"note_ons": 388},
            "sounding_at_exit": 0}
    base.update(over)
    return base


def test_a_clean_session_is_one_short_line():
    line = exit_line(summary(), "/tmp/s.mid")
    assert line == ("stopped (SIGINT) after 3 min 12 s: heard 412 notes, sent 388; nothing left sounding; "
                    "recorded to /tmp/s.mid")
    assert "\n" not in line


def test_only_what_went_wrong_is_named():
    line = exit_line(summary(scheduler={"dropped_late": 3, "watchdog_offs": 0}, sounding_at_exit=1,
                             input={"by_kind": {}, "queue_overflow": 7, "invalid": 0}, seconds=5.2))
    assert line.startswith("stopped (SIGINT) after 5 s: heard 0 notes, sent 388; ")
    assert "3 dropped too late to play" in line and "7 input messages lost (queue full)" in line
    assert "watchdog" not in line and "malformed" not in line and "1 notes still sounding" in line
    assert "xruns" not in line
    assert "2 JACK xruns (input may have been lost)" in exit_line(summary(input={"by_kind": {}, "xruns": 2}))
    assert "xruns" not in exit_line(summary(input={"by_kind": {}, "xruns": "unknown"}))


def test_usage_errors_are_one_line_with_the_valid_values():
    proc = subprocess.run(livejam_cmd("run", "--mode", "nope"), cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("livejam run: error: argument --mode: invalid choice: 'nope'")
    assert "call" in line and "duet" in line and line.endswith("(see livejam run --help)")


def test_the_start_says_what_to_connect_to_the_virtual_ports():
    lines = connect_lines(DaemonConfig(), "livejam in:in", "livejam out:out")
    assert lines == ["play: connect your keyboard (or a DAW's MIDI out) to 'livejam in:in'; `livejam ports` lists them",
                     "hear: connect a synth or a DAW track to 'livejam out:out' (it plays on MIDI channel 1), "
                     "or add --sound"]
    with_thru = load(DaemonConfig, None, ["midi.thru=true", "sound.enabled=true"])
    assert "channel 2" in connect_lines(with_thru, "i", "o")[1] and "built-in synth" in connect_lines(with_thru, "i", "o")[1]
    named = load(DaemonConfig, None, ['midi.input="Keys"', 'midi.output="FLUID"'])
    assert connect_lines(named, "Keys:out", "FLUID:in") == []  # livejam connects named ports itself
