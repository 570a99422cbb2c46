"""What delivery at JACK frame offsets would win over rtmidi, as a JACK client hears it.

    python -m livejam.measure.frames --start-jack [--seconds 20] [--period 64] [--rate 48000] [--json]

rtmidi's JACK backend queues each message and writes it at the start of the next process
period (offset 0), so a note sent on time reaches a synth up to one period after its time. A
JACK client of our own can write each note at its frame offset within the period, given the
note a period ahead (livejam's output process now does: livejam/midi/jack_frames.py, heard
through it by livejam.measure.output_frames). This measures both on one private JACK server (dummy driver, synchronous), the way a synth that
renders at frame offsets hears them:

- the rtmidi path: a process of its own sends each note with rtmidi at its time (sleep, then spin
  on JACK's frame clock): the bare transport livejam's output process uses, without livejam;
- the frame path: a JACK client (the JACK-Client package) writes each note at its frame offset in
  the period that holds its time, all notes queued ahead;
- one receiving JACK client stamps every arrival with its frame (period start + offset).

Lateness is the arrival frame minus the intended frame, in milliseconds at the server's rate;
both paths interleave on the same schedule, so load falls on both. Needs JACK-Client (`pip
install JACK-Client`; in the dev extra) and Debian jackd2.
"""
from __future__ import annotations

import argparse
import collections
import json
import random
import subprocess
import sys
import threading
import time

from livejam.stats import summary_ms

CLIENT = "livejam-frames"
RTMIDI_CHANNEL, FRAME_CHANNEL = 0, 1  # the two paths' notes, told apart at the receiver
LEAD_S = 0.5  # the first note's distance from the start: both clients connected by then

# The rtmidi path's sender: its own process (its spin must not hold the GIL of the process whose
# JACK callback stamps the arrivals). Reads the intended frames on stdin, sends each at its frame.
# JACK's frame clock is read through the libjack rtmidi loaded (livejam.midi.jack): a second copy
# of libjack in one process (JACK-Client's) deadlocked before.
RTMIDI_SENDER = """
import ctypes, json, sys, time, rtmidi
from livejam.midi.jack import libjack, open_client
client_name, rate = sys.argv[1], float(sys.argv[2])
frames = json.loads(sys.stdin.readline())
out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=client_name + "-rtmidi")
out.open_virtual_port("out")
lib = libjack()
lib.jack_frame_time.restype, lib.jack_frame_time.argtypes = ctypes.c_uint32, [ctypes.c_void_p]
clock = open_client(lib, client_name + "-clock")  # no ports, never activated: JACK's frame clock only
def frame_time():
    return lib.jack_frame_time(clock)
print("ready", flush=True)
sys.stdin.readline()  # go: connected
for i, f in enumerate(frames):
    ahead = (f - frame_time()) / rate - 0.001
    if ahead > 0:
        time.sleep(ahead)
    while frame_time() < f:
        pass
    out.send_message([0x90 | %d, 36 + i %% 48, 100])
print("done", flush=True)
sys.stdin.readline()
lib.jack_client_close(clock)
""" % RTMIDI_CHANNEL


def schedule(seconds: float, rate: int, start_frame: int, seed: int) -> list[tuple[int, int]]:
    """(intended frame, channel): notes 5-25 ms apart, each path's turn drawn at random."""
    rng = random.Random(seed)
    out, t = [], 0.0
    while t < seconds:
        out.append((start_frame + int(round(t * rate)), rng.choice((RTMIDI_CHANNEL, FRAME_CHANNEL))))
        t += rng.uniform(0.005, 0.025)
    return out


class FramePaths:
    """The receiving client and the frame path's sender: one JACK client, one process callback."""

    def __init__(self):
        import jack

        # two clients: JACK runs the sender before the receiver within a period, so a note written at
        # offset o arrives at offset o of the same period (a client's own output reaches its own input
        # a period later)
        self.client = jack.Client(CLIENT, no_start_server=True)
        self.receiver = jack.Client(CLIENT + "-rx", no_start_server=True)
        self.inport = self.receiver.midi_inports.register("in")
        self.outport = self.client.midi_outports.register("out")
        self.arrivals: list[tuple[int, int, int]] = []  # (frame, offset, channel), appended by the callback only
        self.queue: collections.deque[tuple[int, bytes]] = collections.deque()  # (frame, message), in order
        self.written_late = 0  # frame-path notes whose period had begun before the callback saw them
        self.client.set_process_callback(self._send)
        self.receiver.set_process_callback(self._receive)

    def _receive(self, frames: int) -> None:
        start = self.receiver.last_frame_time
        for offset, data in self.inport.incoming_midi_events():
            self.arrivals.append((start + offset, offset, bytes(data)[0] & 0x0F))  # data: a cffi buffer

    def _send(self, frames: int) -> None:
        start = self.client.last_frame_time
        self.outport.clear_buffer()
        q = self.queue
        while q and q[0][0] < start + frames:
            frame, msg = q.popleft()
            if frame < start:
                self.written_late += 1
            self.outport.write_midi_event(max(0, frame - start), msg)


def measure(seconds: float, seed: int = 0) -> dict:
    """Run both paths on the JACK server this process uses (JACK_DEFAULT_SERVER) for `seconds`."""
    paths = FramePaths()
    client = paths.client
    rate, period = client.samplerate, client.blocksize
    with client, paths.receiver:
        sender = subprocess.Popen([sys.executable, "-c", RTMIDI_SENDER, CLIENT, str(rate)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        try:
            start = client.frame_time + int(LEAD_S * rate)
            plan = schedule(seconds, rate, start, seed)
            sender.stdin.write(json.dumps([f for f, ch in plan if ch == RTMIDI_CHANNEL]) + "\n")
            sender.stdin.flush()
            if "ready" not in sender.stdout.readline():
                raise RuntimeError("the rtmidi sender did not start")
            client.connect(f"{CLIENT}-rtmidi:out", f"{CLIENT}-rx:in")
            client.connect(f"{CLIENT}:out", f"{CLIENT}-rx:in")
            for i, (frame, ch) in enumerate(plan):
                if ch == FRAME_CHANNEL:
                    paths.queue.append((frame, bytes([0x90 | FRAME_CHANNEL, 36 + i % 48, 100])))
            sender.stdin.write("go\n")
            sender.stdin.flush()
            if start - client.frame_time < 0.1 * rate:
                raise RuntimeError("the paths were connected too late for the first note")
            done = threading.Event()
            threading.Thread(target=lambda: (sender.stdout.readline(), done.set()), daemon=True).start()
            done.wait(seconds + LEAD_S + 30.0)
            time.sleep(0.2)  # the last period's arrivals
        finally:
            if sender.stdin:
                try:
                    sender.stdin.write("stop\n")
                    sender.stdin.close()
                except OSError:
                    pass
            try:
                sender.wait(5)
            except subprocess.TimeoutExpired:
                sender.kill()
    return report(plan, list(paths.arrivals), rate, period, paths.written_late)


def report(plan: list[tuple[int, int]], arrivals: list[tuple[int, int, int]], rate: int, period: int,
           written_late: int) -> dict:
    """Each path's lateness (ms, arrival frame - intended frame) in the order sent and received."""
    out = {"rate": rate, "period": period, "period_ms": round(1e3 * period / rate, 3), "written_late": written_late}
    for name, ch in (("rtmidi", RTMIDI_CHANNEL), ("frames", FRAME_CHANNEL)):
        meant = [f for f, c in plan if c == ch]
        got = [(f, o) for f, o, c in arrivals if c == ch]
        late = [(g - m) / rate for m, (g, _) in zip(meant, got)]
        # early: the sender's reading of JACK's frame clock ran ahead of the periods (a late period)
        out[name] = {"sent": len(meant), "arrived": len(got), "lateness": summary_ms(late, 1e3),
                     "early": sum(1 for x in late if x < 0), "at_period_start": sum(1 for _, o in got if o == 0)}
    return out


def format_report(r: dict) -> str:
    rows = [f"JACK at {r['rate']} Hz, {r['period']} frames a period ({r['period_ms']} ms); lateness as a JACK "
            "client hears it (arrival frame - intended frame), ms:"]
    for name, what in (("rtmidi", "rtmidi, sent at its time (the transport livejam uses)"),
                       ("frames", "written at its frame offset, queued ahead")):
        rows.append(path_line(what, r[name]))
    if r["written_late"]:
        rows.append(f"  frame path: {r['written_late']} notes reached the callback after their period began")
    return "\n".join(rows)


def path_line(what: str, s: dict) -> str:
    """One path's row of a report: its lateness and where in the period its notes arrived."""
    late = s["lateness"]
    early = f", {s['early']} early" if "early" in s else ""
    return (f"  {what:<56} median {late['median_ms']:.3f} p99 {late['p99_ms']:.3f} max {late['max_ms']:.3f} "
            f"({s['arrived']} of {s['sent']} arrived{early}, {s['at_period_start']} at offset 0)")


def measurement_main(argv: list[str] | None, prog: str, description: str, measure, format_report) -> int:
    """The command line of a measurement on JACK (this one and livejam.measure.output_frames): its
    options, a private server when asked (--start-jack), one line and exit 2 for a bad option, a
    missing JACK-Client or a failed run."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--start-jack", action="store_true",
                   help="start a private JACK server (dummy driver) with --period and --rate; without it, "
                        "the running server (JACK_DEFAULT_SERVER or the default) is used")
    p.add_argument("--period", type=int, default=64, help="frames a period of the private server")
    p.add_argument("--rate", type=int, default=48000, help="sample rate of the private server")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if not 0 < args.seconds <= 3600 or args.period < 16 or args.rate < 8000:
        p.exit(2, f"{prog}: --seconds in (0, 3600], --period >= 16, --rate >= 8000\n")
    try:
        import jack
    except (ImportError, OSError) as e:
        p.exit(2, f"{prog}: needs JACK-Client and libjack ({e}): pip install JACK-Client\n")
    from livejam.measure.jack_server import JackServer

    server = None
    try:
        if args.start_jack:
            server = JackServer.start(period=args.period, rate=args.rate)
        r = measure(args.seconds, args.seed)
    except (RuntimeError, jack.JackError) as e:  # MidiUnavailable is a RuntimeError
        p.exit(2, f"{prog}: {e}\n")
    finally:
        if server is not None:
            server.stop()
    print(json.dumps(r, indent=1) if args.json else format_report(r))
    return 0


def main(argv: list[str] | None = None) -> int:
    return measurement_main(argv, "livejam.measure.frames", __doc__.splitlines()[0], measure, format_report)


if __name__ == "__main__":
    sys.exit(main())
