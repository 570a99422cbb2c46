"""The duet measurement's player (livejam/measure/duet.py starts it): a process of its own that plays a
seeded melody into livejam over JACK and listens to everything livejam sends.

    python -m livejam.measure.duet_player --seconds S --bpm B --seed N [--log FILE]

It counts the notes and clock ticks that come back and, with --log, writes when each arrived and the
timing of a bare transport it runs through the same server all along (livejam/measure/heard.py).
"""
from __future__ import annotations

import argparse
import json
import random
import threading
import time

CLIENT = "livejam-duet"  # the measured daemon's client name
PLAYER = "livejam-duet-player"
C_MAJOR = (60, 62, 64, 65, 67, 69, 71, 72, 74, 76)


def melody(seconds: float, bpm: float, seed: int) -> list[tuple[float, int, int, float]]:
    """(onset s, pitch, velocity, duration s): phrases of 1-3 bars, then a bar's rest or less."""
    rng = random.Random(seed)
    beat = 60.0 / bpm
    notes, t, pitch = [], 0.5, 64
    while t < seconds:
        phrase_end = t + rng.choice((4, 8, 12)) * beat
        while t < min(phrase_end, seconds):
            length = rng.choice((0.5, 0.5, 1.0, 1.0, 1.5, 2.0)) * beat
            pitch = min(C_MAJOR, key=lambda p: abs(p - (pitch + rng.choice((-4, -2, -1, 0, 1, 2, 3)))))
            notes.append((t, pitch, rng.randint(60, 100), length * 0.9))
            t += length
        t += rng.choice((2, 4)) * beat
    return notes


def play(seconds: float, bpm: float, seed: int, log_path: str | None = None) -> int:
    """The player process: play the melody into livejam, count what comes back; with `log_path`,
    write there when each of livejam's notes and clock ticks arrived and the bare transport's timing."""
    import rtmidi

    from livejam.measure.heard import BareTransport, note_key

    from livejam.measure.jack_server import port_index
    from livejam.midi.ports import port_names

    api = rtmidi.API_UNIX_JACK
    out, inp = rtmidi.MidiOut(api, name=f"{PLAYER} out"), rtmidi.MidiIn(api, name=f"{PLAYER} in")
    heard = {"on": 0, "off": 0, "clock": 0}
    stopped = threading.Event()  # livejam's MIDI Stop: it sends it at exit, after its panic
    sounding: set[tuple[int, int]] = set()
    lock = threading.Lock()
    notes_at: list[tuple[tuple, float]] = []  # (note_key, arrival)
    clock_at: list[float] = []

    def on_message(event, data=None) -> None:
        now = time.perf_counter()  # first: the arrival, as close to JACK's delivery as Python gets
        msg = event[0]
        kind, key = msg[0] & 0xF0, (msg[0] & 0x0F, msg[1] if len(msg) > 1 else 0)
        if kind in (0x80, 0x90):
            notes_at.append((note_key(msg[0] if msg[2] > 0 else 0x80 | (msg[0] & 0x0F), msg[1]), now))
        elif msg[0] == 0xF8:
            clock_at.append(now)
        with lock:
            if msg[0] == 0xF8:
                heard["clock"] += 1
            elif msg[0] == 0xFC:
                stopped.set()
            elif kind == 0x90 and msg[2] > 0:
                heard["on"] += 1
                sounding.add(key)
            elif kind == 0x80 or kind == 0x90:
                heard["off"] += 1
                sounding.discard(key)
            elif kind == 0xB0 and msg[1] == 123:  # all notes off
                sounding.difference_update({k for k in sounding if k[0] == key[0]})

    inp.ignore_types(timing=False)
    inp.set_callback(on_message)
    inp.open_port(port_index(port_names(inp), f"{CLIENT} out:"), name="in")
    out.open_port(port_index(port_names(out), f"{CLIENT} in:"), name="out")
    bare = BareTransport(api, PLAYER) if log_path else None
    if bare is not None:
        bare.start()
    print("player ready", flush=True)
    start, sent = time.perf_counter(), 0
    notes = melody(seconds, bpm, seed)
    events = sorted([(t, 0x90, p, v) for t, p, v, _ in notes] + [(t + d, 0x80, p, 0) for t, p, _, d in notes])
    for t, status, pitch, vel in events:
        delay = start + t - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        out.send_message([status, pitch, vel])
        sent += 1
    stopped.wait(60.0)  # the machine plays on after the melody until the session stops
    time.sleep(1.0)
    if bare is not None:
        with open(log_path, "w") as f:
            json.dump({"notes": [[list(k), t] for k, t in notes_at], "clock": clock_at, "bare": bare.stop()}, f)
    with lock:
        print("player " + json.dumps({"sent": sent, **heard, "sounding": len(sounding)}), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--bpm", type=float, default=100.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--log", help="where to write when livejam's notes and clock ticks arrived")
    args = ap.parse_args(argv)
    return play(args.seconds, args.bpm, args.seed, args.log)


if __name__ == "__main__":
    raise SystemExit(main())
