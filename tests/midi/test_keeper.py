"""The port keeper's state machine on fake ports (no MIDI system): a named port waited
for, lost and back; one disconnected by hand left alone; the session's reactions in
order; --exit-on-port-loss. And what an input loss does to the human's held keys."""
from __future__ import annotations

import pytest

from livejam.clock import VirtualClock
from livejam.dispatch import Dispatcher
from livejam.midi.keeper import Keeper, PortKeeper, _own_name
from livejam.midi.normalise import InputNormaliser
from livejam.midi.ports import MidiUnavailable
from livejam.performers.echo import EchoPerformer
from livejam.scheduler import Scheduler

from tests.fakes import FakeJack, FakeLink, FakePort

OWN = ("livejam in", "livejam out", "livejam heartbeat")


def test_a_missing_port_is_waited_for_then_found():
    link = FakeLink("livejam in:in", "other:in")
    k = PortKeeper("output", "synth", link, OWN)
    assert k.poll() is None and k.state == "waiting"
    assert k.waiting() == "waiting for output port 'synth' (available outputs: other:in)"  # not our own
    assert k.missing() == "no MIDI output port matching 'synth'; available outputs: other:in"
    link.refuse, link.there = True, link.there + ["Synth:in"]
    assert k.poll() is None and k.state == "waiting"  # there but refused: tried again next time
    link.refuse = False
    assert k.poll() == "found" and k.target == "Synth:in" and link.attached_to == {"Synth:in"}
    assert k.line("found") == "output port found: Synth:in"
    assert k.poll() is None and k.state == "connected"


def test_a_vanished_port_is_reconnected_when_it_comes_back():
    link = FakeLink("synth:in")
    k = PortKeeper("output", "synth", link, OWN)
    assert k.poll() == "found"
    link.vanish("synth:in")
    assert k.poll() == "lost" and k.line("lost") == "output port lost: synth:in (waiting for it to come back)"
    assert k.poll() is None and k.state == "lost"
    link.there.append("synth:in")
    assert k.poll() == "back" and "synth:in" in link.attached_to and k.line("back") == "output port back: synth:in"


def test_the_port_that_left_is_preferred_else_any_that_matches():
    link = FakeLink("Synth 128:0")
    k = PortKeeper("input", "synth", link, OWN)
    k.poll()
    link.vanish("Synth 128:0")
    k.poll()
    link.there += ["Synth 129:0"]  # ALSA gave the restarted synth another client number
    assert k.poll() == "back" and k.target == "Synth 129:0"
    link.vanish("Synth 129:0")
    k.poll()
    link.there += ["Synth 130:0", "Synth 129:0"]
    assert k.poll() == "back" and k.target == "Synth 129:0"


def test_a_port_disconnected_by_hand_is_left_so_until_it_vanishes_and_returns():
    link = FakeLink("synth:in")
    k = PortKeeper("output", "synth", link, OWN)
    k.poll()
    link.attached_to.clear()  # qjackctl: the user took the cable out
    assert k.poll() == "released" and "by hand" in k.line("released")
    for _ in range(3):
        assert k.poll() is None and link.attached_to == set()  # never put back while it is there
    link.attached_to.add("synth:in")  # ... and back in by hand
    assert k.poll() is None and k.state == "connected"
    link.attached_to.clear()
    k.poll()
    link.vanish("synth:in")
    assert k.poll() == "lost"
    link.there.append("synth:in")  # the synth restarted: it is connected again
    assert k.poll() == "back" and link.attached_to == {"synth:in"}


def keeper_with(out_link, in_link=None, exit_on_loss=False, jack=None):
    calls: list = []
    out, inp = FakePort("synth"), FakePort("keys" if in_link else "", "livejam in:in")
    k = Keeper(inp, out, jack, own=OWN, exit_on_loss=exit_on_loss, on_event=lambda t: calls.append(("line", t)),
               reset_output=lambda all_notes: calls.append(("reset", all_notes)),
               input_lost=lambda: calls.append(("input lost",)), listener_joined=lambda: calls.append(("joined",)))
    k.keepers[0][0].link = out_link
    if in_link:
        k.keepers[1][0].link = in_link
    return k, calls, out


def test_keeper_reactions_come_before_their_line():
    out_link, in_link = FakeLink(), FakeLink("keys:out")
    k, calls, out = keeper_with(out_link, in_link)
    k.start()
    assert calls == [("line", "waiting for output port 'synth' (available outputs: none)")]
    assert out.port_name == out.own_port  # nothing connected yet (the daemon's ready line says so)
    out_link.there.append("synth:in")
    calls.clear()
    assert k.poll() is None
    assert calls == [("reset", True), ("line", "output port found: synth:in")] and out.port_name == "synth:in"
    calls.clear()
    out_link.vanish("synth:in")
    in_link.vanish("keys:out")
    k.poll()
    assert calls == [("reset", False), ("line", "output port lost: synth:in (waiting for it to come back)"),
                     ("input lost",), ("line", "input port lost: keys:out (waiting for it to come back)")]
    calls.clear()
    out_link.there.append("synth:in")
    in_link.there.append("keys:out")
    k.poll()
    assert calls == [("reset", True), ("line", "output port back: synth:in"), ("line", "input port back: keys:out")]
    calls.clear()
    in_link.attached_to.clear()  # the keyboard disconnected by hand: its note-offs will not come either
    k.poll()
    assert calls == [("input lost",), ("line", "input port disconnected by hand: keys:out "
                                                "(not reconnected while it is there)")]


def test_exit_on_port_loss_fails_at_start_and_stops_on_loss():
    k, calls, _ = keeper_with(FakeLink("other:in"), exit_on_loss=True)
    with pytest.raises(MidiUnavailable, match="no MIDI output port matching 'synth'; available outputs: other:in"):
        k.start()
    link = FakeLink("synth:in")
    k, calls, _ = keeper_with(link, exit_on_loss=True)
    k.start()
    assert calls == []
    link.vanish("synth:in")
    assert k.poll() == "output port vanished" and calls == [("line", "output port lost: synth:in")]


def test_a_reconnection_by_hand_ends_the_notes_the_keepers_own_does_not_twice():
    jack, link = FakeJack(), FakeLink("synth:in", "other:in")
    k, calls, _ = keeper_with(link, jack=jack)
    k.start()
    jack.conn = {"synth:in"}
    calls.clear()
    k.poll()
    jack.conn = {"synth:in", "other:in"}  # a second synth, connected by hand: new, nothing of ours to end
    k.poll()
    assert [c for c in calls if c[0] == "reset"] == []
    calls.clear()
    jack.conn = {"synth:in"}
    k.poll()
    jack.conn = {"synth:in", "other:in"}  # ... disconnected and connected again: it missed note-offs
    k.poll()
    assert calls == [("reset", True), ("line", "output reconnected to other:in: every note ended")]
    calls.clear()
    link.vanish("synth:in")
    jack.conn = {"other:in"}
    k.poll()
    link.there.append("synth:in")
    k.poll()  # the keeper connects it ...
    jack.conn = {"synth:in", "other:in"}
    k.poll()  # ... and JACK shows it a poll later: one reset, the keeper's
    assert [c for c in calls if c[0] == "reset"] == [("reset", False), ("reset", True)]


def test_own_port_name_follows_a_jack_rename():
    assert _own_name("livejam out:out", frozenset({"livejam out-01:out", "livejam in-01:in"})) == "livejam out-01:out"
    assert _own_name("livejam out:out", frozenset({"livejam out:out"})) == "livejam out:out"
    assert _own_name("livejam out:out", frozenset()) == "livejam out:out"


def test_input_loss_lets_go_of_the_held_keys():
    clock = VirtualClock()
    sent = []
    sched = Scheduler(clock, lambda port, msg, t: sent.append((port, msg)), channels=(1, 2), thru_channel=0)
    d = Dispatcher(EchoPerformer(), sched, InputNormaliser(), thru=True)
    d.feed(0.0, [0x90, 60, 100], 0.0)
    d.feed(0.0, [0x91, 64, 100], 0.0)
    d.feed(0.0, [0x90, 67, 100], 0.0)
    d.feed(0.1, [0x80, 67, 0], 0.1)
    d.pump(0.1)
    sched.run_until(0.2)
    assert len(sched.ledger.sounding()) == 4  # two echoed by the machine, two passed through
    d.release_held(0.5)  # the keyboard vanished with 60 and 64 down
    d.pump(0.5)
    sched.run_until(1.0)
    assert sched.ledger.sounding() == [] and d.held == set()
    assert d.performer.close(1.0) == []  # the echo let go too


def virtual_keeper(jack):
    calls: list = []
    k = Keeper(FakePort("", "livejam in:in"), FakePort(""), jack, own=OWN, exit_on_loss=False,
               on_event=lambda t: calls.append(("line", t)), reset_output=lambda all_notes: calls.append(("reset",)),
               input_lost=lambda: calls.append(("input lost",)), listener_joined=lambda: calls.append(("joined",)))
    return k, calls


def test_a_synth_connected_to_the_virtual_output_gets_the_startup_panic_again():
    """Issue 21 #9: a killed session's notes sounded through the next one, whose start-up panic went
    out on a virtual port nobody listened to yet: each synth connected later is cleared as it comes."""
    jack = FakeJack()
    k, calls = virtual_keeper(jack)
    k.start()
    assert k.listening_now() is False and calls == []  # nobody there: the start-up panic reaches nobody
    jack.conn = {"fluid:in"}  # the user connects a synth (qjackctl)
    k.poll()
    assert calls == [("joined",),
                     ("line", "output connected to fluid:in: cleared of notes an earlier session may have left")]
    calls.clear()
    k.poll()
    assert calls == []  # once per connection
    jack.conn = {"fluid:in", "hw:in"}  # a second synth
    k.poll()
    assert calls[0] == ("joined",) and "hw:in" in calls[1][1] and "fluid:in" not in calls[1][1]
    calls.clear()
    jack.conn = {"hw:in"}
    k.poll()
    jack.conn = {"hw:in", "fluid:in"}  # connected again: it missed our note-offs, every note ends (as before)
    k.poll()
    assert calls == [("line", "output disconnected: fluid:in"),
                     ("reset",), ("line", "output reconnected to fluid:in: every note ended")]


def test_a_synth_listening_at_start_gets_the_full_startup_panic_and_is_not_cleared_twice():
    jack = FakeJack()
    k, calls = virtual_keeper(jack)
    k.start()
    jack.conn = {"fluid:in"}  # connected by a session manager before the start-up panic
    assert k.listening_now() is True  # the start-up panic sends a note-off for every note
    k.poll()
    assert calls == []
    assert Keeper(FakePort("", "livejam in:in"), FakePort(""), None, own=OWN, exit_on_loss=False,
                  on_event=print, reset_output=print, input_lost=print,
                  listener_joined=print).listening_now() is True  # without JACK nobody can tell: assume one


def test_the_player_is_told_who_plays_into_livejam_and_who_hears_it():
    """Issue 19 #2: after start nothing said whether anything was connected. On JACK each change of the
    virtual ports' connections is one line (livejam's own heartbeat is no player)."""
    jack = FakeJack()
    k, calls = virtual_keeper(jack)
    k.start()
    jack.ins = {"livejam heartbeat:out", "system:midi_capture_1"}
    k.poll()
    assert calls == [("line", "input connected: system:midi_capture_1 (livejam hears it)")]
    calls.clear()
    jack.ins = {"livejam heartbeat:out"}
    k.poll()
    assert calls == [("line", "input disconnected: system:midi_capture_1")]
    calls.clear()
    jack.conn = {"fluid:in"}
    k.poll()
    calls.clear()
    jack.conn = set()
    k.poll()
    assert calls == [("line", "output disconnected: fluid:in (nothing hears livejam now)")]


def test_port_names_asks_again_when_a_port_vanishes_while_listed():
    """rtmidi counts the ports, then names each: a port unplugged in between raises
    InvalidPortError (seen in CI, a killed client's port). The list is asked again."""
    import rtmidi

    from livejam.midi.ports import port_names

    class Churning:
        def __init__(self, failures: int):
            self.failures = failures

        def get_ports(self):
            if self.failures:
                self.failures -= 1
                raise rtmidi.InvalidPortError("the 'portNumber' argument (2) is invalid.")
            return ["synth:in"]

    assert port_names(Churning(2)) == ["synth:in"]
    assert port_names(Churning(99)) == []  # a system that never settles lists nothing, never raises
