"""The engine on a virtual clock: same Dispatcher, Scheduler and ledger as live,
fed raw MIDI with timestamps, faster than real time and deterministic.

`run_virtual` is the loop (used by `livejam simulate` and the tests);
`simulate_file` turns a MIDI file's chosen tracks into "the human" and writes
the human and machine parts to a two-track file on the input's timeline.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from livejam.beatmap import BeatGrid, beat_grid_from_midi
from livejam.clock import VirtualClock
from livejam.config import DaemonConfig
from livejam.dispatch import Dispatcher, build_performer
from livejam.events import Note, TimedNote, notes_to_timed, timed_to_notes
from livejam.midi.files import read_midi_tracks, write_midi
from livejam.midi.spec import Message
from livejam.scheduler import build_scheduler
from livejam.session import build_normaliser, counters

log = logging.getLogger(__name__)

# If the loop makes this many passes without the clock moving, the performer
# keeps asking to be polled "now": nudge time forward instead of hanging.
_MAX_STILL_PASSES = 1000
_NUDGE_S = 0.001


@dataclass
class VirtualRun:
    sent: list[tuple[float, Message]] = field(default_factory=list)  # (time, message) on the wire
    thru: list[tuple[float, Message]] = field(default_factory=list)  # the human's notes passed through (--thru)
    summary: dict = field(default_factory=dict)

    def machine_notes(self) -> list[TimedNote]:
        out = []
        for t, msg in self.sent:
            if msg.kind in ("note_on", "note_off"):
                out.append(TimedNote(t, msg.channel, msg.note, msg.velocity if msg.kind == "note_on" else 0))
        return out


def sounding_after(sent: Sequence[tuple[float, Message]]) -> int:
    """Notes left sounding by a message stream, counted from the wire alone
    (independent of the ledger): note-ons minus note-offs per (channel, note)."""
    on: set[tuple[int, int]] = set()
    for _, msg in sent:
        key = (msg.channel, msg.note)
        if msg.kind == "note_on" and msg.velocity > 0:
            on.add(key)
        elif msg.kind in ("note_on", "note_off"):
            on.discard(key)
        elif msg.kind == "control_change" and msg.control == 123:
            on = {k for k in on if k[0] != msg.channel}
    return len(on)


def run_virtual(events: Sequence[tuple[float, Sequence[int]]], performer, config: DaemonConfig | None = None,
                tail_s: float = 5.0, start: float = 0.0) -> VirtualRun:
    """Feed (time, raw bytes) input to `performer` on a virtual clock and shut down cleanly.

    Runs until `tail_s` after the last input (the answer to the last phrase),
    then the same shutdown as the daemon: performer.close, flush note-offs, panic.
    """
    config = config or DaemonConfig()
    clock = VirtualClock(start)
    run = VirtualRun()
    scheduler = build_scheduler(config, clock, lambda port, msg, t: (run.thru if port else run.sent).append((t, msg)))
    normaliser = build_normaliser(config)
    dispatcher = Dispatcher(performer, scheduler, normaliser, thru=config.midi.thru)
    events = sorted(events, key=lambda e: e[0])  # stable: equal times keep their order
    end = (events[-1][0] if events else start) + tail_s
    scheduler.panic()
    i, n = 0, len(events)
    last_t, still = None, 0
    while True:
        now = clock.now()
        t = min(events[i][0] if i < n else float("inf"), max(now, dispatcher.wakeup(now)), scheduler.next_time())
        if t > end:
            break
        if t == last_t:
            still += 1
            if still > _MAX_STILL_PASSES:
                t, still = t + _NUDGE_S, 0
        else:
            still = 0
        last_t = t
        scheduler.run_until(t)
        now = clock.now()
        while i < n and events[i][0] <= now:
            dispatcher.feed(events[i][0], events[i][1], now)
            i += 1
        dispatcher.pump(now)
    scheduler.run_until(end)
    now = clock.now()
    scheduler.stop(flush=True)  # queued note-ons go, queued note-offs stay
    dispatcher.close(now)  # the performer's offs for what it thinks sounds
    while scheduler.pending():
        scheduler.run_until(scheduler.next_time())
    sounding_before_panic = len(scheduler.ledger.sounding())
    scheduler.panic()
    run.summary = {
        "events_in": len(events),
        "events_out": len(run.sent),
        "machine_notes": sum(1 for _, m in run.sent if m.kind == "note_on" and m.velocity > 0),
        "sounding_before_panic": sounding_before_panic,
        "sounding_at_end": sounding_after(run.sent) + sounding_after(run.thru),
        **counters(normaliser, scheduler, dispatcher),
        "end_time": clock.now(),
    }
    return run


def select_tracks(tracks: list[tuple[str, list[Note]]], wanted: Sequence[str]) -> list[tuple[str, list[Note]]]:
    """Tracks by name or by index among the tracks that have notes; default: the first."""
    if not tracks:
        raise ValueError("the file has no notes")
    if not wanted:
        return tracks[:1]
    chosen = []
    for w in wanted:
        match = [t for t in tracks if t[0] == w]
        if not match and w.lstrip("-").isdigit() and -len(tracks) <= int(w) < len(tracks):
            match = [tracks[int(w)]]
        if not match:
            names = ", ".join(f"{i}:{name}" for i, (name, _) in enumerate(tracks))
            raise ValueError(f"no track {w!r}; tracks with notes: {names}")
        chosen.extend(match)
    return chosen


def human_events(notes: Sequence[Note]) -> list[tuple[float, list[int]]]:
    """Notes -> raw (time, bytes) input on channel 0, playable order (offs first at equal times)."""
    out = []
    for t in notes_to_timed(Note(n.start, n.end, n.pitch, n.velocity, 0) for n in notes):
        out.append((t.time, [0x90, t.pitch, t.velocity] if t.velocity > 0 else [0x80, t.pitch, 0]))
    return out


def beat_source(human: str | Path, beats: str | None = None, free: bool = False):
    """The BeatMap `simulate` plays on, on the file's own timeline: a click track (`beats`:
    one beat time per line, POP909's beat_midi.txt works as it is), free time, or by
    default the file's tempo map and time signatures, as a DAW would send clock."""
    if free:
        return None
    if beats:
        return BeatGrid.from_file(beats)
    return beat_grid_from_midi(human)


def simulate_file(human: str | Path, out: str | Path, tracks: Sequence[str] = (), config: DaemonConfig | None = None,
                  tail_s: float | None = None, performer=None, beats=None) -> dict:
    """`beats`: the BeatMap of the file's timeline (beat_source), None for free time."""
    config = config or DaemonConfig()
    chosen = select_tracks(read_midi_tracks(human), tracks)
    notes = sorted((n for _, ns in chosen for n in ns), key=lambda n: (n.start, n.pitch))
    if tail_s is None:  # room for the answer to the last phrase
        tail_s = config.performer.max_answer_s + config.performer.phrase_end_silence_s + 1.0
    performer = performer or build_performer(config)
    performer.set_beats(beats)
    run = run_virtual(human_events(notes), performer, config, tail_s=tail_s)
    machine = timed_to_notes(run.machine_notes())
    write_midi(out, [("human", notes), ("machine", machine)])
    summary = dict(run.summary)
    summary.update({"human_file": str(human), "human_tracks": [name for name, _ in chosen], "out": str(out),
                    "performer": type(performer).__name__, "seed": config.seed, "human_notes": len(notes), "machine_notes": len(machine),
                    "answer_delay_s": answer_delays(notes, machine)})
    return summary


def answer_delays(human: Sequence[Note], machine: Sequence[Note]) -> dict:
    """How long after the human's last key up the machine's first note came, for each time the
    human stopped and the machine then played before the human did again (call mode's answers)."""
    events = sorted([(n.start, 1) for n in human] + [(n.end, -1) for n in human] + [(n.start, 0) for n in machine])
    held, last_up, waiting, delays = 0, 0.0, False, []
    for t, kind in events:
        if kind == 1:
            held, waiting = held + 1, False
        elif kind == -1:
            held = max(0, held - 1)
            if held == 0:
                last_up, waiting = t, True
        elif waiting:
            delays.append(t - last_up)
            waiting = False
    if not delays:
        return {"n": 0}
    a = np.asarray(delays)
    return {"n": len(delays), "median": round(float(np.median(a)), 3), "p10": round(float(np.percentile(a, 10)), 3),
            "p90": round(float(np.percentile(a, 90)), 3), "min": round(float(a.min()), 3)}
