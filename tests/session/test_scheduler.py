"""Scheduler policy on the virtual clock (and one threaded run, correctness only)."""
from __future__ import annotations

import threading
import time

from livejam.clock import RealClock, VirtualClock
from livejam.events import TimedNote
from livejam.scheduler import Scheduler


def make(clock=None, **kw):
    clock = clock or VirtualClock()
    sent = []
    sched = Scheduler(clock, lambda port, msg, t: sent.append((t, msg)), **kw)
    return clock, sched, sent


def notes_of(sent):
    return [(t, m.kind, m.channel, m.a) for t, m in sent if m.kind in ("note_on", "note_off")]


def test_events_go_out_in_time_order_offs_first_at_equal_times():
    clock, sched, sent = make()
    sched.submit([TimedNote(1.0, 0, 60, 100), TimedNote(0.5, 1, 64, 90), TimedNote(1.0, 0, 62, 0),
                  TimedNote(2.0, 0, 60, 0), TimedNote(0.7, 1, 64, 0)])
    sched.submit([TimedNote(0.2, 0, 62, 100)])
    sched.run_until(3.0)
    assert notes_of(sent) == [(0.2, "note_on", 0, 62), (0.5, "note_on", 1, 64), (0.7, "note_off", 1, 64),
                              (1.0, "note_off", 0, 62), (1.0, "note_on", 0, 60), (2.0, "note_off", 0, 60)]
    assert clock.now() == 3.0


def test_late_note_on_dropped_with_its_off_but_late_offs_always_sent():
    clock, sched, sent = make(late_drop_s=0.030)
    sched.submit([TimedNote(0.0, 0, 60, 100)])
    sched.run_until(0.0)
    clock.advance(1.0)
    # handed over too late: the note-on 50 ms late goes, 20 ms late is kept; a 1 s late off is sent
    sched.submit([TimedNote(0.95, 0, 61, 100), TimedNote(0.98, 0, 62, 100), TimedNote(0.0, 0, 60, 0),
                  TimedNote(1.1, 0, 61, 0), TimedNote(1.2, 0, 62, 0)])
    sched.run_until(2.0)
    assert notes_of(sent) == [(0.0, "note_on", 0, 60), (1.0, "note_off", 0, 60), (1.0, "note_on", 0, 62),
                              (1.2, "note_off", 0, 62)]
    assert sched.counters.dropped_late == 1
    assert sched.ledger.counters.refused_off == 1  # 61's off: its on never went out
    assert sched.counters.past_submissions == 3


def test_cancel_drops_queue_and_ends_sounding_notes_now():
    clock, sched, sent = make()
    sched.submit([TimedNote(0.1, 0, 60, 100), TimedNote(0.2, 1, 64, 100), TimedNote(0.5, 0, 60, 0),
                  TimedNote(0.6, 0, 67, 100), TimedNote(0.9, 0, 67, 0)])
    sched.run_until(0.3)
    sched.cancel()
    sched.run_until(2.0)
    assert notes_of(sent) == [(0.1, "note_on", 0, 60), (0.2, "note_on", 1, 64), (0.3, "note_off", 0, 60),
                              (0.3, "note_off", 1, 64)]
    assert sched.counters.cancelled == 3 and sched.ledger.sounding() == []


def test_watchdog_ends_notes_held_too_long():
    clock, sched, sent = make(watchdog_s=8.0)
    sched.submit([TimedNote(1.0, 0, 60, 100), TimedNote(2.0, 0, 62, 100), TimedNote(3.0, 0, 62, 0)])
    assert sched.next_time() == 1.0
    sched.run_until(20.0)
    assert notes_of(sent)[-1] == (9.0, "note_off", 0, 60)
    assert sched.counters.watchdog_offs == 1 and sched.ledger.sounding() == []


def test_panic_clears_configured_and_used_channels():
    clock, sched, sent = make(channels=(0, 1))
    sched.submit([TimedNote(0.0, 1, 60, 100)])
    sched.run_until(0.0)
    sched.panic()
    kinds = [(m.kind, m.channel, m.a) for _, m in sent[1:]]
    assert kinds == [("note_off", 1, 60), ("control_change", 0, 64), ("control_change", 0, 123),
                     ("control_change", 1, 64), ("control_change", 1, 123)]


def test_threaded_mode_sends_everything_and_stops_clean():
    clock = RealClock()
    _, sched, sent = make(clock)
    sched.start()
    now = clock.now()
    sched.submit([TimedNote(now + 0.001 * i, i % 2, 60 + i % 12, 0 if (i // 12) % 2 else 100) for i in range(48)])
    sched.submit([TimedNote(now + 30.0, 0, 90, 100)])  # far future: dropped at stop
    deadline = time.monotonic() + 30  # generous: only correctness is asserted
    while sched.pending() > 1 and sched.alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    sched.stop(flush=True)
    sched.panic()
    assert sched.error is None
    assert sched.ledger.sounding() == []
    assert not any(m.a == 90 and m.kind == "note_on" for _, m in sent)


def test_realtime_priority_is_taken_where_allowed_and_reported():
    """The thread asks for SCHED_FIFO; allowed or not, it runs and says which in its counters."""
    import os

    from livejam.clock import RealClock
    from livejam.scheduler import Scheduler

    sent = []
    sched = Scheduler(RealClock(), lambda port, msg, t: sent.append(msg), realtime_priority=5)
    sched.start()
    t = RealClock.now() + 0.05
    sched.submit([TimedNote(t, 0, 60, 100), TimedNote(t + 0.01, 0, 60, 0)])
    deadline = RealClock.now() + 30
    while sched.pending() and RealClock.now() < deadline:
        time.sleep(0.01)
    sched.stop()
    assert sched.error is None and len(sent) == 2
    try:  # what this machine allows: the same call from a throwaway thread
        allowed = []

        def probe():
            try:
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(5))
                allowed.append(True)
            except OSError:
                allowed.append(False)

        th = threading.Thread(target=probe)
        th.start()
        th.join()
    except AttributeError:  # not Linux
        allowed = [False]
    assert sched.counters.realtime == allowed[0]


def test_a_lead_hands_notes_over_ahead_with_the_time_they_are_to_sound():
    """scheduler.lead_s (the JACK frame port's): a note goes to the sink up to lead_s before its time,
    with its time; handed over after its time, it is to sound now, and its lateness says by how much
    (its time is always the sink's time minus the lateness)."""
    clock, sched, sent = make()
    sched.lead_s = 0.004
    sched.submit([TimedNote(1.0, 0, 60, 100), TimedNote(1.5, 0, 60, 0), TimedNote(2.0, 0, 62, 100)])
    clock.advance(0.997)  # 3 ms before the first: within the lead
    sched._emit(sched._heap[0][3], 1.0)
    clock.advance(1.502)  # 2 ms after the off's time
    sched._emit(TimedNote(1.5, 0, 60, 0), 1.5)
    assert [(round(t, 4), m.kind) for t, m in sent] == [(1.0, "note_on"), (1.502, "note_off")]
    assert [round(x, 4) for x in sched.counters.lateness] == [0.0, 0.002]
    # the thread's wake-up and due test go lead_s early for queued events, not for watchdog deadlines
    assert sched._next_time_locked(0.004) == 1.0 - 0.004
