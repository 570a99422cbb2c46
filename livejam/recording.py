"""Session recording: everything heard and played goes to a two-track MIDI file.

Appends only (list.append is atomic under the GIL), so the performer thread
(human) and the scheduler thread (machine) can both record without a lock;
the file is written once, at the end of the session, on every exit path.
"""
from __future__ import annotations

import logging
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
        tracks = [("human", timed_to_notes(sorted(self.human, key=lambda n: n.time))),
                  ("machine", timed_to_notes(sorted(self.machine, key=lambda n: n.time)))]
        write_midi(path, tracks)
        log.info("session recorded to %s", path)
        return path


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
