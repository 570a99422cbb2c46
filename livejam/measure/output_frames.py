"""livejam's output process heard by a JACK client that stamps each arrival with its frame.

    python -m livejam.measure.output_frames --start-jack [--seconds 20] [--period 64] [--rate 48000] [--json]

Two output processes (livejam/output/), fed the same kind of notes ahead of time as a performer
feeds them, on one private JACK server (dummy driver, synchronous): one writes each message at the
frame of its time (`scheduler.jack_frames`, livejam/midi/jack_frames.py, the default), the other
through rtmidi (`--set scheduler.jack_frames=false`), which writes at the start of the next period.
A receiving client in a process of its own (JACK-Client's libjack must not meet rtmidi's copy)
stamps each arrival with its frame, and turns the frame into perf_counter time by the start of its
period as its promptest recent callback saw it (as the frame port does when it sends). Lateness is
that arrival time minus the note's intended time, so both paths are timed by one clock as a synth
rendering at frame offsets would hear them. Notes of the two paths interleave at random, 5-25 ms
apart, so load falls on both. (livejam.measure.frames times the same two ways of writing without
livejam: a bare JACK-Client sender and a bare rtmidi one.)
"""
from __future__ import annotations

import json
import random
import subprocess
import sys
import time

from livejam.stats import summary_ms

LEAD_S = 0.5  # the first note's distance from the start
RECEIVER = """
import collections, json, sys, time, jack
client = jack.Client("livejam-heard-rx", no_start_server=True)
port = client.midi_inports.register("in")
rate = client.samplerate
cycles, got = collections.deque(maxlen=8), []
def after(f, start):
    return ((f - start + 2**31) % 2**32) - 2**31
@client.set_process_callback
def process(frames):
    now, start = time.perf_counter(), client.last_frame_time
    cycles.append((start, now))
    began = min(t - after(f, start) / rate for f, t in cycles)
    for offset, data in port.incoming_midi_events():
        b = bytes(data)
        got.append((began + offset / rate, offset, b[0], b[1]))
with client:
    for source in sys.argv[1:]:
        client.connect(source, port.name)
    print(json.dumps({"rate": rate, "period": client.blocksize}), flush=True)
    sys.stdin.readline()
    time.sleep(0.2)
print(json.dumps(got), flush=True)
"""
PATHS = (("frames", True), ("rtmidi", False))  # name, scheduler.jack_frames


def schedule(seconds: float, start: float, seed: int) -> list[tuple[float, int]]:
    """(intended time, path index): note-ons 5-25 ms apart, each path's turn drawn at random."""
    rng = random.Random(seed)
    out, t = [], 0.0
    while t < seconds:
        out.append((start + t, rng.randrange(len(PATHS))))
        t += rng.uniform(0.005, 0.025)
    return out


def measure(seconds: float, seed: int = 0) -> dict:
    """Both paths on the JACK server this process uses (JACK_DEFAULT_SERVER) for `seconds`."""
    import rtmidi

    from livejam.config import DaemonConfig, load
    from livejam.events import TimedNote
    from livejam.midi.normalise import EchoFilter
    from livejam.output.remote import OutputProcess

    procs, ports = [], []
    rx = None
    try:
        for name, frames in PATHS:
            cfg = load(DaemonConfig, None, [f"scheduler.jack_frames={str(frames).lower()}"])
            proc = OutputProcess(cfg, EchoFilter(), lambda *a: None)
            procs.append(proc)
            ports.append(proc.open_port(rtmidi.API_UNIX_JACK, "", f"livejam-heard-{name}").own_port)
        rx = subprocess.Popen([sys.executable, "-c", RECEIVER, *ports], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
        server = json.loads(rx.stdout.readline() or "null")
        if server is None:
            raise RuntimeError("the receiving JACK client did not start")
        for proc in procs:
            proc.start()
        plan = schedule(seconds, time.perf_counter() + LEAD_S, seed)
        for i, (t, path) in enumerate(plan):
            procs[path].submit([TimedNote(t, 0, 36 + i % 48, 90), TimedNote(t + 0.004, 0, 36 + i % 48, 0)])
        time.sleep(LEAD_S + seconds + 0.3)
        for proc in procs:
            proc.stop()
        rx.stdin.write("stop\n")
        rx.stdin.flush()
        arrivals = json.loads(rx.stdout.readline() or "[]")
    finally:
        for proc in procs:
            proc.close()
        if rx is not None:
            try:
                rx.wait(10)
            except subprocess.TimeoutExpired:
                rx.kill()
    return report(plan, arrivals, server["rate"], server["period"])


def report(plan: list[tuple[float, int]], arrivals: list, rate: int, period: int) -> dict:
    """Each path's note-on lateness (ms) and how many arrived at a period's start. An arrival is
    matched to the planned note of its pitch nearest in time (a pitch comes round every 48 notes,
    ~0.7 s; the paths' notes are told apart by the plan)."""
    out = {"rate": rate, "period": period, "period_ms": round(1e3 * period / rate, 3)}
    ons = [(t, offset, pitch) for t, offset, status, pitch in arrivals if status & 0xF0 == 0x90]
    offs = sum(1 for _, _, status, _ in arrivals if status & 0xF0 == 0x80)
    pending = {}
    for i, (t, path) in enumerate(plan):
        pending.setdefault(36 + i % 48, []).append((t, path))
    late = {name: [] for name, _ in PATHS}
    at_start = {name: 0 for name, _ in PATHS}
    for t_heard, offset, pitch in ons:
        candidates = pending.get(pitch) or []
        if not candidates:
            continue
        j = min(range(len(candidates)), key=lambda k: abs(candidates[k][0] - t_heard))
        t_meant, path = candidates.pop(j)
        name = PATHS[path][0]
        late[name].append(t_heard - t_meant)
        at_start[name] += offset == 0
    for name, _ in PATHS:
        out[name] = {"sent": sum(1 for _, p in plan if PATHS[p][0] == name), "arrived": len(late[name]),
                     "lateness": summary_ms(late[name], 1e3), "at_period_start": at_start[name]}
    out["note_offs"] = offs
    return out


def format_report(r: dict) -> str:
    rows = [f"JACK at {r['rate']} Hz, {r['period']} frames a period ({r['period_ms']} ms); livejam's output process "
            "as a JACK client hears it (arrival at its frame - intended time), ms:"]
    from livejam.measure.frames import path_line

    for name, what in (("frames", "frame offsets (scheduler.jack_frames, the default)"),
                       ("rtmidi", "rtmidi (--set scheduler.jack_frames=false)")):
        rows.append(path_line(what, r[name]))
    rows.append(f"  note-offs heard: {r['note_offs']}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    from livejam.measure.frames import measurement_main

    return measurement_main(argv, "livejam.measure.output_frames", __doc__.splitlines()[0], measure, format_report)


if __name__ == "__main__":
    sys.exit(main())
