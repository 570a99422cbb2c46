"""Keeps `--in NAME` / `--out NAME` connected: waits for a port missing at start,
notices one that vanishes (a keyboard unplugged, a synth that crashed) and
connects it again when it comes back. The session plays on meanwhile, on
livejam's own ports, and each change is one line:

    waiting for output port 'FLUID' (available outputs: none)
    output port found: FLUID Synth:midi_00
    output port lost: FLUID Synth:midi_00 (waiting for it to come back)
    output port back: FLUID Synth:midi_00

A port the user disconnected by hand while it is still there is left so (a DAW
user re-routing): only a port that was missing at start, or vanished and came
back, is connected. With `midi.exit_on_port_loss` a missing port is an error at
start (MidiUnavailable: exit status 2) and a vanished one ends the session.

How: on JACK livejam's own ports are virtual and never closed (closing an input
under its callbacks crashed, see MidiInput); libjack connects them to the
target (JackLink). Other backends (ALSA, CoreMIDI, WinMM) open and close
rtmidi's port by name (RtmidiLink).

The main thread polls (`Keeper.poll`, the daemon's health check); the owner's
callbacks react: `reset_output(all_notes)` ends the notes the output carried,
`input_lost()` lets go of the keys the human held (input lost or disconnected by hand),
`listener_joined()` clears a synth newly connected to the output (by hand or by a
session manager) of what an earlier session left on it: a session killed with SIGKILL
ended nothing, and the next one's start-up panic went out before that synth listened.

Seeing who listens needs JACK (libjack's connection graph, midi/jack.py): rtmidi says
what ports exist, not what is connected to ours, so on ALSA, CoreMIDI and WinMM a synth
connected to livejam's virtual output is not noticed. There the start-up panic sends a
note-off for every note on every channel whatever is connected (`listening_now`), which
reaches every synth connected by then; one connected later is not cleared.
"""
from __future__ import annotations

import logging
from typing import Callable

import rtmidi

from livejam.midi.ports import MidiUnavailable

log = logging.getLogger(__name__)

WAITING, CONNECTED, RELEASED, LOST = "waiting", "connected", "released", "lost"


class JackLink:
    """Our own virtual JACK port, connected to a target with libjack."""

    def __init__(self, jack, port, kind: str):
        self.jack, self.port, self.output = jack, port, kind == "output"

    def ports(self) -> list[str]:
        return self.port.available()

    def exists(self, target: str) -> bool:
        return self.jack.exists(target)

    def attached(self, target: str) -> bool:
        return target in self.jack.connections(self.port.own_port)

    def connect(self, target: str) -> bool:
        own = self.port.own_port
        return self.jack.connect(own, target) if self.output else self.jack.connect(target, own)

    def disconnect(self) -> None:
        """Nothing to do: JACK dropped the connection with the vanished port."""


class RtmidiLink:
    """Other backends than JACK: rtmidi's port opened on the target by name and closed
    when it vanishes. Untested here (these machines have JACK only); rtmidi does not
    say what is connected, so a disconnection by hand goes unseen."""

    def __init__(self, port):
        self.port = port

    def ports(self) -> list[str]:
        return self.port.available()

    def exists(self, target: str) -> bool:
        return target in self.port.available()

    def attached(self, target: str) -> bool:
        return True

    def connect(self, target: str) -> bool:
        try:
            self.port.open_target(target)
            return True
        except (MidiUnavailable, rtmidi.RtMidiError) as e:
            log.warning("cannot connect to %s: %s", target, e)
            return False

    def disconnect(self) -> None:
        self.port.close_target()


class PortKeeper:
    """One named port's state: waiting -> connected <-> lost, connected <-> released (by hand).
    Pure but for its link (tests give it a fake one)."""

    def __init__(self, kind: str, wanted: str, link, own: tuple[str, ...] = ()):
        self.kind = kind  # "input" | "output"
        self.wanted = wanted
        self.link = link
        self.own = own  # prefixes of livejam's own ports: never a target
        self.state = WAITING
        self.target: str | None = None

    def candidates(self) -> list[str]:
        return [p for p in self.link.ports() if not p.startswith(self.own)]

    def _match(self) -> str | None:
        ports = self.candidates()
        if self.target in ports:  # the very port that left; else any that matches (a new ALSA number)
            return self.target
        wanted = self.wanted.lower()
        return next((p for p in ports if wanted in p.lower()), None)

    def poll(self) -> str | None:
        """One step; the change it made: "found", "back", "lost", "released" or None."""
        if self.state in (WAITING, LOST):
            name = self._match()
            if name is None or not self.link.connect(name):
                return None
            change = "found" if self.state == WAITING else "back"
            self.target, self.state = name, CONNECTED
            return change
        if not self.link.exists(self.target):
            self.link.disconnect()
            self.state = LOST
            return "lost"
        attached = self.link.attached(self.target)
        if self.state == CONNECTED and not attached:
            self.state = RELEASED
            return "released"
        if self.state == RELEASED and attached:
            self.state = CONNECTED  # connected again by hand
        return None

    def line(self, change: str) -> str:
        k, t = self.kind, self.target
        return {"found": f"{k} port found: {t}", "back": f"{k} port back: {t}",
                "lost": f"{k} port lost: {t} (waiting for it to come back)",
                "released": f"{k} port disconnected by hand: {t} (not reconnected while it is there)"}[change]

    def waiting(self) -> str:
        return f"waiting for {self.kind} port {self.wanted!r} (available {self.kind}s: {self._listing()})"

    def missing(self) -> str:
        return f"no MIDI {self.kind} port matching {self.wanted!r}; available {self.kind}s: {self._listing()}"

    def _listing(self) -> str:
        return ", ".join(self.candidates()) or "none"


class Keeper:
    """The session's named ports, and (JACK) what the output is connected to: a port
    connected again by hand missed the note-offs sent meanwhile, so its notes end too."""

    def __init__(self, inp, out, jack, *, own: tuple[str, ...], exit_on_loss: bool,
                 on_event: Callable[[str], None], reset_output: Callable[[bool], None],
                 input_lost: Callable[[], None], listener_joined: Callable[[], None]):
        self.out, self.jack, self.exit_on_loss = out, jack, exit_on_loss
        self.on_event, self.reset_output, self.input_lost = on_event, reset_output, input_lost
        self.listener_joined = listener_joined
        self.keepers: list[tuple[PortKeeper, object]] = []
        for kind, port in (("output", out), ("input", inp)):
            if port.wanted:
                link = JackLink(jack, port, kind) if jack is not None else RtmidiLink(port)
                self.keepers.append((PortKeeper(kind, port.wanted, link, own), port))
        self._connected = jack.connections(out.own_port) if jack is not None else frozenset()
        self._ever = set(self._connected)
        # livejam's own virtual input: who plays into it, said as it changes (a named input's
        # keeper says its own lines); livejam's own ports (the heartbeat) are not a player
        self.inp, self.own = inp, own
        self._players = self._playing_in()
        self._made: set[str] = set()  # connections the keeper made: not reconnections by hand

    def start(self) -> None:
        """Connect what is there, before anything plays; a port not there is waited for
        (one line), or with exit_on_loss an error (MidiUnavailable)."""
        for keeper, port in self.keepers:
            if keeper.poll() == "found":
                self._connected_to(keeper, port)
            elif self.exit_on_loss:
                raise MidiUnavailable(keeper.missing())
            else:
                self.on_event(keeper.waiting())

    def listening_now(self) -> bool:
        """Whether a synth may hear the output now, asked just before the start-up panic: if so
        it sends a note-off for every note. The connections there now get that panic, so they
        do not count as new later. Without JACK nobody can tell: True."""
        if self.jack is None:
            return True
        now = self.jack.connections(self.out.own_port)
        self._connected = now
        self._ever |= now
        return bool(now)

    def poll(self) -> str | None:
        """One health check; a stop reason when a port vanished and exit_on_loss, else None."""
        if self.out.dead:  # the JACK server died: the daemon is stopping
            return None
        for keeper, port in self.keepers:
            change = keeper.poll()
            if change is None:
                continue
            if change == "lost" and self.exit_on_loss:
                self.on_event(f"{keeper.kind} port lost: {keeper.target}")
                return f"{keeper.kind} port vanished"
            if change in ("found", "back"):
                self._connected_to(keeper, port)
            if keeper.kind == "output" and change != "released":
                # lost: end what the ledger holds (first); found/back: a note-off for every
                # note too, for what a synth that did not restart still holds
                self.reset_output(change != "lost")
            elif change in ("lost", "released"):  # its note-offs will not come
                self.input_lost()
            self.on_event(keeper.line(change))
        if self.jack is not None:
            self._watch()
        return None

    def _connected_to(self, keeper: PortKeeper, port) -> None:
        port.port_name = keeper.target
        if keeper.kind == "output":
            self._made.add(keeper.target)

    def _playing_in(self) -> frozenset[str]:
        if self.jack is None or self.inp.wanted:
            return frozenset()
        return frozenset(p for p in self.jack.connections(self.inp.own_port) if not p.startswith(self.own))

    def _watch_players(self) -> None:
        """One line when a keyboard (or a DAW) is connected to livejam's input or taken away: the
        player sees that livejam hears them, or why it no longer does."""
        now = self._playing_in()
        if now - self._players:
            self.on_event(f"input connected: {', '.join(sorted(now - self._players))} (livejam hears it)")
        if self._players - now:
            self.on_event(f"input disconnected: {', '.join(sorted(self._players - now))}")
        self._players = now

    def _watch(self) -> None:
        self._watch_players()
        now = self.jack.connections(self.out.own_port)
        if not self.out.wanted and self._connected - now:  # a named output's keeper says its own
            left = ", ".join(sorted(self._connected - now))
            self.on_event(f"output disconnected: {left}" + ("" if now else " (nothing hears livejam now)"))
        arrived = now - self._connected - self._made  # the keeper's own were reset as it made them
        back, joined = arrived & self._ever, arrived - self._ever
        self._made -= now  # seen connected: from now on a reconnection of it is by hand
        self._ever |= now
        self._connected = now
        if back:  # it missed the note-offs sent while it was away
            self.reset_output(True)
            self.on_event(f"output reconnected to {', '.join(sorted(back))}: every note ended")
        if joined:  # it may hold notes a killed session left: the start-up panic never reached it
            self.listener_joined()
            self.on_event(f"output connected to {', '.join(sorted(joined))}: "
                          "cleared of notes an earlier session may have left")


def open_jack(api: int, client: str):
    """The JACK connections client when the backend is JACK, else None."""
    if api != rtmidi.API_UNIX_JACK:
        return None
    from livejam.midi.jack import JackConnections

    return JackConnections(client)


def _own_name(expected: str, new: frozenset[str]) -> str:
    """Our port's real name: JACK renames a client whose name is taken ("livejam out-01")."""
    client, _, port = expected.rpartition(":")
    mine = [p for p in new if p == expected or (p.startswith(f"{client}-") and p.endswith(f":{port}"))]
    return mine[0] if len(mine) == 1 else expected


def open_ports(api: int, cfg, callback: Callable, output: Callable | None = None, **reactions) -> tuple:
    """livejam's input and output (MidiConfig `cfg`) and the Keeper of their named ports,
    connected to what is there (`reactions`: Keeper's on_event, reset_output, input_lost,
    listener_joined). `output(api, wanted, client)` opens the output elsewhere (the output
    process, livejam/output/: JACK only, where a port is connected by name from any client)
    and returns what stands for it here.
    Raises MidiUnavailable before anything plays (a port missing with exit_on_port_loss)."""
    from livejam.midi.ports import MidiInput, MidiOutput

    name = cfg.client_name
    jack = None
    try:
        jack = open_jack(api, f"{name} watch")
    except Exception as e:  # MidiUnavailable, OSError from ctypes
        if cfg.input or cfg.output:
            raise MidiUnavailable(f"cannot connect ports on JACK: {e}") from None
        log.info("not watching the output's connections (%s)", e)
    before = jack.ports() if jack is not None else frozenset()
    if output is not None:
        out = output(api, cfg.output, f"{name} out")
    else:
        out = MidiOutput(api, cfg.output, client=f"{name} out")
    inp = None
    try:
        inp = MidiInput(api, callback, cfg.input, client=f"{name} in", ignore_active_sensing=cfg.ignore_active_sensing,
                        kept=True)
        if jack is not None:
            new = jack.ports() - before
            for port in (out, inp):
                own, port.own_port = port.own_port, _own_name(port.own_port, new)
                if port.port_name == own:
                    port.port_name = port.own_port
        own = tuple(f"{name} {role}" for role in ("in", "out", "heartbeat"))
        keeper = Keeper(inp, out, jack, own=own, exit_on_loss=cfg.exit_on_port_loss, **reactions)
        keeper.start()
    except BaseException:
        out.close()
        if inp is not None:
            inp.close()
        raise
    return inp, out, keeper
