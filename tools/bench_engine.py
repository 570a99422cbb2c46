"""Engine benchmark: prints median / p99 / max (ms) of

1. input-to-output round trip over JACK through `livejam run --engine echo`
   (an immediate echo path) vs a bare rtmidi echo process: the same transport
   with no engine; the difference is the engine's overhead;
2. scheduler lateness while another thread burns CPU, beside a bare
   sleep-then-spin loop measured in the same run (idle and under the same load).

Starts its own named JACK server (dummy driver, -S, -p 64) and stops it by PID.
Timing lives here, never in the tests.  Usage: .venv/bin/python tools/bench_engine.py [--n 500]
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from livejam.clock import RealClock  # noqa: E402
from livejam.config import DaemonConfig  # noqa: E402
from livejam.events import TimedNote  # noqa: E402
from livejam.scheduler import Scheduler, lateness_stats  # noqa: E402

BARE_ECHO = """
import rtmidi, signal, sys
inp = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="bare in"); inp.open_virtual_port("in")
out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="bare out"); out.open_virtual_port("out")
send = out.send_message
inp.set_callback(lambda event, data: send(event[0]))
print("ready", flush=True)
signal.sigwait({signal.SIGTERM, signal.SIGINT})
"""


def fmt(name: str, s: dict) -> str:
    return f"{name:<46} n={s['n']:<5} median {s['median']:8.3f}  p99 {s['p99']:8.3f}  max {s['max']:8.3f}"


def start_jack() -> tuple[subprocess.Popen, str]:
    if not shutil.which("jackd"):
        sys.exit("jackd not found: install Debian jackd2")
    name = f"livejam-bench-{uuid.uuid4().hex[:6]}"
    env = dict(os.environ, JACK_NO_START_SERVER="1")
    proc = subprocess.Popen(["jackd", "-n", name, "-S", "-d", "dummy", "-r", "48000", "-p", "64"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    subprocess.run(["jack_wait", "-w", "-s", name, "-t", "20"], env=env, capture_output=True, check=True)
    os.environ["JACK_DEFAULT_SERVER"] = name
    os.environ["JACK_NO_START_SERVER"] = "1"
    return proc, name


def spawn(cmd: list[str]) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in proc.stdout:  # wait until its ports exist
        if "ready" in line:
            break
    threading.Thread(target=lambda: proc.stdout.read(), daemon=True).start()
    return proc


def round_trips(in_port: str, out_port: str, n: int, gap: float) -> list[float]:
    import rtmidi

    arrived: list[float] = []
    inp = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="bench in")
    inp.set_callback(lambda event, data: arrived.append(time.perf_counter()))
    inp.open_port(next(i for i, p in enumerate(inp.get_ports()) if out_port in p))
    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="bench out")
    out.open_port(next(i for i, p in enumerate(out.get_ports()) if in_port in p))
    time.sleep(0.3)
    # our busy-wait below would otherwise hold the GIL against rtmidi's callback
    # thread for up to 5 ms and inflate both paths alike
    old = sys.getswitchinterval()
    sys.setswitchinterval(0.0002)
    rtts = []
    for i in range(n):
        pitch = 40 + (i // 2) % 40
        msg = [0x90, pitch, 100] if i % 2 == 0 else [0x80, pitch, 0]
        before = len(arrived)
        t0 = time.perf_counter()
        out.send_message(msg)
        deadline = t0 + 1.0
        while len(arrived) == before and time.perf_counter() < deadline:
            pass
        if len(arrived) > before:
            rtts.append(arrived[before] - t0)
        time.sleep(gap)
    sys.setswitchinterval(old)
    inp.close_port()
    out.close_port()
    return rtts


def bench_transport(n: int) -> None:
    bare = spawn([sys.executable, "-c", BARE_ECHO])
    bare_rtt = round_trips("bare in:in", "bare out:out", n, 0.005)
    bare.send_signal(signal.SIGTERM)
    bare.wait(10)
    engine = spawn([sys.executable, "-m", "livejam.cli", "run", "--engine", "echo", "--no-record",
                    "--set", "midi.client_name=\"lj\""])
    engine_rtt = round_trips("lj in:in", "lj out:out", n, 0.005)
    engine.send_signal(signal.SIGTERM)
    engine.wait(10)
    b, e = lateness_stats(bare_rtt), lateness_stats(engine_rtt)
    print("\n[1] MIDI round trip over JACK (-p 64, 48 kHz), ms")
    print(fmt("bare rtmidi echo process (transport floor)", b))
    print(fmt("livejam run --engine echo", e))
    print(f"{'engine overhead (difference)':<46}        median {e['median'] - b['median']:8.3f}  "
          f"p99 {e['p99'] - b['p99']:8.3f}")


def schedule(n: int, spacing: float) -> list[float]:
    start = time.perf_counter() + 0.05
    return [start + i * spacing for i in range(n)]


def bare_loop(n: int, spacing: float) -> dict:
    clock = RealClock()
    late = []
    for t in schedule(n, spacing):
        clock.sleep_until(t)
        late.append(time.perf_counter() - t)
    return lateness_stats(late)


def scheduler_run(n: int, spacing: float) -> dict:
    clock = RealClock()
    sched = Scheduler(clock, lambda port, msg, t: None, late_drop_s=1.0)
    sched.start()
    times = schedule(n, spacing)
    # note-on/off pairs on alternating pitches so the ledger lets everything through
    sched.submit(TimedNote(t, 0, 60 + (i // 2) % 12, 100 if i % 2 == 0 else 0) for i, t in enumerate(times))
    while sched.pending() and sched.alive():
        time.sleep(0.05)
    time.sleep(0.05)
    sched.stop()
    return lateness_stats(sched.counters.lateness)


class Burner:
    """Another Python thread burning CPU (and contending for the GIL), like a performer step."""

    def __init__(self):
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        x = 0
        while self.running:
            for i in range(10_000):
                x += i * i

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()


def bench_scheduler(n: int, spacing: float) -> None:
    engine_si = DaemonConfig().scheduler.gil_switch_interval_s
    for label, si in (("Python default", sys.getswitchinterval()), ("livejam run's", engine_si)):
        old = sys.getswitchinterval()
        sys.setswitchinterval(si)
        print(f"\n[2] lateness of {n} events {spacing * 1000:.0f} ms apart, ms; "
              f"GIL switch interval {si * 1000:g} ms ({label})")
        print(fmt("bare sleep-then-spin loop, idle (floor)", bare_loop(n, spacing)))
        print(fmt("scheduler thread, idle", scheduler_run(n, spacing)))
        with Burner():
            print(fmt("bare sleep-then-spin loop, CPU-burning thread", bare_loop(n, spacing)))
        with Burner():
            print(fmt("scheduler thread, CPU-burning thread", scheduler_run(n, spacing)))
        sys.setswitchinterval(old)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500, help="round trips per path")
    ap.add_argument("--events", type=int, default=1000, help="scheduled events per lateness run")
    ap.add_argument("--spacing-ms", type=float, default=5.0)
    args = ap.parse_args(argv)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load avg {os.getloadavg()[0]:.2f}")
    jack, name = start_jack()
    try:
        bench_transport(args.n)
    finally:
        jack.terminate()
        jack.wait(10)
    bench_scheduler(args.events, args.spacing_ms / 1000.0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
