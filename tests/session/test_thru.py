"""MIDI thru (--thru) and the output channels, on the virtual clock: the human's notes go out on
their own channel through the ledger; a barge-in ends the machine's notes, not the human's."""
from __future__ import annotations

import pytest

from livejam.clock import VirtualClock
from livejam.config import ConfigError, DaemonConfig, load
from livejam.events import TimedNote
from livejam.scheduler import THRU_PART, Scheduler
from livejam.simulate import run_virtual

from tests.fakes import FakeCallResponse


def notes(sent):
    return [(t, m.kind, m.channel, m.a) for t, m in sent if m.kind in ("note_on", "note_off")]


def test_the_machine_plays_on_channel_1_without_thru():
    """Issue 19 #2: on channels 2 and 3 a synth or DAW track on channel 1 (the usual default) stayed silent."""
    cfg = DaemonConfig()
    assert cfg.midi.machine_channels == (0,)
    run = run_virtual([(1.0, [0x90, 60, 100]), (1.2, [0x80, 60, 0])], FakeCallResponse(), cfg, tail_s=2.0)
    assert {ch for _, _, ch, _ in notes(run.sent)} == {0}
    assert run.thru == []  # no thru unless asked


def test_with_thru_the_machine_moves_off_the_humans_channel():
    cfg = load(DaemonConfig, None, ["midi.thru=true"])
    assert cfg.midi.machine_channels == (1, 2) and cfg.midi.thru_channel == 0
    assert load(DaemonConfig, None, ["midi.thru=true", "midi.thru_channel=1"]).midi.machine_channels == (0, 2)
    run = run_virtual([(1.0, [0x90, 60, 100]), (1.2, [0x80, 60, 0])], FakeCallResponse(), cfg, tail_s=2.0)
    assert {ch for _, _, ch, _ in notes(run.sent)} == {1}
    assert {ch for _, _, ch, _ in notes(run.thru)} == {0}


def test_a_thru_or_click_channel_on_a_machine_channel_is_refused():
    with pytest.raises(ConfigError, match="thru_channel=1 is a machine channel"):
        load(DaemonConfig, None, ["midi.thru=true", "midi.thru_channel=1", "midi.channels=[1]"])
    with pytest.raises(ConfigError, match="click_channel=0 is a machine channel"):
        load(DaemonConfig, None, ["beat.click_channel=0"])


def test_thru_passes_the_human_on_its_channel_and_a_barge_in_keeps_it():
    cfg = load(DaemonConfig, None, ["midi.thru=true", "midi.thru_channel=5"])
    # phrase 1.0-1.2 s, answer from ~1.71 s; the human comes back at 1.8 s and holds 50 to 2.5 s
    events = [(1.0, [0x90, 60, 100]), (1.2, [0x80, 60, 0]), (1.8, [0x90, 50, 90]), (2.5, [0x80, 50, 0])]
    run = run_virtual(events, FakeCallResponse(), cfg, tail_s=0.1)
    assert notes(run.thru) == [(1.0, "note_on", 5, 60), (1.2, "note_off", 5, 60),
                               (1.8, "note_on", 5, 50), (2.5, "note_off", 5, 50)]  # not cut at 1.8 s
    assert run.summary["cancels"] == 1
    machine = notes(run.sent)
    assert ("note_off", 72) in [(k, p) for t, k, _, p in machine if t == 1.8]  # the machine's note ended
    assert run.summary["sounding_at_end"] == 0


def test_panic_ends_thru_notes_too_and_the_watchdog_leaves_them():
    clock = VirtualClock()
    sent = []
    sched = Scheduler(clock, lambda port, msg, t: sent.append((port, msg)), channels=(1, 2), thru_channel=0,
                      watchdog_s=1.0)
    sched.submit([TimedNote(0.0, THRU_PART, 40, 100), TimedNote(0.0, 0, 70, 100)])
    sched.run_until(5.0)
    held = sched.ledger.sounding()
    assert held == [(1, 0, 40)]  # the machine's note was ended by the watchdog, the human's pedal note stays
    sched.panic()
    offs = [(port, m.channel, m.a) for port, m in sent if m.kind == "note_off"]
    assert (1, 0, 40) in offs and sched.ledger.sounding() == []
    ccs = {(m.channel, m.a) for _, m in sent if m.kind == "control_change"}
    assert {(0, 123), (1, 123), (2, 123)} <= ccs


def thru_sched(timeout=2.0, watchdog=1.0):
    clock = VirtualClock()
    sent = []
    sched = Scheduler(clock, lambda port, msg, t: sent.append((t, port, msg)), channels=(1, 2), thru_channel=0,
                      watchdog_s=watchdog, thru_timeout_s=timeout)
    return sched, sent


def thru_notes(sent):
    return [(t, m.kind, m.a) for t, port, m in sent if port == 1 and m.kind in ("note_on", "note_off")]


def test_a_thru_note_whose_note_off_was_lost_ends_after_the_timeout():
    """Issue 21 #3: a flood dropped the human's note-off upstream; the note passed through ends
    `thru_timeout_s` after its note-on, not at the end of the session."""
    sched, sent = thru_sched(timeout=2.0, watchdog=1.0)
    sched.submit([TimedNote(0.5, THRU_PART, 40, 100), TimedNote(1.0, THRU_PART, 45, 100)])  # no note-offs ever
    sched.run_until(2.4)
    assert sched.ledger.sounding() == [(1, 0, 40), (1, 0, 45)]  # the machine's watchdog (1 s) leaves them
    sched.run_until(10.0)
    assert thru_notes(sent) == [(0.5, "note_on", 40), (1.0, "note_on", 45), (2.5, "note_off", 40),
                                (3.0, "note_off", 45)]
    assert sched.ledger.sounding() == [] and sched.counters.thru_timeouts == 2
    assert sched.counters.watchdog_offs == 0


def test_a_real_note_off_ends_a_thru_note_and_a_late_one_is_not_sent_twice():
    sched, sent = thru_sched(timeout=2.0)
    sched.submit([TimedNote(0.0, THRU_PART, 60, 100), TimedNote(0.5, THRU_PART, 60, 0),  # a short note
                  TimedNote(1.0, THRU_PART, 62, 100), TimedNote(4.0, THRU_PART, 62, 0)])  # held past the timeout
    sched.run_until(6.0)
    assert thru_notes(sent) == [(0.0, "note_on", 60), (0.5, "note_off", 60), (1.0, "note_on", 62),
                                (3.0, "note_off", 62)]  # the player's late note-off at 4 s is dropped
    assert sched.counters.thru_timeouts == 1 and sched.ledger.counters.refused_off == 1
    sched.submit([TimedNote(6.5, THRU_PART, 62, 90), TimedNote(7.0, THRU_PART, 62, 0)])  # played again: as usual
    sched.run_until(8.0)
    assert thru_notes(sent)[-2:] == [(6.5, "note_on", 62), (7.0, "note_off", 62)]


def test_a_key_struck_again_after_a_lost_note_off_sounds_anew_with_a_fresh_timeout():
    sched, sent = thru_sched(timeout=2.0)
    # 64's note-off at ~1 s was lost; the player strikes it again at 1.5 s and holds it to 3.0 s
    sched.submit([TimedNote(0.0, THRU_PART, 64, 100), TimedNote(1.5, THRU_PART, 64, 80),
                  TimedNote(3.0, THRU_PART, 64, 0)])
    sched.run_until(6.0)
    assert thru_notes(sent) == [(0.0, "note_on", 64), (1.5, "note_off", 64), (1.5, "note_on", 64),
                                (3.0, "note_off", 64)]  # not cut at 2.0 s (the first strike's timeout)
    assert sched.counters.thru_restruck == 1 and sched.counters.thru_timeouts == 0
    assert sched.ledger.counters.refused_on == 0 and sched.ledger.sounding() == []


def test_the_thru_timeout_is_the_held_key_timeout_in_a_session():
    cfg = load(DaemonConfig, None, ["midi.thru=true", "performer.held_key_timeout_s=3"])
    # 60's note-off lost in a flood; the session goes on long after
    run = run_virtual([(1.0, [0x90, 60, 100]), (1.2, [0x90, 62, 100]), (1.4, [0x80, 62, 0])],
                      FakeCallResponse(), cfg, tail_s=10.0)
    assert (4.0, "note_off", 0, 60) in notes(run.thru)
    assert run.summary["scheduler"]["thru_timeouts"] == 1 and run.summary["sounding_before_panic"] == 0


def test_the_start_up_panic_covers_the_channels_of_a_session_with_other_options():
    """A session killed with --thru played the machine on channels 2 and 3, one without on 1: the next
    start clears all of them and the thru channel, whatever its own options."""
    assert DaemonConfig().midi.any_session_channels == (0, 1, 2)
    assert load(DaemonConfig, None, ["midi.thru=true"]).midi.any_session_channels == (0, 1, 2)
    assert load(DaemonConfig, None, ["midi.channels=[5]", "midi.thru_channel=3"]).midi.any_session_channels == (3, 5)
