"""The live status screen (`livejam run`, on a terminal) and its plain twin (`--plain`, or stdout
not a terminal): a daemon add-on with its own thread at `screen.refresh_hz`.

It reads a StatusReader snapshot (no locks the scheduler waits on) and, on the
screen, reads keys: they steer the performer through the input queue like a
MIDI knob (livejam.stage.steer). The plain mode writes one line per change (mode,
control, tempo, port events) instead of a picture. rich is imported only for
the screen (`pip install 'livejam[ui]'`); without it the plain mode runs.
"""
from __future__ import annotations

import logging
import os
import select
import sys
import threading
from collections import deque

from livejam.config.controls import BY_NAME, CONTROLS, KNOBS
from livejam.session import AddOn
from livejam.stage.steer import Steer, SteerError
from livejam.stage.ui.status import StatusReader

log = logging.getLogger(__name__)

TRIGGER_KEYS = {c.keys: c.name for c in CONTROLS if c.kind == "trigger" and c.keys}


class _EventHandler(logging.Handler):
    """Log records go to the screen's event lines while it owns the terminal."""

    def __init__(self, events: deque):
        super().__init__(logging.INFO)
        self.events = events

    def emit(self, record: logging.LogRecord) -> None:
        self.events.append(f"{record.levelname.lower()}: {record.getMessage()}")


class StatusAddon(AddOn):
    """The status screen (rich) or its plain lines; session events shown to the player."""

    shows_events = True

    def __init__(self, config, mode: str = "screen", stream=None):
        self.config = config
        self.mode = mode  # screen | plain
        self.stream = stream or sys.stdout
        self.events: deque[str] = deque(maxlen=50)
        self.reader: StatusReader | None = None
        self.steer: Steer | None = None
        self.session = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.frames = 0
        self._xruns_said = (-float("inf"), 0)  # when the plain log last said JACK's xrun count, and the count

    def on_event(self, text: str) -> None:
        """A one-line event (port lost/found ...): shown on the screen, a line in plain mode."""
        self.events.append(text)

    def start(self, session) -> None:
        self.session = session
        self.reader = StatusReader(session, roll_s=self.config.screen.roll_seconds, events=self.events)
        self.steer = Steer(self.config, lambda raw: session.inq.put(session.clock.now(), raw))
        target = self._plain_loop
        if self.mode == "screen":
            try:
                import rich  # noqa: F401
                target = self._screen_loop
            except ImportError:
                self._write("livejam: no status screen without rich (pip install 'livejam[ui]'): plain lines")
        self._thread = threading.Thread(target=self._guard, args=(target,), name="livejam-status", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None

    def _guard(self, target) -> None:
        try:
            target()
        except Exception as e:  # the screen failing must not end the session
            log.error("status display stopped: %s: %s", type(e).__name__, e)

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    # --- plain: one line per change ---------------------------------------------------------
    def _plain_loop(self) -> None:
        period = 1.0 / min(self.config.screen.refresh_hz, 5.0)
        before = None
        while not self._stop.wait(period):
            before = self.plain_step(before)
        self.plain_step(before)  # the last changes and events (a lost port just before the end)

    def plain_step(self, before):
        """Write one line per change since snapshot `before` and per new event; returns the new snapshot."""
        from livejam.stage.ui.plain import changes, xrun_line

        snap = self.reader.read()
        lines = changes(before, snap)
        xruns, self._xruns_said = xrun_line(self._xruns_said, snap)
        if xruns:
            lines.append(xruns)
        while self.events:
            lines.append(self.events.popleft())
        for line in lines:
            self._write(f"livejam: [{snap.t:7.1f} s] {line}")
        return snap

    # --- screen: rich, keys ----------------------------------------------------------------------
    def _screen_loop(self) -> None:
        from rich.console import Console
        from rich.live import Live

        from livejam.stage.ui.screen import render

        console = Console(file=self.stream)
        width = max(24, min(120, console.width - 12))
        span = self.config.screen.roll_seconds
        period = 1.0 / max(1.0, self.config.screen.refresh_hz)
        muted = self._mute_log_handlers()
        keys = _Keys() if sys.stdin.isatty() else None
        try:
            with Live(console=console, auto_refresh=False, redirect_stdout=True, redirect_stderr=True,
                      transient=False) as live:
                while not self._stop.is_set():
                    key = keys.read(period) if keys else None
                    if keys is None:
                        self._stop.wait(period)
                    if key:
                        self._key(key)
                    live.update(render(self.reader.read(), width=width, span_s=span), refresh=True)
                    self.frames += 1
        finally:
            if keys:
                keys.restore()
            self._unmute(muted)

    def _key(self, key: str) -> None:
        """A key pressed: the controls table's keys (a knob's down/up, a switch, a trigger), end of
        phrase, quit. A knob's key stops at the knob's ends rather than asking past them."""
        perf = self.session.dispatcher.performer
        c = perf.constraints
        knob = next((k for k in KNOBS if k.keys and key in k.keys), None)
        try:
            if key == BY_NAME["mode"].keys:
                self.steer.set("mode", "call" if perf.mode == "duet" else "duet")
            elif knob is not None and c is not None:
                moved = getattr(c, knob.name) + (knob.step if key == knob.keys[1] else -knob.step)
                self.steer.set(knob.name, min(knob.most, max(knob.lo, moved)))
            elif key == "e":
                self.steer.set("end_phrase")
            elif key in TRIGGER_KEYS:
                self.steer.set(TRIGGER_KEYS[key])
            elif key == "q":
                self.session.daemon.request_stop("quit")
        except SteerError as e:
            self.events.append(str(e))

    def _mute_log_handlers(self) -> list:
        root = logging.getLogger()
        handler = _EventHandler(self.events)
        root.addHandler(handler)
        muted = [(h, h.level) for h in root.handlers if isinstance(h, logging.StreamHandler) and h is not handler]
        for h, _ in muted:
            h.setLevel(logging.CRITICAL + 1)
        return [(handler, None)] + muted

    @staticmethod
    def _unmute(muted: list) -> None:
        root = logging.getLogger()
        for h, level in muted:
            if level is None:
                root.removeHandler(h)
            else:
                h.setLevel(level)


class _Keys:
    """Single key presses from the terminal (cbreak mode), restored on exit."""

    def __init__(self):
        import termios
        import tty

        self.fd = sys.stdin.fileno()
        self.saved = termios.tcgetattr(self.fd)
        tty.setcbreak(self.fd)

    def read(self, timeout: float) -> str | None:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        return os.read(self.fd, 1).decode(errors="ignore") if ready else None

    def restore(self) -> None:
        import termios

        termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)
