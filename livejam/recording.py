"""Session recording: everything heard and played goes to a MIDI file a DAW can use.

The file starts a little before the first note (a bar line of the beat clock, else 1 s before it),
carries the beat clock's tempo and meter (a `--bpm` session lands on the DAW's grid; a followed or
incoming clock is written with the tempo changes it had), and keeps the parts apart: tracks `human`,
`machine` and `count-in`, every note on the channel it was played on.

Off the live path: the performer thread (human) and the scheduler thread (machine) only append to
lists (list.append is atomic under the GIL: no lock). `flush()`, on the daemon's main thread every
few seconds, encodes what came since the last flush into each track's bytes (livejam.midi.growing)
and trims the lists to the last KEEP events (the status screen's roll reads those); `save()` writes
the bytes to a temporary file renamed over the last one. A live session's periodic save takes the
file's image (immutable pieces: nothing copied) and leaves the writing to the recording thread
(FileWriter), so its cost on the live path does not grow with the session; a crash or a full disk
loses at most the last seconds, never the file; memory holds the encoded file (a few bytes an event), and nothing with `--no-record`.
The path is checked before the session starts (`check_writable`).
"""
from __future__ import annotations

import bisect
import logging
import math
import os
import threading
import time
from collections import deque
from pathlib import Path

from livejam.events import TimedNote
from livejam.midi.growing import GrowingTrack, header, meta_chunk
from livejam.midi.spec import Message

log = logging.getLogger(__name__)

LEAD_IN_BEATS = 1.0  # the file starts at the bar line at least this far before the first note ...
LEAD_IN_S = 1.0  # ... or this long before it in free time
FREE_BPM = 120.0  # the file's tempo where there is no beat clock
TICKS_PER_BEAT = 480
KEEP = 512  # events of each part kept as notes after a flush (the status screen reads the last 400)
PARTS = ("human", "machine", "count-in")
TEMPO_STEP = 0.002  # a tempo change smaller than this (relative) is not written: a clock's jitter


class Recorder:
    """`beats`: the session's beat clock (a BeatMap with bpm_at and bar_at), None: free time.
    `click_channel`: the count-in's channel (its clicks get a track of their own). `keep`: False
    with --no-record: the lists are trimmed and nothing is encoded."""

    def __init__(self, t0: float, beats=None, click_channel: int | None = None, keep: bool = True):
        self.t0 = t0  # clock time of the session start (times below are relative to it)
        self.beats = beats
        self.click_channel = click_channel
        self.keep = keep
        self.human: list[TimedNote] = []  # part = the MIDI channel it came on
        self.machine: list[TimedNote] = []
        self.clicks: list[TimedNote] = []
        self.tempo: list[tuple[float, float | None]] = []  # (time, bpm) where the beat clock's tempo changed
        self.origin: float | None = None  # the file's time 0, set at the first note
        self.meter: int | None = None
        self.notes = 0  # note-ons heard and played, ever (the lists are trimmed)
        self._tracks = {name: GrowingTrack(name) for name in PARTS}
        self._done = {name: 0 for name in PARTS}  # events of each list already encoded
        self._points: list[tuple[float, int, float]] = []  # the file's tempo map so far (_tempo_points)
        self._tempo_done = 0
        self.writer: FileWriter | None = None  # the recording thread, from the first background save

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
            self._timeline(note, t)
            self.human.append(note)

    def record_machine(self, msg: Message, t: float) -> None:
        note = self._note(msg, t - self.t0)
        if note is None:
            return
        if note.part == self.click_channel:
            self.clicks.append(note)
            return
        self._timeline(note, t)
        self.machine.append(note)

    def _timeline(self, note: TimedNote, t: float) -> None:
        """The tempo in force at the note, and the file's start at the first one."""
        bpm = self.beats.bpm_at(t) if self.beats is not None else None
        if not self.tempo:
            self.tempo.append((note.time, bpm))
        elif bpm != self.tempo[-1][1]:  # two threads may both append a change: harmless
            self.tempo.append((self._changed_at(self.tempo[-1], t), bpm))
        if note.velocity > 0:
            self.notes += 1
            if self.origin is None:
                self.origin = self._start_before(t) - self.t0

    def _changed_at(self, last: tuple[float, float | None], t: float) -> float:
        """When the tempo changed from `last` (its time, relative): the beat clock's tempo is a step
        function, so the step after `last` is found by halving (to a millisecond), not taken at the note."""
        lo, hi = last[0] + self.t0, t
        while hi - lo > 1e-3:
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if self.beats.bpm_at(mid) == last[1] else (lo, mid)
        return hi - self.t0

    def _start_before(self, t: float) -> float:
        if self.beats is None or self.beats.bpm_at(t) is None:
            return t - LEAD_IN_S
        beat = self.beats.beat_at(t) - LEAD_IN_BEATS
        bar = self.beats.bar_at(beat)
        if bar is not None:
            self.meter = bar[1]
        return self.beats.time_at(beat - bar[0] if bar is not None else math.floor(beat))

    def empty(self) -> bool:
        """Nothing heard and nothing played: such a session is not worth a file."""
        return self.notes == 0

    # --- the file (the daemon's main thread) ----------------------------------------------------
    def _tempo_points(self) -> list[tuple[float, int, float]]:
        """(seconds from the file's start, tick, bpm) from which each tempo holds, extended by the
        changes since the last call; the first note's tempo holds over the lead-in, free time is FREE_BPM."""
        points = self._points
        end = len(self.tempo)
        for t, bpm in self.tempo[self._tempo_done:end]:
            t, bpm = t - self.origin, bpm or FREE_BPM
            if not points or t <= 0.0:
                points[:] = [(0.0, 0, bpm)]
            elif t > points[-1][0] and abs(bpm / points[-1][2] - 1.0) > TEMPO_STEP:
                t0, tick0, bpm0 = points[-1]
                points.append((t, int(round(tick0 + (t - t0) * bpm0 / 60.0 * TICKS_PER_BEAT)), bpm))
        self._tempo_done = end
        return points or [(0.0, 0, FREE_BPM)]

    def flush(self) -> None:
        """Encode what came since the last flush; trim the lists to their last KEEP events."""
        points = self._tempo_points() if self.keep and self.origin is not None else None
        starts = [p[0] for p in points] if points else []
        for name, events in (("human", self.human), ("machine", self.machine), ("count-in", self.clicks)):
            end = len(events)  # the other threads append beyond it meanwhile: never touched here
            if points is not None:
                track = self._tracks[name]
                for e in events[self._done[name]:end]:
                    t = e.time - self.origin
                    if t < -1e-9:
                        continue  # before the file's start (count-in clicks a bar before)
                    t0, tick0, bpm = points[max(0, bisect.bisect_right(starts, t) - 1)]
                    track.note(int(round(tick0 + (t - t0) * bpm / 60.0 * TICKS_PER_BEAT)), e.part, e.pitch, e.velocity)
                self._done[name] = end
            elif not self.keep:
                self._done[name] = end
            cut = min(self._done[name], end - KEEP)
            if cut > 0:
                del events[:cut]  # one C call: the appending thread and the screen's slice see before or after
                self._done[name] -= cut

    def image(self) -> list[bytes]:
        """The whole file as pieces to write in order (what came is encoded first). The pieces
        never change: another thread may write them while the session goes on."""
        self.flush()
        points = self._tempo_points() if self.origin is not None else [(0.0, 0, FREE_BPM)]
        tracks = [self._tracks[name] for name in PARTS if name != "count-in" or self._tracks[name].events]
        end = max(t.last_tick for t in tracks)
        pieces = [header(TICKS_PER_BEAT, 1 + len(tracks)),
                  meta_chunk([(tick, bpm) for _, tick, bpm in points], self.meter)]
        for track in tracks:
            pieces += track.image(end)
        return pieces

    def save(self, path: str | Path, timeout: float = 10.0) -> Path:
        """Write the file now, on this thread (at the end of a session); a write in the background
        finishes first (both use the same temporary file). OSError if it cannot be written."""
        if self.writer is not None:
            self.writer.wait(timeout)
        path = write_file(Path(path).expanduser(), self.image())
        log.info("session recorded to %s", path)
        return path

    def save_in_background(self, path: str | Path) -> bool:
        """The periodic save of a live session: the file's image is taken here (what came since
        the last flush is encoded: a second of music at most), the writing is the recording
        thread's. False when the last write has not finished (a slow disk): this one is skipped."""
        if self.writer is None:
            self.writer = FileWriter()
        return self.writer.offer(Path(path).expanduser(), self.image)

    def wait_saved(self, timeout: float) -> bool:
        """Until the background write in hand is done; False if it was not within `timeout`."""
        return self.writer.wait(timeout) if self.writer is not None else True

    @property
    def saved(self) -> Path | None:
        """Where the last background save was written; None before the first."""
        return self.writer.saved if self.writer is not None else None


def write_file(path: Path, pieces: list[bytes]) -> Path:
    """The pieces to a temporary file renamed over `path`: a failed write never harms the last file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            for piece in pieces:
                f.write(piece)  # releases the GIL while the bytes go out
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


class FileWriter:
    """The recording thread: writes one file image at a time, off the live path. A failing
    write (a full disk) is said once and the session plays on; the last good file stays."""

    def __init__(self):
        self.saved: Path | None = None
        self.skipped = 0  # offers refused while a write was still going
        self.failures = 0
        self.write_ms: deque[float] = deque(maxlen=1000)  # how long the last writes took (this thread's)
        self._slot: tuple[Path, list[bytes]] | None = None
        self._busy = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="livejam-recording", daemon=True)
        self._thread.start()

    def offer(self, path: Path, image) -> bool:
        """Queue `image()` (called here, only when the thread is free) for writing to `path`."""
        with self._cond:
            if self._busy:
                self.skipped += 1
                return False
            self._busy = True
        try:
            pieces = image()
        except BaseException:
            with self._cond:
                self._busy = False
            raise
        with self._cond:
            self._slot = (path, pieces)
            self._cond.notify_all()
        return True

    def wait(self, timeout: float) -> bool:
        """Until the write in hand is done; False if it was not within `timeout`."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._busy, timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._slot is not None)
                (path, pieces), self._slot = self._slot, None
            t0 = time.perf_counter()
            try:
                self.saved = write_file(path, pieces)
                self.write_ms.append((time.perf_counter() - t0) * 1e3)
            except OSError as e:
                self.failures += 1
                if self.failures == 1:
                    log.error("recording to %s failed: %s (playing on)", path, e.strerror or e)
            except Exception:  # noqa: BLE001 - the recording thread must not die silently
                self.failures += 1
                log.exception("recording to %s failed (playing on)", path)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()


class RecordPathError(ValueError):
    """The recording cannot be written where asked (one-line message)."""


def check_writable(path: str | Path, option: str = "--record") -> None:
    """Raise RecordPathError unless a file can be written at `path` (creating its folder): checked
    before a session or a simulation, not after it."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise RecordPathError(f"{option} {path}: is a directory")
    if path.exists() and not path.is_file():  # /dev/full, a FIFO: the sibling probe below would pass
        raise RecordPathError(f"{option} {path}: not a regular file")
    probe = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(probe, "wb") as f:
            f.write(b"MThd" + bytes(4096))  # some bytes, so a full disk says so now
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise RecordPathError(f"{option} {path}: cannot write there: {e.strerror or e}") from None
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
