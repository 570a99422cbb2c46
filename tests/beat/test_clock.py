"""The live beat clock (MIDI clock in, our own tempo, free time), clock out and count-in.

Everything runs on explicit timestamps (a virtual timeline): no sleeps, no wall clock.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest

from livejam.beat.countin import count_in, count_in_for
from livejam.beat.live import TRANSPORT_BURST, TRANSPORT_RATE, BeatClock
from livejam.beat.midiclock import CLOCK, START, STOP, ClockOut, song_position_message
from livejam.config import BeatConfig
from livejam.beatmap import TempoFit


def tick_times(bpm: float, t0: float, n: int, jitter: float = 0.0, seed: int = 0) -> np.ndarray:
    """n MIDI clock ticks from t0 at `bpm`, each arriving up to +-jitter seconds off."""
    rng = np.random.default_rng(seed)
    return t0 + np.arange(n) * 60.0 / bpm / 24 + rng.uniform(-jitter, jitter, n)


def feed(bc: BeatClock, times) -> None:
    for t in times:
        bc.handle("clock", float(t))


# --- config ---------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, word", [({"bpm": 10.0}, "bpm"), ({"bpm": 301.0}, "bpm"), ({"meter": 0}, "meter"),
                                          ({"meter": 17}, "meter"), ({"count_in_bars": 9}, "count_in"),
                                          ({"click_channel": 16}, "click_channel"), ({"click_notes": (76, 128)}, "notes"),
                                          ({"clock_out": True}, "clock_out")])
def test_config_rejects_out_of_range_values_with_one_line(kwargs, word):
    with pytest.raises(ValueError, match=word) as e:
        BeatConfig(**kwargs)
    assert "\n" not in str(e.value)


def test_config_loads_through_the_generic_loader():
    from livejam.config import from_dict

    cfg = from_dict(BeatConfig, {"bpm": 96, "meter": 3, "click_notes": [37, 42], "clock_out": True})
    assert cfg == BeatConfig(bpm=96.0, meter=3, click_notes=(37, 42), clock_out=True)


# --- free time and our own tempo --------------------------------------------------------
def test_free_time_without_any_source():
    bc = BeatClock(BeatConfig(), t0=2.0)
    assert bc.source == "free" and bc.beat_at(3.0) == pytest.approx(2.0)  # nominal 120 bpm
    assert bc.bpm_at(3.0) is None and bc.bar_at(1.0) is None and bc.next_grid(3.0, 0.5) is None


def test_own_tempo_with_a_count_in_before_beat_0():
    bc = BeatClock(BeatConfig(bpm=90.0, meter=3), t0=0.0)
    bc.start(2.0)  # beat 0 at 2 s: one 3/4 bar of count-in from 0 s
    assert bc.source == "bpm" and bc.beat_at(0.0) == pytest.approx(-3.0)
    assert bc.bar_at(-3.0) == (pytest.approx(0.0), 3) and bc.bar_at(4.5) == (pytest.approx(1.5), 3)
    assert bc.time_at(6.0) == pytest.approx(6.0) and bc.bpm_at(10.0) == 90.0
    assert bc.next_grid(2.1, 1.0) == pytest.approx(2.0 + 60 / 90)


def test_tempo_change_keeps_the_numbering_and_the_generation():
    bc = BeatClock(BeatConfig(bpm=120.0), t0=0.0)
    gen = bc.generation
    bc.set_tempo(60.0, 2.0)  # beat 4 at 2 s, then a beat a second
    assert bc.generation == gen
    assert bc.beat_at(2.0) == pytest.approx(4.0) and bc.beat_at(3.0) == pytest.approx(5.0)
    assert bc.beat_at(1.0) == pytest.approx(2.0)  # the past keeps the old tempo
    assert bc.time_at(2.0) == pytest.approx(1.0) and bc.time_at(6.0) == pytest.approx(4.0)
    assert bc.bpm_at(1.0) == 120.0 and bc.bpm_at(2.5) == 60.0
    bc.set_tempo(None, 4.0)  # no tempo: free time from beat 6 on, numbering continuous
    assert bc.source == "free" and bc.generation == gen + 1
    assert bc.beat_at(4.5) == pytest.approx(7.0) and bc.bar_at(7.0) is None


def test_a_new_meter_starts_at_the_next_downbeat():
    bc = BeatClock(BeatConfig(bpm=60.0, meter=4), t0=0.0)
    bc.set_tempo(60.0, 5.5, meter=3)  # inside the 2nd bar (beats 4..8): 3/4 from beat 8
    assert bc.bar_at(6.0) == (pytest.approx(2.0), 4)
    assert bc.bar_at(8.0) == (pytest.approx(0.0), 3) and bc.bar_at(12.5) == (pytest.approx(1.5), 3)


# --- MIDI clock in ------------------------------------------------------------------------
@pytest.mark.parametrize("bpm", [60.0, 87.0, 120.0, 163.0, 200.0])
@pytest.mark.parametrize("jitter", [0.0, 0.001, 0.004])
def test_midi_clock_tempo_and_position_under_jitter(bpm, jitter):
    bc = BeatClock(BeatConfig(), t0=0.0)
    gen = bc.generation
    bc.handle("start", 0.95)
    true = 1.0 + np.arange(24 * 16) * 60.0 / bpm / 24  # 16 beats
    arrived = true + np.random.default_rng(int(bpm)).uniform(-jitter, jitter, true.size)
    feed(bc, arrived[:1])
    assert bc.source == "midi" and bc.generation == gen + 1
    assert bc.beat_at(arrived[0]) == 0.0  # the first tick after Start is beat 0
    feed(bc, arrived[1:])
    assert bc.bpm_at(true[-1]) == pytest.approx(bpm, rel=0.01)
    beat_s = 60.0 / bpm
    for k in (-1, -25, -100):  # recent ticks, and the next beats ahead of the last tick
        assert bc.beat_at(true[k]) == pytest.approx((true.size + k) / 24, abs=0.02)
    for ahead in (1, 2):
        assert bc.time_at(16 + ahead) == pytest.approx(1.0 + (16 + ahead) * beat_s, abs=0.02 * beat_s)
    assert bc.bar_at(bc.beat_at(1.0 + 5 * beat_s)) == (pytest.approx(1.0, abs=0.02), 4)


def test_midi_clock_survives_late_bursts():
    """USB/IP transport: +-1 ms everywhere and 3% of the ticks up to 8 ms late."""
    rng = np.random.default_rng(7)
    true = 1.0 + np.arange(24 * 16) * 0.5 / 24
    arrived = true + rng.uniform(-0.001, 0.001, true.size) + (rng.random(true.size) < 0.03) * rng.uniform(0, 0.008, true.size)
    bc = BeatClock(BeatConfig(), t0=0.0)
    bc.handle("start", 0.9)
    feed(bc, arrived)
    assert bc.bpm_at(true[-1]) == pytest.approx(120.0, rel=0.01)
    assert bc.beat_at(true[-1] + 0.5) == pytest.approx(17.0 - 1 / 24, abs=0.02)


@pytest.mark.parametrize("jitter", [0.0, 0.001])
@pytest.mark.parametrize("new_bpm, within_beats", [(150.0, 1.0), (96.0, 1.0), (123.0, 4.0)])
def test_tempo_changes_are_followed_within_a_bounded_number_of_beats(new_bpm, within_beats, jitter):
    """Big jumps restart the fit after a few ticks; small ones are absorbed within the window (4 beats)."""
    bc = BeatClock(BeatConfig(), t0=0.0)
    bc.handle("start", 0.0)
    before = 0.01 + np.arange(24 * 8) * 0.5 / 24  # 8 beats at 120
    change = before[-1] + 0.5 / 24
    n_after = int(24 * within_beats) + 1
    after = change + np.arange(n_after) * 60.0 / new_bpm / 24
    rng = np.random.default_rng(3)
    feed(bc, np.concatenate([before, after]) + rng.uniform(-jitter, jitter, before.size + n_after))
    assert bc.bpm_at(after[-1]) == pytest.approx(new_bpm, rel=0.01)
    assert bc.beat_at(after[-1]) == pytest.approx((before.size + n_after - 1) / 24, abs=0.02)


def test_fit_needs_two_ticks_and_restarts_after_a_pause():
    fit = TempoFit(48)
    fit.add(1.0)
    assert fit.bpm is None
    for i in range(1, 30):
        fit.add(1.0 + i * 0.5 / 24)
    assert fit.bpm == pytest.approx(120.0)
    for i in range(10):  # the master paused 2 s, then ticks at 100 bpm: old ticks must not count
        fit.add(5.0 + i * 0.6 / 24)
    assert fit.bpm == pytest.approx(100.0)


def test_stop_freezes_the_song_position_and_continue_resumes_it():
    bc = BeatClock(BeatConfig(bpm=100.0), t0=0.0)
    bc.handle("start", 0.99)
    feed(bc, tick_times(120.0, 1.0, 24 * 4 + 8))  # ticks 0..103: the next one would be tick 104
    assert bc.source == "midi" and bc.running
    t_stop = 1.0 + 103 * 0.5 / 24 + 0.005
    beat_at_stop = bc.beat_at(t_stop)
    gen = bc.generation
    bc.handle("stop", t_stop)
    assert not bc.running and bc.song_position == pytest.approx(104 / 24)
    # the map carries on from the same beat at our own tempo (continuous), as a new source
    assert bc.source == "bpm" and bc.generation == gen + 1
    assert bc.beat_at(t_stop) == pytest.approx(beat_at_stop)
    assert bc.beat_at(t_stop + 0.6) == pytest.approx(beat_at_stop + 1.0)  # 100 bpm
    feed(bc, tick_times(120.0, 6.0, 48))  # a master that ticks while stopped: the position stays
    assert bc.song_position == pytest.approx(104 / 24) and bc.source == "bpm"
    bc.handle("continue", 8.1)
    resume = 8.2
    bc.handle("clock", resume)
    assert bc.source == "midi" and bc.generation == gen + 2
    assert bc.beat_at(resume) == pytest.approx(104 / 24)
    assert bc.bpm_at(resume) == pytest.approx(120.0)  # known from the ticks while stopped
    assert bc.bar_at(104 / 24) == (pytest.approx(104 / 24 - 4), 4)


def test_stop_in_free_time_and_a_stop_before_the_first_tick():
    bc = BeatClock(BeatConfig(), t0=0.0)
    bc.handle("start", 1.0)
    bc.handle("stop", 1.005)  # stopped before any tick: nothing ever ran
    feed(bc, tick_times(120.0, 1.01, 10))
    assert bc.source == "free" and not bc.running
    bc.handle("start", 2.0)
    feed(bc, tick_times(120.0, 2.01, 30))
    bc.handle("stop", 2.7)
    assert bc.source == "free" and bc.bpm_at(3.0) is None and bc.bar_at(bc.beat_at(3.0)) is None


def test_song_position_pointer_sets_the_position_in_16ths():
    bc = BeatClock(BeatConfig(meter=4), t0=0.0)
    bc.handle("songpos", 0.5, (0xF2, 37, 1))  # 16ths: 37 + 128 = 165 -> beat 41.25
    assert bc.song_position == pytest.approx(41.25) and bc.source == "free"  # stopped: nothing moves yet
    bc.handle("continue", 0.9)
    feed(bc, tick_times(120.0, 1.0, 3))
    assert bc.beat_at(1.0) == pytest.approx(41.25)
    assert bc.bar_at(41.25) == (pytest.approx(1.25), 4)
    gen = bc.generation
    bc.song_position_pointer(64, 1.05)  # while running (unusual, but seen): a jump at the next tick
    bc.handle("clock", 1.0 + 3 * 0.5 / 24)
    assert bc.generation == gen + 1 and bc.beat_at(1.0 + 3 * 0.5 / 24) == pytest.approx(16.0)


def test_incoming_clock_takes_over_from_our_tempo_and_hands_back():
    bc = BeatClock(BeatConfig(bpm=90.0), t0=0.0)
    feed(bc, tick_times(140.0, 0.5, 20))  # clock without Start: tempo only, our map stays
    assert bc.source == "bpm" and bc.bpm_at(1.0) == 90.0
    bc.start(1.0)
    bc.handle("start", 3.0)
    bc.handle("clock", 3.01)
    assert bc.source == "midi" and bc.beat_at(3.01) == 0.0
    assert bc.bpm_at(3.01) == pytest.approx(140.0)
    bc.set_tempo(100.0, 3.02)  # our tempo waits while the clock leads
    bc.start(3.02)  # and so does a master start
    assert bc.source == "midi" and bc.beat_at(3.01) == 0.0
    bc.handle("stop", 3.05)
    assert bc.source == "bpm" and bc.bpm_at(3.1) == 100.0


def test_a_silent_clock_counts_as_stopped_after_a_timeout():
    bc = BeatClock(BeatConfig(), t0=0.0)
    bc.handle("start", 0.9)
    feed(bc, tick_times(120.0, 1.0, 48))  # last tick at ~1.98 s
    bc.expire(2.3)
    assert bc.source == "midi" and bc.running
    beat = bc.beat_at(2.6)
    bc.expire(2.6)  # 0.6 s without a tick (the slowest tempo ticks every 0.125 s)
    assert bc.source == "free" and not bc.running and bc.beat_at(2.6) == pytest.approx(beat)
    assert bc.song_position == pytest.approx(2.0)


@pytest.mark.parametrize("cfg", [BeatConfig(bpm=100.0, clock_in=False), BeatConfig(bpm=100.0, clock_out=True)])
def test_clock_in_off_or_we_are_the_master(cfg):
    """Sending clock, we never follow one: it would be our own echo or a rival master."""
    bc = BeatClock(cfg, t0=0.0)
    bc.handle("start", 1.0)
    feed(bc, tick_times(120.0, 1.01, 48))
    assert bc.source == "bpm" and bc.bpm_at(2.0) == 100.0


def test_snapshot_stays_consistent_while_the_performer_thread_writes():
    """Readers take no lock: each snapshot is immutable and internally consistent."""
    bc = BeatClock(BeatConfig(), t0=0.0)
    bc.handle("start", 0.0)
    times = tick_times(120.0, 0.01, 24 * 200, jitter=0.001)
    done = threading.Event()
    problems = []

    def reader():
        last_gen, reads = 0, 0
        while not done.is_set() or reads == 0:
            snap = bc.snapshot()
            t0s = [s.t0 for s in snap.segments]
            t = t0s[-1] + 0.1
            b = snap.beat_at(t)
            if abs(snap.time_at(b) - t) > 1e-9 or t0s != sorted(t0s) or snap.generation < last_gen:
                problems.append((t, b))
            last_gen, reads = snap.generation, reads + 1

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for th in threads:
        th.start()
    feed(bc, times)
    done.set()
    for th in threads:
        th.join()
    assert not problems


# --- clock out --------------------------------------------------------------------------
def pull_all(out: ClockOut, t_end: float, step: float = 0.007, t_from: float = 0.0):
    msgs, t = [], t_from
    while t < t_end:
        t = min(t_end, t + step)
        msgs += out.pull(t)
    return msgs


def test_clock_out_sends_start_on_beat_0_and_24_ticks_a_beat():
    bc = BeatClock(BeatConfig(bpm=120.0, clock_out=True), t0=0.0)
    bc.start(1.0)
    out = ClockOut(bc, now=0.0, preroll=False)
    msgs = pull_all(out, 11.0)
    assert msgs[0] == (1.0, START) and msgs[1] == (1.0, CLOCK)
    ticks = [t for t, m in msgs if m == CLOCK]
    assert len(ticks) == 480  # 48 a second at 120 bpm, over 10 s
    assert np.allclose(np.diff(ticks), 1 / 48)
    tail = out.stop(11.0)
    assert tail == [(11.0, STOP)] and out.pull(20.0) == []


def test_clock_out_preroll_ticks_during_the_count_in():
    bc = BeatClock(BeatConfig(bpm=120.0, clock_out=True), t0=0.0)
    bc.start(2.0)
    msgs = pull_all(ClockOut(bc, now=0.0), 3.0)
    kinds = [m.kind for _, m in msgs]
    assert kinds.index("start") == 96 and kinds.count("start") == 1  # 2 s of ticks before it
    assert msgs[96][0] == 2.0 and msgs[97] == (2.0, CLOCK)
    assert kinds.count("clock") == 144


def test_clock_out_follows_a_tempo_change_on_the_next_tick_without_drift():
    bc = BeatClock(BeatConfig(bpm=120.0, clock_out=True), t0=0.0)
    bc.start(0.0)
    out = ClockOut(bc, now=0.0)
    msgs = out.pull(1.01)  # ticks up to 1.0 s (beat 2) went out at 120
    bc.set_tempo(90.0, 1.01)
    msgs += pull_all(out, 600.0, step=0.0113, t_from=1.01)
    ticks = [t for t, m in msgs if m == CLOCK]
    assert ticks[48] == pytest.approx(1.0)
    assert ticks[49] == pytest.approx(1.01 + (2 + 1 / 24 - bc.beat_at(1.01)) * 60 / 90)  # the next tick, at 90
    assert np.allclose(np.diff(ticks[49:]), 60 / 90 / 24)
    # ten minutes on: every tick still exactly on its beat i/24 (times from the map, never summed)
    beats = np.array([bc.beat_at(t) for t in ticks])
    assert np.abs(beats - np.arange(len(ticks)) / 24).max() < 1e-9
    assert ticks[-1] == pytest.approx(bc.time_at((len(ticks) - 1) / 24), abs=1e-9)
    assert len(ticks) == 49 + int((600.0 - ticks[49]) * 90 / 60 * 24 - 1e-9) + 1


def test_clock_out_joins_late_with_song_position_and_continue():
    bc = BeatClock(BeatConfig(bpm=120.0, clock_out=True), t0=0.0)
    bc.start(1.0)
    msgs = pull_all(ClockOut(bc, now=2.01, preroll=False), 3.0, t_from=2.01)
    # beat 2.02 -> the next 16th is beat 2.25 = tick 54 = SPP 9, at 2.125 s
    assert [m.kind for _, m in msgs[:3]] == ["songpos", "continue", "clock"]
    assert msgs[0][1].data == (0xF2, 9, 0) and msgs[0][0] == pytest.approx(2.125)
    assert song_position_message(200).data == (0xF2, 72, 1)  # 14 bits, LSB first
    assert song_position_message(1 << 20).data == (0xF2, 0x7F, 0x7F)  # clamped, never wrapped


def test_clock_out_stops_when_beat_0_moves_and_when_our_tempo_goes():
    bc = BeatClock(BeatConfig(bpm=120.0, clock_out=True), t0=0.0)
    bc.start(0.0)
    out = ClockOut(bc, now=0.0)
    out.pull(1.0)
    bc.start(3.0)  # a new beat 0 (another count-in): stop, then start again there
    msgs = pull_all(out, 3.1, t_from=1.0)
    kinds = [m.kind for _, m in msgs]
    assert kinds[0] == "stop" and kinds.count("start") == 1 and msgs[kinds.index("start")][0] == pytest.approx(3.0)
    bc.set_tempo(None, 3.2)  # no tempo of ours any more: nothing to send
    msgs = out.pull(3.3)
    assert [m.kind for _, m in msgs if m.kind != "clock"] == ["stop"] and out.pull(4.0) == []
    assert not out.playing


def test_clock_out_says_when_the_next_message_is_due():
    bc = BeatClock(BeatConfig(bpm=120.0, clock_out=True), t0=0.0)
    bc.start(1.0)
    out = ClockOut(bc, now=0.0, preroll=False)
    assert out.next_due() == 0.0  # the first pull syncs at once
    assert out.pull(0.5) == [] and out.next_due() == pytest.approx(1.0)
    out.pull(1.0 + 1e-9)
    assert out.next_due() == pytest.approx(1.0 + 1 / 48)
    out.stop(2.0)
    assert out.next_due() is None


def test_our_clock_out_drives_another_beat_clock():
    """Round trip: what we send as master, a slave (here: our own clock in) reads back exactly."""
    master = BeatClock(BeatConfig(bpm=132.0, meter=3, clock_out=True), t0=0.0)
    master.start(0.5)
    out = ClockOut(master, now=0.0)
    msgs = out.pull(3.0)
    master.set_tempo(104.0, 3.0)
    msgs += pull_all(out, 9.0, t_from=3.0)
    slave = BeatClock(BeatConfig(meter=3), t0=0.0)
    for t, m in msgs:
        slave.handle(m.kind, t, m.data)
    assert slave.source == "midi" and slave.bpm_at(9.0) == pytest.approx(104.0, rel=1e-6)
    for t in (1.0, 2.5, 5.0, 8.9):
        assert slave.beat_at(t) == pytest.approx(master.beat_at(t), abs=1e-6)
    assert slave.bar_at(slave.beat_at(8.9)) == pytest.approx(master.bar_at(master.beat_at(8.9)))


# --- count-in -------------------------------------------------------------------------------
def test_count_in_clicks_before_beat_0_with_accented_downbeats():
    clicks = count_in(2, 4, 120.0, beat0_time=10.0)
    ons = [(t, m) for t, m in clicks if m.kind == "note_on"]
    offs = [(t, m) for t, m in clicks if m.kind == "note_off"]
    assert [t for t, _ in ons] == pytest.approx([6.0 + 0.5 * k for k in range(8)])
    assert [m.a for _, m in ons] == [76, 77, 77, 77, 76, 77, 77, 77]
    assert ons[0][1].b > ons[1][1].b and all(m.channel == 9 for _, m in clicks)
    assert len(offs) == 8 and all(t < 10.0 for t, _ in offs)
    assert [t for t, _ in clicks] == sorted(t for t, _ in clicks)
    custom = count_in(1, 3, 60.0, 3.0, channel=15, notes=(37, 42))
    assert [(t, m.a, m.channel) for t, m in custom if m.kind == "note_on"] == [(0.0, 37, 15), (1.0, 42, 15), (2.0, 42, 15)]


def test_count_in_from_the_config():
    cfg = BeatConfig(bpm=100.0, meter=3, count_in_bars=1, click_notes=(37, 42))
    clicks = count_in_for(cfg, beat0_time=5.0)
    assert [m.a for _, m in clicks if m.kind == "note_on"] == [37, 42, 42]
    assert clicks[0][0] == pytest.approx(5.0 - 1.8)
    assert count_in_for(BeatConfig(bpm=100.0), 5.0) == [] and count_in_for(BeatConfig(count_in_bars=2), 5.0) == []


# --- hostile clock in (issue 21 #8) ---------------------------------------------------------
def test_a_clock_flood_is_rate_limited_and_its_tempo_clamped():
    """Clock floods were believed at 84,000-461,000 bpm: the duet machine played six times its notes."""
    bc = BeatClock(BeatConfig(), t0=0.0)
    bc.handle("start", 0.5)
    feed(bc, tick_times(461_000.0, 1.0, 200_000))  # a second of ticks 5.4 us apart
    assert bc.source == "midi"
    assert 20.0 <= bc.bpm_at(2.0) <= 300.0
    assert bc.beat_at(2.0) <= 315.0 / 60.0 * 2.0 + 1.0  # the beat moves at a sane pace at most
    assert bc.dropped["clock"] > 190_000


@pytest.mark.parametrize("bpm, believed", [(600.0, 300.0), (12.0, 20.0)])
def test_an_absurd_steady_clock_tempo_is_clamped_to_the_bpm_range(bpm, believed):
    bc = BeatClock(BeatConfig(), t0=0.0)
    bc.handle("start", 0.5)
    times = tick_times(bpm, 1.0, 24 * 8)
    feed(bc, times)
    assert bc.bpm_at(float(times[-1])) == pytest.approx(believed)


def test_start_stop_spam_is_rate_limited():
    """Start/stop spam renumbered the beat map hundreds of times a second (and logged each)."""
    bc = BeatClock(BeatConfig(), t0=0.0)
    gen = bc.generation
    times = tick_times(120.0, 1.0, 24 * 4)
    for i, t in enumerate(times):  # 4 beats at 120 bpm, a start and a stop between every two ticks
        bc.handle("start" if i % 2 else "stop", float(t) - 0.001)
        bc.handle("stop" if i % 2 else "start", float(t) - 0.0005)
        bc.handle("clock", float(t))
    assert bc.generation - gen <= TRANSPORT_BURST + 2 * TRANSPORT_RATE + 2
    assert bc.dropped["transport"] >= 2 * times.size - TRANSPORT_BURST - 2 * TRANSPORT_RATE - 2
