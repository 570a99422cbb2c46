"""What a running session shows its add-ons, and what an add-on may do.

The add-ons (livejam/stage/: the built-in synth, the status screen, OSC control) sit on top of
the session: they read it, or enqueue into its input like a MIDI knob, and never own a note.
`AddOn` is their protocol with do-nothing defaults, so the daemon calls each hook without asking
whether it is there; the flags say which per-message taps an add-on wants (the scheduler thread
calls those for every message sent, so the ones nobody wants are not called at all).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from livejam.clock import RealClock
from livejam.config import DaemonConfig
from livejam.dispatch import Dispatcher
from livejam.midi.normalise import InputNormaliser
from livejam.midi.ports import InputQueue
from livejam.midi.xruns import XrunWatch
from livejam.recording import Recorder
from livejam.scheduler import Scheduler

if TYPE_CHECKING:
    from livejam.daemon import Daemon


@dataclass
class Session:
    """What a running session shows to its add-ons (sound, status screen, OSC): read, or enqueue into."""

    config: DaemonConfig
    clock: RealClock
    scheduler: Scheduler
    dispatcher: Dispatcher
    recorder: Recorder
    inq: InputQueue
    normaliser: InputNormaliser
    daemon: "Daemon"
    xruns: XrunWatch = field(default_factory=XrunWatch)  # JACK's skipped periods: input that never came
    addons: tuple[AddOn, ...] = ()


def build_normaliser(config: DaemonConfig, echo=None) -> InputNormaliser:
    return InputNormaliser(config.midi.ignore_sysex, config.midi.ignore_active_sensing, echo)


def counters(normaliser: InputNormaliser, scheduler: Scheduler, dispatcher: Dispatcher) -> dict:
    """The counters every session reports (run adds its transport's, simulate its run's)."""
    inc = normaliser.counters
    return {
        "input": {"received": inc.received, "invalid": inc.invalid, "ignored": inc.ignored, "by_kind": inc.by_kind},
        "scheduler": scheduler.counters.summary(),
        "ledger": dict(scheduler.ledger.counters.__dict__),
        "cancels": dispatcher.cancels,
        "performer": dict(dispatcher.performer.counters),
    }


class AddOn:
    """A live session's add-on; every hook is optional (these defaults do nothing)."""

    line = ""  # one line the CLI prints once the session is ready (the sound's latency, OSC's address)
    shows_events = False  # on_event shows session events (a port lost or found) to the player
    taps_human = False  # on_human wants every note the human plays (performer thread)
    taps_sent = False  # on_sent wants every message sent (scheduler thread: keep it short)

    def start(self, session: Session) -> None:
        """The session runs: read it, or start the add-on's own threads."""

    def on_event(self, text: str) -> None:
        """A one-line session event (only called when shows_events)."""

    def on_human(self, note, now: float) -> None:
        """A note the human played (only called when taps_human)."""

    def on_sent(self, port: int, msg, t: float) -> None:
        """A message livejam sent (only called when taps_sent)."""

    def summary(self) -> dict | None:
        """Counters for the exit (--json); None: none."""
        return None

    def meter(self) -> dict | None:
        """What the status screen shows of it while it runs (the sound's level); None: nothing."""
        return None

    def close(self) -> None:
        """Stop the add-on's threads; closing twice is harmless. The daemon gives it a deadline."""
