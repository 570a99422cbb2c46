"""The output process's JACK port at frame offsets (livejam/midi/jack_frames.py): its callback's
bookkeeping with a stand-in port, then the real output process heard by a JACK client that stamps
each arrival with its frame."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import deque

import pytest

from livejam.config import DaemonConfig, load
from livejam.events import TimedNote
from livejam.midi.jack_frames import ANCHOR_CYCLES, ASAP, MAX_PER_PERIOD, FrameOutput, frames_after
from livejam.midi.normalise import EchoFilter
from livejam.midi.spec import note_off, note_on
from livejam.output.remote import OutputProcess

from tests.conftest import checkout_env
from tests.jack.jack_player import wait_for


class Written:
    """A stand-in JACK port and client: what the callback writes, at which offset."""

    class Full(Exception):
        pass

    def __init__(self, start: int, room: int = 100):
        self.last_frame_time, self.events, self.room = start, [], room

    def clear_buffer(self):
        self.events.clear()

    def write_midi_event(self, offset, data):
        if len(self.events) >= self.room:
            raise self.Full
        self.events.append((offset, bytes(data)))


def port_at(start: int, room: int = 100) -> FrameOutput:
    out = FrameOutput.__new__(FrameOutput)  # no JACK: the callback's logic alone
    w = Written(start, room)
    out.client = out.port = w
    out._jack = type("jack", (), {"JackError": Written.Full})
    out.queue, out.written_late, out.send_errors, out.dead = deque(), 0, 0, False
    out.rate, out._cycles, out._anchor = 48000, deque(maxlen=ANCHOR_CYCLES), None
    return out


def test_the_callback_writes_each_message_at_its_offset_in_order_and_keeps_later_ones():
    out = port_at(start=1000)
    on, off = bytes(note_on(0, 60, 90).bytes()), bytes(note_off(0, 60).bytes())
    out.queue.extend([(ASAP, b"\xfc"), (995, on), (1010, off), (1063, on), (1064, off), (1030, on)])
    out._process(64)
    # the stop at once; the late note-on at the period's first free offset; the others at their
    # frames; 1064 is the next period's, and 1030 behind it waits too (never overtakes)
    assert out.port.events == [(0, b"\xfc"), (0, on), (10, off), (63, on)]
    assert [f for f, _ in out.queue] == [1064, 1030] and out.written_late == 1
    out.client.last_frame_time = 1064
    out._process(64)
    assert out.port.events == [(0, off), (0, on)] and not out.queue  # 1030 late: at once, after it
    assert out.written_late == 2 and out.send_errors == 0


def test_the_frame_of_a_time_comes_from_the_promptest_recent_period_start():
    out = port_at(start=0)
    assert out._anchor is None  # before the first period: a message goes out as soon as it can
    out.send(note_on(0, 60, 90), at=5.0)
    assert out.queue[-1][0] == ASAP
    out._reanchor(48000, 10.0)  # the period at frame 48000 began at 10.0 s, as seen...
    out._reanchor(48064, 10.0021)  # ...and the next was seen 0.8 ms after its start (a late callback)
    assert out._anchor == (48064, pytest.approx(10.0 + 64 / 48000))
    out.send(note_on(0, 60, 90), at=10.5)
    assert out.queue[-1][0] == 48000 + 24000


def test_a_burst_goes_out_at_most_max_per_period_a_period_in_order():
    """A blanket clear (2,048 note-offs) at once overflowed rtmidi's receiving ring: spread over periods."""
    out = port_at(start=0, room=10_000)
    out.queue.extend((ASAP, bytes([0x80, n % 128, 0])) for n in range(2 * MAX_PER_PERIOD + 5))
    sizes = []
    for period in range(4):
        out.client.last_frame_time = 64 * period
        out._process(64)
        sizes.append(len(out.port.events))
    assert sizes == [MAX_PER_PERIOD, MAX_PER_PERIOD, 5, 0] and not out.queue


def test_a_full_period_leaves_the_rest_for_the_next_and_the_frame_clock_wraps():
    out = port_at(start=2**32 - 10, room=2)
    out.queue.extend([(2**32 - 5, b"\x90\x3c\x5a"), (2**32 - 4, b"\x80\x3c\x00"), (3, b"\x90\x40\x5a")])
    out._process(64)
    assert out.port.events == [(5, b"\x90\x3c\x5a"), (6, b"\x80\x3c\x00")] and len(out.queue) == 1
    assert frames_after(3, 2**32 - 10) == 13
    out.client.last_frame_time = (2**32 - 10 + 64) % 2**32  # 54
    out._process(64)
    assert out.port.events == [(0, b"\x90\x40\x5a")] and out.written_late == 1


# A JACK client of its own process (JACK-Client's libjack must not meet rtmidi's copy, which this
# test process has loaded): connects SOURCE to its input, says "ready" with a (perf_counter,
# frame_time) pair read together, stamps each arrival with its frame, and prints them when told to.
RECEIVER = """
import json, sys, time, jack
source = sys.argv[1]
client = jack.Client("frames test rx", no_start_server=True)
port = client.midi_inports.register("in")
got = []
@client.set_process_callback
def process(frames):
    start = client.last_frame_time
    for offset, data in port.incoming_midi_events():
        got.append((start + offset, offset, list(bytes(data))))
with client:
    client.connect(source, port.name)
    pc, ft = time.perf_counter(), client.frame_time
    print(json.dumps({"perf_counter": pc, "frame": ft, "rate": client.samplerate, "period": client.blocksize}), flush=True)
    sys.stdin.readline()
    time.sleep(0.1)
print(json.dumps(got), flush=True)
"""


def heard_from_the_output_process(frames: bool) -> tuple[dict, list, list[TimedNote]]:
    cfg = load(DaemonConfig, None, [f"scheduler.jack_frames={str(frames).lower()}"])
    proc = OutputProcess(cfg, EchoFilter(), lambda *a: None)
    import rtmidi

    port = proc.open_port(rtmidi.API_UNIX_JACK, "", "frames test out")
    rx = subprocess.Popen([sys.executable, "-c", RECEIVER, port.own_port], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True, env=checkout_env())
    try:
        clock = json.loads(rx.stdout.readline())
        proc.start()
        t0 = time.perf_counter() + 0.3
        notes = []
        for i in range(40):  # 13.7 ms apart: every offset within a 1.33 ms period comes round
            t = t0 + 0.0137 * i
            notes += [TimedNote(t, 0, 48 + i, 90), TimedNote(t + 0.005, 0, 48 + i, 0)]
        proc.submit(notes)
        time.sleep(0.3 + 0.0137 * 40 + 0.3)
        proc.stop()
    finally:
        proc.close()
        rx.stdin.write("stop\n")
        rx.stdin.flush()
        arrivals = json.loads(rx.stdout.readline() or "[]")
        rx.wait(10)
    return clock, arrivals, notes


@pytest.mark.jack
@pytest.mark.parametrize("frames", [True, False], ids=["frame offsets", "rtmidi"])
def test_the_output_process_delivers_at_frames_and_rtmidi_at_period_starts(jack_server, frames):
    clock, arrivals, notes = heard_from_the_output_process(frames)
    assert len(arrivals) == len(notes)  # every note-on and its note-off
    ons = [a for a in arrivals if a[2][0] == 0x90]
    offs = [a for a in arrivals if a[2][0] == 0x80]
    assert sorted(a[2][1] for a in ons) == sorted(a[2][1] for a in offs) == list(range(48, 88))
    # As a synth rendering at frame offsets hears them: the frames between one note and the next
    # against the time between them. (Not against one reading of both clocks: a dummy driver's
    # frame clock runs slow by up to 0.3% while other work loads the machine, as a sound card's
    # drifts from the system clock.) At frame offsets a note is off by a frame or two; at period
    # starts, by anything up to a period.
    rate = clock["rate"]
    gaps = [abs((b[0] - a[0]) - round((m.time - n.time) * rate)) for a, b, n, m in zip(arrivals, arrivals[1:], notes, notes[1:])]
    median_gap_error = sorted(gaps)[len(gaps) // 2]
    if frames:
        assert median_gap_error <= 3, (gaps, [a[1] for a in arrivals])
        assert sum(1 for a in arrivals if a[1] != 0) > len(arrivals) // 2
    else:
        assert all(a[1] == 0 for a in arrivals)  # rtmidi writes each at the start of a period
        assert median_gap_error > 3, gaps



@pytest.mark.jack
def test_a_blanket_clear_reaches_an_rtmidi_listener_whole(jack_server):
    """A note-off for every note on every channel, handed over at once, reaches a listener that reads
    through rtmidi whole (its JACK input keeps a 16 kB ring: the port writes MAX_PER_PERIOD a period)."""
    import rtmidi

    from livejam.midi.ports import port_names

    sent = []
    proc = OutputProcess(DaemonConfig(), EchoFilter(), lambda port, msg, t: sent.append(msg.kind))
    port = proc.open_port(rtmidi.API_UNIX_JACK, "", "frames test clear")
    heard = []
    ears = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="frames test ears")
    ears.set_callback(lambda event, data: heard.append(event[0][0] & 0xF0))
    try:
        ears.open_port(next(i for i, p in enumerate(port_names(ears)) if p == port.own_port))
        for channel in range(16):  # a note-off for every note on every channel, all at once
            for note in range(128):
                proc.send_now(note_off(channel, note))
        wait_for(lambda: len(sent) >= 2048 and len(heard) >= len(sent), 10.0)
    finally:
        proc.close()
        ears.close_port()
    assert sent.count("note_off") >= 2048  # 128 on each of 16 channels
    assert heard.count(0x80) == sent.count("note_off")
