"""`livejam eval`: NLL of a tiny v2 ONNX model and the Markov baseline on generated MIDI files and shards."""
import argparse
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from livejam.beatmap import BeatGrid  # noqa: E402
from livejam.engine import Engine, load_model  # noqa: E402
from livejam.events import FIELDS, Note, Vocab, assign_parts, notes_to_events  # noqa: E402
from livejam.midi.files import write_midi  # noqa: E402
from livejam.midi.files import read_midi_tracks
from livejam.harmony import ChordTrack  # noqa: E402
from livejam.measure import evaluate as ev  # noqa: E402

FIELD_NAMES = list(FIELDS)
VOCAB = Vocab()


def _song(rng: np.random.Generator, n: int) -> list[tuple[str, list[Note]]]:
    """A melody over a bass line: n notes each, at 0.25 s steps."""
    melody = [Note(0.25 * i, 0.25 * i + 0.2, int(rng.integers(60, 84)), int(rng.integers(40, 110))) for i in range(n)]
    bass = [Note(0.5 * i, 0.5 * i + 0.45, int(rng.integers(36, 55)), 70) for i in range(n // 2)]
    return [("PIANO", bass), ("MELODY", melody)]


@pytest.fixture(scope="module")
def midi(tmp_path_factory):
    d = tmp_path_factory.mktemp("midi")
    rng = np.random.default_rng(1)
    paths = []
    for i, n in enumerate((12, 20, 100)):  # the last one (300 events) is longer than the model's context
        path = d / f"song{i}.mid"
        write_midi(path, _song(rng, n))
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def pop909_song(tmp_path_factory):
    """A song in POP909's layout: NNN/NNN.mid with beat_midi.txt and chord_midi.txt beside it."""
    d = tmp_path_factory.mktemp("pop909") / "001"
    d.mkdir()
    write_midi(d / "001.mid", _song(np.random.default_rng(2), 24))
    # beats 0.55 s apart from 0.1 s (not the file's 120 bpm grid), a downbeat every 4 (third column)
    (d / "beat_midi.txt").write_text("".join(f"{0.1 + 0.55 * i:.4f} {i % 4 + 1:.1f} {float(i % 4 == 0):.1f}\n"
                                             for i in range(40)))
    (d / "chord_midi.txt").write_text("0.1\t2.3\tC:maj\n2.3\t4.5\tA:min7\n4.5\t9.0\tF:maj/3\n")
    return d / "001.mid"


def _tokens(path: Path) -> np.ndarray:
    return notes_to_events(assign_parts(read_midi_tracks(path)), VOCAB)


def test_nll_finite_fields_sum_and_markov_beside(tiny_model, midi):
    r = ev.evaluate(tiny_model, [str(p) for p in midi])
    expected = sum(len(_tokens(p)) - 1 for p in midi)  # every event but the start markers
    assert r["events"] == expected and r["sequences"] == 3 and r["skipped"] == []
    for key in ("model_nll", "markov_nll"):
        v = r[key]
        assert set(v) == {"event", *FIELD_NAMES}
        assert all(np.isfinite(v[f]) and v[f] >= 0 for f in ["event", *FIELD_NAMES])
        assert v["event"] == pytest.approx(sum(v[f] for f in FIELD_NAMES), abs=1e-9)
    assert r["markov_minus_model"] == pytest.approx(r["markov_nll"]["event"] - r["model_nll"]["event"])
    assert r["context"]["windowed_sequences"] == 1 and r["context"]["restarts"] >= 1
    assert r["annotated"] == {"beats": 0, "chords": 0}  # no annotations beside these files: free time, N


def test_scores_match_a_full_recompute_of_each_context(tiny_model, midi):
    """Each event is scored after exactly [start marker] + the events before it (restarting past the
    context with a marker + the last window - 1 events), each head conditioned on the event's own
    known fields (part, dt, pos, chord, pitch). Checked against a fresh prefill of that context per event."""
    tokens = _tokens(midi[2])
    context, window = 40, 16
    assert len(tokens) > 2 * context
    r = ev.evaluate(tiny_model, [tokens], context=context, window=window, return_scores=True)
    got = r["scores"]["model"]
    assert got.shape == (len(tokens) - 1, len(FIELDS))
    bos = tokens[:1]
    ctxs, ctx = [], bos  # the context each event is scored after
    for i in range(1, len(tokens)):
        ctxs.append(ctx)
        if len(ctx) >= context:
            ctx = np.concatenate([bos, tokens[i - (window - 1):i]])
        ctx = np.concatenate([ctx, tokens[i:i + 1]])
    engine = Engine(load_model(tiny_model))
    ref = np.empty_like(got)
    for i, c in enumerate(ctxs):
        engine.reset(start=False)
        engine.prefill(c)
        part, dt, chord, pitch, vel, pos, _ = (int(x) for x in tokens[i + 1])
        cond = (part, dt, pos, chord, pitch)
        for k, value in enumerate((part, dt, chord, pitch, vel)):
            z = engine.logits(k, cond).astype(np.float64)
            ref[i, k] = np.log(np.exp(z - z.max()).sum()) + z.max() - z[value]
    assert np.abs(got - ref).max() < 1e-4
    assert r["context"]["restarts"] > 0 and "start-of-sequence" in r["context"]["how"]


def test_pop909_songs_are_read_on_their_annotated_beats_and_chords(tiny_model, pop909_song, midi):
    r = ev.evaluate(tiny_model, [str(pop909_song), str(midi[0])], return_scores=True)
    assert r["annotated"] == {"beats": 1, "chords": 1} and r["sequences"] == 2
    grid = BeatGrid.from_file(pop909_song.parent / "beat_midi.txt")
    chords = ChordTrack.from_file(pop909_song.parent / "chord_midi.txt")
    rows = notes_to_events(assign_parts(read_midi_tracks(pop909_song)), VOCAB, beats=grid, chords=chords)
    assert (rows[1:, 5] != VOCAB.pos_unknown).all() and (rows[1:, 2] > 0).any()  # bar positions and chords
    alone = ev.evaluate(tiny_model, [rows], return_scores=True)  # the same rows given directly
    n = len(rows) - 1
    assert np.array_equal(alone["scores"]["model"], r["scores"]["model"][:n])
    assert np.array_equal(alone["scores"]["markov"], r["scores"]["markov"][:n])
    assert "1 of 2 on annotated beats" in ev.format_result(r)


def test_corrupt_and_missing_files_are_skipped_with_a_reason(tiny_model, midi, tmp_path):
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd not really a midi file")
    missing = tmp_path / "missing.mid"
    song = tmp_path / "annotated" / "song.mid"
    song.parent.mkdir()
    write_midi(song, _song(np.random.default_rng(3), 8))
    (song.parent / "beat_midi.txt").write_text("0.0 1 1\nnot a beat\n")
    r = ev.evaluate(tiny_model, [str(midi[0]), str(bad), str(missing), str(song)])
    assert r["sequences"] == 1 and r["events"] == len(_tokens(midi[0])) - 1
    reasons = {Path(s["path"]).name: s["reason"] for s in r["skipped"]}
    assert set(reasons) == {"bad.mid", "missing.mid", "song.mid"}
    assert all("\n" not in why and str(tmp_path) in why for why in reasons.values())
    assert "not a beat time" in reasons["song.mid"]


def test_token_shard_max_events_and_markov_fit(tiny_model, midi):
    shard = np.concatenate([_tokens(p) for p in midi]).astype(np.uint8)  # as prepare_data writes it
    r = ev.evaluate(tiny_model, shard, max_events=50)
    assert r["events"] == 50 and r["source"] == "tokens" and r["annotated"] is None
    assert r["sequences"] == 2  # the first song has 36 events, the second is cut at 14
    fitted = ev.evaluate(tiny_model, shard, max_events=50, markov_fit=shard)
    assert fitted["markov"]["fit_events"] == len(shard)
    assert fitted["model_nll"] == r["model_nll"]  # the fit concerns the baseline only
    assert fitted["markov_nll"]["event"] < r["markov_nll"]["event"]  # it has seen these very songs


def test_format_1_shards_are_refused_with_one_line(tiny_model, midi, tmp_path, capsys):
    old = np.concatenate([_tokens(p) for p in midi])[:, :4].astype(np.uint8)  # v1: part, dt, pitch, vel
    with pytest.raises(ValueError, match="format-1"):
        ev.evaluate(tiny_model, old)
    path = tmp_path / "old.tokens.npy"
    np.save(path, old)
    parser = argparse.ArgumentParser()
    ev.add_parser(parser.add_subparsers())
    args = parser.parse_args(["eval", "--tokens", str(path), "--model", str(tiny_model)])
    assert args.func(args) == 2
    err = capsys.readouterr().err.strip()
    assert "(N, 7)" in err and "\n" not in err


def test_cli_run_json_and_errors(tiny_model, midi, capsys, tmp_path):
    parser = argparse.ArgumentParser()
    ev.add_parser(parser.add_subparsers())
    args = parser.parse_args(["eval", "--data", str(midi[0].parent), "--model", str(tiny_model), "--json"])
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["sequences"] == 3 and set(out["model_nll"]) == {"event", *FIELD_NAMES}
    args = parser.parse_args(["eval", "--data", str(midi[0]), "--model", str(tmp_path / "none.onnx")])
    assert args.func(args) == 2
    assert "model file not found" in capsys.readouterr().err


def test_order_seed_and_per_sequence_pick_the_same_events_for_both_models(tiny_model, midi):
    seqs = [_tokens(p) for p in midi]
    order = np.random.default_rng(5).permutation(3)
    r = ev.evaluate(tiny_model, np.concatenate(seqs), max_events=20, per_sequence=10, order_seed=5)
    assert r["events"] == 20 and r["sequences"] == 2
    r2 = ev.evaluate(tiny_model, [seqs[order[0]][:11], seqs[order[1]][:11]])  # start marker + 10 events each
    assert r2["model_nll"] == r["model_nll"] and r2["markov_nll"] == r["markov_nll"]


def test_eval_of_a_path_that_is_not_there_is_one_line_and_exit_2(tmp_path, capsys):
    """Issue 19 #9: `eval --data no-such-dir` said only "no events to score"."""
    from livejam.cli import main

    assert main(["eval", "--data", str(tmp_path / "no-such-dir")]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [f"livejam eval: {tmp_path / 'no-such-dir'}: no such file or folder"]
