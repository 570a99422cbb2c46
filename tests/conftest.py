"""Shared fixtures. `jack_server`: a private, synchronous JACK server with the
dummy driver for tests that need a real MIDI transport.

The server gets a unique name and is exported through JACK_DEFAULT_SERVER to
this process and every subprocess it starts, so a user's own JACK server is
never touched; it is started with -S (synchronous: without it, bursts through
the rtmidi callback lost and duplicated messages) and stopped by PID. (A longer
client timeout, -t 5000, was tried: after a client closed, the server's graph
stalled and the next daemon never became ready.)
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def jack_server():
    from livejam.transport import JackServer

    # A start can fail while other sessions' servers fill JACK's per-user registry
    # ("Too many servers already active"): wait for a slot, within reason.
    for attempt in range(10):
        try:
            server = JackServer.start(period=64)
            break
        except RuntimeError as e:
            if attempt == 9 or "not found" in str(e):
                pytest.fail(f"{e} (`make test` installs jackd2)")
            time.sleep(3.0)
    try:
        yield server.name
    finally:
        server.stop()


def livejam_cmd(*args: str) -> list[str]:
    """The CLI run from this checkout, with the interpreter running the tests."""
    return [sys.executable, "-m", "livejam.cli", *args]
