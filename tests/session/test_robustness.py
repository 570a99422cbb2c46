"""Whatever arrives on the input, the engine does not raise and leaves no note
sounding after shutdown: random byte streams, hypothesis sequences (offs without
ons, repeated ons, all 16 channels), and a burst of 10,000 messages."""
from __future__ import annotations

import random
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livejam.config import DaemonConfig, load
from livejam.daemon import build_performer
from livejam.simulate import run_virtual

from tests.fakes import FakeCallResponse

# Short answers keep the virtual runs small; behaviour is the same.
CFG = load(DaemonConfig, None, ["performer.max_answer_s=3.0"])
ENGINES = ["markov", "neural", "fake"]


@pytest.fixture(autouse=True, scope="module")
def _tiny(tiny_model):
    global TINY
    TINY = str(tiny_model)


TINY = ""  # the session's tiny model (tests/conftest.py), set for each test


def performer(engine, seed=0):
    if engine == "fake":
        return FakeCallResponse()
    if engine == "neural":  # duet: it plays the whole time, so the garbage meets a busy machine part
        cfg = load(DaemonConfig, None, ["performer.max_answer_s=3.0", f"neural.model={TINY!r}",
                                        "neural.mode='duet'"])
        return build_performer(replace(cfg, seed=seed, performer=replace(cfg.performer, kind=engine)))
    return build_performer(replace(CFG, seed=seed, performer=replace(CFG.performer, kind=engine)))


def check(run):
    # counted from the messages on the wire, independently of the ledger
    assert run.summary["sounding_at_end"] == 0


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fixed_seed_random_streams(engine, seed):
    rng = random.Random(seed)
    events, t = [], 0.0
    for _ in range(3000):
        t += rng.choice([0.0, 0.001, 0.01, 0.1, 0.3, 0.7])
        r = rng.random()
        if r < 0.7:  # notes on any channel, ons and offs unpaired on purpose
            raw = [rng.choice([0x80, 0x90]) | rng.randrange(16), rng.randrange(128), rng.randrange(128)]
        elif r < 0.8:
            raw = [0xB0 | rng.randrange(16), rng.randrange(128), rng.randrange(128)]
        elif r < 0.9:
            raw = [rng.choice([0xF8, 0xFA, 0xFC, 0xFE, 0xF0])] + ([1, 2, 0xF7] if rng.random() < 0.5 else [])
        else:  # garbage
            raw = [rng.randrange(256) for _ in range(rng.randrange(0, 5))]
        events.append((t, raw))
    check(run_virtual(events, performer(engine, seed), CFG, tail_s=4.0))


note_msg = st.tuples(st.sampled_from([0x80, 0x90]), st.integers(0, 15), st.integers(0, 127), st.integers(0, 127))
gap = st.sampled_from([0.0, 0.0, 0.002, 0.05, 0.2, 0.6, 1.5])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(gap, note_msg), max_size=120), st.sampled_from(ENGINES))
def test_hypothesis_note_sequences(seq, engine):
    t, events = 0.0, []
    for dt, (status, channel, note, vel) in seq:
        t += dt
        events.append((t, [status | channel, note, vel]))
    check(run_virtual(events, performer(engine), CFG, tail_s=4.0))


@pytest.mark.parametrize("engine", ENGINES)
def test_burst_of_ten_thousand_messages(engine):
    rng = random.Random(7)
    events = [(0.5 + 0.25 * i, [0x90, 60 + i, 90]) for i in range(4)]
    events += [(0.6 + 0.25 * i, [0x80, 60 + i, 0]) for i in range(4)]
    # the answer to that phrase is playing when the burst hits, all at one instant
    burst_t = 2.2
    events += [(burst_t, [rng.choice([0x80, 0x90]) | rng.randrange(16), rng.randrange(128), 100])
                          for _ in range(10_000)]
    run = run_virtual(events, performer(engine), CFG, tail_s=4.0)
    assert run.summary["input"]["received"] == 10_008
    check(run)
