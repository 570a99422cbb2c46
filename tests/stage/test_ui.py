"""The status screen's data and picture, and the plain log, on a virtual session (no terminal)."""
from __future__ import annotations

import io

import pytest

from livejam.config import DaemonConfig
from livejam.midi.spec import note_off, note_on
from livejam.stage.ui.status import StatusReader

from tests.fakes import FakeCallResponse, session

rich = pytest.importorskip("rich")


def played(s):
    """A few heard and played notes in the recorder (as the live threads append them), lateness values."""
    r = s.recorder
    for i, p in enumerate((60, 64, 67)):
        r.record_human(note_on(0, p, 100), 11.0 + i * 0.5)
        r.record_human(note_off(0, p), 11.3 + i * 0.5)
    r.record_machine(note_on(1, 72, 90), 13.0)  # still sounding
    for v in (0.0001, 0.0002, 0.004):
        s.scheduler.counters.lateness.append(v)
        s.scheduler.counters.timed += 1
    s.clock.advance(14.0)


def test_reader_sees_notes_lateness_and_counters():
    s = session(FakeCallResponse())
    played(s)
    reader = StatusReader(s, window_s=60.0, roll_s=8.0)
    snap = reader.read()
    assert snap.t == pytest.approx(4.0)
    assert sorted((n.who, n.pitch, n.end is None) for n in snap.notes) == [
        ("human", 60, False), ("human", 64, False), ("human", 67, False), ("machine", 72, True)]
    assert snap.lateness_ms["n"] == 3 and snap.lateness_ms["p99"] == pytest.approx(3.92, abs=0.1)
    assert reader.read().lateness_ms["n"] == 3  # nothing new: the same window, not counted twice
    s.clock.advance(100.0)
    assert reader.read().lateness_ms["n"] == 0  # older than a minute: out of the window


def test_screen_renders_roll_controls_and_stats():
    from rich.console import Console

    from livejam.stage.ui.screen import render

    s = session(FakeCallResponse())
    played(s)
    console = Console(record=True, width=110, color_system=None)
    console.print(render(StatusReader(s).read(), width=60))
    text = console.export_text()
    for word in ("mode", "tempo free time", "lateness p50", "p99", "counters", "overflow 0", "xruns unknown", "C5", "E4", "█ you",
                 "▒ livejam", "[p] panic"):
        assert word in text, (word, text)
    assert text.count("█") >= 10 and text.count("▒") > 3  # the human's notes and the machine's held one


def test_plain_mode_writes_a_line_per_change():
    from livejam.stage.ui import StatusAddon

    s = session(FakeCallResponse())
    out = io.StringIO()
    ui = StatusAddon(DaemonConfig(), "plain", stream=out)
    ui.start(s)
    ui.close()  # the thread is not needed: drive the steps
    ui.stream = out = io.StringIO()
    before = ui.plain_step(None)
    assert out.getvalue().count("\n") == 1 and "mode call" in out.getvalue()
    before = ui.plain_step(before)
    assert out.getvalue().count("\n") == 1  # nothing changed: silence
    s.dispatcher.performer.mode = "duet"
    ui.on_event("output port lost: fluidsynth")  # what Daemon.event hands to add-ons
    ui.plain_step(before)
    lines = out.getvalue().splitlines()[1:]
    assert len(lines) == 2 and "mode call -> duet" in lines[0] and "port lost" in lines[1]


def test_plain_thread_flushes_events_at_close():
    from livejam.stage.ui import StatusAddon

    s = session(FakeCallResponse())
    out = io.StringIO()
    ui = StatusAddon(DaemonConfig(), "plain", stream=out)
    ui.start(s)
    ui.on_event("output port lost: synth")  # then the session ends at once
    ui.close()
    assert "output port lost: synth" in out.getvalue()


def test_tempo_and_beat_from_midi_clock():
    s = session(FakeCallResponse())
    d = s.dispatcher
    d.feed(10.0, [0xFA], 10.0)  # start
    tick = 0.5 / 24  # 120 BPM
    for i in range(49):  # two beats and one tick
        d.feed(10.0 + i * tick, [0xF8], 10.0 + i * tick)
    s.clock.advance(10.0 + 48 * tick)  # the screen reads the beat clock now: at the last tick
    snap = StatusReader(s).read()
    assert snap.bpm == pytest.approx(120.0, abs=0.5) and snap.beat == pytest.approx(2.0)


def test_the_plain_lines_need_no_rich(tmp_path):
    """Issue 19 #3: a base install (no rich) lost every status line, --plain too: the plain lines
    imported the screen's module, which imports rich at the top."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    code = """
import sys
class NoRich:
    def find_spec(self, name, path=None, target=None):
        if name == "rich" or name.startswith("rich."):
            raise ImportError("no rich here")
sys.meta_path.insert(0, NoRich())
for m in [k for k in sys.modules if k == "rich" or k.startswith("rich.")]:
    del sys.modules[m]
from tests.stage.test_osc import session
from tests.fakes import FakeCallResponse
from livejam.stage.ui import StatusAddon
from livejam.stage.ui.plain import changes
from livejam.stage.ui.status import StatusReader
snap = StatusReader(session(FakeCallResponse())).read()
print(changes(None, snap)[0])
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("mode call")  # the first plain line, rendered without rich
