"""Shared fixtures. `jack_server`: a private, synchronous JACK server with the
dummy driver for tests that need a real MIDI transport.

The server gets a unique name and is exported through JACK_DEFAULT_SERVER to
this process and every subprocess it starts, so a user's own JACK server is
never touched; it is started with -S (synchronous: without it, bursts through
the rtmidi callback lost and duplicated messages) and stopped by PID.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def jack_server():
    jackd, jack_wait = shutil.which("jackd"), shutil.which("jack_wait")
    if not jackd or not jack_wait:
        pytest.fail("jackd/jack_wait not found: install Debian jackd2 (`make test` does)")
    name = f"livejam-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    env = dict(os.environ, JACK_NO_START_SERVER="1")
    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"{name}.log"
    log = open(log_path, "w")
    proc = subprocess.Popen([jackd, "-n", name, "-S", "-d", "dummy", "-r", "48000", "-p", "64"],
                            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    saved = {k: os.environ.get(k) for k in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")}
    try:
        wait = subprocess.run([jack_wait, "-w", "-s", name, "-t", "20"], env=env, capture_output=True, text=True)
        if wait.returncode != 0 or proc.poll() is not None:
            pytest.fail(f"JACK server {name} did not start: {wait.stdout} {log_path.read_text()[-500:]}")
        os.environ["JACK_DEFAULT_SERVER"] = name
        os.environ["JACK_NO_START_SERVER"] = "1"
        yield name
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
        log_path.unlink(missing_ok=True)


def livejam_cmd(*args: str) -> list[str]:
    """The CLI run from this checkout, with the interpreter running the tests."""
    return [sys.executable, "-m", "livejam.cli", *args]
