"""Engine benchmark: prints median / p99 / max (ms) of

1. input-to-output round trip over JACK through `livejam run --engine echo`
   (an immediate echo path) vs a bare rtmidi echo process: the same transport
   with no engine; the difference is the engine's overhead;
2. scheduler lateness while another thread burns CPU, beside a bare
   sleep-then-spin loop measured in the same run (idle and under the same load).

Starts its own named JACK server (dummy driver, -S, -p 64) and stops it by PID.
The measuring code is livejam/transport.py and livejam/latency.py (shared with
`livejam bench`, which also measures the model's step and a reply path).
Timing lives here, never in the tests.  Usage: .venv/bin/python -m tools.bench_engine [--n 500]
"""
from __future__ import annotations

import argparse
import os
import sys
import threading

from livejam import latency, transport
from livejam.config import DaemonConfig
from livejam.scheduler import lateness_stats


def fmt(name: str, s: dict) -> str:
    return f"{name:<46} n={s['n']:<5} median {s['median']:8.3f}  p99 {s['p99']:8.3f}  max {s['max']:8.3f}"


def bench_transport(n: int) -> None:
    bare, lj = f"bare{os.getpid()}", f"lj{os.getpid()}"  # JACK renames a second client of the same name
    with transport.bare_echo(bare):
        b = lateness_stats(transport.round_trips(f"{bare} in:in", f"{bare} out:out", n, 0.005))
    with transport.livejam_echo(lj):
        e = lateness_stats(transport.round_trips(f"{lj} in:in", f"{lj} out:out", n, 0.005))
    print("\n[1] MIDI round trip over JACK (-p 64, 48 kHz), ms")
    print(fmt("bare rtmidi echo process (transport floor)", b))
    print(fmt("livejam run --engine echo", e))
    print(f"{'engine overhead (difference)':<46}        median {e['median'] - b['median']:8.3f}  "
          f"p99 {e['p99'] - b['p99']:8.3f}")


def bare_loop(n: int, spacing: float) -> dict:
    return lateness_stats(latency.floor_loop(n, spacing))


def scheduler_run(n: int, spacing: float) -> dict:
    return lateness_stats(latency.scheduler_lateness(n, spacing))


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
    jack = transport.JackServer.start()
    try:
        bench_transport(args.n)
    finally:
        jack.stop()
    bench_scheduler(args.events, args.spacing_ms / 1000.0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
