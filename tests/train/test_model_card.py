"""tools/model_card.py on a tiny v2 model, a checkpoint laid out as tools/train.py writes it and a tiny
prepared data folder (format 2 rows)."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the card reads the checkpoint with torch
pytest.importorskip("onnxruntime")

from livejam.engine import load_model  # noqa: E402
from livejam.events import FIELDS, FORMAT_VERSION, Vocab  # noqa: E402
from tools import model_card  # noqa: E402


def _shard(rng, songs: int, length: int) -> np.ndarray:
    v = Vocab()
    rows = []
    for _ in range(songs):
        ev = np.stack([rng.integers(0, 2, length), rng.integers(0, 20, length), rng.integers(0, 30, length),
                       rng.integers(50, 70, length), rng.integers(0, 10, length), rng.integers(0, 48, length),
                       np.full(length, 12)], 1)
        rows += [np.array([v.bos_row(12)]), ev]
    return np.concatenate(rows).astype(np.uint8)


def test_card_from_checkpoint(tmp_path, tiny_model):
    rng = np.random.default_rng(0)
    data = tmp_path / "events"
    data.mkdir()
    meta = {"format_version": FORMAT_VERSION, "sources": ["test"], "skipped": [],
            "split": {"seed": 0, "val_frac": 0.1, "free_frac": 0.1}, "beat_annotated_songs": 4,
            "free_time_copies": ["a"],
            "train": {"events": 0, "sequences": 3, "songs": ["a", "b", "c"]},
            "val": {"events": 0, "sequences": 2, "songs": ["d"]}}
    for split, songs in (("train", 3), ("val", 2)):
        tokens = _shard(rng, songs, 80)
        np.save(data / f"{split}.tokens.npy", tokens)
        meta[split]["events"] = len(tokens)
    (data / "meta.json").write_text(json.dumps(meta))
    history = [{"step": 25, "train": 9.0},
               {"step": 50, "val": {"nll": 8.5, "part": 0.5, "dt": 2, "chord": 1, "pitch": 3, "vel": 2}}]
    ckpt = tmp_path / "ckpt.pt"
    config = load_model(tiny_model).info.config  # the checkpoint the tiny model came from
    torch.save({"model": {"w": torch.zeros(2)}, "optimizer": {}, "model_config": config,
                "train_config": {"max_steps": 50}, "history": history, "step": 50, "wall_seconds": 12.5,
                "parameters": 1234, "format_version": FORMAT_VERSION,
                "data_meta": {k: meta[k] for k in ("train", "val", "sources")}}, ckpt)  # as tools/train.py
    out = tmp_path / "card.json"
    assert model_card.main(["--checkpoint", str(ckpt), "--model", str(tiny_model), "--out", str(out),
                            "--data", str(data), "--max-events", "100", "--markov-fit-events", "200",
                            "--bench-steps", "10"]) == 0
    card = json.loads(out.read_text())
    v = card["validation"]
    assert v["events"] == 100 and v["markov_fitted"]["events"] == 100 and v["order_seed"] == 0
    for nll in (v["model_nll"], v["markov_nll"], v["markov_fitted"]["nll"]):
        assert set(nll) == {"event", *FIELDS}  # chord included
        assert nll["event"] == pytest.approx(sum(nll[f] for f in FIELDS))
    assert card["format_version"] == FORMAT_VERSION and card["data"]["format_version"] == FORMAT_VERSION
    assert card["training"]["steps"] == 50 and card["training"]["val_history"][0]["nll"] == 8.5
    assert card["data"]["val"]["songs"] == 1 and "hash" in card["data"]["split"]
    assert "4 songs on their annotated beats" in card["data"]["time"]
    assert card["latency"]["at_cached_events"] and card["machine"]["cores"] >= 1
    assert set(card["commands"]) >= {"training", "export", "validation", "latency", "card"}
    assert card["commands"]["training"].startswith("python -m tools.train max_steps=50")
    page = out.with_suffix(".md").read_text()
    assert "Validation NLL" in page and "| event | part | dt | chord | pitch | vel |" in page

    # the musicianship section: a tools.quality result added to the card as it stands
    result = {"songs": ["004", "005"], "seeds": [0], "seconds": 60.0, "settings": "defaults", "model": "shipped",
              "rows": ["duet", "piano"], "seed_spread": {}, "memory_seconds": 180.0,
              "mean": {"duet": {"chord_tone": 0.64, "implied_root": 0.34, "leaned_root": 0.35, "voices": 2.3,
                                "sounding_at_end": 0},
                       "piano": {"chord_tone": 0.94, "implied_root": 0.84, "sounding_at_end": 0}}}
    (tmp_path / "q.json").write_text(json.dumps(result))
    assert model_card.main(["--out", str(out), "--only-quality",
                            "--quality", str(tmp_path / "q.json"), "python -m tools.quality --rows duet,piano"]) == 0
    again = json.loads(out.read_text())
    assert again["validation"] == card["validation"]  # the rest of the card is kept
    assert again["musicianship"][0]["mean"]["duet"]["chord_tone"] == 0.64
    page = out.with_suffix(".md").read_text()
    assert "## Musicianship" in page and "chord tones >= 0.70" in page and "MISSED" in page
    with pytest.raises(SystemExit) as exc:
        model_card.main(["--out", str(out), "--only-quality", "--quality", str(tmp_path / "none.json"), "x"])
    assert exc.value.code == 2

    # a derived file (an 8-bit copy) gets its own section, by the card's own commands; the rest is kept
    from tools.quantize import quantize
    q8 = quantize(tiny_model, tmp_path / "tiny.int8.onnx", 8)
    assert model_card.main(["--out", str(out), "--data", str(data), "--bench-steps", "10",
                            "--variant", "8-bit", str(q8), "python -m tools.quantize tiny.onnx tiny.int8.onnx --bits 8",
                            "--quality", str(tmp_path / "q.json"), "python -m tools.quality --model tiny.int8.onnx"]) == 0
    third = json.loads(out.read_text())
    assert third["validation"] == card["validation"] and third["musicianship"] == again["musicianship"]
    x = third["variants"]["8-bit"]
    assert x["events"] == 100 and x["file"] == "tiny.int8.onnx" and x["bytes"] == q8.stat().st_size
    assert x["model_nll"]["event"] == pytest.approx(v["model_nll"]["event"], abs=0.5)  # the same model, rounded
    assert x["model_nll"] != v["model_nll"] and x["latency"]["at_cached_events"]
    assert "--model" in x["commands"]["validation"] and x["musicianship"][0]["mean"]["duet"]["voices"] == 2.3
    page = out.with_suffix(".md").read_text()
    assert "## 8-bit: `tiny.int8.onnx`" in page and "| float |" in page and "| 8-bit |" in page
    with pytest.raises(SystemExit) as exc:
        model_card.main(["--out", str(out), "--variant", "8-bit", str(tmp_path / "none.onnx"), "x"])
    assert exc.value.code == 2
