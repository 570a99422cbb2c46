"""Tempo following (livejam/beat/tempo.py) and the beat clock's follow and Link sources.

Everything runs on explicit timestamps (a virtual timeline): no sleeps, no wall clock.
The real two-peer Link session is in tests/beat/test_link.py.
"""
from __future__ import annotations

import argparse
import math

import numpy as np
import pytest

from livejam.beat.live import BeatClock
from livejam.config import BeatConfig
from livejam.beat.tempo import TempoTracker

# a pop-like bar of onsets (beats): long notes on the beat, a syncopated eighth pair
BAR = (0.0, 1.0, 1.5, 2.0, 3.0, 3.5)


def melody(bpm: float, bars: int, t0: float = 1.0, jitter: float = 0.01, seed: int = 0) -> np.ndarray:
    """Onsets of `bars` bars of BAR at `bpm` from t0 (a beat), each off by N(0, jitter) seconds."""
    rng = np.random.default_rng(seed)
    p = 60.0 / bpm
    ts = np.array([t0 + (b * 4 + x) * p for b in range(bars) for x in BAR])
    return ts + rng.normal(0.0, jitter, len(ts))


def track(tracker: TempoTracker, onsets) -> None:
    for t in onsets:
        tracker.onset(float(t))
        tracker.estimate(float(t))  # as live: one estimate after each note


def phase_error(phase: float) -> float:
    return abs((phase + 0.5) % 1.0 - 0.5)


# --- the tracker ----------------------------------------------------------------------
@pytest.mark.parametrize("bpm", [60.0, 72.0, 84.0, 100.0])
def test_tracker_finds_tempo_and_phase_of_a_melody_within_8_bars(bpm):
    tr = TempoTracker()
    ts = melody(bpm, 8, jitter=0.015)
    track(tr, ts)
    now = 1.0 + 32 * 60.0 / bpm  # the downbeat after the 8 bars: phase 0
    est = tr.estimate(now)
    assert est.bpm == pytest.approx(bpm, rel=0.02)
    assert phase_error(est.phase) < 0.06
    assert est.confidence >= BeatConfig().follow_confidence
    period = 60.0 / bpm
    assert phase_error((est.beat_time(now) - now) / period) < 0.06  # a beat at `now`, or one before it


def test_tracker_metronome_is_exact_and_sure():
    tr = TempoTracker()
    track(tr, 0.3 + np.arange(24) * 0.6)  # 100 bpm
    est = tr.estimate(0.3 + 24 * 0.6 + 0.15)
    assert est.bpm == pytest.approx(100.0, rel=1e-6) and est.phase == pytest.approx(0.25, abs=1e-6)
    assert est.confidence > 0.9


def test_tracker_is_unsure_of_random_times():
    """A Poisson stream has no beat: the beat clock must stay in free time."""
    for seed in range(5):
        tr = TempoTracker()
        track(tr, np.cumsum(np.random.default_rng(seed).exponential(0.35, 60)))
        assert tr.estimate(25.0).confidence < BeatConfig().follow_confidence, seed


def test_tracker_needs_a_few_notes_and_forgets_after_a_long_silence():
    tr = TempoTracker(min_onsets=8, hold_s=12.0)
    ts = melody(90.0, 4)
    track(tr, ts[:5])
    assert tr.estimate(ts[4]).bpm is None  # five notes say nothing yet
    track(tr, ts[5:])
    assert tr.estimate(ts[-1] + 5.0).bpm == pytest.approx(90.0, rel=0.02)  # a rest keeps the tempo
    assert tr.estimate(ts[-1] + 12.5).bpm is None  # the human stopped: the next phrase starts afresh


def test_tracker_follows_a_tempo_change():
    tr = TempoTracker()
    a = melody(80.0, 6)
    b = melody(92.0, 8, t0=a[-1] + 0.75 * 4 * 60 / 80 - 0.0, seed=1)
    track(tr, np.concatenate([a, b]))
    assert tr.estimate(b[-1]).bpm == pytest.approx(92.0, rel=0.03)


def test_tracker_merges_chords_and_ignores_late_reports():
    tr = TempoTracker()
    tr.onset(1.0)
    tr.onset(1.01)  # the same chord
    tr.onset(0.5)  # out of order
    assert list(tr.onsets) == [1.0]


def test_tracker_is_causal_the_estimate_depends_only_on_the_past():
    ts = melody(75.0, 8)
    now = float(ts[30]) + 0.01
    a, b = TempoTracker(), TempoTracker()
    track(a, ts[:31])
    track(b, ts[:31])
    track(b, [])  # nothing from the future was ever given; re-reading changes nothing
    assert a.estimate(now) == b.estimate(now)


# --- the beat clock follows ---------------------------------------------------------
def run_clock(bc: BeatClock, onsets, until: float, step: float = 0.05, t0: float = 0.0) -> list:
    """Drive the clock as the performer thread would: onsets as they come, expire every `step`."""
    seen, i = [], 0
    for now in np.arange(t0, until, step):
        while i < len(onsets) and onsets[i] <= now:
            bc.onset(float(onsets[i]))
            i += 1
        bc.expire(float(now))
        seen.append((float(now), bc.source, bc.generation, bc.snapshot()))
    return seen


def test_clock_follows_the_human_then_stays_continuous():
    bc = BeatClock(BeatConfig(follow=True), t0=0.0)
    ts = melody(100.0, 10, jitter=0.01)
    seen = run_clock(bc, ts, ts[-1] + 1.0)
    assert seen[0][1] == "free" and seen[-1][1] == "follow"
    first = next(i for i, s in enumerate(seen) if s[1] == "follow")
    assert seen[first][0] < 6.0  # sure within ~2.5 bars
    assert len({s[2] for s in seen}) <= 3  # free, follow, perhaps one early renumbering
    late = ts[ts > 10.0]
    beats = np.array([bc.beat_at(t) for t in late])
    assert np.max(np.abs(beats - np.round(beats * 2) / 2)) < 0.06  # the notes sit on the followed beats
    assert bc.bpm_at(ts[-1]) == pytest.approx(100.0, rel=0.01)
    assert bc.bar_at(bc.beat_at(ts[-1])) is None  # a tempo, but no downbeat known
    # within the last generation the map is continuous and increasing
    snap = bc.snapshot()
    grid = np.arange(seen[first][0] + 3.0, ts[-1], 0.01)
    b = np.array([snap.beat_at(t) for t in grid])
    assert np.all(np.diff(b) > 0) and np.max(np.diff(b)) < 0.01 * 100 / 60 * 1.2
    assert bc.time_at(bc.beat_at(12.3)) == pytest.approx(12.3)


def test_clock_absorbs_a_small_phase_shift_without_renumbering():
    bc = BeatClock(BeatConfig(follow=True), t0=0.0)
    a = melody(90.0, 8, jitter=0.0)
    run_clock(bc, a, a[-1] + 0.3)
    gen = bc.generation
    shift = 0.1 * 60 / 90  # the human drifts a tenth of a beat late
    b = melody(90.0, 6, t0=1.0 + 32 * 60 / 90 + shift, jitter=0.0)
    run_clock(bc, b, b[-1] + 0.3, t0=a[-1] + 0.3)
    assert bc.generation == gen and bc.source == "follow"
    beats = np.array([bc.beat_at(t) for t in b[-6:]])
    assert np.max(np.abs(beats - np.round(beats * 2) / 2)) < 0.03


def test_clock_back_to_free_time_when_the_human_stops():
    bc = BeatClock(BeatConfig(follow=True), t0=0.0)
    ts = melody(100.0, 8)
    run_clock(bc, ts, ts[-1] + 0.1)
    assert bc.source == "follow"
    gen = bc.generation
    run_clock(bc, [], ts[-1] + 14.0, t0=ts[-1] + 0.1)
    assert bc.source == "free" and bc.generation == gen + 1 and bc.bpm_at(ts[-1] + 14.0) is None


def test_random_playing_never_leaves_free_time():
    bc = BeatClock(BeatConfig(follow=True), t0=0.0)
    ts = np.cumsum(np.random.default_rng(3).exponential(0.3, 80))
    seen = run_clock(bc, ts, ts[-1])
    assert {s[1] for s in seen} == {"free"}


def test_own_tempo_outranks_following_and_midi_clock_outranks_both():
    bc = BeatClock(BeatConfig(follow=True, bpm=120.0), t0=0.0)
    ts = melody(90.0, 8)
    run_clock(bc, ts, ts[-1])
    assert bc.source == "bpm" and bc.bpm_at(ts[-1]) == 120.0

    bc = BeatClock(BeatConfig(follow=True), t0=0.0)
    run_clock(bc, ts, 10.0)
    assert bc.source == "follow"
    bc.handle("start", 10.0)
    for k in range(48):
        bc.handle("clock", 10.0 + k * 60 / 130 / 24)
    assert bc.source == "midi" and bc.bpm_at(11.0) == pytest.approx(130.0, rel=1e-3)
    run_clock(bc, ts[ts > 10.0], 11.2, t0=10.0)  # the follower waits while the clock runs
    assert bc.source == "midi"
    bc.handle("stop", 11.3)
    assert bc.source == "follow"  # still sure of the human: back to their tempo


# --- Link, with a fake session ------------------------------------------------------
class FakeLinkSession:
    """The part of link.Link that LinkSource uses; its clock is ours + 1000 s (in us)."""

    def __init__(self, bpm: float = 110.0, beat0_time: float = 0.0, peers: int = 1):
        self.bpm, self.beat0_time, self.peers, self.now, self.enabled = bpm, beat0_time, peers, 0.0, True
        outer = self

        class State:
            def tempo(self):
                return outer.bpm

            def beatAtTime(self, micros, quantum):  # noqa: N802 (Link's names)
                return ((micros / 1e6 - 1000.0) - outer.beat0_time) * outer.bpm / 60.0

        class Clock:
            def micros(self):
                return int((outer.now + 1000.0) * 1e6)

        self._state, self._clock = State(), Clock()

    def numPeers(self):  # noqa: N802
        return self.peers

    def captureAppSessionState(self):  # noqa: N802
        return self._state

    def clock(self):
        return self._clock


def link_clock(config: BeatConfig, session: FakeLinkSession) -> BeatClock:
    from livejam.beat.link import LinkSource

    return BeatClock(config, t0=0.0, link=LinkSource(quantum=config.meter, clock=lambda: session.now,
                                                     session=session))


def expire_at(bc: BeatClock, session: FakeLinkSession, t: float) -> None:
    session.now = t
    bc.expire(t)


def test_link_with_peers_leads_with_its_beats_and_bars():
    session = FakeLinkSession(bpm=110.0, beat0_time=0.5)
    bc = link_clock(BeatConfig(bpm=90.0, meter=4), session)
    assert bc.poll_s is not None
    expire_at(bc, session, 2.0)
    assert bc.source == "link" and bc.bpm_at(2.0) == 110.0
    assert bc.beat_at(2.0) == pytest.approx(1.5 * 110 / 60)
    assert bc.bar_at(5.0) == (pytest.approx(1.0), 4)  # Link's beat mod the quantum
    gen = bc.generation
    session.bpm = 111.0  # a peer nudges the tempo: same numbering, new tempo
    session.beat0_time = 2.1 - bc.beat_at(2.1) * 60 / 111.0  # Link keeps the beat continuous
    expire_at(bc, session, 2.1)
    assert bc.generation == gen and bc.bpm_at(2.2) == 111.0
    session.beat0_time -= 1.0  # a peer re-quantised: the timeline jumps
    expire_at(bc, session, 2.2)
    assert bc.generation == gen + 1 and bc.beat_at(2.2) == pytest.approx((2.2 - session.beat0_time) * 111 / 60)


def test_link_without_peers_gives_way_and_midi_clock_outranks_it():
    session = FakeLinkSession(peers=0)
    bc = link_clock(BeatConfig(bpm=90.0), session)
    expire_at(bc, session, 1.0)
    assert bc.source == "bpm"  # alone in the session: our own tempo
    session.peers = 2
    expire_at(bc, session, 1.5)
    assert bc.source == "link"
    bc.start(2.0)  # the master's start waits while Link leads
    assert bc.source == "link"
    bc.handle("start", 3.0)
    for k in range(30):
        bc.handle("clock", 3.0 + k * 60 / 100 / 24)
    expire_at(bc, session, 3.5)
    assert bc.source == "midi"
    bc.handle("stop", 3.6)
    assert bc.source == "link"
    session.peers = 0
    expire_at(bc, session, 4.0)
    assert bc.source == "bpm" and bc.bpm_at(4.0) == 90.0


# --- config and command line --------------------------------------------------------
@pytest.mark.parametrize("kwargs, word", [({"follow_confidence": 1.5}, "follow_confidence"),
                                          ({"follow_prior_bpm": 10.0}, "follow_prior_bpm")])
def test_config_rejects_bad_follow_settings(kwargs, word):
    with pytest.raises(ValueError, match=word):
        BeatConfig(**kwargs)


def cli_args(**kw) -> argparse.Namespace:
    base = {"tempo": None, "bpm": None, "link": False, "no_clock_out": False}
    return argparse.Namespace(**{**base, **kw})


@pytest.mark.parametrize("kw, expected", [
    ({"tempo": "follow"}, ["beat.follow=true"]),
    ({"tempo": "follow", "bpm": 120.0}, ["beat.follow=true", "beat.follow_prior_bpm=120.0"]),
    ({"tempo": "fixed", "bpm": 96.0}, ["beat.bpm=96.0", "beat.clock_out=true"]),
    ({"tempo": "free"}, ["beat.clock_in=false"]),
    ({"bpm": 96.0, "no_clock_out": True}, ["beat.bpm=96.0", "beat.clock_out=false"]),
])
def test_cli_tempo_options_become_beat_settings(kw, expected):
    from livejam.options import tempo_overrides
    from livejam.config import DaemonConfig, load

    out = tempo_overrides(cli_args(**kw))
    assert out == expected
    load(DaemonConfig, None, out)  # and they load


@pytest.mark.parametrize("kw", [{"tempo": "fixed"}, {"tempo": "free", "bpm": 90.0}, {"tempo": "free", "link": True}])
def test_cli_tempo_options_refuse_contradictions(kw):
    from livejam.options import tempo_overrides
    from livejam.config import ConfigError

    with pytest.raises(ConfigError):
        tempo_overrides(cli_args(**kw))


# --- the Dispatcher feeds the follower ------------------------------------------------
def test_dispatcher_feeds_note_ons_and_wakes_up_for_the_follower():
    from livejam.clock import VirtualClock
    from livejam.daemon import Dispatcher
    from livejam.midi.normalise import InputNormaliser
    from livejam.scheduler import Scheduler

    from tests.fakes import FakeCallResponse

    clock = VirtualClock()
    scheduler = Scheduler(clock, lambda port, msg, t: None)
    beat = BeatClock(BeatConfig(follow=True), t0=0.0)
    d = Dispatcher(FakeCallResponse(silence_s=30.0), scheduler, InputNormaliser(), beat=beat)
    assert d.wakeup(0.0) <= 0.0 + beat.poll_s
    ts = melody(96.0, 6)
    now = 0.0
    for t in ts:
        while now < t:  # the performer thread's wakeups between notes
            d.pump(now)
            now = min(d.wakeup(now), float(t))
        d.feed(float(t), [0x90, 64, 90], float(t))
        d.feed(float(t) + 0.1, [0x80, 64, 0], float(t))
        d.pump(float(t))
    assert beat.source == "follow" and beat.bpm_at(now) == pytest.approx(96.0, rel=0.02)
    assert math.isclose(len(beat.tracker.onsets), len(ts))
