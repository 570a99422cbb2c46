"""The pure MIDI layer: message table, normalisation, echo filter, note ledger."""
from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from livejam.midi.ledger import NoteLedger
from livejam.midi.normalise import EchoFilter, InputNormaliser
from livejam.midi.spec import CHANNEL, Message, note_on, parse


def test_parse_round_trips_every_channel_message():
    for status, (kind, length) in CHANNEL.items():
        for channel in (0, 9, 15):
            raw = [status | channel, 60, 100][:length]
            msg = parse(raw)
            assert msg.kind == kind and msg.channel == channel
            assert msg.bytes() == raw


def test_parse_rejects_malformed():
    for raw in ([], [0x90], [0x90, 60], [0x90, 60, 128], [0x40, 1, 2], [0xF4], [0xF0, 1, 2], [0xF8, 0], [300]):
        assert parse(raw) is None, raw
    assert parse([0xF0, 1, 2, 0xF7]).kind == "sysex"


def test_random_byte_stream_never_raises():
    rng = random.Random(1234)
    norm = InputNormaliser()
    for _ in range(20_000):
        raw = [rng.randrange(256) for _ in range(rng.randrange(0, 6))]
        norm(raw, 0.0)
    c = norm.counters
    assert c.received == 20_000 and c.invalid > 0


def test_normalise_note_on_velocity_zero_and_ignored_kinds():
    norm = InputNormaliser()
    assert norm([0x93, 60, 0], 0.0) == Message("note_off", 3, 60, 0)
    assert norm([0x83, 60, 64], 0.0) == Message("note_off", 3, 60, 0)
    assert norm([0xF0, 0x7E, 0xF7], 0.0) is None
    assert norm([0xFE], 0.0) is None
    assert norm([0xF8], 0.0).kind == "clock"
    assert norm.counters.ignored == 2
    keep = InputNormaliser(ignore_sysex=False, ignore_active_sensing=False)
    assert keep([0xFE], 0.0).kind == "active_sensing"


def test_echo_of_our_output_is_ignored_once_and_only_in_window():
    echo = EchoFilter(window_s=0.1)
    norm = InputNormaliser(echo=echo)
    echo.sent(note_on(0, 60, 100), 1.0)
    echo.sent(Message("note_off", 0, 60, 0), 1.2)
    assert norm([0x90, 60, 100], 1.002) is None  # the echo
    assert norm([0x90, 60, 100], 1.003) is not None  # the human playing the same note: kept
    assert norm([0x90, 60, 0], 1.21) is None  # our note_off came back as note_on vel 0
    echo.sent(note_on(0, 62, 100), 2.0)
    assert norm([0x90, 62, 100], 2.5) is not None  # outside the window
    assert norm.counters.echoes == 2


def _wire_sounding(msgs):
    on = set()
    for port, m in msgs:
        key = (port, m.channel, m.a)
        if m.kind == "note_on":
            assert key not in on, "doubled note-on on the wire"
            on.add(key)
        elif m.kind == "note_off":
            assert key in on, "note-off for a silent note on the wire"
            on.discard(key)
    return on


ops = st.lists(st.tuples(st.booleans(), st.integers(0, 1), st.integers(0, 15), st.integers(0, 127)), max_size=300)


@settings(max_examples=200, deadline=None)
@given(ops)
def test_ledger_invariants(seq):
    ledger = NoteLedger({0: {0, 1}})
    wire = []
    for i, (is_on, port, channel, note) in enumerate(seq):
        ok = ledger.note_on(port, channel, note, float(i)) if is_on else ledger.note_off(port, channel, note)
        if ok:
            wire.append((port, Message("note_on" if is_on else "note_off", channel, note, 100 if is_on else 0)))
    assert _wire_sounding(wire) == set(ledger.sounding())
    panic = ledger.panic()
    assert ledger.sounding() == []
    assert _wire_sounding(wire + [p for p in panic if p[1].kind == "note_off"]) == set()
    cc = {(port, m.channel, m.a) for port, m in panic if m.kind == "control_change"}
    channels = {(0, 0), (0, 1)} | {(port, ch) for is_on, port, ch, _ in seq if is_on}
    assert cc == {(p, ch, n) for p, ch in channels for n in (64, 123)}
    # explicit note-offs come before the controllers
    kinds = [m.kind for _, m in panic]
    assert kinds == sorted(kinds, key=lambda k: k != "note_off")


def test_ledger_watchdog_candidates():
    ledger = NoteLedger()
    ledger.note_on(0, 0, 60, 1.0)
    ledger.note_on(0, 0, 62, 5.0)
    assert ledger.held_since(2.0) == [(0, 0, 60)]
    assert ledger.oldest_on() == 1.0
    assert [m.a for _, m in ledger.resolve(ledger.held_since(2.0))] == [60]
    assert ledger.sounding() == [(0, 0, 62)]
