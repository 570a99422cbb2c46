"""Teach it your style (tools/teach.py): only the human's part of a session is read, the split is by
file, early stopping keeps the best weights, a fine-tune on two tiny sessions writes a loadable
ONNX file, bad input is one line and exit 2, and `livejam teach` says what it needs."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from livejam import cli
from livejam.beatmap import BeatGrid
from livejam.events import Note, Vocab
from livejam.midi.files import write_midi
from livejam.midi.spec import note_off, note_on
from livejam.recording import Recorder

needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None or importlib.util.find_spec("tqdm") is None,
                                 reason="the training extra (livejam[train]) is not installed")
HUMAN = [60, 62, 64, 65, 67, 69, 71, 72]  # the human plays C major, in the middle
MACHINE = [30, 31, 32]  # the machine plays low
CLICKS = [76, 77]  # the count-in, channel 10


def record_session(path: Path, seed: int = 0, notes: int = 40, bpm: float = 110.0) -> Path:
    """A session as `livejam run --bpm --count-in` records it: a bar of clicks, then the human's
    notes (channel 1) and the machine's (channel 2) in between."""
    rng = np.random.default_rng(seed)
    beats = BeatGrid(1.0 + 60.0 / bpm * np.arange(512), meter=4)
    rec = Recorder(0.0, beats=beats, click_channel=9)
    for k in range(4):
        rec.record_machine(note_on(9, CLICKS[k > 0], 100), beats.time_at(k))
        rec.record_machine(note_off(9, CLICKS[k > 0]), beats.time_at(k) + 0.05)
    for i in range(notes):
        t = beats.time_at(4 + 0.5 * i)
        p = int(rng.choice(HUMAN))
        rec.record_human(note_on(0, p, 90), t)
        rec.record_human(note_off(0, p), t + 0.2)
        if i % 4 == 3:
            q = int(rng.choice(MACHINE))
            rec.record_machine(note_on(1, q, 70), t + 0.1)
            rec.record_machine(note_off(1, q), t + 0.3)
    return rec.save(path)


@pytest.fixture
def sessions(tmp_path: Path) -> Path:
    folder = tmp_path / "sessions"
    for k in range(2):
        record_session(folder / f"session-{k}.mid", seed=k)
    return folder


@needs_torch
def test_a_session_gives_only_the_human_part(tmp_path: Path):
    import mido

    from tools.teach_data import read_session

    path = record_session(tmp_path / "s.mid")
    names = [t.name for t in mido.MidiFile(path).tracks]
    assert {"human", "machine", "count-in"} <= set(names)  # all three are in the file ...
    s = read_session(path, "s.mid", Vocab())
    body = s.rows[1:]
    assert s.session and s.gridded and s.notes == 40 and len(body) == 80  # ... only the human's 40 notes are read
    assert set(body[:, 3]) <= set(HUMAN) and (body[:, 0] == 0).all()  # part 0: call mode's part
    assert (body[:, 6] > 0).all() and body[0, 5] == 0  # on the file's beat grid: the first note on the bar line


@needs_torch
def test_a_plain_midi_file_is_all_human_without_drums(tmp_path: Path):
    from tools.teach_data import read_session

    path = tmp_path / "mine.mid"
    melody = [Note(0.25 * i, 0.25 * i + 0.2, HUMAN[i % 8], 80) for i in range(20)]
    bass = [Note(1.0 * i, 1.0 * i + 0.5, 40 + i % 3, 70) for i in range(5)]
    drums = [Note(0.5 * i, 0.5 * i + 0.1, 36, 100) for i in range(10)]
    write_midi(path, [("melody", melody), ("bass", bass), ("drums", drums)], channels=[0, 1, 9])
    s = read_session(path, "mine.mid", Vocab())
    assert not s.session and not s.gridded and s.notes == 25  # 120 bpm and no meter: free time
    assert 36 not in set(s.rows[1:, 3]) and (s.rows[1:, 0] == 0).all() and (s.rows[1:, 5] == Vocab().pos_unknown).all()


@needs_torch
def test_held_out_split_is_by_file_and_stable():
    from tools.teach_data import Session, TeachError, split

    def make(n):
        return [Session(f"s{k}.mid", np.zeros((3, 7), np.int64), 20, False, True) for k in range(n)]

    train, held = split(make(10), 0.2)
    assert len(held) == 2 and len(train) == 8 and not {s.name for s in train} & {s.name for s in held}
    assert [s.name for s in split(make(10), 0.2)[1]] == [s.name for s in held]  # the same files each time
    assert len(split(make(2), 0.2)[1]) == 1 and len(split(make(3), 0.9)[0]) == 1  # at least one of each
    with pytest.raises(TeachError, match="at least 2"):
        split(make(1), 0.2)


@needs_torch
def test_early_stopping_keeps_the_best_weights(sessions: Path, tiny_model: Path, tmp_path: Path):
    from tools.teach_data import read_sessions, write_shards
    from tools.teach_tune import TuneConfig, eval_windows, fine_tune, held_out_nll, load_start

    model, cfg = load_start(tiny_model)
    found, _ = read_sessions(sessions, cfg.vocab)
    write_shards(found[:1], tmp_path, "train")
    held = [found[1].rows]
    # a learning rate far too high: every step makes it worse, so the starting weights are kept
    bad = TuneConfig(lr=5.0, warmup_steps=0, steps=40, eval_every=2, patience=2, minutes=0, batch_size=2, seq_len=32)
    r = fine_tune(model, tmp_path, held, bad)
    assert r.stopped == "patience" and r.steps == 4 and r.best_step == 0
    assert held_out_nll(r.model, eval_windows(held, 32, cfg.vocab)) == pytest.approx(r.start_nll, abs=1e-5)
    model, _ = load_start(tiny_model)
    r = fine_tune(model, tmp_path, held, TuneConfig(lr=3e-3, warmup_steps=1, steps=6, eval_every=2, patience=0,
                                                    minutes=0, batch_size=2, seq_len=32))
    assert r.best_nll == min(n for _, n in r.history) < r.start_nll  # the kept weights are the best measured
    assert held_out_nll(r.model, eval_windows(held, 32, cfg.vocab)) == pytest.approx(r.best_nll, abs=1e-4)


@needs_torch
def test_teach_two_tiny_sessions_writes_a_loadable_model(sessions: Path, tiny_model: Path, tmp_path: Path, capsys):
    from livejam.engine import load_model
    from tools.teach import main

    out = tmp_path / "my.onnx"
    rc = main([str(sessions), "--out", str(out), "--base", str(tiny_model), "--steps", "4", "--eval-every", "2",
               "--batch", "2", "--threads", "1", "--answers", "1", "--lr", "3e-3", "--force"])
    text = capsys.readouterr().out
    assert rc == 0 and out.stat().st_size > 0, text
    assert load_model(out).info.max_len == 64
    assert "training on 1" in text and "held out 1" in text and "shipped" in text and "taught" in text
    assert "longest run of notes an answer copied" in text


@needs_torch
@pytest.mark.parametrize("case", ["missing", "empty", "no-midi", "corrupt"])
def test_bad_input_is_one_line_and_exit_2(case: str, tiny_model: Path, tmp_path: Path, capsys):
    from tools.teach import main

    folder = tmp_path / "in"
    if case != "missing":
        folder.mkdir()
    if case == "no-midi":
        (folder / "notes.txt").write_text("not a session")
    if case == "corrupt":
        (folder / "broken.mid").write_bytes(b"MThd\x00\x00garbage")
    rc = main([str(folder), "--out", str(tmp_path / "x.onnx"), "--base", str(tiny_model)])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("teach: ") and err.count("\n") == 1, err
    assert not (tmp_path / "x.onnx").exists()


def test_livejam_teach_says_it_needs_the_training_extra(monkeypatch, capsys):
    if importlib.util.find_spec("tools.teach") is not None:
        import tools.teach

        monkeypatch.setattr(tools.teach, "missing_extra", lambda: "torch")
    rc = cli.main(["teach", "sessions", "--out", "my.onnx"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "pip install -e '.[train]'" in err
