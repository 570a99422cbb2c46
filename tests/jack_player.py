"""A stand-in musician in its own process: plays into `livejam in` over JACK,
listens on `livejam out`, signals the daemon, and prints what it received as JSON.

Waits with generous timeouts; the test asserts only on what arrived.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import time

import rtmidi


def connect(midi, wanted: str) -> None:
    ports = midi.get_ports()
    midi.open_port(next(i for i, name in enumerate(ports) if wanted in name))


def wait_for(pred, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return False


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemon-pid", type=int, required=True)
    ap.add_argument("--signal", default="SIGTERM")
    ap.add_argument("--burst", type=int, default=0, help="messages of random notes sent before the phrase")
    ap.add_argument("--min-notes", type=int, default=2, help="machine note-ons to wait for before signalling")
    args = ap.parse_args()
    received: list[list[int]] = []
    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="player out")
    inp = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="player in")
    inp.ignore_types(sysex=False, timing=False, active_sense=False)
    inp.set_callback(lambda event, data: received.append(list(event[0])))
    connect(inp, "livejam out")
    connect(out, "livejam in")
    if args.burst:
        rng = random.Random(5)
        for _ in range(args.burst):
            out.send_message([rng.choice([0x80, 0x90]) | rng.randrange(16), rng.randrange(128), 100])
        time.sleep(1.0)  # let the daemon drain its queue (overflow is allowed, and counted)
        for ch in range(16):  # the human lets go of everything
            out.send_message([0xB0 | ch, 123, 0])
        time.sleep(1.0)
    for pitch in (60, 62, 64, 65, 67, 65, 64, 62):
        out.send_message([0x90, pitch, 100])
        time.sleep(0.15)
        out.send_message([0x80, pitch, 0])
        time.sleep(0.05)

    def note_ons():
        return sum(1 for m in received if m[0] & 0xF0 == 0x90 and m[2] > 0)

    answered = wait_for(lambda: note_ons() >= args.min_notes, 20.0)
    os.kill(args.daemon_pid, getattr(signal, args.signal))
    # the daemon's last words are its panic: CC123 on its channels
    panicked = wait_for(lambda: any(m[0] & 0xF0 == 0xB0 and m[1] == 123 for m in received), 20.0)
    time.sleep(0.2)
    print(json.dumps({"answered": answered, "panicked": panicked, "received": received}))
    inp.close_port()
    out.close_port()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
