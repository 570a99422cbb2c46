"""What goes over the two pipes between the main process and the output process: one table.

Every item is a tuple whose first element names it. Commands (main -> output) either go on at
once or, where the main process must know they are done before its next step (the shutdown's
order: stop, clock stop, panic, close), are answered with (DONE, name) after everything sent
before it was reported.
"""
from __future__ import annotations

import os
from multiprocessing.connection import Connection

# command: (arguments, answered with DONE)
COMMANDS = {
    "open": ("config, rtmidi api, client name: the first command; answered with READY", False),
    "notes": ("a list of TimedNote", False),
    "raw": ("a list of (time, Message): MIDI clock out, count-in clicks", False),
    "cancel": ("barge-in: Scheduler.cancel", False),
    "reset": ("all_notes: Scheduler.reset_output (a synth lost or back)", False),
    "clear": ("Scheduler.clear_for_listener (a synth connected)", False),
    "dead": ("the MIDI system died: sends return at once", False),
    "start": ("start the scheduler thread", False),
    "stop": ("flush: Scheduler.stop", True),
    "send": ("a Message sent at once (the clock's Stop at the end)", True),
    "panic": ("all_notes, startup: Scheduler.panic", True),
    "close": ("close the port and exit", True),
}
ANSWERED = frozenset(name for name, (_, answered) in COMMANDS.items() if answered)

# reports (output -> main)
READY = "ready"  # (READY, the port's own name) once the port is open
SENT = "sent"  # (SENT, [(port, Message, time sent, its lateness or None), ...]) since the last report
COUNTERS = "counters"  # (COUNTERS, the scheduler's counters but lateness, the ledger's, the sounding notes)
ERROR = "error"  # (ERROR, one line): the scheduler thread failed, or the port could not be opened
DONE = "done"  # (DONE, command name): an answered command is done

REPORT_S = 0.01  # the output process reports what it sent at most this often


def reader_for_child() -> tuple[int, Connection]:
    """(descriptor the child reads, Connection this process writes)."""
    r, w = os.pipe()
    return r, Connection(w, readable=False)


def writer_for_child() -> tuple[int, Connection]:
    """(descriptor the child writes, Connection this process reads)."""
    r, w = os.pipe()
    return w, Connection(r, writable=False)
