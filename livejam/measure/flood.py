"""Memory under a long input flood: does a session with `--no-record` keep what it hears?

    python -m livejam.measure.flood --minutes 120 --rate 1000 --start-jack [--performer neural]

`livejam run --no-record` (the shipped model, duet) runs as its own process on a JACK server; this
process plays into its input at `--rate` messages per second (note-ons and note-offs of random
pitches, paced) and every `--period-s` reads the resident memory of the daemon and of its output
process (/proc). The figure issue 20 asks for is the growth after the first minute (loading and
warming the model come before it). At the end the daemon is stopped with SIGTERM and its exit line
(nothing left sounding, the counters) is printed.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from livejam.measure.duet import rss_mb

CLIENT = "livejam-flood"


def rss_of(pid: int) -> float | None:
    """The process's resident memory in MB; None where it cannot be read (it ended)."""
    mb = rss_mb(pid)
    return None if math.isnan(mb) else mb


def children_of(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return out


def flood(port, rate: float, stop: threading.Event, sent: list[int]) -> None:
    """Note-on/note-off pairs of random pitches, `rate` messages a second, paced in 10 ms slices."""
    rng = random.Random(0)
    start = time.monotonic()
    sounding: list[int] = []
    while not stop.is_set():
        due = int((time.monotonic() - start) * rate)
        while sent[0] < due:
            if sounding and (len(sounding) > 3 or rng.random() < 0.5):
                port.send_message([0x80, sounding.pop(0), 0])
            else:
                pitch = rng.randrange(48, 85)
                if pitch in sounding:
                    continue
                sounding.append(pitch)
                port.send_message([0x90, pitch, rng.randrange(40, 110)])
            sent[0] += 1
        time.sleep(0.01)
    for pitch in sounding:
        port.send_message([0x80, pitch, 0])


def run(args) -> dict:
    import rtmidi

    from livejam.midi.ports import port_names

    cmd = [sys.executable, "-m", "livejam.cli", "run", "--no-record", "--set", f"midi.client_name={CLIENT}",
           "--performer", args.performer, "--mode", "duet", "--json"]
    daemon = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        for line in daemon.stdout:
            lines.append(line)
            if "ready:" in line:
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(120) or daemon.poll() is not None:
        raise RuntimeError("the daemon did not start:\n" + "".join(lines))
    keys = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=f"{CLIENT} keys")
    keys.open_port(next(i for i, p in enumerate(port_names(keys)) if f"{CLIENT} in" in p))
    stop, sent = threading.Event(), [0]
    player = threading.Thread(target=flood, args=(keys, args.rate, stop, sent), daemon=True)
    rows = []
    start = time.monotonic()
    player.start()
    try:
        k = 0
        while time.monotonic() - start < args.minutes * 60 and daemon.poll() is None:
            k += 1
            time.sleep(max(0.0, start + k * args.period_s - time.monotonic()))
            outputs = children_of(daemon.pid)  # the output process (JACK)
            rows.append({"t_s": round(time.monotonic() - start), "sent": sent[0], "daemon_mb": rss_of(daemon.pid),
                         "output_mb": rss_of(outputs[0]) if outputs else None})
            print(json.dumps(rows[-1]), flush=True)
    finally:
        stop.set()
        player.join(5)
        keys.close_port()
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
        rc = daemon.wait(120)
    first = next((r for r in rows if r["t_s"] >= 60), rows[0] if rows else None)
    last = rows[-1] if rows else None
    growth = {key: round(last[key] - first[key], 1) for key in ("daemon_mb", "output_mb")
              if first and last and first[key] is not None and last[key] is not None}
    return {"rows": rows, "rc": rc, "growth_after_first_minute_mb": growth,
            "exit": [line for line in lines if "stopped" in line or "counters" in line]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=120.0)
    ap.add_argument("--rate", type=float, default=1000.0, help="messages per second into livejam's input")
    ap.add_argument("--period-s", type=float, default=60.0, help="read memory this often")
    ap.add_argument("--performer", default="neural", choices=("neural", "markov", "echo"))
    ap.add_argument("--start-jack", action="store_true", help="start a private JACK server (dummy driver)")
    args = ap.parse_args(argv)
    server = None
    if args.start_jack:
        from livejam.measure.jack_server import JackServer

        server = JackServer.start(period=64)
    try:
        r = run(args)
    finally:
        if server is not None:
            server.stop()
    print(json.dumps({k: v for k, v in r.items() if k != "rows"}, indent=1))
    return 0 if r["rc"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
