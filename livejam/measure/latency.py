"""Measuring cores of the benchmarks: step latency, scheduler lateness, the machine.

Used by `livejam bench` (and the model card through it), so
every figure the project publishes comes from one implementation. No torch,
no MIDI ports here (the JACK round trips are in livejam/measure/jack_server.py).

Figures taken while other work runs on the machine are noisy: whoever prints
them says so beside them (`machine_info` records the load average).
"""
from __future__ import annotations

import os
import platform
import threading
import time
from typing import Iterable

import numpy as np

from livejam.beatmap import BeatGrid
from livejam.clock import RealClock
from livejam.config import SchedulerConfig
from livejam.engine import Constraints, Engine, EventSampler, NoteTracker
from livejam.events import DT, TEMPO, EventCoder, TimedNote
from livejam.scheduler import Scheduler
from livejam.stats import summary_ms

# The sampling settings of every latency figure: a realistic mask load (range,
# polyphony, nucleus), not the cheapest path through the sampler.
BENCH_CONSTRAINTS = Constraints(temperature=1.0, top_p=0.95, max_polyphony=8, pitch_range=(36, 96))


def stats(ns: Iterable[int]) -> dict[str, float]:
    """The percentile summary (livejam.stats) of durations in nanoseconds."""
    return summary_ms(ns, 1e-6)


def stats_s(seconds: Iterable[float]) -> dict[str, float]:
    """The percentile summary of durations in seconds."""
    return summary_ms(seconds, 1e3)


def random_rows(vocab, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 7) event rows with every column uniform over its vocabulary (playable parts only)."""
    cols = [rng.integers(0, vocab.n_parts, n)] + [rng.integers(0, size, n) for size in vocab.field_sizes[1:]]
    return np.stack(cols, 1).astype(np.int64)


def bench_coder(vocab) -> EventCoder:
    """A timeline at 120 bpm in 4/4 (a beat grid, extended without end): the bar position and
    tempo of each sampled event cost what they cost the performer on a beat clock."""
    return EventCoder(vocab, BeatGrid([0.5 * i for i in range(9)]), 0.0)


def sample_row(engine: Engine, sampler: EventSampler, c: Constraints, notes: NoteTracker,
               rng: np.random.Generator, coder: EventCoder) -> np.ndarray:
    """One event as the neural performer samples it: every field, the bar position from the
    coder once dt is drawn, then its time and tempo (NeuralPerformer._draw). No state change."""
    row = sampler.sample(engine, c, notes, rng, next_pos=coder.next_pos)
    row[TEMPO] = coder.tempo_now(coder.peek_time(int(row[DT])))
    return row


def warm_up(engine: Engine, sampler: EventSampler, c: Constraints, rng: np.random.Generator,
            steps: int = 200) -> None:
    """Run the graphs first: onnxruntime's first runs allocate and are not what a player meets."""
    notes, coder = NoteTracker(engine.vocab), bench_coder(engine.vocab)
    for _ in range(steps):
        row = sample_row(engine, sampler, c, notes, rng, coder)
        engine.feed(row)
        coder.decode(row)
    engine.reset()


def context_sizes(max_len: int, wanted: Iterable[int] = (128, 512, 1024)) -> list[int]:
    """The cached-event counts to measure at, capped at the live context - 1 (a full context swaps)."""
    return sorted({min(n, max_len - 1) for n in wanted})


def bench_at(engine: Engine, sampler: EventSampler, c: Constraints, n_cached: int, steps: int,
             rng: np.random.Generator) -> tuple[dict, dict]:
    """Steps at a fixed context size: rewind to n_cached before each (same position every time).

    Returns (feed + sample stats, feed-only stats)."""
    engine.reset()
    engine.prefill(random_rows(engine.vocab, n_cached - 1, rng))
    notes, coder = NoteTracker(engine.vocab), bench_coder(engine.vocab)
    total, feed = [], []
    for _ in range(steps):
        engine.rewind(n_cached)
        t0 = time.perf_counter_ns()
        tok = sample_row(engine, sampler, c, notes, rng, coder)
        t1 = time.perf_counter_ns()
        engine.feed(tok)
        t2 = time.perf_counter_ns()
        total.append(t2 - t0)
        feed.append(t2 - t1)
    return stats(total), stats(feed)


def bench_stream(engine: Engine, sampler: EventSampler, c: Constraints, steps: int,
                 rng: np.random.Generator) -> tuple[dict, dict]:
    """A continuous stream from an empty context across context-full boundaries.

    With a deferred-shadow engine (the performer's), `idle()` runs untimed
    between steps, as the performer does while it waits for the next event.
    Returns (all steps' stats, the swap steps' stats)."""
    engine.reset()
    notes, coder = NoteTracker(engine.vocab), bench_coder(engine.vocab)
    total, at_swap = [], []
    for _ in range(steps):
        swaps = engine.swaps
        t0 = time.perf_counter_ns()
        tok = sample_row(engine, sampler, c, notes, rng, coder)
        engine.feed(tok)
        dt = time.perf_counter_ns() - t0
        notes.observe(tok)
        coder.decode(tok)
        total.append(dt)
        if engine.swaps != swaps:
            at_swap.append(dt)
        if engine.defer_shadow:
            engine.idle(max_steps=4)
    return stats(total), stats(at_swap)


# --- heard input under a flood ----------------------------------------------------------------

def input_flood(performer, rate: float = 1000.0, seconds: float = 2.0) -> dict:
    """Queue wait of heard notes arriving at `rate` per second into `performer` (a duet).

    The daemon's performer loop, as it is: take one message (hear), then poll, then the next.
    A producer thread puts alternating note-ons/offs on a queue at the rate, sleeping between
    them as rtmidi's C callback thread does (no GIL held). The wait is the time from a
    message's arrival until hear() takes it; the step figures are the performer's own."""
    import queue

    q: queue.SimpleQueue = queue.SimpleQueue()
    n = int(rate * seconds)

    def produce() -> None:
        t0 = time.perf_counter()
        for i in range(n):
            ahead = t0 + i / rate - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
            q.put((time.perf_counter(), 48 + (i // 2) % 24, 90 if i % 2 == 0 else 0))
        q.put(None)

    producer = threading.Thread(target=produce, name="bench-input", daemon=True)
    waits = []
    producer.start()
    while (item := q.get()) is not None:
        t, pitch, vel = item
        now = time.perf_counter()
        waits.append(now - t)
        performer.hear(TimedNote(t, 0, pitch, vel), now)
        performer.poll(time.perf_counter())
    producer.join()
    performer.close(time.perf_counter())
    return {"rate_per_s": rate, "messages": n, "queue_wait": stats_s(waits),
            "performer_step": performer.latency_stats()}


# --- scheduler lateness ------------------------------------------------------------------

def _schedule(n: int, spacing: float, lead: float = 0.05) -> list[float]:
    start = time.perf_counter() + lead
    return [start + i * spacing for i in range(n)]


def floor_loop(n: int, spacing: float, clock: RealClock | None = None) -> list[float]:
    """Lateness (s) of a bare sleep-then-spin loop: the machine's own timing floor."""
    clock = clock or RealClock()
    late = []
    for t in _schedule(n, spacing):
        clock.sleep_until(t)
        late.append(time.perf_counter() - t)
    return late


def scheduler_lateness(n: int, spacing: float, clock: RealClock | None = None) -> list[float]:
    """Lateness (s) of the real Scheduler thread emitting n timed notes to a null sink."""
    clock = clock or RealClock()
    # drop nothing (measure it all), at the daemon's thread priority
    sched = Scheduler(clock, lambda port, msg, t: None, late_drop_s=1.0,
                      realtime_priority=SchedulerConfig().realtime_priority)
    sched.start()
    # note-on/off pairs on changing pitches so the ledger lets every message through
    sched.submit(TimedNote(t, 0, 60 + (i // 2) % 12, 100 if i % 2 == 0 else 0)
                 for i, t in enumerate(_schedule(n, spacing)))
    while sched.pending() and sched.alive():
        time.sleep(0.02)
    sched.stop()
    if sched.error is not None:
        raise RuntimeError(f"scheduler failed: {sched.error!r}")
    return list(sched.counters.lateness)


class InferenceLoad:
    """The performer's pattern in a thread: onnxruntime steps (sample + feed) back to back.

    onnxruntime releases the GIL inside `run`, the sampler's numpy does not
    always: the scheduler thread meets both, as it does live. `steps` counts
    what ran, so a report can show the load was real.
    """

    def __init__(self, engine: Engine, sampler: EventSampler, c: Constraints, seed: int = 1):
        self.engine, self.sampler, self.c = engine, sampler, c
        self.rng = np.random.default_rng(seed)
        self.steps = 0
        self.seconds = 0.0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-inference", daemon=True)

    def _run(self) -> None:
        engine, notes, coder = self.engine, NoteTracker(self.engine.vocab), bench_coder(self.engine.vocab)
        engine.reset()
        t0 = time.perf_counter()
        try:
            while not self._stop.is_set():
                tok = sample_row(engine, self.sampler, self.c, notes, self.rng, coder)
                engine.feed(tok)
                notes.observe(tok)
                coder.decode(tok)
                self.steps += 1
        except BaseException as e:  # surfaced by __exit__: a dead load would make the figure a lie
            self.error = e
        self.seconds = time.perf_counter() - t0

    def __enter__(self) -> "InferenceLoad":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        if self.error is not None and exc[0] is None:
            raise RuntimeError(f"inference thread failed: {self.error!r}")

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.seconds if self.seconds > 0 else 0.0


# --- the machine ---------------------------------------------------------------------

def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    try:
        import onnxruntime as ort

        ort_version = ort.__version__
    except ImportError:
        ort_version = None
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "onnxruntime": ort_version,
            "load_avg_1min": round(os.getloadavg()[0], 2)}
