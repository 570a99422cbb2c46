"""tools/model_card.py on a tiny checkpoint and a tiny prepared data folder."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

import export_onnx  # noqa: E402
import model_card  # noqa: E402
from livejam.config import from_dict, to_dict  # noqa: E402
from livejam.events import Vocab  # noqa: E402
from livejam.model import EventTransformer, ModelConfig  # noqa: E402

TINY = dict(n_layer=1, n_head=2, d_model=32, d_ff=64, max_len=64)


def _shard(rng, songs: int, length: int) -> np.ndarray:
    v = Vocab()
    rows = []
    for _ in range(songs):
        ev = np.stack([rng.integers(0, 2, length), rng.integers(0, 20, length), rng.integers(50, 70, length),
                       rng.integers(0, 10, length)], 1)
        rows += [np.array([[v.bos_part, 0, 0, 0]]), ev]
    return np.concatenate(rows).astype(np.uint8)


def test_card_from_checkpoint(tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "events"
    data.mkdir()
    meta = {"sources": ["test"], "skipped": [],
            "train": {"events": 0, "sequences": 3, "songs": ["a", "b", "c"]},
            "val": {"events": 0, "sequences": 2, "songs": ["d"]}}
    for split, songs in (("train", 3), ("val", 2)):
        tokens = _shard(rng, songs, 80)
        np.save(data / f"{split}.tokens.npy", tokens)
        meta[split]["events"] = len(tokens)
    (data / "meta.json").write_text(json.dumps(meta))
    cfg = from_dict(ModelConfig, {**to_dict(ModelConfig()), **TINY})
    model = EventTransformer(cfg).eval()
    history = [{"step": 25, "train": 9.0}, {"step": 50, "val": {"nll": 8.5, "part": 0.5, "dt": 3, "pitch": 3,
                                                                  "vel": 2}}]
    ckpt = tmp_path / "ckpt.pt"
    torch.save({"model": model.state_dict(), "model_config": to_dict(cfg), "train_config": {"max_steps": 50},
                "history": history, "step": 50, "wall_seconds": 12.5, "parameters": 1234,
                "data_meta": {k: meta[k] for k in ("train", "val", "sources")}}, ckpt)
    onnx_path = tmp_path / "m.onnx"
    assert export_onnx.main(["--checkpoint", str(ckpt), "--out", str(onnx_path), "--no-check"]) == 0
    out = tmp_path / "card.json"
    assert model_card.main(["--checkpoint", str(ckpt), "--model", str(onnx_path), "--out", str(out),
                            "--data", str(data), "--max-events", "100", "--markov-fit-events", "200",
                            "--bench-steps", "10"]) == 0
    card = json.loads(out.read_text())
    v = card["validation"]
    assert v["events"] == 100 and v["markov_fitted"]["events"] == 100 and v["order_seed"] == 0
    assert v["model_nll"]["event"] == pytest.approx(sum(v["model_nll"][f] for f in ("part", "dt", "pitch", "vel")))
    assert card["training"]["steps"] == 50 and card["training"]["val_history"][0]["nll"] == 8.5
    assert card["data"]["val"]["songs"] == 1 and "hash" in card["data"]["split"]
    assert card["latency"]["at_cached_events"] and card["machine"]["cores"] >= 1
    assert set(card["commands"]) >= {"training", "export", "validation", "latency", "card"}
    assert "Validation NLL" in out.with_suffix(".md").read_text()
