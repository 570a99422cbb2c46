"""The MIDI system a live session plays on, as one object the daemon asks for everything.

The daemon needs five things of the transport: its name, the session's ports (an input,
an output and the keeper of named ports), a heartbeat into its own input, JACK's xrun
count, and whether the system still lives. `MidiSystem` gets them from rtmidi (and
libjack where the backend is JACK); tests hand the daemon a fake with the same five
(tests/fakes.py `FakeMidiSystem`), so its threads and every shutdown path run without
a MIDI system.
"""
from __future__ import annotations

from typing import Callable

import rtmidi

from livejam.midi.keeper import open_ports
from livejam.midi.ports import InputHeartbeat, api_name, select_backend, transport_alive
from livejam.midi.xruns import XrunWatch


class MidiSystem:
    """rtmidi's backend picked by `backend` ("auto", "jack", "alsa", ...; raises MidiUnavailable
    with one line when none works)."""

    def __init__(self, backend: str = "auto"):
        self.api = select_backend(backend)
        self.name = api_name(self.api)
        # another process may own the output port: the keeper connects it by name (libjack)
        self.output_elsewhere = self.api == rtmidi.API_UNIX_JACK

    def open_ports(self, cfg, callback: Callable, output: Callable | None = None, **reactions) -> tuple:
        """(input, output, keeper) for MidiConfig `cfg`; see midi/keeper.py open_ports."""
        return open_ports(self.api, cfg, callback, output, **reactions)

    def heartbeat(self, target: str, client: str) -> InputHeartbeat:
        return InputHeartbeat(self.api, target, client=client)

    def xruns(self, client: str) -> XrunWatch:
        return XrunWatch.open(self.api, client)

    def alive(self) -> bool:
        """A new client can still be made (a JACK server that died cannot make one)."""
        return transport_alive(self.api)
