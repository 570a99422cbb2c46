"""Session recording: everything heard and played goes to a two-track MIDI file.

Appends only (list.append is atomic under the GIL), so the performer thread
(human) and the scheduler thread (machine) can both record without a lock.
The path is checked before the session starts (`check_writable`); the daemon
rewrites the file every few seconds and at the end, on every exit path, each
time to a temporary file renamed over the last one: a crash or a full disk
loses at most the last seconds, never the file.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from livejam.events import TimedNote, timed_to_notes
from livejam.midi.files import write_midi
from livejam.midi.spec import Message

log = logging.getLogger(__name__)


class Recorder:
    def __init__(self, t0: float):
        self.t0 = t0  # clock time of the session start = time 0 in the file
        self.human: list[TimedNote] = []
        self.machine: list[TimedNote] = []

    @staticmethod
    def _note(msg: Message, t: float) -> TimedNote | None:
        if msg.kind == "note_on" and msg.velocity > 0:
            return TimedNote(t, msg.channel, msg.note, msg.velocity)  # part = channel: pairs ons/offs per channel
        if msg.kind in ("note_on", "note_off"):
            return TimedNote(t, msg.channel, msg.note, 0)
        return None

    def record_human(self, msg: Message, t: float) -> None:
        note = self._note(msg, t - self.t0)
        if note is not None:
            self.human.append(note)

    def record_machine(self, msg: Message, t: float) -> None:
        note = self._note(msg, t - self.t0)
        if note is not None:
            self.machine.append(note)

    def empty(self) -> bool:
        """Nothing heard and nothing played: such a session is not worth a file."""
        return not self.human and not self.machine

    def save(self, path: str | Path) -> Path:
        path = Path(path).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        human, machine = list(self.human), list(self.machine)  # snapshots: the threads keep appending
        tracks = [("human", timed_to_notes(sorted(human, key=lambda n: n.time))),
                  ("machine", timed_to_notes(sorted(machine, key=lambda n: n.time)))]
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            write_midi(tmp, tracks)
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
        log.info("session recorded to %s", path)
        return path


class RecordPathError(ValueError):
    """The recording cannot be written where asked (one-line message)."""


def check_writable(path: str | Path) -> None:
    """Raise RecordPathError unless a file can be written at `path` (creating its folder)."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise RecordPathError(f"--record {path}: is a directory")
    probe = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(probe, "wb") as f:
            f.write(b"MThd" + bytes(4096))  # some bytes, so a full disk says so now
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise RecordPathError(f"cannot record to {path}: {e.strerror or e}") from None
    finally:
        try:
            probe.unlink()
        except OSError:
            pass


def default_path(folder: str | Path) -> Path:
    """A fresh file name in `folder`, by start time (never overwrites a session)."""
    if not folder:
        from livejam.config import user_sessions_dir

        folder = user_sessions_dir()
    folder = Path(folder).expanduser()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = folder / f"session-{stamp}.mid"
    n = 1
    while path.exists():
        path = folder / f"session-{stamp}-{n}.mid"
        n += 1
    return path
