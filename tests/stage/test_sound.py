"""Built-in sound: the synth renders offline with no device; the audio callback drains the bounded
note queue; no device is one line; over JACK's dummy driver the stream really plays."""
from __future__ import annotations

import importlib.util
import time
from types import SimpleNamespace

import numpy as np
import pytest

from livejam.config import SoundConfig
from livejam.events import TimedNote
from livejam.midi.spec import control_change, note_off, note_on

synth_mod = pytest.importorskip("livejam.stage.sound.synth")
try:
    synth_mod.find_soundfont()
except synth_mod.SoundUnavailable as e:
    pytest.fail(f"{e} (`make test` installs it)")

from livejam.stage.sound.output import SoundOut  # noqa: E402
from livejam.stage.sound.synth import HUMAN, MACHINE, NOTE_OFF, NOTE_ON, NoteQueue, Synth, rms  # noqa: E402

# The base install has no pyfluidsynth (livejam[sound]): the synth's own tests skip there; with it installed
# and libfluidsynth missing they fail (`make test` installs it).
needs_synth = pytest.mark.skipif(importlib.util.find_spec("fluidsynth") is None,
                                 reason="pyfluidsynth (livejam[sound]) is not installed")
FLOOR = 1e-3  # silence renders ~1.5e-5 RMS here; one piano note at velocity 100 ~2e-2


@needs_synth
def test_offline_render_carries_sound_after_a_note_on():
    synth = Synth(samplerate=48000, programs=(0, 4))
    try:
        assert synth.program_of(HUMAN) == 0 and synth.program_of(MACHINE) == 4
        assert rms(synth.render_seconds(0.1)) < FLOOR
        synth.queue.put(HUMAN, NOTE_ON, 60, 100)
        assert rms(synth.render_seconds(0.1)) > FLOOR
        synth.queue.put(HUMAN, NOTE_OFF, 60)
        synth.render_seconds(2.0)  # the release dies away
        assert rms(synth.render_seconds(0.1)) < FLOOR
    finally:
        synth.close()


def test_note_queue_is_bounded_and_counts_overflow():
    q = NoteQueue(maxsize=3)
    for p in range(5):
        q.put(0, NOTE_ON, 60 + p, 100)
    assert [e[2] for e in q.drain()] == [60, 61, 62] and q.overflow == 2


@needs_synth
def test_audio_callback_renders_both_parts_and_panic_silences():
    out = SoundOut(SoundConfig(), machine_channels=(1, 2))
    out.synth = Synth(samplerate=48000)
    status = SimpleNamespace(output_underflow=False)
    block = np.zeros((256, 2), dtype=np.int16)
    try:
        out.on_human(TimedNote(0.0, 0, 60, 100), 0.0)
        out.on_sent(0, note_on(2, 67, 100), 0.0)  # the machine's part 1
        out.on_sent(1, note_on(0, 72, 100), 0.0)  # --thru copy of the human: not doubled
        out._callback(block, 256, None, status)
        assert out.synth.events == 2 and rms(block) > FLOOR and out.counters.level > 0
        out.on_human(TimedNote(0.1, 0, 60, 0), 0.1)
        out.on_sent(0, note_off(2, 67), 0.1)
        out.on_sent(0, control_change(2, 123, 0), 0.1)
        for _ in range(400):  # 2 s of blocks: the releases die away
            out._callback(block, 256, None, status)
        assert rms(block) < FLOOR and out.counters.blocks == 401 and out.counters.callback_errors == 0
    finally:
        out.close()


def test_no_audio_device_is_one_line_and_not_an_error():
    out = SoundOut(SoundConfig(device="no such sound card"))
    line = out.open()
    assert line.startswith("sound: off (") and "MIDI keeps working" in line and "\n" not in line
    out.on_human(TimedNote(0.0, 0, 60, 100), 0.0)  # taps are harmless with no sound
    out.close()


@pytest.mark.jack
def test_plays_through_jack_dummy_driver(jack_server):
    import sounddevice as sd

    sd._terminate()  # PortAudio lists devices when initialised: see the test's JACK server
    sd._initialize()
    out = SoundOut(SoundConfig(block_size=256))
    try:
        line = out.open()
        assert "output latency" in line, line
        assert out.synth.samplerate == 48000  # JACK's rate
        out.on_human(TimedNote(0.0, 0, 60, 110), 0.0)
        deadline = time.monotonic() + 10.0
        while out.counters.level < 0.01 and time.monotonic() < deadline:
            time.sleep(0.01)  # polling a condition with a deadline, not a fixed wait
        assert out.counters.level >= 0.01 and out.counters.blocks > 0
        assert out.counters.callback_errors == 0
    finally:
        out.close()
        sd._terminate()  # leave PortAudio's JACK client before the fixture stops the server
        sd._initialize()
        sd._terminate()


def test_no_device_at_all_is_one_clear_line_on_stdout_and_nothing_on_stderr(tmp_path):
    """A machine with no sound card and no JACK server: PortAudio finds no output; one line, no noise."""
    import os
    import subprocess
    import sys

    code = ("from livejam.config import SoundConfig; from livejam.stage.sound.output import SoundOut; "
            "o = SoundOut(SoundConfig()); print(o.open()); o.close()")
    env = dict(os.environ, JACK_DEFAULT_SERVER="livejam-no-such-server", JACK_NO_START_SERVER="1")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("sound: off (") and proc.stdout.count("\n") == 1
    assert proc.stderr == ""
