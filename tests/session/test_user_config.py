"""Config where people look: ~/.config/livejam/config.toml (XDG_CONFIG_HOME here) is loaded when no
--config is given, `livejam learn` writes its table there keeping the rest, sessions go to the user
data dir, and a session where nothing was played is not saved."""
from __future__ import annotations

import os
import queue
from pathlib import Path

from livejam.cli import build_parser
from livejam.options import config_from_args
from livejam.config import DaemonConfig, load
from livejam.learn import merge_into
from livejam.config import ControlMap
from livejam.config import user_config_file, user_sessions_dir
from livejam.recording import Recorder, default_path


def test_user_dirs_follow_xdg():
    assert user_config_file() == Path(os.environ["XDG_CONFIG_HOME"]) / "livejam" / "config.toml"
    assert user_sessions_dir() == Path(os.environ["XDG_DATA_HOME"]) / "livejam" / "sessions"
    assert default_path(DaemonConfig().record.folder).parent == user_sessions_dir()


def test_run_loads_the_user_config_without_config_flag(tmp_path):
    args = build_parser().parse_args(["run"])
    assert config_from_args(args).neural.temperature == DaemonConfig().neural.temperature  # no file: defaults
    user_config_file().parent.mkdir(parents=True)
    user_config_file().write_text("[neural]\ntemperature = 0.5\n")
    assert config_from_args(build_parser().parse_args(["run"])).neural.temperature == 0.5
    other = tmp_path / "other.toml"
    other.write_text("[neural]\ntemperature = 0.3\n")
    assert config_from_args(build_parser().parse_args(["run", "--config", str(other)])).neural.temperature == 0.3
    assert config_from_args(build_parser().parse_args(["run", "--config", ""])).neural.temperature == 0.7


def test_learn_replaces_only_its_table():
    existing = "[neural]\ntemperature = 0.5\n\n[neural.controls]\ntemperature = 1\ndensity = 2\n\n[midi]\nthru = true\n"
    text = merge_into(existing, ControlMap(temperature=70))
    cfg = load(DaemonConfig, _write(text))
    assert cfg.neural.temperature == 0.5 and cfg.midi.thru and cfg.neural.controls == ControlMap(temperature=70)
    assert text.count("[neural.controls]") == 1
    assert load(DaemonConfig, _write(merge_into("", ControlMap()))).neural.controls == ControlMap()


def test_learn_command_writes_the_userconfig_from_args(monkeypatch):
    import livejam.learn as learn

    q: queue.SimpleQueue = queue.SimpleQueue()
    for raw in ([0xB0, 70, 1], [0xB0, 71, 1]):
        q.put(raw)

    class FakeInput:  # no MIDI system needed: the learnt CCs come from the queue above
        port_name = "fake"

        def __init__(self, api, callback, name, client):
            pass

        def close(self):
            pass

    import livejam.midi.ports as ports

    monkeypatch.setattr(ports, "MidiInput", FakeInput)
    monkeypatch.setattr(ports, "select_backend", lambda name: 0)
    monkeypatch.setattr(learn, "cc_numbers", lambda _q: lambda timeout: _next(q, timeout))
    args = build_parser().parse_args(["learn", "--timeout", "0.05"])
    assert args.func(args) == 0
    cfg = load(DaemonConfig, user_config_file())
    assert (cfg.neural.controls.temperature, cfg.neural.controls.density) == (70, 71)


def _next(q, timeout):
    try:
        return q.get(timeout=timeout)[1]
    except queue.Empty:
        return None


def test_an_empty_session_is_not_saved(tmp_path):
    from livejam.daemon import Daemon

    d = Daemon(DaemonConfig(), record_path=tmp_path / "s.mid")
    d._save(Recorder(0.0), tmp_path / "s.mid")
    assert d.recording is None and not (tmp_path / "s.mid").exists()
    r = Recorder(0.0)
    from livejam.midi.spec import note_off, note_on

    r.record_human(note_on(0, 60, 100), 1.0)
    r.record_human(note_off(0, 60), 1.5)
    d._save(r, tmp_path / "s.mid")
    assert d.recording == tmp_path / "s.mid" and d.recording.exists()


_N = [0]


def _write(text: str) -> Path:
    _N[0] += 1
    path = Path(os.environ["XDG_CONFIG_HOME"]).parent / f"t{_N[0]}.toml"
    path.write_text(text)
    return path


def test_a_config_path_that_is_no_file_is_one_line(tmp_path):
    """Issue 21 #10: a folder, a FIFO or a symlink loop was silently ignored (or blocked the start), a
    deeply nested file gave a RecursionError traceback."""
    import os

    import pytest

    from livejam.config import ConfigError

    fifo, loop, deep = tmp_path / "fifo", tmp_path / "loop", tmp_path / "deep.toml"
    os.mkfifo(fifo)
    loop.symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(loop)
    deep.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    for path, says in ((tmp_path, "not a regular file"), (fifo, "not a regular file"), (loop, "cannot be read"),
                       (deep, "nested too deeply")):
        with pytest.raises(ConfigError, match=says):
            load(DaemonConfig, path)
    with pytest.raises(ConfigError, match="nested too deeply"):
        load(DaemonConfig, None, ["a=" + "[" * 5000 + "]" * 5000])
