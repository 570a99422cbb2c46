"""How a session stops: the signals that stop it, and closes that may not hold the stop up.

Every terminating signal a user, a shell or a service manager sends ends in the daemon's one shutdown
(panic, recording, counters), so none may kill the process with a note sounding.
"""
from __future__ import annotations

import signal
import threading

# every terminating signal a user or a shell sends: all end in the same shutdown
STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGPIPE")
CLOSE_DEADLINE_S = 1.0  # an add-on's close (or Link's) may hold the shutdown this long, then it goes on


def install_stop_signals(handler) -> dict:
    """`handler` for every stop signal (main thread only); returns the handlers it replaced."""
    sigs = [getattr(signal, name) for name in STOP_SIGNALS if hasattr(signal, name)]
    old = {sig: signal.signal(sig, handler) for sig in sigs}
    # A blocked signal is inherited through exec (some CI runners and service managers block
    # SIGPIPE): a handler alone would never run, so the stop signals are unblocked here too.
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, sigs)
    return old


def restore_signals(old: dict) -> None:
    for sig, handler in old.items():
        signal.signal(sig, handler)


class LeftBehind(TimeoutError):
    """A close that did not return by its deadline: its thread is left running (the process then ends
    with os._exit, see DaemonResult.hard_exit)."""


def with_deadline(close, seconds: float = CLOSE_DEADLINE_S):
    """`close` run on a daemon thread and waited for `seconds` at most: a library stuck in its close
    (sounddevice on a dead JACK server, an OSC server asleep) is left behind, and the shutdown goes on."""
    def run() -> None:
        failed: list[BaseException] = []

        def target() -> None:
            try:
                close()
            except BaseException as e:
                failed.append(e)

        t = threading.Thread(target=target, name="livejam-close", daemon=True)
        t.start()
        t.join(seconds)
        if t.is_alive():
            raise LeftBehind(f"still closing after {seconds:g} s: left behind")
        if failed:
            raise failed[0]
    return run
