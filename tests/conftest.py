"""Shared fixtures. `jack_server`: a private, synchronous JACK server with the
dummy driver for tests that need a real MIDI transport.

The server gets a unique name and is exported through JACK_DEFAULT_SERVER to
this process and every subprocess it starts, so a user's own JACK server is
never touched; it is started with -S (synchronous: without it, bursts through
the rtmidi callback lost and duplicated messages) and stopped by PID.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def jack_server():
    from livejam.transport import JackServer

    try:
        server = JackServer.start(period=64)
    except RuntimeError as e:
        pytest.fail(f"{e} (`make test` installs jackd2)")
    try:
        yield server.name
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _own_user_dirs(tmp_path_factory, monkeypatch):
    """A user's own ~/.config/livejam/config.toml or sessions must not change what a test sees:
    every test (and what it starts) gets empty XDG config and data folders."""
    home = tmp_path_factory.mktemp("xdg")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))


def livejam_cmd(*args: str) -> list[str]:
    """The CLI run from this checkout, with the interpreter running the tests."""
    return [sys.executable, "-m", "livejam.cli", *args]
