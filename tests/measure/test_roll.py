"""`livejam roll` / `simulate --png`: the beat grid, chord files, and a real PNG written by matplotlib."""
from __future__ import annotations

import mido
import pytest

from livejam.cli import main
from livejam.events import Note
from livejam.midi.files import write_midi
from livejam.roll import read_chords, read_grid, render_file

pytest.importorskip("matplotlib")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def session(path):
    write_midi(path, [("human", [Note(0.0, 0.4, 60, 100), Note(0.5, 0.9, 64, 90)]),
                      ("machine", [Note(1.0, 1.5, 67, 80), Note(1.5, 2.0, 72, 70)])])
    return path


def with_meter(path, bpm=90, num=3):
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm)),
                            mido.MetaMessage("time_signature", numerator=num, denominator=4),
                            mido.Message("note_on", note=60, velocity=90, time=0),
                            mido.Message("note_off", note=60, time=480 * 6)])
    mid.tracks.append(track)
    mid.save(str(path))
    return path


def test_grid_only_when_the_file_has_a_musical_tempo(tmp_path):
    assert read_grid(session(tmp_path / "s.mid")) is None  # a recording: MIDI's default tempo, no meter
    grid = read_grid(with_meter(tmp_path / "m.mid"))
    assert grid.bpm == 90 and grid.meter == "3/4"
    assert grid.bars == pytest.approx((0.0, 2.0, 4.0))  # 3 beats of 2/3 s
    assert grid.beats[:2] == pytest.approx((2 / 3, 4 / 3))


def test_chords_file_pop909_format(tmp_path):
    f = tmp_path / "chord_midi.txt"
    f.write_text("0.05\t0.72\tN\n0.72\t1.38\tC:maj\n1.38\t2.0\tA:min7\n")
    assert read_chords(f) == [(0.72, 1.38, "C:maj"), (1.38, 2.0, "A:min7")]


def test_roll_command_writes_a_png(tmp_path, capsys):
    mid, png = session(tmp_path / "s.mid"), tmp_path / "roll.png"
    chords = tmp_path / "c.txt"
    chords.write_text("0\t1\tC:maj\n1\t2\tG:maj\n")
    assert main(["roll", str(mid), "--out", str(png), "--chords", str(chords), "--grid"]) == 0
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 5000
    assert str(png) in capsys.readouterr().out


def test_simulate_png_draws_the_same(tmp_path):
    human = with_meter(tmp_path / "h.mid")
    out, png = tmp_path / "o.mid", tmp_path / "o.png"
    assert main(["simulate", "--seed", "1", "--human", str(human), "--out", str(out),
                 "--tail", "2", "--png", str(png)]) == 0
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert render_file(out, tmp_path / "again.png").exists()


@pytest.mark.parametrize("span, says", [(["--start", "30", "--end", "10"], "not after --start"),
                                        (["--start", "-1"], "0 or more"), (["--end", "nan"], "0 or more")])
def test_a_bad_time_span_is_one_line_and_exit_2(tmp_path, capsys, span, says):
    """Issue 19 #9: roll --start 30 --end 10 was accepted without a word."""
    mid = tmp_path / "s.mid"
    write_midi(mid, [("human", [Note(0.0, 0.5, 60, 90)])])
    assert main(["roll", str(mid), "--out", str(tmp_path / "r.png"), *span]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and says in err
    assert not (tmp_path / "r.png").exists()
