"""The JACK xrun count (livejam/midi/xruns.py) without a JACK server: a fake libjack hands the
watch's callback back to the test, which plays the server's notices. The count on a real server:
tests/jack/test_e2e_jack.py (a calm session counts none; input lost in transport always shows as xruns)."""
from __future__ import annotations

import logging
from dataclasses import replace

import rtmidi

from livejam.midi.xruns import UNKNOWN, XrunWatch
from livejam.stage.ui.plain import XRUN_LINE_EVERY_S, changes, xrun_line
from livejam.stage.ui.status import StatusReader

from tests.fakes import FakeCallResponse, session


class FakeLibjack:
    """The four libjack calls the watch makes; `notify()` is the server's xrun notice."""

    def __init__(self, opens: bool = True, takes_callback: bool = True):
        self.opens, self.takes_callback = opens, takes_callback
        self.callback = None
        self.activated = self.closed = False
        self.names: list[bytes] = []

    def jack_client_open(self, name, options, status):
        self.names.append(name)
        return 1234 if self.opens else None

    def jack_set_xrun_callback(self, client, callback, arg):
        self.callback = callback
        return 0 if self.takes_callback else -1

    def jack_activate(self, client):
        self.activated = True
        return 0

    def jack_client_close(self, client):
        self.closed = True
        return 0

    def notify(self) -> int:
        return self.callback(None)  # through ctypes, as libjack's notification thread calls it


def test_the_watch_counts_each_xrun_notice():
    jack = FakeLibjack()
    watch = XrunWatch.open(rtmidi.API_UNIX_JACK, "livejam xruns", lib=jack)
    assert jack.activated and jack.names == [b"livejam xruns"]
    assert watch.value == 0
    assert [jack.notify() for _ in range(3)] == [0, 0, 0]  # 0: libjack's "handled"
    assert watch.value == 3


def test_a_watch_that_cannot_start_reads_unknown_with_one_log_line(caplog):
    caplog.set_level(logging.INFO, logger="livejam.midi.xruns")
    refused = FakeLibjack(takes_callback=False)
    for jack in (FakeLibjack(opens=False), refused):
        caplog.clear()
        assert XrunWatch.open(rtmidi.API_UNIX_JACK, lib=jack).value == UNKNOWN
        assert len(caplog.records) == 1 and "xruns not counted" in caplog.records[0].getMessage()
    assert refused.closed  # the client that refused the callback is not left behind


def test_off_jack_nothing_is_opened_and_the_count_is_unknown(caplog):
    jack = FakeLibjack()
    caplog.set_level(logging.INFO)
    assert XrunWatch.open(rtmidi.API_LINUX_ALSA, lib=jack).value == UNKNOWN
    assert jack.names == [] and caplog.records == []  # not an error: ALSA has no such notices


def test_the_status_shows_the_count_and_the_plain_log_a_line_when_it_grows():
    s = session(FakeCallResponse())
    reader = StatusReader(s)
    assert reader.read().counters["xruns"] == UNKNOWN  # a session without a watch
    jack = FakeLibjack()
    s.xruns = XrunWatch.open(rtmidi.API_UNIX_JACK, lib=jack)
    before = reader.read()
    assert before.counters["xruns"] == 0 and changes(before, reader.read()) == []
    jack.notify()
    jack.notify()
    now = reader.read()
    assert now.counters["xruns"] == 2
    assert changes(before, now) == []  # said by xrun_line, at most every 10 s
    line, said = xrun_line((-float("inf"), 0), now)
    assert line == "JACK xruns 0 -> 2: input may have been lost" and said == (now.t, 2)
    jack.notify()
    soon = replace(reader.read(), t=now.t + 1.0)
    assert xrun_line(said, soon) == (None, said)  # a server that xruns all the time: no flood of lines
    later = replace(soon, t=now.t + XRUN_LINE_EVERY_S)
    assert xrun_line(said, later)[0] == "JACK xruns 2 -> 3: input may have been lost"
