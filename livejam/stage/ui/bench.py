"""For `livejam bench --screen`: the status screen's rendering as a load beside the scheduler.

A thread renders a busy status picture (a full roll, every line) at the
screen's rate to a throw-away console, exactly as the live screen does each
frame, so the bench can measure the scheduler's lateness with the screen on
and off in the same run.
"""
from __future__ import annotations

import io
import threading
import time

from livejam.stage.ui.status import RollNote, Snapshot


def busy_snapshot(t: float) -> Snapshot:
    notes = [RollNote("human" if i % 2 else "machine", 48 + (i * 7) % 24, t - 8 + i * 0.1, t - 8 + i * 0.1 + 0.3)
             for i in range(80)]
    return Snapshot(t=t, mode="duet", engine="NeuralPerformer",
                    controls={"temperature": 0.7, "density": -1.0, "range": (21, 108), "key": "C:major"},
                    bpm=120.0, beat=t * 2, counters={k: 1000 for k in ("in", "heard", "played", "sent", "late",
                                                                       "dropped", "cancels", "watchdog", "overflow",
                                                                       "sounding")},
                    lateness_ms={"n": 1000, "p50": 0.1, "p99": 1.0}, step_ms={"n": 1000, "p50": 1.0, "p99": 2.0},
                    notes=notes, events=["output port lost: synth", "output port back: synth"],
                    sound={"level": 0.3, "blocks": 1000, "underflows": 0})


class ScreenLoad:
    def __init__(self, refresh_hz: float = 10.0, width: int = 100):
        self.period = 1.0 / refresh_hz
        self.width = width
        self.frames = 0
        self.render_s = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-screen", daemon=True)

    def _run(self) -> None:
        from rich.console import Console

        from livejam.stage.ui.screen import render

        console = Console(file=io.StringIO(), width=self.width + 20, force_terminal=True, color_system="truecolor")
        while not self._stop.wait(self.period):
            t0 = time.perf_counter()
            console.print(render(busy_snapshot(t0), width=self.width))
            console.file.seek(0)
            console.file.truncate()
            self.render_s += time.perf_counter() - t0
            self.frames += 1

    def __enter__(self) -> "ScreenLoad":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(2.0)

    @property
    def mean_frame_ms(self) -> float:
        return round(self.render_s / self.frames * 1e3, 2) if self.frames else 0.0
