"""JACK's connection graph through libjack (ctypes): what rtmidi does not offer.

rtmidi says which ports exist, not what is connected to what, and it connects
only by closing and reopening its own port, which on JACK crashed an input
with callbacks in flight (MidiInput). This client reads and changes
connections between ports of other clients (our own rtmidi ports included),
so a kept port (midi/keeper.py) reconnects without touching rtmidi's ports.
"""
from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import logging

from livejam import quiet_stderr
from livejam.midi.ports import MidiUnavailable

log = logging.getLogger(__name__)
_EEXIST = 17  # jack_connect's answer when the two ports are connected already
_NO_START_SERVER = 0x01  # jack_client_open's JackNoStartServer option
# int (*JackXRunCallback)(void *arg)
XRUN_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)
_LIB: ctypes.CDLL | None = None


def _loaded_libjack() -> str | None:
    """The libjack python-rtmidi already loaded (its wheel bundles its own copy):
    two copies of libjack in one process deadlocked in jack_client_close."""
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.rsplit(None, 1)[-1] if "/" in line else ""
                if "/libjack" in path and ".so" in path:
                    return path
    except OSError:
        pass
    return None


def libjack() -> ctypes.CDLL:
    """The libjack python-rtmidi loaded (else the system's), its functions' signatures set; one per process."""
    global _LIB
    if _LIB is None:
        path = _loaded_libjack() or ctypes.util.find_library("jack")
        if not path:
            raise MidiUnavailable("libjack not found")
        jack = ctypes.CDLL(path)
        jack.jack_client_open.restype = ctypes.c_void_p
        jack.jack_client_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
        jack.jack_port_by_name.restype = ctypes.c_void_p
        jack.jack_port_by_name.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        jack.jack_port_get_all_connections.restype = ctypes.POINTER(ctypes.c_char_p)
        jack.jack_port_get_all_connections.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        jack.jack_get_ports.restype = ctypes.POINTER(ctypes.c_char_p)
        jack.jack_get_ports.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong]
        jack.jack_connect.restype = ctypes.c_int
        jack.jack_connect.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
        jack.jack_free.argtypes = [ctypes.c_void_p]
        jack.jack_client_close.argtypes = [ctypes.c_void_p]
        jack.jack_set_xrun_callback.restype = ctypes.c_int
        jack.jack_set_xrun_callback.argtypes = [ctypes.c_void_p, XRUN_CALLBACK, ctypes.c_void_p]
        jack.jack_activate.restype = ctypes.c_int
        jack.jack_activate.argtypes = [ctypes.c_void_p]
        # libjack prints its errors and notices on stderr (a dozen lines when the server dies, under
        # livejam's one line): into the log instead, for every client of this libjack, rtmidi's too
        _log_libjack_messages(jack)
        _LIB = jack
    return _LIB


def _log_libjack_messages(jack: ctypes.CDLL) -> None:
    """libjack's error and info output into the log. Its own printers are put back at exit: a libjack
    thread printing while the interpreter is finalised must not call into Python (a process that
    runs the daemon ends with os._exit before that: daemon.leave_process)."""
    saved = []
    for name, setter in (("jack_error_callback", jack.jack_set_error_function),
                         ("jack_info_callback", jack.jack_set_info_function)):
        try:
            saved.append((ctypes.c_void_p.in_dll(jack, name), ctypes.c_void_p.in_dll(jack, name).value))
        except ValueError:  # a libjack without the exported pointer: ours stays to the end
            pass
        setter.argtypes = [MESSAGE_CALLBACK]
        setter(_TO_LOG)

    def restore() -> None:
        for pointer, value in saved:
            pointer.value = value

    atexit.register(restore)


def _libjack_said(text: bytes | None) -> None:
    log.debug("libjack: %s", (text or b"").decode(errors="replace"))


# void (*func)(const char *): kept at module level, so the callback lives as long as libjack may call it
MESSAGE_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_char_p)
_TO_LOG = MESSAGE_CALLBACK(_libjack_said)


def open_client(jack, name: str):
    """A JACK client handle (never starting a server), or MidiUnavailable with libjack's status."""
    status = ctypes.c_int(0)
    with quiet_stderr():
        client = jack.jack_client_open(name.encode(), _NO_START_SERVER, ctypes.byref(status))
    if not client:
        raise MidiUnavailable(f"cannot open JACK client {name!r} (status {status.value:#x})")
    return client


class JackConnections:
    """A client of its own with no ports, never activated, so it has no process
    callback: connections are read from the server's shared graph and changed by
    requests to the server (jack_connect needs the two ports' owners active, not
    this client). Used to notice a disconnect/reconnect on stage (the note-offs
    sent while a synth was disconnected never reached it) and to connect a kept
    port to its target.
    """

    def __init__(self, client: str = "livejam watch"):
        self._jack = libjack()
        try:
            self._client = open_client(self._jack, client)
        except MidiUnavailable as e:
            raise MidiUnavailable(f"cannot watch JACK connections ({e})") from None

    def exists(self, port: str) -> bool:
        """True while a port of this full name ("client:port") is registered."""
        return bool(self._jack.jack_port_by_name(self._client, port.encode()))

    def connect(self, source: str, destination: str) -> bool:
        """Connect an output port to an input port; True when they are connected (already, or now)."""
        rc = self._jack.jack_connect(self._client, source.encode(), destination.encode())
        return rc in (0, _EEXIST)

    def connections(self, port: str) -> frozenset[str]:
        handle = self._jack.jack_port_by_name(self._client, port.encode())
        if not handle:
            return frozenset()
        return self._names(self._jack.jack_port_get_all_connections(self._client, handle))

    def ports(self) -> frozenset[str]:
        """The full name of every port registered."""
        return self._names(self._jack.jack_get_ports(self._client, None, None, 0))

    def _names(self, names) -> frozenset[str]:
        """A NULL-terminated array of names from libjack, freed."""
        if not names:
            return frozenset()
        out = []
        i = 0
        while names[i] is not None:
            out.append(names[i].decode(errors="replace"))
            i += 1
        self._jack.jack_free(ctypes.cast(names, ctypes.c_void_p))
        return frozenset(out)

    def close(self) -> None:
        """Left to the end of the process, like the input (MidiInput.close): with the
        system's libjack beside python-rtmidi's own copy, jack_client_close hung."""
