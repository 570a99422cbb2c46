"""`livejam ports` from the player's side (issue 19 #2): what can be played from and to, livejam's
own ports hidden, advice when there is nothing. The port listing itself is faked here; over JACK
the daemon's ports are listed by tests/jack/test_e2e_jack.py's sessions."""
from __future__ import annotations

import pytest

from livejam import cli
from livejam.midi import ports


@pytest.fixture
def listing(monkeypatch):
    def use(inputs, outputs):
        monkeypatch.setattr(ports, "select_backend", lambda name: 0)
        monkeypatch.setattr(ports, "api_name", lambda api: "jack")
        monkeypatch.setattr(ports, "list_ports", lambda api: (list(inputs), list(outputs)))
    return use


def test_ports_lists_keyboards_and_synths_without_livejams_own(listing, capsys):
    listing(["system:midi_capture_1", "livejam out:out", "livejam heartbeat:out"],
            ["FLUID Synth:midi_00", "livejam in:in"])
    assert cli.main(["ports"]) == 0
    out = capsys.readouterr().out
    assert "play from (keyboards" in out and "  system:midi_capture_1" in out
    assert "play to (synths" in out and "  FLUID Synth:midi_00" in out
    assert "livejam out" not in out and "heartbeat" not in out and "livejam in:in" not in out
    assert "none:" not in out


def test_ports_with_nothing_plugged_in_says_what_to_do(listing, capsys):
    listing(["livejam out:out"], [])
    assert cli.main(["ports"]) == 0
    out = capsys.readouterr().out
    assert "plug in a keyboard" in out and "--sound" in out


def test_ports_all_shows_livejams_own(listing, capsys):
    listing(["livejam out:out"], ["livejam in:in"])
    assert cli.main(["ports", "--all"]) == 0
    assert "livejam out:out" in capsys.readouterr().out
