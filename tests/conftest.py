"""Shared fixtures. `jack_server`: a private, synchronous JACK server with the
dummy driver for tests that need a real MIDI transport.

The server gets a unique name and is exported through JACK_DEFAULT_SERVER to
this process and every subprocess it starts, so a user's own JACK server is
never touched; it is started with -S (synchronous: without it, bursts through
the rtmidi callback lost and duplicated messages) and stopped by PID. It keeps
jackd's default client timeout: with -t 5000 (jackd 1.9.21) a server wedged in
about 1 start in 10 (its log: "SuspendRefNum error ... engine may now behave
abnormally"), the daemon then never became ready or never exited, and a test
hung for minutes (see the comment above test_paced_stream_over_jack_loses_nothing_uncounted).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


# JACK keeps a per-user registry of 8 servers; a server that dies without
# stopping (a killed test run, a crash) keeps its slot until a server *of the
# same name* starts. Unique names would leak slots until no server can start
# ("Too many servers already active"); these few fixed names reclaim them.
TEST_SERVER_NAMES = [f"livejam-test-{k}" for k in range(6)]


def _running(name: str) -> bool:
    env = dict(os.environ, JACK_NO_START_SERVER="1")
    try:
        out = subprocess.run(["jack_wait", "-c", "-s", name], env=env, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return True
    return out.returncode == 0 and "not running" not in out.stdout


def start_test_server(client_timeout_ms: int | None = None):
    """A private server under a free fixed name (a running one answers EEXIST: next name)."""
    from livejam.measure.jack_server import JackServer

    for attempt in range(3):
        for name in TEST_SERVER_NAMES:
            if _running(name):  # another session's: never start (nor later stop) a server under its name
                continue
            try:
                return JackServer.start(period=64, name=name, client_timeout_ms=client_timeout_ms)
            except RuntimeError as e:
                if "not found" in str(e):
                    pytest.fail(f"{e} (`make test` installs jackd2)")
        time.sleep(3.0)  # every name busy: other sessions' servers; wait for one to stop
    pytest.fail("no JACK server could start (every test server name is in use)")


@pytest.fixture(scope="session")
def jack_server():
    server = start_test_server()
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


def checkout_env() -> dict:
    """This process's environment with this checkout first on the import path. A script run from
    tests/ (the player) or a command run from another folder imports livejam from sys.path, which
    otherwise is wherever the virtual environment was installed from: another checkout's livejam
    (a worktree's tests run by the main checkout's venv played against a daemon of other settings)."""
    path = [str(ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
    return dict(os.environ, PYTHONPATH=os.pathsep.join(path))


def livejam_cmd(*args: str) -> list[str]:
    """The CLI run from this checkout, with the interpreter running the tests."""
    return [sys.executable, "-m", "livejam.cli", *args]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """The committed tiny random v2 model (tests/data/tiny.onnx, made by tests/tiny_model.py), copied
    into a session folder so no test can change the committed file.

    Its dt head leans to short times, so the untrained model plays often enough for the performer
    tests to see answers. No torch needed: the tests that use it run on onnxruntime alone;
    tests/engine/test_tiny_model.py (training extra) fails when the committed file is stale.
    """
    from tests.tiny_model import PATH

    out = tmp_path_factory.mktemp("model") / "tiny.onnx"
    shutil.copyfile(PATH, out)
    return out
