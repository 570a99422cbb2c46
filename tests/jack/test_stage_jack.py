"""`livejam run --thru --sound --osc` end to end over the test JACK server: the human's notes come
back on their own channel, the machine's on its own, sound plays through JACK's dummy driver (or
says in one line why not), an OSC control shows up as a line of the plain status log."""
from __future__ import annotations

import json

import pytest

from tests.jack.test_e2e_jack import play, start_daemon, unmatched_note_ons, wait_line

pytestmark = pytest.mark.jack
pythonosc = pytest.importorskip("pythonosc.udp_client")


def test_thru_sound_osc_and_plain_log_over_jack(jack_server):
    proc, lines = start_daemon("--seed", "3", "--no-record", "--thru", "--sound",
                               "--osc", "127.0.0.1:0", "--mode", "call")
    try:
        port = int(wait_line(lines, r"osc: listening on 127\.0\.0\.1:(\d+)", proc).group(1))
        sound = wait_line(lines, r"sound: (.*)", proc).group(1)
        wait_line(lines, r"\] mode call; temperature 0\.7", proc)  # the plain log's first line: the state
        pythonosc.SimpleUDPClient("127.0.0.1", port).send_message("/livejam/temperature", 1.1)
        wait_line(lines, r"temperature 0\.7 -> 1\.1", proc)  # the performer thread applied it
        result = play(proc, "--signal", "SIGTERM", "--min-notes", "10")  # 8 passed through + 2 answers
        rc = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = "".join(lines)
    assert rc == 0, out
    ons = [m for m in result["received"] if m[0] & 0xF0 == 0x90 and m[2] > 0]
    assert {m[0] & 0x0F for m in ons} == {0, 1}  # thru on channel 1, the answer on channel 2 (0-based 0, 1)
    assert sum(1 for m in ons if m[0] & 0x0F == 0) == 8  # the player's phrase, passed through
    assert unmatched_note_ons(result["received"]) == [] and result["panicked"]
    counters = json.loads(out.split("livejam: counters ", 1)[1].splitlines()[0])
    assert counters["sounding_at_exit"] == 0
    if sound.startswith("off"):
        pytest.skip(f"no audio device here: {sound}")
    assert "output latency" in sound
    snd = json.loads(out.split("livejam: SoundOut ", 1)[1].splitlines()[0])
    assert snd["blocks"] > 0 and snd["synth_events"] >= 10 and snd["callback_errors"] == 0
