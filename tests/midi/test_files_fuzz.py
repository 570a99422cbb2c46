"""Hostile files for `livejam simulate` and `livejam roll` (issue 21 #7): a malformed MIDI, beat or chord
file is one line and exit 2 within seconds, never a traceback, a spin or gigabytes. Seeded: a failure
replays exactly."""
from __future__ import annotations

import random
import struct
import time

import pytest

from livejam.cli import main
from livejam.beatmap import beat_grid_from_midi
from livejam.events import Note
from livejam.midi.files import read_midi_tracks, write_midi
from livejam.roll import read_grid


def smf(events: bytes, tpb: int = 96) -> bytes:
    """A type-0 file with one track of raw (delta, event) bytes, end of track appended."""
    track = events + b"\x00\xff\x2f\x00"
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, tpb) + b"MTrk" + struct.pack(">I", len(track)) + track


NOTE = b"\x00\x90\x3c\x64\x60\x80\x3c\x00"  # middle C for a beat
HOSTILE = {
    "time signature 0/4": smf(b"\x00\xff\x58\x04\x00\x02\x18\x08" + NOTE),
    "time signature 4/2**255": smf(b"\x00\xff\x58\x04\x04\xff\x18\x08" + NOTE),
    "ticks per beat 0": smf(NOTE, tpb=0),
    "tempo 0": smf(b"\x00\xff\x51\x03\x00\x00\x00" + NOTE),
    "key signature with 32 sharps": smf(b"\x00\xff\x59\x02\x20\x00" + NOTE),
    "a note 0x0FFFFFFF ticks at 1 tick per beat": smf(b"\x00\x90\x3c\x64\xff\xff\xff\x7f\x80\x3c\x00", tpb=1),
}


def _one_line_exit_2(argv, capsys) -> str:
    t0 = time.monotonic()
    rc = main(argv)
    elapsed = time.monotonic() - t0
    captured = capsys.readouterr()
    assert rc == 2, (rc, captured)
    err = captured.err.strip()
    assert err.startswith("livejam: error: ") and "\n" not in err, err
    assert elapsed < 10.0, elapsed
    return err


@pytest.mark.parametrize("what", sorted(HOSTILE))
def test_a_hostile_midi_file_is_one_line_and_exit_2(tmp_path, capsys, what):
    path = tmp_path / "hostile.mid"
    path.write_bytes(HOSTILE[what])
    _one_line_exit_2(["simulate", "--human", str(path), "--out", str(tmp_path / "o.mid"), "--performer", "markov"],
                     capsys)
    _one_line_exit_2(["roll", str(path), "--out", str(tmp_path / "o.png"), "--grid"], capsys)
    assert not (tmp_path / "o.mid").exists() and not (tmp_path / "o.png").exists()


def test_beat_and_chord_files_are_read_within_a_budget(tmp_path, capsys):
    """`--beats /dev/zero` and `roll --chords /dev/zero` read forever (and without end of memory)."""
    song = tmp_path / "song.mid"
    write_midi(song, [("melody", [Note(0.5 * i, 0.5 * i + 0.4, 60 + i, 90) for i in range(8)])])
    err = _one_line_exit_2(["simulate", "--human", str(song), "--out", str(tmp_path / "o.mid"),
                            "--performer", "markov", "--beats", "/dev/zero"], capsys)
    assert "MiB" in err
    err = _one_line_exit_2(["roll", str(song), "--out", str(tmp_path / "o.png"), "--chords", "/dev/zero"], capsys)
    assert "MiB" in err
    (tmp_path / "beats.txt").write_bytes(b"0.0\n0.5\n\xff\xfe\n")
    _one_line_exit_2(["simulate", "--human", str(song), "--out", str(tmp_path / "o.mid"),
                      "--performer", "markov", "--beats", str(tmp_path / "beats.txt")], capsys)
    (tmp_path / "beats.txt").write_text("0.0\n0.5\ninf\n")
    _one_line_exit_2(["simulate", "--human", str(song), "--out", str(tmp_path / "o.mid"),
                      "--performer", "markov", "--beats", str(tmp_path / "beats.txt")], capsys)


def _seed_file(tmp_path) -> bytes:
    """A small valid file with every kind of tempo-map event the readers walk."""
    import mido

    path = tmp_path / "seed.mid"
    write_midi(path, [("human", [Note(0.25 * i, 0.25 * i + 0.2, 60 + i % 7, 80) for i in range(12)]),
                      ("machine", [Note(0.3 * i, 0.3 * i + 0.5, 48 + i % 5, 70) for i in range(6)])])
    mid = mido.MidiFile(str(path))
    mid.tracks[0][1:1] = [mido.MetaMessage("time_signature", numerator=3, denominator=4, time=0),
                          mido.MetaMessage("key_signature", key="E", time=0),
                          mido.MetaMessage("set_tempo", tempo=400_000, time=96)]
    mid.save(str(path))
    return path.read_bytes()


def _mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        r = rng.random()
        i = rng.randrange(len(b)) if b else 0
        if r < 0.5 and b:  # a byte changed: most often inside a track, where the numbers are
            b[i] = rng.choice([0x00, 0x7F, 0x80, 0xFF, rng.randrange(256)])
        elif r < 0.7:  # bytes inserted: a meta event, a long delta, or noise
            b[i:i] = rng.choice([b"\xff\x58\x04" + bytes(rng.randrange(256) for _ in range(4)),
                                 b"\xff\x51\x03" + bytes(rng.randrange(256) for _ in range(3)),
                                 b"\xff\x59\x02" + bytes(rng.randrange(256) for _ in range(2)),
                                 b"\xff\xff\xff\x7f", bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))])
        elif r < 0.85 and b:
            del b[i:i + rng.randint(1, 8)]
        else:
            b = b[:i]  # truncated
    return bytes(b)


def test_fuzzed_midi_files_through_simulates_and_rolls_readers(tmp_path):
    """Random and mutated small files: each reader raises nothing but ValueError (the CLI's one line),
    and none takes more than a few seconds."""
    rng = random.Random(21)
    seed = _seed_file(tmp_path)
    path = tmp_path / "fuzz.mid"
    readers = (read_midi_tracks, beat_grid_from_midi, lambda p: read_grid(p, force=True))
    refused = 0
    for case in range(400):
        if case % 10 == 0:  # a header and a track of noise
            track = bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
            data = smf(track, tpb=rng.choice([0, 1, 2, 96, 480, 0x7FFF, rng.randrange(65536)]))
        else:
            data = _mutate(rng, seed)
        path.write_bytes(data)
        for reader in readers:
            t0 = time.monotonic()
            try:
                reader(path)
            except ValueError as e:
                refused += 1
                assert "\n" not in str(e), (case, str(e))
            except Exception as e:  # anything else is a traceback at the user
                pytest.fail(f"case {case}: {reader} raised {type(e).__name__}: {e} on {data.hex()}")
            assert time.monotonic() - t0 < 3.0, (case, reader, data.hex())
    assert refused > 100  # the fuzz reached the checks, not only the happy path


def test_a_file_hours_long_is_drawn_within_seconds(tmp_path):
    """Within the budgets (5 hours at 300 bpm, 90,000 beats) the roll leaves out beat lines closer than
    its pixels: one axvline per beat took minutes and gigabytes."""
    pytest.importorskip("matplotlib")
    from livejam.roll import render_file

    long_note = b"\x00\x90\x3c\x64\x85\xbf\x10\x80\x3c\x00"  # 90,000 ticks (VLQ 85 BF 10) at 1 tick a beat
    path = tmp_path / "long.mid"
    path.write_bytes(smf(b"\x00\xff\x51\x03\x03\x0d\x40" + long_note, tpb=1))  # 200,000 us a beat: 300 bpm
    t0 = time.monotonic()
    render_file(path, tmp_path / "long.png", grid=True)
    assert time.monotonic() - t0 < 30.0 and (tmp_path / "long.png").stat().st_size > 0
