"""The whole daemon (Dispatcher + performer + Scheduler + ledger) on the virtual
clock: call and response, barge-in, determinism, the simulate command."""
from __future__ import annotations

import json
from dataclasses import replace

import mido
import pytest

from livejam.cli import main
from livejam.config import DaemonConfig, load
from livejam.dispatch import build_performer
from livejam.events import Note
from livejam.midi.files import write_midi
from livejam.simulate import run_virtual

from tests.fakes import FakeCallResponse


def phrase(start, pitches, step=0.25, dur=0.2, channel=0):
    ev = []
    for i, p in enumerate(pitches):
        t = start + i * step
        ev.append((t, [0x90 | channel, p, 100]))
        ev.append((t + dur, [0x80 | channel, p, 0]))
    return ev


def machine_notes(run):
    return [(t, m.kind, m.a) for t, m in run.sent if m.kind in ("note_on", "note_off")]


def test_phrase_end_then_answer_in_order():
    run = run_virtual(phrase(1.0, [60, 62, 64, 65]), FakeCallResponse(silence_s=0.5), tail_s=5.0)
    notes = machine_notes(run)
    last_human = 1.0 + 3 * 0.25 + 0.2
    assert notes and notes[0][0] >= last_human + 0.5  # nothing before the phrase ended
    assert [p for _, k, p in notes if k == "note_on"] == [72, 74, 76, 77]
    assert [t for t, _, _ in notes] == sorted(t for t, _, _ in notes)
    assert run.summary["sounding_at_end"] == 0 and run.summary["sounding_before_panic"] == 0


def test_barge_in_cancels_queued_and_ends_sounding_notes():
    # the answer to the first phrase starts at ~2.71 s; the human comes back at 3.0 s
    events = phrase(1.0, [60, 62, 64, 65, 67]) + phrase(3.0, [50])
    run = run_virtual(events, FakeCallResponse(silence_s=0.5), tail_s=0.3)
    before = [n for n in machine_notes(run) if n[0] < 3.0]
    after = [n for n in machine_notes(run) if n[0] >= 3.0]
    assert any(k == "note_on" for _, k, _ in before)
    assert all(k == "note_off" for _, k, _ in after)  # only the cut-off notes end, nothing new starts
    assert after and all(t == 3.0 for t, _, _ in after)
    assert run.summary["cancels"] == 1 and run.summary["sounding_at_end"] == 0


def test_markov_answers_deterministically_under_a_seed():
    cfg = DaemonConfig()
    events = phrase(0.5, [60, 62, 64, 65, 67, 65, 64, 62, 60]) + phrase(5.0, [67, 65, 64, 62, 60])
    markov = replace(cfg, seed=3, performer=replace(cfg.performer, kind="markov"))
    runs = [run_virtual(events, build_performer(markov), cfg, tail_s=4.0) for _ in range(2)]
    assert machine_notes(runs[0]) == machine_notes(runs[1])
    assert runs[0].summary["machine_notes"] > 0
    first_answer = [t for t, k, _ in machine_notes(runs[0]) if k == "note_on"][0]
    assert first_answer >= 0.5 + 8 * 0.25 + 0.2 + cfg.performer.phrase_end_silence_s
    assert runs[0].summary["sounding_at_end"] == 0


def test_config_file_and_overrides(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[scheduler]\nlate_drop_s = 0.05\n[performer]\nkind = "echo"\nmin_answer_s = 2.0\n')
    cfg = load(DaemonConfig, path, ["midi.channels=[3, 4]"])
    assert cfg.performer.kind == "echo" and cfg.scheduler.late_drop_s == 0.05 and cfg.midi.channels == (3, 4)
    assert cfg.performer.min_answer_s == 2.0
    path.write_text("[scheduler]\nlate_drop = 1\n")
    assert main(["simulate", "--human", "x.mid", "--out", "y.mid", "--config", str(path)]) == 2


def test_simulate_command_writes_two_tracks_on_the_input_timeline(tmp_path, capsys):
    melody = [Note(0.5 + 0.25 * i, 0.7 + 0.25 * i, 60 + i % 5, 90) for i in range(8)]
    melody += [Note(5.0 + 0.25 * i, 5.2 + 0.25 * i, 67 - i % 5, 90) for i in range(8)]
    piano = [Note(float(i), i + 0.9, 48, 70) for i in range(8)]
    src, out = tmp_path / "in.mid", tmp_path / "out.mid"
    write_midi(src, [("MELODY", melody), ("PIANO", piano)])
    rc = main(["simulate", "--human", str(src), "--human-track", "MELODY", "--out", str(out), "--seed", "1",
               "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert rc == 0 and summary["sounding_at_end"] == 0 and summary["machine_notes"] > 0
    assert summary["human_tracks"] == ["MELODY"] and summary["human_notes"] == 16
    # call mode (the default): answers start after the phrase-end silence, never before
    delays = summary["answer_delay_s"]
    assert delays["n"] >= 1 and delays["min"] >= DaemonConfig().performer.phrase_end_silence_s - 0.01
    mid = mido.MidiFile(str(out))
    names = [t.name for t in mid.tracks if any(m.type == "note_on" for m in t)]
    assert names == ["human", "machine"]
    first_on = next(m for m in mido.merge_tracks([mid.tracks[0], mid.tracks[1]]) if m.type == "note_on")
    assert first_on is not None
    # the human track keeps the input's timing: first note at 0.5 s
    t = 0.0
    for msg in mid:
        t += msg.time
        if msg.type == "note_on":
            assert abs(t - 0.5) < 0.01
            break
    rc2 = main(["simulate", "--human", str(src), "--human-track", "1", "--out", str(tmp_path / "o2.mid"),
                "--seed", "1"])
    assert rc2 == 0
    assert main(["simulate", "--human", str(src), "--human-track", "NOPE", "--out", str(out)]) == 2


def test_answer_delays_count_only_answers_after_every_key_is_up():
    from livejam.simulate import answer_delays

    human = [Note(0.0, 1.0, 60, 90), Note(0.5, 2.0, 64, 90), Note(5.0, 5.5, 62, 90)]
    machine = [Note(1.5, 1.7, 72, 80),  # a key is still held: not an answer
               Note(2.75, 3.0, 72, 80), Note(3.0, 3.2, 74, 80),  # answer 0.75 s after the last key up
               Note(6.25, 6.5, 70, 80)]  # 0.75 s after the next phrase
    assert answer_delays(human, machine) == {"n": 2, "median": 0.75, "p10": 0.75, "p90": 0.75, "min": 0.75}
    assert answer_delays(human, []) == {"n": 0}


def test_a_damaged_shipped_model_falls_back_to_markov_with_a_warning(tmp_path, monkeypatch, caplog):
    from livejam import dispatch
    from livejam.engine.session import ModelError
    from livejam.performers.markov import MarkovPerformer

    bad = tmp_path / "shipped.onnx"
    bad.write_bytes(b"\x08\x07not a model")
    monkeypatch.setattr(dispatch, "model_path", lambda configured: bad)
    fallback = build_performer(DaemonConfig(), strict=False)
    assert isinstance(fallback, MarkovPerformer) and dispatch.performer_name(fallback) == "markov"  # the ready line
    assert "falling back to the Markov continuator" in caplog.text
    with pytest.raises(ModelError):
        build_performer(DaemonConfig(), strict=True)
