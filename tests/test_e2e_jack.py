"""End to end over a real (dummy-driver, synchronous) JACK server: `livejam run`
in one process, a musician in another. Only correctness is asserted."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import mido
import pytest

from tests.conftest import ROOT, livejam_cmd

pytestmark = pytest.mark.jack


def start_daemon(*args: str) -> tuple[subprocess.Popen, list[str]]:
    proc = subprocess.Popen(livejam_cmd("run", *args), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=dict(os.environ))
    lines: list[str] = []
    ready = threading.Event()

    def reader():
        for line in proc.stdout:
            lines.append(line)
            if "ready:" in line:
                ready.set()
        ready.set()

    threading.Thread(target=reader, daemon=True).start()
    if not ready.wait(60) or proc.poll() is not None:
        proc.kill()
        pytest.fail("daemon did not become ready:\n" + "".join(lines))
    return proc, lines


def play(proc: subprocess.Popen, *args: str) -> dict:
    player = subprocess.run([sys.executable, str(ROOT / "tests" / "jack_player.py"), "--daemon-pid", str(proc.pid),
                             *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert player.returncode == 0, player.stderr
    return json.loads(player.stdout.strip().splitlines()[-1])


def unmatched_note_ons(received: list[list[int]]) -> list:
    """Note-ons (per channel and note) without a later note-off."""
    on: dict[tuple[int, int], int] = {}
    for msg in received:
        kind, key = msg[0] & 0xF0, (msg[0] & 0x0F, msg[1])
        if kind == 0x90 and msg[2] > 0:
            on[key] = on.get(key, 0) + 1
        elif kind == 0x80 or (kind == 0x90 and msg[2] == 0):
            on.pop(key, None)
        elif kind == 0xB0 and msg[1] == 123:
            pass  # all-notes-off is not counted: every note must get its explicit note-off
    return sorted(on)


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_run_answers_a_phrase_and_ends_every_note(jack_server, tmp_path, sig):
    record = tmp_path / "session.mid"
    proc, lines = start_daemon("--engine", "markov", "--seed", "1", "--record", str(record))
    try:
        result = play(proc, "--signal", sig)
        rc = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = "".join(lines)
    assert result["answered"], out
    note_ons = [m for m in result["received"] if m[0] & 0xF0 == 0x90 and m[2] > 0]
    assert note_ons, out
    assert unmatched_note_ons(result["received"]) == []
    assert result["panicked"]
    assert rc == 0 and f"stopped ({sig})" in out
    counters = json.loads(out.split("livejam: counters ", 1)[1].splitlines()[0])
    assert counters["sounding_at_exit"] == 0 and counters["input"]["by_kind"]["note_on"] == 8
    names = [t.name for t in mido.MidiFile(str(record)).tracks if any(m.type == "note_on" for m in t)]
    assert names == ["human", "machine"]


def test_burst_over_jack_then_clean_shutdown(jack_server):
    proc, lines = start_daemon("--engine", "markov", "--seed", "2", "--no-record")
    try:
        result = play(proc, "--burst", "10000", "--min-notes", "1")
        rc = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = "".join(lines)
    assert rc == 0, out
    counters = json.loads(out.split("livejam: counters ", 1)[1].splitlines()[0])
    assert counters["sounding_at_exit"] == 0 and counters["error"] is None
    inc = counters["input"]
    assert inc["received"] + inc["queue_overflow"] >= 10_000
    assert unmatched_note_ons(result["received"]) == []


def test_no_midi_system_exits_2_with_one_line():
    env = dict(os.environ, JACK_DEFAULT_SERVER="livejam-no-such-server", JACK_NO_START_SERVER="1")
    proc = subprocess.run(livejam_cmd("run", "--no-record"), cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "MIDI" in proc.stderr and not proc.stdout


@pytest.fixture(scope="module")
def neural_model(tmp_path_factory) -> Path:
    """The shipped model; a small exported one where a checkout has none yet."""
    from livejam.config import DEFAULT_MODEL

    if DEFAULT_MODEL.exists():
        return DEFAULT_MODEL
    path = tmp_path_factory.mktemp("model") / "small.onnx"
    subprocess.run([sys.executable, "tools/export_onnx.py", "--random", "--out", str(path), "--no-check",
                    "n_layer=1", "d_model=32", "n_head=2", "d_ff=64", "max_len=128"], cwd=ROOT, check=True,
                   capture_output=True)
    return path


@pytest.mark.parametrize("mode, channel", [("call", 1), ("duet", 2)])
def test_neural_engine_answers_and_accompanies_over_jack(jack_server, neural_model, mode, channel):
    proc, lines = start_daemon("--engine", "neural", "--model", str(neural_model), "--mode", mode, "--seed", "3",
                               "--no-record", "--temperature", "0.8")
    try:
        result = play(proc, "--signal", "SIGTERM")
        rc = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = "".join(lines)
    assert rc == 0, out
    note_ons = [m for m in result["received"] if m[0] & 0xF0 == 0x90 and m[2] > 0]
    assert len(note_ons) >= 2, out
    assert {m[0] & 0x0F for m in note_ons} == {channel}  # call continues part 0, duet plays part 1
    assert unmatched_note_ons(result["received"]) == [] and result["panicked"]
    counters = json.loads(out.split("livejam: counters ", 1)[1].splitlines()[0])
    assert counters["sounding_at_exit"] == 0


def test_neural_engine_with_a_corrupt_model(jack_server, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07not a model")
    strict = subprocess.run(livejam_cmd("run", "--engine", "neural", "--model", str(bad), "--no-record"), cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert strict.returncode == 2 and len(strict.stderr.strip().splitlines()) == 1 and "bad.onnx" in strict.stderr
    named = subprocess.run(livejam_cmd("run", "--model", str(bad), "--no-record"), cwd=ROOT, capture_output=True,
                           text=True, timeout=60)  # a model asked for by name is an error too
    assert named.returncode == 2 and "bad.onnx" in named.stderr


SYNTH = """
import signal, rtmidi
inp = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="test synth")
inp.open_virtual_port("in")
print("ready", flush=True)
signal.sigwait({signal.SIGTERM})
"""


def test_vanished_output_port_ends_the_session_cleanly(jack_server):
    synth = subprocess.Popen([sys.executable, "-c", SYNTH], stdout=subprocess.PIPE, text=True)
    try:
        assert synth.stdout.readline().strip() == "ready"
        proc, lines = start_daemon("--engine", "markov", "--out", "test synth", "--no-record")
        synth.kill()  # the synth crashes: its port is gone
        synth.wait(10)
        rc = proc.wait(30)
    finally:
        for p in (synth,):
            if p.poll() is None:
                p.kill()
    out = "".join(lines)
    assert rc == 1 and "stopped (output port vanished)" in out, out
    counters = json.loads(out.split("livejam: counters ", 1)[1].splitlines()[0])
    assert counters["sounding_at_exit"] == 0
