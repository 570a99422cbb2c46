"""`livejam eval`: NLL of a tiny ONNX model on generated MIDI files, checked against torch's loss."""
import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

import export_onnx  # noqa: E402
from livejam.measure import evaluate as ev  # noqa: E402
from livejam.config import from_dict, to_dict  # noqa: E402
from livejam.events import Note, Vocab, notes_to_events, read_midi_tracks, write_midi  # noqa: E402
from livejam.model import FIELDS, EventTransformer, ModelConfig  # noqa: E402

TINY = dict(n_layer=2, n_head=2, d_model=32, d_ff=64, max_len=96)
FIELD_NAMES = list(FIELDS)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(onnx path, torch model) of one random model, exported through a train.py-style checkpoint."""
    d = tmp_path_factory.mktemp("eval")
    cfg = from_dict(ModelConfig, {**to_dict(ModelConfig()), **TINY})
    torch.manual_seed(0)
    model = EventTransformer(cfg).eval()
    with torch.no_grad():  # larger than the init so the logits, and so the NLLs, differ per event
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    ckpt = d / "ckpt.pt"
    torch.save({"model": model.state_dict(), "model_config": to_dict(cfg), "history": []}, ckpt)  # as train.py
    out = d / "tiny.onnx"
    assert export_onnx.main(["--checkpoint", str(ckpt), "--out", str(out), "--no-check"]) == 0
    loaded, _ = export_onnx.load_checkpoint(ckpt)
    return out, loaded


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
    for i, n in enumerate((12, 20, 60)):  # the last one is longer than the model's context
        path = d / f"song{i}.mid"
        write_midi(path, _song(rng, n))
        paths.append(path)
    return paths


def _tokens(path: Path) -> np.ndarray:
    return notes_to_events(ev.assign_parts(read_midi_tracks(path)), Vocab())


def test_nll_finite_fields_sum_and_markov_beside(tiny, midi):
    r = ev.evaluate(tiny[0], [str(p) for p in midi])
    expected = sum(len(_tokens(p)) - 1 for p in midi)  # every event but the start markers
    assert r["events"] == expected and r["sequences"] == 3 and r["skipped"] == []
    for key in ("model_nll", "markov_nll"):
        v = r[key]
        assert all(np.isfinite(v[f]) and v[f] >= 0 for f in ["event", *FIELD_NAMES])
        assert v["event"] == pytest.approx(sum(v[f] for f in FIELD_NAMES), abs=1e-9)
    assert r["markov_minus_model"] == pytest.approx(r["markov_nll"]["event"] - r["model_nll"]["event"])
    assert r["context"]["windowed_sequences"] == 1 and r["context"]["restarts"] >= 1


def test_matches_torch_loss(tiny, midi):
    path, model = tiny
    tokens = _tokens(midi[1])
    assert len(tokens) <= TINY["max_len"]  # one window: exactly what model.loss sees
    r = ev.evaluate(path, [tokens])
    with torch.no_grad():
        total, per_field = model.loss(torch.from_numpy(tokens)[None])
    assert r["model_nll"]["event"] == pytest.approx(total.item(), abs=1e-3)
    for f, ref in zip(FIELD_NAMES, per_field):
        assert r["model_nll"][f] == pytest.approx(ref.item(), abs=1e-3)


def test_windows_match_torch_on_the_same_contexts(tiny, midi):
    """Past the context, each event is scored after [start marker] + the last window - 1 events."""
    path, model = tiny
    tokens = _tokens(midi[2])
    context, window = 40, 16
    assert len(tokens) > 2 * context
    r = ev.evaluate(path, [tokens], context=context, window=window, return_scores=True)
    got = r["scores"]["model"]
    bos = tokens[:1]
    ctxs, ctx = [], bos  # the context each event is scored after
    for i in range(1, len(tokens)):
        ctxs.append(ctx)
        if len(ctx) >= context:
            ctx = np.concatenate([bos, tokens[i - (window - 1):i]])
        ctx = np.concatenate([ctx, tokens[i:i + 1]])
    # contexts between restarts extend each other: one causal forward per run of them
    starts = [i for i in range(len(ctxs)) if i == 0 or len(ctxs[i]) != len(ctxs[i - 1]) + 1] + [len(ctxs)]
    ref = []
    with torch.no_grad():
        for a, b in zip(starts[:-1], starts[1:]):
            h, _ = model.backbone(torch.from_numpy(ctxs[b - 1])[None])  # (1, T, C)
            at = h[0, [len(ctxs[i]) - 1 for i in range(a, b)]]  # (n, C)
            target = torch.from_numpy(tokens[a + 1:b + 1])  # (n, 4)
            ref.append(torch.stack([-torch.log_softmax(model.head_logits(at, k, target), -1)
                                    .gather(1, target[:, k:k + 1])[:, 0] for k in range(4)], 1).numpy())
    ref = np.concatenate(ref)
    assert got.shape == (len(tokens) - 1, 4)
    assert len(starts) > 3 and np.abs(got - ref).max() < 1e-3
    assert r["context"]["restarts"] > 0 and "start-of-sequence" in r["context"]["how"]


def test_corrupt_and_missing_files_are_skipped_with_a_reason(tiny, midi, tmp_path):
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd not really a midi file")
    missing = tmp_path / "missing.mid"
    r = ev.evaluate(tiny[0], [str(midi[0]), str(bad), str(missing)])
    assert r["sequences"] == 1 and r["events"] == len(_tokens(midi[0])) - 1
    reasons = {Path(s["path"]).name: s["reason"] for s in r["skipped"]}
    assert set(reasons) == {"bad.mid", "missing.mid"}
    assert all("\n" not in why and str(tmp_path) in why for why in reasons.values())


def test_token_shard_max_events_and_markov_fit(tiny, midi):
    shard = np.concatenate([_tokens(p) for p in midi]).astype(np.uint8)  # as prepare_data writes it
    r = ev.evaluate(tiny[0], shard, max_events=50)
    assert r["events"] == 50 and r["source"] == "tokens"
    assert r["sequences"] == 2  # the first song has 36 events, the second is cut at 14
    fitted = ev.evaluate(tiny[0], shard, max_events=50, markov_fit=shard)
    assert fitted["markov"]["fit_events"] == len(shard)
    assert fitted["model_nll"] == r["model_nll"]  # the fit concerns the baseline only
    assert fitted["markov_nll"]["event"] < r["markov_nll"]["event"]  # it has seen these very songs


def test_cli_run_json_and_errors(tiny, midi, capsys, tmp_path):
    parser = argparse.ArgumentParser()
    ev.add_parser(parser.add_subparsers())
    args = parser.parse_args(["eval", "--data", str(midi[0].parent), "--model", str(tiny[0]), "--json"])
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["sequences"] == 3 and set(out["model_nll"]) == {"event", *FIELD_NAMES}
    args = parser.parse_args(["eval", "--data", str(midi[0]), "--model", str(tmp_path / "none.onnx")])
    assert args.func(args) == 2
    assert "model file not found" in capsys.readouterr().err


def test_order_seed_and_per_sequence_pick_the_same_events_for_both_models(tiny, midi):
    seqs = [_tokens(p) for p in midi]
    order = np.random.default_rng(5).permutation(3)
    r = ev.evaluate(tiny[0], np.concatenate(seqs), max_events=20, per_sequence=10, order_seed=5)
    assert r["events"] == 20 and r["sequences"] == 2
    r2 = ev.evaluate(tiny[0], [seqs[order[0]][:11], seqs[order[1]][:11]])  # start marker + 10 events each
    assert r2["model_nll"] == r["model_nll"] and r2["markov_nll"] == r["markov_nll"]
