"""The exit summary (issue 19 #9): one line a person can read, the counters behind --json."""
from __future__ import annotations

import subprocess

from livejam.summary import exit_line
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


def test_usage_errors_are_one_line_with_the_valid_values():
    proc = subprocess.run(livejam_cmd("run", "--mode", "nope"), cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("livejam run: error: argument --mode: invalid choice: 'nope'")
    assert "call" in line and "duet" in line and line.endswith("(see livejam run --help)")
