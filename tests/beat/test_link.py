"""Ableton Link with two real peers: a stand-in DAW process and livejam's beat clock.

Link discovers peers by multicast on every interface, so the peers run in a network
namespace of their own with only the loopback device up (`unshare -n`, as root or with
user namespaces): nothing leaves the machine. tests/beat/link_peers.py runs both sides and
reports; the waits there are bounded polls on what Link reports, not timing guesses.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytest.importorskip("link", reason="the Link package (LinkPython-extern, livejam[link]) is not installed")

LOOPBACK_ONLY = "ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo && "


def in_namespace(cmd: str) -> list[str]:
    flags = ["-n"] if shutil.which("ip") and _root() else ["-r", "-n"]
    return ["unshare", *flags, "sh", "-c", LOOPBACK_ONLY + cmd]


def _root() -> bool:
    import os

    return os.geteuid() == 0


@pytest.fixture(scope="module")
def namespace_ok():
    if not shutil.which("unshare") or not shutil.which("ip"):
        pytest.skip("needs unshare and ip (util-linux, iproute2) for a loopback-only network namespace")
    probe = subprocess.run(in_namespace("true"), capture_output=True, text=True, timeout=20)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a network namespace here: {probe.stderr.strip()[:200]}")


@pytest.mark.slow
def test_two_link_peers_on_loopback(namespace_ok):
    cmd = f"exec {sys.executable} tests/beat/link_peers.py"
    done = subprocess.run(in_namespace(cmd), cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["alone"] == "bpm"  # no peers: our own tempo
    assert out["join_s"] >= 0 and out["tempo_s"] >= 0, out  # the DAW joined and set 97 bpm
    assert out["bpm"] == pytest.approx(97.0, abs=0.01)
    assert max(abs(e) for e in out["beat_errors"]) < 0.02, out  # the same beat as the DAW, to 12 ms
    assert out["bar"][1] == 4
    assert out["retempo_s"] >= 0 and out["generation_after_retempo"] == out["generation"], out  # no renumbering
    assert out["leave_s"] >= 0 and out["after"] == ["bpm", 120.0], out  # the DAW left: our tempo again
