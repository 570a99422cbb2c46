"""JACK's xruns, counted: the one trace of input that never reached livejam.

A synchronous JACK server (-S, what `make run` and the tests start) waits only
so long for each client's period. When livejam's input client is not finished
in time (a period of thousands of events, each a Python callback; or a loaded
machine that does not run the client's thread), the server logs
"client = livejam in was not finished" and the events of the period it skips
never reach rtmidi's callback: nothing behind that callback (InputQueue, the
normaliser's counters) can see them. What the server tells its clients about
it is an xrun notice, sent to every client that asked for one, without saying
whose period it was. So the count is of periods in which some client's work
was late: each one may have cost input, and with none, JACK dropped nothing.

The watch is a JACK client of its own with no ports and no process callback
(the synchronous graph never waits for it), activated only because a client
gets notices once active. Its callback runs on libjack's notification thread
(not the real-time one) and only counts. It uses the libjack python-rtmidi
loaded (livejam.midi.jack.libjack): a second copy in the process deadlocked in
jack_client_close. Like the connection watch it is not closed: on JACK the
daemon's process ends with os._exit (MidiInput.close), which removes it whole.
"""
from __future__ import annotations

import logging

import rtmidi

log = logging.getLogger(__name__)

# What the counter reads where nothing tells livejam of input the transport dropped: off JACK (ALSA,
# CoreMIDI and WinMM say nothing of it either) and on JACK when the watch could not start.
UNKNOWN = "unknown"


class XrunWatch:
    """`value`: the xruns counted since the watch started, or UNKNOWN."""

    def __init__(self, counting: bool = False):
        self.count = 0
        self.counting = counting
        self._callback = None  # the ctypes callback: kept alive as long as libjack may call it

    @property
    def value(self) -> int | str:
        return self.count if self.counting else UNKNOWN

    def _on_xrun(self, arg) -> int:
        # libjack's notification thread: count, nothing else (no log, no lock)
        self.count += 1
        return 0

    @classmethod
    def open(cls, api: int, client: str = "livejam xruns", lib=None) -> "XrunWatch":
        """The watch on JACK (`api` rtmidi's); off JACK one that reads UNKNOWN. One that cannot start
        on JACK logs why and reads UNKNOWN: the session plays on."""
        if api != rtmidi.API_UNIX_JACK:
            return cls()
        try:
            from livejam.midi.jack import XRUN_CALLBACK, libjack, open_client

            jack = lib if lib is not None else libjack()
            handle = open_client(jack, client)
            watch = cls(True)
            watch._callback = XRUN_CALLBACK(watch._on_xrun)
            if jack.jack_set_xrun_callback(handle, watch._callback, None) != 0 or jack.jack_activate(handle) != 0:
                jack.jack_client_close(handle)
                raise RuntimeError("libjack refused the xrun callback")
        except Exception as e:  # MidiUnavailable (no libjack, no client), OSError, a libjack without the call
            # a warning, shown by default: on JACK this is the one trace of input lost in transport
            log.warning("JACK xruns not counted (%s): input JACK may drop shows as xruns unknown", e)
            return cls()
        return watch
