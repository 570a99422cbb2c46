"""Seeded fuzz of the surfaces a user or another program writes to (issue 21): OSC datagrams and
settings. None may print a traceback, kill a thread or let an out-of-range value through; each bad
input is one line (an /livejam/error reply, a ConfigError). MIDI files: tests/midi/test_files_fuzz.py."""
from __future__ import annotations

import queue
import random
import time

import pytest

from livejam.config import DaemonConfig, load, to_dict
from livejam.config.ranges import check_ranges

CONTROLS = ("temperature", "density", "range", "mode", "reset", "panic", "end_phrase", "harmony", "grid",
            "chords", "status", "subscribe", "unsubscribe", "nonsense", "")


def _random_arg(rng: random.Random):
    return rng.choice([
        rng.randint(-2**31, 2**31 - 1), rng.uniform(-1e6, 1e6), float("nan"), float("inf"), -float("inf"),
        rng.random(), "".join(chr(rng.randint(32, 0x2FF)) for _ in range(rng.randint(0, 12))), True, False,
        bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 8))), "duet", "Am F C G", 99999])


def _datagram(rng: random.Random) -> bytes:
    kind = rng.random()
    if kind < 0.2:  # bytes that are no OSC at all, or a mangled message
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 64)))
    from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
    from pythonosc.osc_message_builder import OscMessageBuilder

    b = OscMessageBuilder("/livejam/" + rng.choice(CONTROLS))
    for _ in range(rng.randint(0, 3)):
        b.add_arg(_random_arg(rng))
    msg = b.build()
    if kind < 0.3:
        raw = bytearray(msg.dgram)
        for _ in range(rng.randint(1, 4)):
            raw[rng.randrange(len(raw))] = rng.getrandbits(8)
        return bytes(raw)
    if kind < 0.4:  # a bundle, dated now or years ahead (strict timing is off: handled now)
        bundle = OscBundleBuilder(rng.choice([IMMEDIATELY, time.time() + 3e7]))
        bundle.add_content(msg)
        return bundle.build().dgram
    return msg.dgram


@pytest.mark.parametrize("seed", [0, 1])
def test_fuzzed_osc_datagrams_are_answered_and_the_server_lives(seed, capfd):
    pytest.importorskip("pythonosc")
    from livejam.dispatch import build_performer
    from livejam.stage.osc import MAX_SUBSCRIBERS, OscControl
    from tests.fakes import session
    from tests.stage.test_osc import _listener, _receive_until, _send

    s = session(build_performer(DaemonConfig(seed=1)))
    osc = OscControl("127.0.0.1:0", s.config)
    osc.bind()
    osc.start(s)
    rng = random.Random(seed)
    sock = _listener()
    try:
        for _ in range(300):
            sock.sendto(_datagram(rng), ("127.0.0.1", osc.port))
        _send(sock, osc.port, "/livejam/status")  # still answering, after everything above
        _receive_until(sock, "/livejam/status/mode")
        assert osc._thread.is_alive() and len(osc.subscribers) <= MAX_SUBSCRIBERS
        # every control the fuzz got through reaches the performer, and leaves it in range
        while True:
            try:
                t, raw = s.inq.get(timeout=0.05)
            except queue.Empty:
                break
            s.dispatcher.feed(t, raw, s.clock.now())
        c = s.dispatcher.performer.constraints
        assert 0.0 <= c.harmony <= 1.0 and 0.0 <= c.grid <= 1.0
        assert 0.0 < c.temperature <= 2.0 and -2.0 <= c.density <= 2.0
    finally:
        sock.close()
        osc.close()
    assert "Traceback" not in capfd.readouterr().err


def _random_value(rng: random.Random, like):
    pool = [rng.randint(-10**6, 10**6), rng.uniform(-1e3, 1e3), "nan", "inf", "-inf", '"x"', "true", "[]",
            "[1, 2]", "[16]", '{a = 1}', "-1", "0", "1e308"]
    if isinstance(like, (int, float)) and not isinstance(like, bool):
        pool += [repr(like * rng.uniform(-3, 3))] * 3
    return rng.choice(pool)


def _keys(d: dict, prefix=()) -> list[tuple[str, ...]]:
    out = []
    for k, v in d.items():
        out += _keys(v, prefix + (k,)) if isinstance(v, dict) else [(prefix + (k,), v)]
    return out


@pytest.mark.parametrize("seed", range(4))
def test_fuzzed_settings_load_in_range_or_are_one_line(seed):
    rng = random.Random(seed)
    keys = _keys(to_dict(DaemonConfig()))
    for _ in range(300):
        picked = rng.sample(keys, rng.randint(1, 3))
        overrides = [f"{'.'.join(k)}={_random_value(rng, like)}" for k, like in picked]
        try:
            cfg = load(DaemonConfig, None, overrides)
        except ValueError as e:  # ConfigError, or a section's own check: one line either way (cli.main)
            assert "\n" not in str(e), overrides
            continue
        check_ranges(cfg)  # what loaded is within every range (raises otherwise)
