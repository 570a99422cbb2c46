"""Faults on stage, over a real JACK server: signals at bad moments, a dying
server, malformed input. Each test asserts the end state (exit status, the
panic on the wire, counters, nothing left sounding), never a duration."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from livejam.config import BeatConfig, MidiConfig
from livejam.midi.ports import port_names

from tests.conftest import ROOT, livejam_cmd
from tests.jack.jack_player import wait_for
from tests.jack.test_e2e_jack import input_total, run_player, start_daemon, unmatched_note_ons, wait_line

pytestmark = pytest.mark.jack


def counters_of(out: str) -> dict:
    assert "livejam: counters " in out, out
    return json.loads(out.split("livejam: counters ", 1)[1].splitlines()[0])


@pytest.mark.parametrize("after", [1500, 5000])
def test_sigterm_during_a_flood_ends_cleanly(jack_server, after):
    """Issue 10 #1: SIGTERM while 10,000 messages pour in crashed the daemon
    (segfault in a JACK thread while the main thread closed the input port)."""
    result, rc, out, counters = run_player(
        "--engine", "markov", "--seed", "4", "--no-record",
        player_args=("--flood", "10000", "--signal-after", str(after), "--answer-timeout", "0.5"))
    assert rc == 0 and "stopped (SIGTERM)" in out, (rc, out)
    panic_heard = sorted({m[0] & 0x0F for m in result["received"] if m[0] & 0xF0 == 0xB0 and m[1] == 123})
    assert counters["sounding_at_exit"] == 0 and result["panicked"], (out, result["received"][-8:], panic_heard)
    assert unmatched_note_ons(result["received"]) == []


@pytest.mark.parametrize("sig", ["SIGHUP", "SIGINT"])
def test_sighup_and_double_sigint_end_with_the_panic_and_the_counters(jack_server, tmp_path, sig):
    """Issue 10 #3 and #8: SIGHUP (the terminal closed) killed the daemon without
    a shutdown; two SIGINTs 30 ms apart ended it with rc -2 and no counters."""
    record = tmp_path / "s.mid"
    result, rc, out, counters = run_player(
        "--engine", "markov", "--seed", "1", "--record", str(record),
        player_args=("--signal", sig, "--repeat", "2" if sig == "SIGINT" else "1"))
    assert rc == 0 and f"stopped ({sig})" in out, (rc, out)
    assert result["answered"] and result["panicked"]
    assert unmatched_note_ons(result["received"]) == []
    assert counters["sounding_at_exit"] == 0
    assert record.stat().st_size > 0


@pytest.mark.parametrize("sig", ["SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGPIPE"])
def test_every_terminating_signal_ends_with_the_panic_the_recording_and_the_counters(jack_server, tmp_path, sig):
    """Issue 21 #5: SIGQUIT (Ctrl-\\), SIGUSR1 and SIGALRM killed the daemon with no panic (a machine
    note stuck), no counters and no final recording; SIGPIPE was ignored. Now the same shutdown as SIGTERM."""
    record = tmp_path / "s.mid"
    result, rc, out, counters = run_player("--engine", "markov", "--seed", "1", "--record", str(record),
                                           player_args=("--signal", sig))
    assert rc == 0 and f"stopped ({sig})" in out, (rc, out)
    assert result["answered"] and result["panicked"]
    assert unmatched_note_ons(result["received"]) == []
    assert counters["sounding_at_exit"] == 0 and record.stat().st_size > 0


def test_unterminated_sysex_does_not_deafen_the_input(jack_server):
    """Issue 10 #2: after `F0 7E 01` (no F7) every later message was swallowed."""
    result, rc, out, counters = run_player(
        "--engine", "markov", "--seed", "1", "--no-record",
        player_args=("--before", "F07E01", "--answer-timeout", "30"))
    assert rc == 0, out
    inc = counters["input"]
    assert inc["unterminated_sysex"] == 1, out
    assert inc["by_kind"]["note_on"] == 8, out  # the phrase after it was heard, every note
    assert result["answered"] and result["panicked"]
    assert "unterminated SysEx" in out


def test_jack_server_death_is_noticed(tmp_path):
    """Issue 10 #5: the daemon never noticed its JACK server died; sends then
    blocked forever and SIGTERM was ignored. Own server: this one is killed."""
    from livejam.measure.jack_server import JackServer

    from tests.conftest import start_test_server

    server = start_test_server()
    try:
        proc, lines = start_daemon("--engine", "markov", "--no-record")
        os.kill(server.proc.pid, signal.SIGKILL)  # the server crashes
        server.proc.wait(10)
        try:
            rc = proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail("the daemon did not notice its JACK server died:\n" + "".join(lines))
    finally:
        server.stop()
        # A killed server keeps its slot in JACK's registry: a clean start and
        # stop under the same name gives it back (see conftest).
        try:
            JackServer.start(period=64, name=server.name).stop()
        except RuntimeError:
            pass
    out = "".join(lines)
    assert rc == 1 and "stopped (JACK server died)" in out, (rc, out)
    counters_of(out)
    # libjack's own dozen lines (socket reads failing) go to the log, not under livejam's line (issue 21 #11)
    assert "JackSocketClientChannel" not in out and "CheckRes" not in out, out


def test_neural_performer_with_a_backlog_stops_without_abort(jack_server, tmp_path, tiny_model):
    """Issue 10 #6: with input backed up in the queue, the stop request waited
    behind it, the join timed out and the interpreter exited under onnxruntime
    (`terminate called without an active exception`, rc -6)."""
    from livejam.config import default_model

    model = default_model() if default_model().exists() else tiny_model
    result, rc, out, counters = run_player(
        "--engine", "neural", "--model", str(model), "--mode", "duet", "--seed", "3", "--no-record",
        player_args=("--flood", "10000", "--signal-after", "9000", "--answer-timeout", "0.5"))
    assert rc == 0 and "stopped (SIGTERM)" in out, (rc, out)
    assert "terminate called" not in out
    inc = counters["input"]
    assert input_total(inc) == inc["received"]
    assert counters["sounding_at_exit"] == 0 and result["panicked"]


def test_ready_line_names_the_performer_really_used(jack_server):
    """Issue 10: the ready line said engine=neural whatever played. It names the performer
    built (the fallback from a damaged shipped model is tests/session/test_daemon_virtual.py's)."""
    proc, lines = start_daemon("--performer", "markov", "--no-record")
    proc.terminate()
    assert proc.wait(60) == 0
    ready = next(line for line in lines if "ready:" in line)
    assert "performer=markov" in ready and "neural" not in ready, ready


# A synth: an existing input port that prints everything it received, as JSON, when told to stop.
SYNTH = """
import json, signal, sys, rtmidi
got = []
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # sigwait takes it, not the default action
inp = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name=sys.argv[1])
inp.ignore_types(sysex=False, timing=False, active_sense=False)
inp.set_callback(lambda event, data: got.append(list(event[0])))
inp.open_virtual_port("in")
print("ready", flush=True)
signal.sigwait({signal.SIGTERM})
inp.cancel_callback()
print(json.dumps(got), flush=True)
"""


def test_startup_panic_on_an_existing_port_ends_every_note(jack_server):
    """Issue 10: after a SIGKILL the next start's panic sent only CC64/CC123 (no
    note-offs), and into a fresh virtual port that reaches nobody."""
    synth = subprocess.Popen([sys.executable, "-c", SYNTH, "crash synth"], stdout=subprocess.PIPE, text=True)
    try:
        assert synth.stdout.readline().strip() == "ready"
        proc, lines = start_daemon("--engine", "markov", "--out", "crash synth", "--no-record")
        proc.terminate()
        assert proc.wait(60) == 0, "".join(lines)
        synth.send_signal(signal.SIGTERM)
        got = json.loads(synth.stdout.readline())
    finally:
        if synth.poll() is None:
            synth.kill()
    offs = {(m[0] & 0x0F, m[1]) for m in got if m[0] & 0xF0 == 0x80 or (m[0] & 0xF0 == 0x90 and m[2] == 0)}
    # the thru and click channels too, though this session plays neither (issue 21 #9)
    channels = set(MidiConfig().any_session_channels) | {BeatConfig().click_channel}
    assert offs >= {(c, n) for c in channels for n in range(128)}
    assert {(m[0] & 0x0F) for m in got if m[0] & 0xF0 == 0xB0 and m[1] == 123} == channels


def test_a_session_killed_with_thru_leaves_nothing_on_a_synth_connected_to_the_next(jack_server):
    """Issue 21 #9: SIGKILL with --thru and a key down; the next session (without --thru, on a
    virtual output: its start-up panic reaches nobody) clears the synth when it is connected."""
    import rtmidi

    heard: list[list[int]] = []
    ears = [rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="kill test ears") for _ in range(2)]  # one per session
    for port in ears:
        port.set_callback(lambda event, data: heard.append(list(event[0])))
    keys = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="kill test keys")
    thru, machine = MidiConfig().thru_channel, MidiConfig(thru=True).machine_channels[0]
    procs = []

    def connect(port, name):
        port.open_port(next(i for i, p in enumerate(port_names(port)) if name in p))

    try:
        proc, lines = start_daemon("--performer", "echo", "--thru", "--no-record")
        procs.append(proc)
        connect(ears[0], "livejam out")
        connect(keys, "livejam in")
        keys.send_message([0x90, 62, 100])  # held when the session is killed
        sounding = {(0x90 | thru, 62), (0x90 | machine, 62)}  # passed through and echoed
        assert wait_for(lambda: {(m[0], m[1]) for m in list(heard) if m[2]} >= sounding, 30), (heard, lines)
        proc.kill()
        proc.wait(60)
        assert wait_for(lambda: not any("livejam out" in p for p in port_names(ears[1])), 30)
        proc, lines = start_daemon("--performer", "echo", "--no-record")
        procs.append(proc)
        connect(ears[1], "livejam out")  # the synth connected after the start-up panic went out
        wait_line(lines, r"output connected to .*: cleared of notes an earlier session may have left", proc)
        assert wait_for(lambda: unmatched_note_ons(list(heard)) == [], 30), (heard, lines)
        proc.terminate()
        assert proc.wait(60) == 0, "".join(lines)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        for port in (*ears, keys):
            port.close_port()


def test_disconnect_and_reconnect_leave_no_note_stuck(jack_server):
    """Issue 10: jack_disconnect/jack_connect while playing left notes stuck on the
    synth: their note-offs went out while it was disconnected."""
    import rtmidi

    synth = subprocess.Popen([sys.executable, "-c", SYNTH, "stuck synth"], stdout=subprocess.PIPE, text=True)
    proc = None
    heard: list[list[int]] = []
    tx = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="test keys")
    rx = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="test ears")
    try:
        assert synth.stdout.readline().strip() == "ready"
        proc, lines = start_daemon("--engine", "markov", "--seed", "1", "--no-record", "--out", "stuck synth")
        rx.set_callback(lambda event, data: heard.append(list(event[0])))
        rx.open_port(next(i for i, p in enumerate(port_names(rx)) if "livejam out" in p))
        tx.open_port(next(i for i, p in enumerate(port_names(tx)) if "livejam in" in p))
        for pitch in (60, 62, 64, 65, 67, 65, 64, 62, 60, 64, 67, 72):
            tx.send_message([0x90, pitch, 100])
            time.sleep(0.15)  # the phrase's rhythm
            tx.send_message([0x80, pitch, 0])
            time.sleep(0.05)
        assert wait_for(lambda: any(m[0] & 0xF0 == 0x90 and m[2] for m in heard), 30), ("no answer", heard[:20], lines)
        subprocess.run(["jack_disconnect", "livejam out:out", "stuck synth:in"], check=True, timeout=30)
        # the user's choice while the synth is still there: livejam does not connect it again
        assert wait_for(lambda: any("disconnected by hand: stuck synth:in" in line for line in lines), 30), lines
        # every note started so far has had its note-off sent (to nobody, for the synth)
        assert wait_for(lambda: unmatched_note_ons(list(heard)) == [], 60)
        subprocess.run(["jack_connect", "livejam out:out", "stuck synth:in"], check=True, timeout=30)
        assert wait_for(lambda: any("output reconnected to stuck synth:in" in line for line in lines), 30), lines
        proc.terminate()
        assert proc.wait(60) == 0, "".join(lines)
        synth.send_signal(signal.SIGTERM)
        got = json.loads(synth.stdout.readline())
    finally:
        for p in (synth, proc):
            if p is not None and p.poll() is None:
                p.kill()
        rx.close_port()
        tx.close_port()
    assert any(m[0] & 0xF0 == 0x90 and m[2] for m in got)  # the synth did hear the machine
    assert unmatched_note_ons(got) == []


def test_fuzzed_input_over_jack(jack_server):
    """Seeded fuzz through the real transport: garbage bytes, every status on all 16
    channels, SysEx up to 8 kB (terminated or not), realtime bytes interleaved.
    The daemon must stay up, still hear the phrase after it and answer it, and
    leave nothing sounding."""
    result, rc, out, counters = run_player("--engine", "markov", "--seed", "6", "--no-record",
                                           player_args=("--fuzz", "3000", "--answer-timeout", "60"))
    assert rc == 0 and "stopped (SIGTERM)" in out, (rc, out)
    assert result["answered"] and result["panicked"], out
    inc = counters["input"]
    assert input_total(inc) == inc["received"] and inc["invalid"] > 0 and inc["ignored"] > 0
    assert counters["sounding_at_exit"] == 0 and unmatched_note_ons(result["received"]) == []


def test_a_session_writes_only_where_the_readme_says(jack_server, tmp_path, monkeypatch):
    """Issue 10: onnxruntime's telemetry wrote ~/.cache/Microsoft/... (and looked up its
    vendor's host). A neural session with a recording, run from an empty folder under an
    empty home, may write only the sessions folder (~/.local/share/livejam)."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        monkeypatch.delenv(var, raising=False)
    result, rc, out, counters = run_player("--performer", "neural", "--seed", "3",
                                           player_args=("--min-notes", "1"), cwd=work)
    assert rc == 0 and counters["sounding_at_exit"] == 0, out
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    sessions = home / ".local" / "share" / "livejam" / "sessions"
    assert written and all((tmp_path / p).parent == sessions for p in written), written
    assert all(p.endswith(".mid") for p in written), written
