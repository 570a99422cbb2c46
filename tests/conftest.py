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
    from livejam.measure.jack import JackServer

    try:
        server = JackServer.start(period=64)
    except RuntimeError as first:
        # JACK's machine-wide registry has a few server slots; servers killed unstopped keep theirs.
        # With no jackd running at all, the registry is stale: clear it and try once more.
        import subprocess

        if subprocess.run(["pgrep", "-x", "jackd"], capture_output=True).returncode == 0:
            pytest.fail(f"{first} (`make test` installs jackd2; other JACK servers run here)")
        Path("/dev/shm/jack-shm-registry").unlink(missing_ok=True)
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


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny random v2 model file, exported once per test session.

    Its dt head leans to short times, so the untrained model plays often enough for
    the performer tests to see answers. Torch is needed only here (the export);
    the tests that use the file run on onnxruntime alone.
    """
    torch = pytest.importorskip("torch")
    from livejam.config import from_dict, to_dict
    from tools.export_onnx import export
    from tools.model import EventTransformer, ModelConfig

    cfg = from_dict(ModelConfig, {**to_dict(ModelConfig()), "n_layer": 1, "n_head": 2, "d_model": 32, "d_ff": 64,
                                  "max_len": 64})
    torch.manual_seed(0)
    model = EventTransformer(cfg).eval()
    with torch.no_grad():
        model.heads[1].out.bias.copy_(-0.05 * torch.arange(cfg.vocab.n_dt, dtype=torch.float32))
    return export(model, tmp_path_factory.mktemp("model") / "tiny.onnx", check=False)
