"""OSC control from a python-osc client: each control reaches the performer through the input queue
(the same path as a MIDI knob), status comes back to the client, and nothing listens without --osc."""
from __future__ import annotations

import socket

import pytest

pytest.importorskip("pythonosc")
from pythonosc.osc_message import OscMessage  # noqa: E402
from pythonosc.osc_message_builder import OscMessageBuilder  # noqa: E402
from pythonosc.udp_client import SimpleUDPClient  # noqa: E402

from livejam.config import ConfigError, DaemonConfig  # noqa: E402
from livejam.session import Session  # noqa: E402
from livejam.dispatch import build_performer  # noqa: E402
from livejam.stage.osc import OscControl, parse_listen  # noqa: E402
from livejam.stage.addons import build_addons  # noqa: E402

from tests.fakes import session  # noqa: E402


def deliver(s: Session, n: int = 1) -> list:
    """Take n items the OSC thread enqueued (blocking get with a timeout) and feed them like the
    performer thread does."""
    raws = []
    for _ in range(n):
        t, raw = s.inq.get(timeout=5.0)
        raws.append(list(raw))
        s.dispatcher.feed(t, raw, s.clock.now())
    return raws


@pytest.fixture(scope="module")
def neural():
    return build_performer(DaemonConfig(seed=1))


@pytest.fixture
def running(neural):
    s = session(neural)
    osc = OscControl("127.0.0.1:0", s.config)
    osc.bind()
    osc.start(s)
    yield s, osc, SimpleUDPClient("127.0.0.1", osc.port)
    osc.close()


def test_listen_address_is_localhost_unless_given():
    assert parse_listen("9000") == ("127.0.0.1", 9000)
    assert parse_listen("0.0.0.0:9001") == ("0.0.0.0", 9001)
    with pytest.raises(ConfigError):
        parse_listen("localhost:http")
    assert not any(type(a).__name__ == "OscControl" for a in build_addons(DaemonConfig()))


def test_every_control_reaches_the_performer(running):
    s, osc, client = running
    perf = s.dispatcher.performer
    client.send_message("/livejam/temperature", 0.8)
    client.send_message("/livejam/density", -1.5)
    client.send_message("/livejam/range", [48, 72])
    client.send_message("/livejam/harmony", 0.25)
    client.send_message("/livejam/grid", 0.75)
    deliver(s, 5)
    assert perf.constraints.temperature == pytest.approx(0.8, abs=0.012)  # 7-bit CC resolution
    assert perf.constraints.harmony == pytest.approx(0.25, abs=0.005)
    assert perf.constraints.grid == pytest.approx(0.75, abs=0.005)
    assert perf.constraints.density == pytest.approx(-1.5, abs=0.04)
    lo, hi = perf.constraints.pitch_range
    assert (lo + hi) / 2 == pytest.approx(60, abs=1)
    client.send_message("/livejam/mode", "duet")
    deliver(s)
    assert perf.mode == "duet"
    c = s.config.neural.controls
    for address, cc in (("/livejam/reset", c.reset), ("/livejam/panic", c.panic),
                        ("/livejam/end_phrase", s.config.performer.phrase_end_cc)):
        client.send_message(address, [])
        assert deliver(s) == [[0xB0, cc, 127]]
    assert perf.counters["controls"] >= 6


def test_status_and_errors_go_back_to_the_client(running):
    s, osc, _ = running
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a client that also listens, as OSC apps do
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5.0)

    def send(address, *args):
        b = OscMessageBuilder(address)
        for a in args:
            b.add_arg(a)
        sock.sendto(b.build().dgram, ("127.0.0.1", osc.port))

    def receive():
        msg = OscMessage(sock.recvfrom(65536)[0])
        return msg.address, tuple(msg.params)

    try:
        send("/livejam/status")  # no port given: the reply goes to the sender's address
        replies = {}
        while "/livejam/status/sounding" not in replies:
            address, args = receive()
            replies[address] = args
        assert replies["/livejam/status/mode"] == (s.dispatcher.performer.mode,)
        assert "/livejam/status/temperature" in replies and "/livejam/status/lateness_p99_ms" in replies
        send("/livejam/harmony", "lots")  # not a number: says so
        send("/livejam/nonsense", 1)
        send("/livejam/temperature", 9.0)  # out of the knob's range: refused, not clamped (issue 19 #9)
        send("/livejam/density", 2.0)  # the knob's top: taken
        errors = [receive(), receive(), receive()]
        assert [a for a, _ in errors] == ["/livejam/error"] * 3 and osc.errors == 3
        assert "harmony" in errors[0][1][0] and "unknown control" in errors[1][1][0]
        assert errors[2][1][0] == "temperature: 9 is out of range: expected 0.05..1.5"
    finally:
        sock.close()


def test_subscribers_get_status_pushed(running):
    s, osc, _ = running
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5.0)
    try:
        sock.sendto(OscMessageBuilder("/livejam/subscribe").build().dgram, ("127.0.0.1", osc.port))
        seen = set()
        while "/livejam/status/mode" not in seen or "/livejam/subscribed" not in seen:
            seen.add(OscMessage(sock.recvfrom(65536)[0]).address)  # pushed at osc.push_hz (2 Hz)
        assert osc.subscribers == {sock.getsockname()}  # status arrived unasked: pushed
        sock.sendto(OscMessageBuilder("/livejam/unsubscribe").build().dgram, ("127.0.0.1", osc.port))
        other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a reply here comes after the unsubscribe
        other.bind(("127.0.0.1", 0))  # was handled: one server thread, in order
        other.settimeout(5.0)
        b = OscMessageBuilder("/livejam/status")
        b.add_arg(other.getsockname()[1])
        sock.sendto(b.build().dgram, ("127.0.0.1", osc.port))
        other.recvfrom(65536)
        other.close()
        assert osc.subscribers == set()
    finally:
        sock.close()


@pytest.fixture
def fake_running():
    from tests.fakes import FakeCallResponse

    s = session(FakeCallResponse())
    osc = OscControl("127.0.0.1:0", s.config)
    osc.bind()
    osc.start(s)
    yield s, osc
    osc.close()


def test_a_chord_chart_reaches_the_performer_and_its_chord_comes_back(fake_running):
    from livejam.chart import ChartChange
    from livejam.harmony import chord_id
    from livejam.stage.ui.plain import changes
    from livejam.stage.ui.screen import render

    s, osc = fake_running
    perf = s.dispatcher.performer
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5.0)

    def send(address, *args):
        b = OscMessageBuilder(address)
        for a in args:
            b.add_arg(a)
        sock.sendto(b.build().dgram, ("127.0.0.1", osc.port))

    def deliver_chart():  # the performer thread's part: take what the OSC thread enqueued, feed it
        t, item = s.inq.get(timeout=5.0)
        assert isinstance(item, ChartChange)
        s.dispatcher.feed(t, item, s.clock.now())

    try:
        send("/livejam/chords", "Am F | C:2 G:2")
        deliver_chart()
        assert perf.chart.chords == (chord_id(9, 1), chord_id(5, 0), chord_id(0, 0), chord_id(7, 0))
        send("/livejam/chords", "Am Hm")  # a bad chart: an error back, the chart in use stays
        msg = OscMessage(sock.recvfrom(65536)[0])
        assert msg.address == "/livejam/error" and '"Hm" at position 2 is not a chord' in msg.params[0]
        assert s.inq.drain() == 0 and perf.chart.chords[0] == chord_id(9, 1)

        perf.chord, perf.chord_source = chord_id(9, 1), "chart"  # what a chart-following performer shows
        send("/livejam/status")
        replies = {}
        while "/livejam/status/chord_source" not in replies:
            msg = OscMessage(sock.recvfrom(65536)[0])
            replies[msg.address] = tuple(msg.params)
        assert replies["/livejam/status/chord"] == ("A:min",) and replies["/livejam/status/chord_source"] == ("chart",)
        before = osc.reader.read()
        assert before.chord == "A:min" and before.chord_source == "chart"
        assert "chord A:min (chart)" in render(before).renderables[0].plain
        perf.chord, perf.chord_source = chord_id(5, 0), "chart"
        assert changes(before, osc.reader.read()) == ["chord F:maj (chart)"]

        send("/livejam/chords", "")  # clears it
        deliver_chart()
        assert perf.chart is None
    finally:
        sock.close()


def _listener():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5.0)
    return sock


def _send(sock, port, address, *args):
    b = OscMessageBuilder(address)
    for a in args:
        b.add_arg(a)
    sock.sendto(b.build().dgram, ("127.0.0.1", port))


def _receive_until(sock, address):
    while True:
        msg = OscMessage(sock.recvfrom(65536)[0])
        if msg.address == address:
            return tuple(msg.params)


def test_a_future_dated_bundle_is_handled_now_and_close_returns(neural):
    """Strict timing off: a bundle dated a year ahead would put the server thread to sleep for that year,
    and close() (server.shutdown) would wait for it: the daemon could not be stopped."""
    import threading
    import time

    from pythonosc.osc_bundle_builder import OscBundleBuilder

    s = session(neural)
    osc = OscControl("127.0.0.1:0", s.config)
    osc.bind()
    osc.start(s)
    sock = _listener()
    try:
        bundle = OscBundleBuilder(time.time() + 365 * 86400)
        bundle.add_content(OscMessageBuilder("/livejam/status").build())
        sock.sendto(bundle.build().dgram, ("127.0.0.1", osc.port))
        assert _receive_until(sock, "/livejam/status/mode") == (s.dispatcher.performer.mode,)
    finally:
        sock.close()
        closer = threading.Thread(target=osc.close, daemon=True)
        closer.start()
        closer.join(5.0)
    assert not closer.is_alive(), "OscControl.close() hung behind a sleeping handler"


def test_bad_datagrams_and_ports_are_one_line_errors(running, capfd, caplog):
    """A non-UTF-8 string is one log line (no socketserver traceback); a port out of range is refused
    with /livejam/error and never reaches the push thread, which keeps pushing."""
    s, osc, _ = running
    sock = _listener()
    try:
        sock.sendto(b"/livejam/mode\x00\x00\x00,s\x00\x00\xff\xfe\x00\x00", ("127.0.0.1", osc.port))
        for port in (99999, 0, -1, "x", float("inf")):
            _send(sock, osc.port, "/livejam/subscribe", port)
            assert "1..65535" in _receive_until(sock, "/livejam/error")[0]
        assert osc.subscribers == set()
        _send(sock, osc.port, "/livejam/status", 99999)
        assert "1..65535" in _receive_until(sock, "/livejam/error")[0]
        _send(sock, osc.port, "/livejam/subscribe")
        _receive_until(sock, "/livejam/subscribed")
        pushes = osc.pushes
        _receive_until(sock, "/livejam/status/mode")  # pushed: the push thread is alive
        _receive_until(sock, "/livejam/status/mode")
        assert osc.pushes > pushes and osc._push_thread.is_alive()
        assert osc.errors >= 7  # the datagram and the six refusals
    finally:
        sock.close()
    err = capfd.readouterr().err
    assert "Traceback" not in err
    assert [r.message for r in caplog.records if "datagram" in r.message][0].count("\n") == 0


def test_subscriptions_are_bounded(running):
    from livejam.stage.osc import MAX_SUBSCRIBERS

    s, osc, _ = running
    socks = [_listener() for _ in range(MAX_SUBSCRIBERS + 1)]
    try:
        for sock in socks[:-1]:
            _send(sock, osc.port, "/livejam/subscribe")
            _receive_until(sock, "/livejam/subscribed")
        _send(socks[-1], osc.port, "/livejam/subscribe")
        assert "subscribers already" in _receive_until(socks[-1], "/livejam/error")[0]
        assert len(osc.subscribers) == MAX_SUBSCRIBERS
        _send(socks[0], osc.port, "/livejam/subscribe")  # again: already there, not refused
        _receive_until(socks[0], "/livejam/subscribed")
    finally:
        for sock in socks:
            sock.close()
