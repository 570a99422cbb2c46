"""Session recordings a DAW can use (issue 19 #7): the file starts at the first note with a short
lead-in on a bar line, carries the beat clock's tempo and meter, and keeps the parts apart."""
from __future__ import annotations

import mido
import pytest

from livejam.beat.live import BeatClock
from livejam.config import BeatConfig
from livejam.midi.spec import note_off, note_on
from livejam.recording import LEAD_IN_S, Recorder


def messages(path, track: str) -> list[tuple[float, mido.Message]]:
    """(beats from the file's start, message) of a named track."""
    mid = mido.MidiFile(str(path))
    for tr in mid.tracks:
        if tr.name == track:
            out, tick = [], 0
            for m in tr:
                tick += m.time
                if not m.is_meta:
                    out.append((tick / mid.ticks_per_beat, m))
            return out
    raise AssertionError(f"no track {track!r} in {[t.name for t in mid.tracks]}")


def meta(path, kind: str) -> list[mido.MetaMessage]:
    return [m for m in mido.MidiFile(str(path)).tracks[0] if m.type == kind]


def test_a_bpm_session_starts_on_a_bar_line_before_the_first_note_with_its_tempo_and_meter(tmp_path):
    beats = BeatClock(BeatConfig(bpm=100.0, meter=3), t0=0.0)
    beats.start(2.0)  # beat 0 (a downbeat) at 2 s; a beat is 0.6 s
    rec = Recorder(0.0, beats=beats, click_channel=9)
    rec.record_machine(note_on(9, 76, 100), 0.8)  # a count-in click before beat 0
    rec.record_machine(note_off(9, 76), 0.9)
    first = 2.0 + 7 * 0.6  # the human starts late in the session, on beat 7 (the second beat of bar 3)
    rec.record_human(note_on(0, 60, 90), first)
    rec.record_human(note_off(0, 60), first + 0.6)
    rec.record_machine(note_on(1, 48, 70), first + 1.2)  # the machine on its two channels
    rec.record_machine(note_on(2, 52, 70), first + 1.2)
    rec.record_machine(note_off(1, 48), first + 1.8)
    rec.record_machine(note_off(2, 52), first + 1.8)
    path = rec.save(tmp_path / "s.mid")

    assert [m.tempo for m in meta(path, "set_tempo")] == [600000]  # 100 bpm
    assert [(m.numerator, m.denominator) for m in meta(path, "time_signature")] == [(3, 4)]
    human = messages(path, "human")
    # the lead-in goes back to the bar line before beat 6 (beat 7 minus one): beat 6, so the note is at beat 1
    assert human[0][0] == pytest.approx(1.0) and human[0][1].channel == 0
    machine = messages(path, "machine")
    assert machine[0][0] == pytest.approx(3.0) and {m.channel for _, m in machine} == {1, 2}
    assert not any(t.name == "count-in" for t in mido.MidiFile(str(path)).tracks)  # its clicks came before the start


def test_count_in_clicks_get_a_track_of_their_own(tmp_path):
    beats = BeatClock(BeatConfig(bpm=120.0, meter=4), t0=0.0)
    beats.start(2.0)
    rec = Recorder(0.0, beats=beats, click_channel=9)
    for i in range(4):  # the last count-in bar clicks on beats -4..-1 (0.5 s each)
        rec.record_machine(note_on(9, 76, 100), 2.0 - 2.0 + 0.5 * i)
        rec.record_machine(note_off(9, 76), 2.0 - 2.0 + 0.5 * i + 0.1)
    rec.record_human(note_on(0, 60, 90), 2.0)  # on beat 0: the lead-in starts at the bar before, beat -4
    rec.record_human(note_off(0, 60), 2.4)
    path = rec.save(tmp_path / "s.mid")
    clicks = messages(path, "count-in")
    assert [t for t, m in clicks if m.type == "note_on"] == pytest.approx([0.0, 1.0, 2.0, 3.0])
    assert {m.channel for _, m in clicks} == {9}
    assert all(m.channel != 9 for _, m in messages(path, "machine"))
    assert messages(path, "human")[0][0] == pytest.approx(4.0)


def test_a_free_time_session_starts_a_second_before_the_first_note(tmp_path):
    rec = Recorder(10.0)
    rec.record_human(note_on(0, 60, 90), 10.0 + 57.0)  # 57 s of nothing first
    rec.record_human(note_off(0, 60), 10.0 + 57.5)
    path = rec.save(tmp_path / "s.mid")
    assert [m.tempo for m in meta(path, "set_tempo")] == [500000]
    assert messages(path, "human")[0][0] == pytest.approx(LEAD_IN_S * 2)  # 1 s at 120 bpm = 2 beats


def played(path) -> dict[str, list[tuple[int, str, int, int, int]]]:
    """track -> (tick, type, channel, note, velocity) of its note messages, note_on velocity 0 as note_off."""
    out = {}
    for tr in mido.MidiFile(str(path)).tracks[1:]:
        tick, rows = 0, []
        for m in tr:
            tick += m.time
            if m.type in ("note_on", "note_off"):
                off = m.type == "note_off" or m.velocity == 0
                rows.append((tick, "off" if off else "on", m.channel, m.note, 0 if off else m.velocity))
        out[tr.name] = rows
    return out


def test_flushes_and_saves_along_the_way_write_the_same_file_and_keep_memory_bounded(tmp_path):
    """Issue 20 #2: a save encodes only what came since the last one, and the lists the threads append
    to are trimmed to the screen's last notes; the file is the same as one written at the end."""
    from livejam.recording import KEEP

    steady, along = Recorder(0.0), Recorder(0.0)
    for i in range(3 * KEEP):
        t = 1.0 + 0.1 * i
        for rec in (steady, along):
            rec.record_human(note_on(0, 60 + i % 12, 90), t)
            rec.record_machine(note_on(1 + i % 2, 40 + i % 7, 70), t + 0.02)
            rec.record_human(note_off(0, 60 + i % 12), t + 0.05)
            rec.record_machine(note_off(1 + i % 2, 40 + i % 7), t + 0.07)
        if i % 100 == 99:
            along.save(tmp_path / "along.mid") if i % 200 == 199 else along.flush()
            assert len(along.human) <= KEEP + 4 * 100 and len(along.machine) <= KEEP + 4 * 100
    along.record_machine(note_on(2, 90, 60), 200.0)  # still sounding at the end: ended in the file
    steady.record_machine(note_on(2, 90, 60), 200.0)
    a, b = played(along.save(tmp_path / "along.mid")), played(steady.save(tmp_path / "steady.mid"))
    assert a == b and len(a["human"]) == 2 * 3 * KEEP
    assert a["machine"][-1][1:4] == ("off", 2, 90)
    assert len(along.human) == KEEP and not along.empty()


def test_background_saves_write_the_file_the_session_had_then_while_it_goes_on(tmp_path):
    """Issue 20 #2: a live session's periodic save takes the file's image and the recording thread
    writes it; notes recorded meanwhile are in the next save, never half in this one; the final
    save waits for a write in hand (both use one temporary file)."""
    rec, path = Recorder(0.0), tmp_path / "live.mid"
    for i in range(40):
        rec.record_human(note_on(0, 60, 90), 1.0 + i)
        rec.record_human(note_off(0, 60), 1.5 + i)
        if i == 19:
            assert rec.save_in_background(path)
            rec.wait_saved(10.0)
            assert rec.saved == path and len(messages(path, "human")) == 2 * 20
    assert rec.save_in_background(path)
    final = rec.save(path)  # waits for the write in hand, then writes the whole session
    assert len(messages(final, "human")) == 2 * 40 and not list(tmp_path.glob(".*.tmp"))


def test_a_save_offered_while_the_last_one_is_writing_is_skipped_not_queued(tmp_path, monkeypatch):
    import threading

    import livejam.recording as recording

    release, started = threading.Event(), threading.Event()
    real = recording.write_file

    def slow(path, pieces):  # a disk that takes its time
        started.set()
        release.wait(10.0)
        return real(path, pieces)

    monkeypatch.setattr(recording, "write_file", slow)
    rec = Recorder(0.0)
    rec.record_human(note_on(0, 60, 90), 1.0)
    assert rec.save_in_background(tmp_path / "s.mid")
    assert started.wait(10.0)
    assert not rec.save_in_background(tmp_path / "s.mid")  # the disk is slow: this one is skipped
    assert rec.writer.skipped == 1
    release.set()
    assert rec.wait_saved(10.0) and rec.saved == tmp_path / "s.mid"


def test_a_failing_background_save_is_said_once_and_the_session_plays_on(tmp_path, caplog):
    rec = Recorder(0.0)
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    for i in range(3):
        rec.record_human(note_on(0, 60, 90), 1.0 + i)
        assert rec.save_in_background(blocked / "s.mid")  # its folder cannot be made
        assert rec.wait_saved(10.0)
    assert rec.writer.failures == 3 and rec.saved is None
    assert len([r for r in caplog.records if "recording to" in r.getMessage()]) == 1
    assert rec.save(tmp_path / "ok.mid").exists()  # the final save goes where it can


def test_without_recording_nothing_is_kept_but_the_screens_notes():
    from livejam.recording import KEEP

    rec = Recorder(0.0, keep=False)
    for i in range(5 * KEEP):
        rec.record_human(note_on(0, 60, 90), 0.1 * i)
        rec.record_human(note_off(0, 60), 0.1 * i + 0.05)
    rec.flush()
    assert len(rec.human) == KEEP and rec._tracks["human"].events == 0


def test_a_tempo_change_is_written_where_it_came_and_later_notes_follow_it(tmp_path):
    class Clock:  # 120 bpm, then 60 bpm from 10 s on (beat 20); bars of 4 from beat 0
        generation = 0

        def bpm_at(self, t):
            return 120.0 if t < 10.0 else 60.0

        def beat_at(self, t):
            return t * 2.0 if t < 10.0 else 20.0 + (t - 10.0)

        def time_at(self, b):
            return b / 2.0 if b < 20.0 else 10.0 + (b - 20.0)

        def bar_at(self, b):
            return b % 4, 4

    rec = Recorder(0.0, beats=Clock())
    rec.record_human(note_on(0, 60, 90), 2.0)  # beat 4: the file starts at beat 0 (the bar before beat 3)
    rec.record_human(note_off(0, 60), 2.5)
    rec.record_human(note_on(0, 62, 90), 12.0)  # beat 22
    rec.record_human(note_off(0, 62), 13.0)
    path = rec.save(tmp_path / "t.mid")
    assert [m.tempo for m in meta(path, "set_tempo")] == [500000, 1000000]
    ons = [t for t, m in messages(path, "human") if m.type == "note_on" and m.velocity]
    assert ons == pytest.approx([4.0, 22.0])
