"""Faults without a MIDI system: the signal handler's contract, SysEx recovery,
the start-up panic, the recording path, setting range checks."""
from __future__ import annotations

import os
import signal
import subprocess

import pytest

from livejam.config import ConfigError, DaemonConfig, load
from livejam.daemon import Daemon
from livejam.midi.ledger import NoteLedger
from livejam.midi.normalise import InputNormaliser
from livejam.recording import RecordPathError, Recorder, check_writable

from tests.conftest import ROOT, livejam_cmd


class _NoLock:
    """Stands for the stop Event: a handler that touches it could deadlock (issue 10 #4)."""

    def set(self):
        raise AssertionError("the signal handler took the Event's lock")

    def is_set(self):
        raise AssertionError("the signal handler took the Event's lock")

    wait = set


def test_signal_handler_only_sets_a_flag():
    daemon = Daemon(DaemonConfig())
    daemon.stop_event = _NoLock()
    daemon._on_signal(signal.SIGTERM, None)
    daemon._on_signal(signal.SIGINT, None)  # a second signal: still nothing but the flag
    assert daemon.signalled == "SIGTERM" and daemon.signals == 2


def test_unterminated_sysex_is_split_counted_and_recovered():
    n = InputNormaliser()
    # what rtmidi hands over once the heartbeat's F7 ends the SysEx it was collecting
    joined = [0xF0, 0x7E, 0x01, 0x90, 60, 100, 0xF8, 0x80, 60, 0, 0xF7]
    parts = n.split(joined)
    assert parts == [[0xF0, 0x7E, 0x01], [0x90, 60, 100], [0xF8], [0x80, 60, 0]]
    assert n.counters.unterminated_sysex == 1 and n.counters.recovered == 3 and n.counters.heartbeats == 1
    assert n.split([0xF7]) == [] and n.counters.heartbeats == 2
    assert n.split([0xF0, 1, 2, 0xF7]) == [[0xF0, 1, 2, 0xF7]]  # a whole SysEx stays whole
    msgs = [n(p, 0.0) for p in parts]
    assert [m.kind if m else None for m in msgs] == [None, "note_on", "clock", "note_off"]


def test_startup_panic_on_an_existing_port_ends_every_note_on_every_channel():
    ledger = NoteLedger({0: {0, 1}})
    sent = ledger.panic(all_notes=True)
    offs = {(m.channel, m.a) for _, m in sent if m.kind == "note_off"}
    assert offs == {(c, n) for c in (0, 1) for n in range(128)}
    ccs = [(m.channel, m.a) for _, m in sent if m.kind == "control_change"]
    assert ccs == [(0, 64), (0, 123), (1, 64), (1, 123)]


@pytest.mark.parametrize("bad", ["/proc/x.mid", "DIR", "/dev/full", "FIFO"])
def test_record_path_is_checked_at_start(tmp_path, bad):
    """/dev/full and a FIFO passed (issue 21 #9): the probe wrote a sibling file beside them."""
    path = {"DIR": tmp_path, "FIFO": tmp_path / "fifo"}.get(bad, bad)
    if bad == "FIFO":
        os.mkfifo(path)
    with pytest.raises(RecordPathError):
        check_writable(path)


def test_simulate_checks_its_outputs_before_the_run_and_roll_says_a_full_disk(tmp_path, capsys):
    """Issue 21 #11: `roll --out /dev/full` and `simulate --png /dev/full` printed "wrote" with status 0."""
    pytest.importorskip("matplotlib")
    from livejam.cli import main

    human = _human_file(tmp_path / "h.mid")
    assert main(["simulate", "--human", str(human), "--out", str(tmp_path / "o.mid"), "--png", "/dev/full",
                 "--performer", "markov"]) == 2
    assert not (tmp_path / "o.mid").exists()  # refused before the run
    assert "--png /dev/full: not a regular file" in capsys.readouterr().err
    assert main(["roll", str(human), "--out", "/dev/full"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["livejam roll: cannot write /dev/full: No space left on device"]


def test_recording_is_replaced_atomically(tmp_path):
    from livejam.midi.spec import note_off, note_on

    rec = Recorder(0.0)
    rec.record_human(note_on(0, 60, 90), 0.1)
    rec.record_human(note_off(0, 60), 0.5)
    path = rec.save(tmp_path / "a.mid")
    first = path.read_bytes()
    rec.record_machine(note_on(1, 64, 90), 0.6)
    rec.record_machine(note_off(1, 64), 0.9)
    assert rec.save(path) == path and path.read_bytes() != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mid"]  # no temporary left behind


def test_bad_record_path_exits_2_with_one_line():
    proc = subprocess.run(livejam_cmd("run", "--engine", "markov", "--record", "/proc/x.mid"), cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "/proc/x.mid" in proc.stderr


@pytest.mark.parametrize("override", ["midi.queue_size=0", "scheduler.spin_s=-1", "beat.click_channel=0",
                                      "midi.channels=[16]", "health_check_s=0", "neural.temperature=-1",
                                      "neural.temperature=nan", "neural.top_p=0", "neural.top_p=5",
                                      "performer.max_polyphony=0", "performer.pitch_low=100"])
def test_settings_out_of_range_are_refused_at_load(override):
    with pytest.raises(ConfigError):
        load(DaemonConfig, None, [override, "performer.pitch_high=90"] if "pitch_low" in override else [override])


@pytest.mark.parametrize("args, word", [(["--temperature", "-1"], "temperature"), (["--temperature", "5"], "temperature"),
                                        (["--top-p", "5"], "top_p"), (["--density", "10"], "density"), (["--key", "H:major"], "key"),
                                        (["--key", "C:klingon"], "scale"),
                                        (["--max-polyphony", "0"], "max_polyphony"),
                                        (["--set", "midi.channels=[16]"], "channels"), (["--config", "."], "config")])
def test_bad_options_exit_2_with_one_line(args, word):
    proc = subprocess.run(livejam_cmd("run", "--engine", "markov", "--no-record", *args), cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and word in proc.stderr


def _human_file(path):
    from livejam.events import Note
    from livejam.midi.files import write_midi

    write_midi(path, [("human", [Note(0.5 * i, 0.5 * i + 0.3, 60 + i % 12, 90) for i in range(16)])])
    return path


def test_simulate_to_an_unwritable_file_exits_2_with_one_line(tmp_path):
    human = _human_file(tmp_path / "h.mid")
    proc = subprocess.run(livejam_cmd("simulate", "--engine", "markov", "--human", str(human), "--out",
                                      "/proc/out.mid"), cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_a_model_with_livejam_metadata_and_an_unrelated_graph_is_one_line(tmp_path, tiny_model):
    onnx = pytest.importorskip("onnx")  # the training extra's: the unrelated graph is written with it
    from onnx import TensorProto, helper

    real = onnx.load(str(tiny_model))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "unrelated", [x], [y])
    fake = helper.make_model(graph, opset_imports=real.opset_import)
    fake.ir_version = real.ir_version
    fake.metadata_props.extend(real.metadata_props)
    path = tmp_path / "fake.onnx"
    onnx.save(fake, str(path))
    human = _human_file(tmp_path / "h.mid")
    proc = subprocess.run(livejam_cmd("simulate", "--engine", "neural", "--model", str(path), "--human", str(human),
                                      "--out", str(tmp_path / "o.mid")), cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "fake.onnx" in proc.stderr


def test_onnxruntime_telemetry_is_off(monkeypatch, tiny_model):
    import onnxruntime as ort

    from livejam.engine.session import load_model

    calls = []
    real = ort.disable_telemetry_events
    monkeypatch.setattr(ort, "disable_telemetry_events", lambda: (calls.append(1), real()))
    load_model(tiny_model)
    assert calls


def test_reset_output_ends_machine_notes_and_every_note_on_its_channels():
    from livejam.clock import VirtualClock
    from livejam.events import TimedNote
    from livejam.scheduler import Scheduler

    sent = []
    sched = Scheduler(VirtualClock(0.0), lambda port, msg, t: sent.append(msg), channels=(0, 1))
    sched.submit([TimedNote(0.1, 0, 60, 90), TimedNote(0.5, 0, 60, 0), TimedNote(0.6, 1, 62, 90)])
    sched.run_until(0.2)
    sched.reset_output()  # a synth came back: it missed what was sent while it was away
    assert not sched.ledger.sounding()
    offs = {(m.channel, m.a) for m in sent if m.kind == "note_off"}
    assert offs == {(c, n) for c in (0, 1) for n in range(128)}
    sched.run_until(1.0)  # the performance goes on: the queued note-on still plays
    assert sent[-1].kind == "note_on" and sent[-1].a == 62


def test_a_stuck_add_on_close_delays_the_shutdown_a_second_then_it_goes_on(tmp_path):
    """Issue 21 #1: sounddevice's stop on a dead JACK server never returned, and the recording and
    the counters after it were lost. Each add-on's close has a deadline; the rest of the shutdown
    (the recording here) still runs, and the process is marked for a hard exit."""
    import threading
    import time
    from types import SimpleNamespace

    from livejam.midi.spec import note_off, note_on

    from livejam.session import AddOn

    class Stuck(AddOn):
        def __init__(self):
            self.release = threading.Event()

        def close(self):
            self.release.wait()

    class Closes(AddOn):
        def close(self):
            calls.append("closed")

    stuck, calls = Stuck(), []
    noop = Closes()
    daemon = Daemon(DaemonConfig(), addons=(stuck, noop))
    recorder = Recorder(0.0)
    recorder.record_human(note_on(0, 60, 100), 1.0)
    recorder.record_human(note_off(0, 60), 1.5)
    inq = SimpleNamespace(close=lambda: None, stop=lambda: None, drain=lambda: 0)
    scheduler = SimpleNamespace(stop=lambda flush: None, panic=lambda: calls.append("panic"))
    dispatcher = SimpleNamespace(clock_out=None, beat=SimpleNamespace(link=None))
    port = SimpleNamespace(close=lambda: None)
    threading.Timer(5.0, stuck.release.set).start()  # before the deadline: it would wait for good
    t0 = time.monotonic()
    try:
        session = SimpleNamespace(clock=SimpleNamespace(now=lambda: 0.0), inq=inq, dispatcher=dispatcher,
                                  scheduler=scheduler, recorder=recorder)
        daemon._shutdown(session, SimpleNamespace(inp=port, out=port, heartbeat=None, worker=None,
                                                  record_path=tmp_path / "s.mid"))
    finally:
        stuck.release.set()
    assert time.monotonic() - t0 < 3.0
    assert calls == ["panic", "closed"] and daemon.recording == tmp_path / "s.mid"
    assert daemon._left_behind


@pytest.mark.parametrize("name", ["SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGPIPE"])
def test_every_terminating_signal_is_a_stop_signal(name):
    """The handler the daemon installs covers them (the JACK test sends each one to a live daemon)."""
    from livejam.stopping import STOP_SIGNALS

    assert name in STOP_SIGNALS


@pytest.mark.parametrize("content", [None, b"MThd garbage", b""])
def test_a_bad_prompt_file_is_one_line_and_exit_2_not_markov(tmp_path, capsys, content):
    """Issue 19 #6 / 21 #10: a missing or garbled --prompt was reported as a broken model and the
    Markov continuator played the whole session; now it is refused at start, like a bad --model."""
    from livejam.cli import main
    from livejam.dispatch import build_performer

    prompt = tmp_path / "prompt.mid"
    if content is not None:
        prompt.write_bytes(content)
    with pytest.raises(ConfigError, match="--prompt"):
        build_performer(load(DaemonConfig, None, [f"neural.prompt={str(prompt)!r}"]), strict=False)
    human = _human_file(tmp_path / "h.mid")
    rc = main(["simulate", "--human", str(human), "--out", str(tmp_path / "o.mid"), "--prompt", str(prompt)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "--prompt" in err and str(prompt) in err, (rc, err)
    assert not (tmp_path / "o.mid").exists()


def test_version_is_printed_and_agrees_with_pyproject(capsys, monkeypatch):
    """Issue 19 #3: `livejam --version` did not exist."""
    import tomllib

    import livejam
    from livejam.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert capsys.readouterr().out.strip() == f"livejam {livejam.version()}"
    assert livejam.__version__ == declared  # the fallback (a source tree without metadata) says the same

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    import importlib.metadata

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    assert livejam.version() == declared


@pytest.mark.parametrize("override", ["midi.thru_channel=16", "midi.thru_channel=-1", "screen.refresh_hz=0",
                                      "screen.refresh_hz=-1", "screen.refresh_hz=nan", "osc.push_hz=1e6",
                                      "osc.push_hz=-1", "sound.block_size=-1", 'sound.latency="x"',
                                      "sound.latency=nan", "sound.latency=-0.1", "sound.gain=nan",
                                      "sound.gain=-1", "sound.samplerate=-5", "sound.machine_program=128"])
def test_new_surfaces_settings_are_range_checked(override, tmp_path, capsys):
    """Issue 21 #10: thru_channel 16 was a traceback at start, refresh_hz <= 0 or nan burned a core,
    push_hz 1e6 a third of one, and sounddevice answered a bad latency or block size with its own errors."""
    from livejam.cli import main

    with pytest.raises(ConfigError) as e:
        load(DaemonConfig, None, [override])
    assert override.split("=")[0] in str(e.value) and "\n" not in str(e.value)
    human = _human_file(tmp_path / "h.mid")
    assert main(["simulate", "--engine", "markov", "--human", str(human), "--out", str(tmp_path / "o.mid"),
                 "--set", override]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err


@pytest.mark.parametrize("override", ["midi.thru_channel=15", "screen.refresh_hz=30", "osc.push_hz=0",
                                      "sound.block_size=64", "sound.latency=0.02", 'sound.latency="high"',
                                      "sound.gain=1.5", "sound.samplerate=44100"])
def test_sane_settings_still_load(override):
    load(DaemonConfig, None, [override])


def test_a_model_whose_vocabulary_is_out_of_range_names_the_file(tmp_path, tiny_model):
    """Issue 21 #11: a negative tempo bound in the metadata failed with `math domain error`, no file name."""
    import json

    onnx = pytest.importorskip("onnx")
    from livejam.engine.session import ModelError, load_model

    model = onnx.load(str(tiny_model))
    for prop in model.metadata_props:
        if prop.key == "livejam.config":
            cfg = json.loads(prop.value)
            cfg["vocab"]["tempo_min_bpm"] = -40.0
            prop.value = json.dumps(cfg)
    path = tmp_path / "negative.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ModelError, match="negative.onnx.*tempo bounds -40.0"):
        load_model(path)


def test_startup_panic_covers_the_thru_and_click_channels_whatever_the_options():
    """Issue 21 #9: a session killed with --thru (or a count-in) and restarted without it left those
    notes stuck for good: the start-up panic covers those channels too, the shutdown panic does not
    (channel 1 is where the keyboard plays: no all-notes-off there without --thru)."""
    from livejam.clock import VirtualClock
    from livejam.scheduler import Scheduler

    sent = []
    sched = Scheduler(VirtualClock(0.0), lambda port, msg, t: sent.append((port, msg)), channels=(1, 2),
                      stale_channels=(0, 9))
    sched.panic(all_notes=True, startup=True)
    offs = {(port, m.channel, m.a) for port, m in sent if m.kind == "note_off"}
    assert offs == {(0, c, n) for c in (1, 2) for n in range(128)} | {(2, c, n) for c in (0, 9) for n in range(128)}
    assert len(offs) == sum(m.kind == "note_off" for _, m in sent)  # none twice
    assert {(m.channel, m.a) for _, m in sent if m.kind == "control_change"} == {(c, cc) for c in (0, 1, 2, 9)
                                                                                 for cc in (64, 123)}
    sent.clear()
    sched.panic()
    assert {m.channel for _, m in sent} == {1, 2}
    sent.clear()
    with_thru = Scheduler(VirtualClock(0.0), lambda port, msg, t: sent.append((port, msg)), channels=(1, 2),
                          thru_channel=0, stale_channels=(0, 9))
    with_thru.panic(all_notes=True, startup=True)
    assert sum(m.kind == "note_off" for _, m in sent) == 4 * 128  # the thru channel cleared once


def test_a_synth_that_connects_is_cleared_but_the_notes_sounding_play_on():
    from livejam.clock import VirtualClock
    from livejam.events import TimedNote
    from livejam.scheduler import THRU_PART, Scheduler

    sent = []
    sched = Scheduler(VirtualClock(0.0), lambda port, msg, t: sent.append((t, port, msg)), channels=(1, 2),
                      thru_channel=0, stale_channels=(0, 9))
    sched.submit([TimedNote(0.1, 0, 60, 90), TimedNote(0.1, THRU_PART, 64, 90), TimedNote(1.0, 0, 60, 0),
                  TimedNote(1.0, THRU_PART, 64, 0)])
    sched.run_until(0.5)
    sent.clear()
    sched.clear_for_listener()
    offs = {(m.channel, m.a) for _, port, m in sent if m.kind == "note_off"}
    assert offs == {(c, n) for c in (0, 1, 2, 9) for n in range(128)} - {(1, 60), (0, 64)}
    assert {port for _, port, _ in sent} == {2}  # clearing: not recorded, not sounded inside, no echo
    assert {(m.channel, m.a, m.b) for _, _, m in sent if m.kind == "control_change"} == {(c, 64, 0) for c in
                                                                                         (0, 1, 2, 9)}
    assert sched.ledger.sounding() == [(0, 1, 60), (1, 0, 64)]
    sent.clear()
    sched.run_until(2.0)
    assert [(t, m.channel, m.a) for t, _, m in sent] == [(1.0, 1, 60), (1.0, 0, 64)]  # ended in their time


def test_a_synth_back_after_a_loss_gets_every_note_off_on_the_stale_channels_too():
    from livejam.clock import VirtualClock
    from livejam.scheduler import Scheduler

    sent = []
    sched = Scheduler(VirtualClock(0.0), lambda port, msg, t: sent.append((port, msg)), channels=(1, 2),
                      stale_channels=(0, 9))
    sched.reset_output(all_notes=True)  # the keeper found the synth again: it may hold an earlier session's notes
    offs = {(port, m.channel, m.a) for port, m in sent if m.kind == "note_off"}
    assert offs == {(2, c, n) for c in (0, 1, 2, 9) for n in range(128)}  # clearing (Scheduler.aside_port)
