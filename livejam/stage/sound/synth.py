"""A General MIDI soundfont synth fed through a bounded, lock-free note queue.

Producers (the performer thread for the human's notes, the scheduler thread
for the machine's) only append to a `NoteQueue`; the one consumer, the audio
callback (or an offline render), drains it into fluidsynth before rendering
each block. So no MIDI thread ever waits on the synth's internal lock, and the
audio callback never waits on a MIDI thread.

The synth has one channel per role: 0 the human, 1 and 2 the machine's parts,
each with its own General MIDI program.
"""
from __future__ import annotations

import ctypes
import logging
from collections import deque
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

HUMAN, MACHINE = 0, 1  # synth channel of the human; the machine's parts start here
NOTE_ON, NOTE_OFF, CONTROL = 0, 1, 2
CC_ALL_NOTES_OFF = 123

# Where Debian's (and most distributions') General MIDI soundfonts live; the first found is used.
SOUNDFONTS = (
    "/usr/share/sounds/sf2/TimGM6mb.sf2",  # Debian timgm6mb-soundfont (6 MB): `make sound` installs it
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/soundfonts/default.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
)


class SoundUnavailable(RuntimeError):
    """No synth library, soundfont or audio device; the message is one line."""


def find_soundfont(wanted: str = "") -> Path:
    if wanted:
        path = Path(wanted).expanduser()
        if not path.exists():
            raise SoundUnavailable(f"soundfont {path} does not exist")
        return path
    for candidate in SOUNDFONTS:
        if Path(candidate).exists():
            return Path(candidate)
    raise SoundUnavailable("no General MIDI soundfont found (Debian: apt install timgm6mb-soundfont, "
                           "or `make sound`; or pass --set sound.soundfont=FILE.sf2)")


class NoteQueue:
    """Bounded hand-off into the synth: append-only producers, one draining consumer.

    deque.append and deque.popleft are atomic under the GIL: no lock, never
    blocks. When full, new events are dropped and counted (`overflow`); the
    synth's all-notes-off at the end ends anything a dropped note-off left.
    """

    def __init__(self, maxsize: int = 1024):
        self.maxsize = maxsize
        self.overflow = 0
        self._q: deque = deque()

    def put(self, channel: int, kind: int, a: int, b: int = 0) -> None:
        if len(self._q) >= self.maxsize:
            self.overflow += 1
            return
        self._q.append((channel, kind, a, b))

    def drain(self):
        q = self._q
        while q:
            yield q.popleft()


class Synth:
    """pyfluidsynth over libfluidsynth: programs per role, renders blocks of int16 stereo."""

    def __init__(self, soundfont: str | Path = "", samplerate: int = 48000, programs: tuple[int, int] = (0, 4),
                 gain: float = 0.5, queue_size: int = 1024):
        try:
            import fluidsynth
        except (ImportError, OSError) as e:  # OSError: the Python package is there, libfluidsynth is not
            raise SoundUnavailable(f"no synth: {e}; pip install 'livejam[sound]' and apt install libfluidsynth3 "
                                   "(or `make sound`)") from None
        self.soundfont = find_soundfont(str(soundfont))
        self.samplerate = int(samplerate)
        self._fs = fluidsynth.Synth(gain=gain, samplerate=float(samplerate))
        sfid = self._fs.sfload(str(self.soundfont))
        if sfid < 0:
            raise SoundUnavailable(f"fluidsynth could not load {self.soundfont}")
        self.programs = {HUMAN: programs[0], MACHINE: programs[1], MACHINE + 1: programs[1]}
        for channel, program in self.programs.items():
            self._fs.program_select(channel, sfid, 0, program)
        self._write_s16 = fluidsynth.fluid_synth_write_s16
        self.queue = NoteQueue(queue_size)
        self.events = 0  # applied to the synth

    def apply_pending(self) -> None:
        """Apply what the queue holds (the consumer's side: audio callback or offline render)."""
        fs = self._fs
        for channel, kind, a, b in self.queue.drain():
            if kind == NOTE_ON:
                fs.noteon(channel, a, b)
            elif kind == NOTE_OFF:
                fs.noteoff(channel, a)
            elif a == CC_ALL_NOTES_OFF:
                fs.all_notes_off(channel)
            else:
                fs.cc(channel, a, b)
            self.events += 1

    def render(self, frames: int) -> np.ndarray:
        """The next `frames` frames, (frames, 2) int16, after applying queued events."""
        out = np.empty((frames, 2), dtype=np.int16)
        self.render_into(out)
        return out

    def render_into(self, out: np.ndarray) -> None:
        """Render straight into `out` ((frames, 2) int16, C-contiguous: sounddevice's output buffer),
        after applying queued events: no sample buffer is allocated on the audio thread."""
        self.apply_pending()
        ptr = out.ctypes.data_as(ctypes.c_void_p)
        # interleaved stereo: left at offset 0, right at 1, both with a stride of 2 samples
        self._write_s16(self._fs.synth, out.shape[0], ptr, 0, 2, ptr, 1, 2)

    def render_seconds(self, seconds: float) -> np.ndarray:
        """Offline render (no device): float samples in [-1, 1], (frames, 2)."""
        frames = int(round(seconds * self.samplerate))
        return self.render(frames).astype(np.float32) / 32768.0

    def program_of(self, channel: int) -> int:
        return int(self._fs.channel_info(channel)[2])

    def close(self) -> None:
        for channel in self.programs:
            self._fs.all_notes_off(channel)
        self._fs.delete()


def rms(samples: np.ndarray) -> float:
    """Root mean square of float or int16 samples, on a [-1, 1] scale."""
    x = samples.astype(np.float64)
    if samples.dtype == np.int16:
        x /= 32768.0
    return float(np.sqrt(np.mean(x * x))) if x.size else 0.0
