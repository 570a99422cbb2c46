"""A stand-in musician in its own process: plays into `livejam in` over JACK,
listens on `livejam out`, signals the daemon, and prints what it received as JSON.

It listens through a process of its own (`--ears`), which does nothing else: a JACK input whose
callback waits for a GIL that a flooding sender holds misses its periods, and a client that misses
periods under a synchronous server can lose or garble what it was sent (the daemon sent CC64 then
CC123 and the player heard CC64 twice, in 3 flood runs of 7 with a busy loop beside). What a test
checks arrived must not depend on the player's own load.

Waits for conditions with generous timeouts, never for a fixed time; the test
asserts only on what arrived and on counts (the player's own `sent` count is
one end of every loss measurement, the daemon's counters the other).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import rtmidi

from livejam.config import MidiConfig
from livejam.midi.ports import port_names


def connect(midi, wanted: str) -> None:
    ports = port_names(midi)
    midi.open_port(next(i for i, name in enumerate(ports) if wanted in name))


def wait_for(pred, timeout: float) -> bool:
    """True as soon as pred() holds; False if it still does not at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return pred()


def ears_main(target: str) -> int:
    """The listening process: each message from `target` as a line of numbers on stdout, until stdin closes."""
    def heard(event, data) -> None:
        os.write(1, (" ".join(map(str, event[0])) + "\n").encode())

    inp = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="player in")
    inp.ignore_types(sysex=False, timing=False, active_sense=False)
    inp.set_callback(heard)
    connect(inp, target)
    os.write(1, b"ready\n")
    sys.stdin.buffer.read()  # until the player ends
    os._exit(0)  # as the player does at its end, below: the JACK client goes with the process


def listen(target: str) -> tuple[list[list[int]], subprocess.Popen]:
    """Start the ears on `target`; (the messages heard so far, kept up to date; the process)."""
    ears = subprocess.Popen([sys.executable, __file__, "--ears", target], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)
    assert ears.stdout.readline() == b"ready\n", "the listening process did not start"
    received: list[list[int]] = []

    def read() -> None:
        for line in ears.stdout:
            received.append([int(b) for b in line.split()])

    threading.Thread(target=read, daemon=True).start()
    return received, ears


def random_note(rng: random.Random) -> list[int]:
    """A note-on or note-off on any of the 16 channels, unpaired on purpose."""
    return [rng.choice([0x80, 0x90]) | rng.randrange(16), rng.randrange(128), 100]


def paced(send, rng: random.Random, rate: float, seconds: float) -> int:
    """Send `rate` messages per second for `seconds`, on a schedule: after a stall
    (a preempted process) it catches up in one batch, so the count is exact
    whatever the machine's speed. Returns how many were sent."""
    total = int(rate * seconds)
    sent = 0
    t0 = time.perf_counter()
    while sent < total:
        due = min(total, int((time.perf_counter() - t0) * rate) + 1)
        while sent < due:
            send(random_note(rng))
            sent += 1
        time.sleep(0.001)
    return sent


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemon-pid", type=int, required=True)
    ap.add_argument("--signal", default="SIGTERM")
    ap.add_argument("--flood", "--burst", type=int, default=0,
                    help="messages of random notes sent as fast as send() returns, before the phrase")
    ap.add_argument("--rate", type=float, default=0.0, help="paced stream: messages per second, before the phrase")
    ap.add_argument("--seconds", type=float, default=3.0, help="length of the paced stream")
    ap.add_argument("--min-notes", type=int, default=2, help="machine note-ons to wait for before signalling")
    ap.add_argument("--signal-after", type=int, default=0,
                    help="signal the daemon after this many flood messages, while the flood goes on")
    ap.add_argument("--repeat", type=int, default=1, help="send the final signal this many times")
    ap.add_argument("--repeat-gap", type=float, default=0.03, help="seconds between repeated signals")
    ap.add_argument("--before", action="append", default=[], metavar="HEX",
                    help="a raw message (hex bytes) sent before the phrase, e.g. F07E01 (repeatable)")
    ap.add_argument("--answer-timeout", type=float, default=60.0)
    ap.add_argument("--fuzz", type=int, default=0,
                    help="seeded fuzz messages (tests/session/test_fuzz_soak.py, no CCs, SysEx up to 8 kB) at ~1,000/s")
    ap.add_argument("--panic-channels", default=",".join(str(c) for c in MidiConfig().machine_channels),
                    help="the daemon's channels: its panic ends with CC123 on each of them")
    args = ap.parse_args()
    received, ears = listen("livejam out")
    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="player out")
    connect(out, "livejam in")
    rng = random.Random(5)
    sent = 0

    def send(msg: list[int]) -> None:
        nonlocal sent
        out.send_message(msg)
        sent += 1

    sig = getattr(signal, args.signal)
    for i in range(args.flood):
        if args.signal_after and i == args.signal_after:
            os.kill(args.daemon_pid, sig)  # mid-flood: the daemon must stop cleanly while input pours in
        send(random_note(rng))
    if args.rate:
        paced(send, rng, args.rate, args.seconds)
    sent_before_phrase = sent
    if args.fuzz:
        from pathlib import Path

        sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
        from tests.session.test_fuzz_soak import fuzz_message

        frng = random.Random(21)
        for i in range(args.fuzz):
            msg = fuzz_message(frng, max_sysex=8192, controls=False)
            if len(msg) > 3 and msg[0] != 0xF0:
                msg = msg[:3]  # python-rtmidi sends longer messages only as SysEx
            if msg:
                send(msg)
            if i % 10 == 9:
                time.sleep(0.01)
    for raw in args.before:
        send(list(bytes.fromhex(raw)))
    for ch in range(16):  # the human lets go of everything
        send([0xB0 | ch, 123, 0])
    for pitch in (60, 62, 64, 65, 67, 65, 64, 62):
        send([0x90, pitch, 100])
        time.sleep(0.15)  # the phrase's rhythm, not a wait for anything
        send([0x80, pitch, 0])
        time.sleep(0.05)

    def note_ons():
        return sum(1 for m in received if m[0] & 0xF0 == 0x90 and m[2] > 0)

    # The answer to the phrase comes after the phrase was heard, which is after
    # everything sent before it (one FIFO all the way): once it is here, the
    # daemon has taken in the whole stream.
    answered = wait_for(lambda: note_ons() >= args.min_notes, args.answer_timeout)
    if not args.signal_after:
        for i in range(args.repeat):
            if i:
                time.sleep(args.repeat_gap)
            try:
                os.kill(args.daemon_pid, sig)
            except ProcessLookupError:
                break
    # the daemon's last words are its panic: CC123 on each of its channels, in order
    channels = {int(c) for c in args.panic_channels.split(",") if c}
    panicked = wait_for(lambda: channels <= {m[0] & 0x0F for m in received if m[0] & 0xF0 == 0xB0 and m[1] == 123},
                        60.0)
    print(json.dumps({"answered": answered, "panicked": panicked, "received": received, "sent": sent,
                      "sent_before_phrase": sent_before_phrase}))
    # Closing a JACK input whose callback may still run can crash the process (python-rtmidi frees the
    # port under JACK's thread: the player died with SIGSEGV after its report, 1 run in ~12). The
    # daemon ends the same way for the same reason (livejam.midi.ports.MidiInput.close): the process
    # exit removes the JACK client whole. So do the ears, when their stdin closes.
    sys.stdout.flush()
    ears.stdin.close()
    ears.wait(10)
    os._exit(0)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--ears"]:
        raise SystemExit(ears_main(sys.argv[2]))
    raise SystemExit(main())
