"""Training pipeline: data preparation, training, resume, fine-tuning, DDP replicas (torch, CPU)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from livejam.events import Note, write_midi  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = ["seq_len=32", "batch_size=4", "eval_batches=1", "eval_interval=1000", "ckpt_interval=1000",
        "warmup_steps=2", "model.n_layer=1", "model.n_head=2", "model.d_model=32", "model.d_ff=64",
        "model.max_len=64", "model.dropout=0.0", "threads=1"]


def run_tool(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """Twelve random two-track songs, one corrupt file, prepared into shards."""
    root = tmp_path_factory.mktemp("midi")
    rng = np.random.default_rng(0)
    for s in range(12):
        tracks = []
        for name, low in (("MELODY", 60), ("PIANO", 40)):
            starts = np.cumsum(rng.uniform(0.05, 0.5, 80))
            tracks.append((name, [Note(float(t), float(t + rng.uniform(0.05, 0.6)), int(rng.integers(low, low + 20)),
                                       int(rng.integers(30, 120))) for t in starts]))
        write_midi(root / f"song{s}.mid", tracks)
    (root / "broken.mid").write_bytes(b"MThd\x00\x00garbage")
    out = tmp_path_factory.mktemp("events")
    run_tool("tools/prepare_data.py", "--no-pop909", "--midi", str(root), "--out", str(out), "--val-frac", "0.25")
    return out


def test_prepare_data_splits_by_song_and_skips_bad_files(dataset: Path):
    meta = json.loads((dataset / "meta.json").read_text())
    assert len(meta["skipped"]) == 1 and "broken.mid" in meta["skipped"][0][0]
    train, val = set(meta["train"]["songs"]), set(meta["val"]["songs"])
    assert train and val and not (train & val)
    tokens = np.load(dataset / "train.tokens.npy")
    assert tokens.shape[1] == 4 and meta["train"]["events"] == len(tokens)
    # three part assignments per two-track song: melody/accompaniment, the swap, and one part
    assert meta["train"]["sequences"] == 3 * len(train)


def test_train_resume_and_finetune(dataset: Path, tmp_path: Path):
    out = tmp_path / "run"
    run_tool("tools/train.py", f"data={dataset}", f"out_dir={out}", "max_steps=3", *TINY)
    ckpt = torch.load(out / "ckpt.pt", weights_only=False)
    assert ckpt["step"] == 3 and ckpt["model_config"]["d_model"] == 32
    assert (out / "loss.png").stat().st_size > 0
    run_tool("tools/train.py", f"data={dataset}", f"out_dir={out}", "max_steps=5", "--resume", *TINY)
    assert torch.load(out / "ckpt.pt", weights_only=False)["step"] == 5
    tuned = tmp_path / "tuned"
    run_tool("tools/train.py", f"data={dataset}", f"out_dir={tuned}", "max_steps=2", "--init", str(out / "ckpt.pt"),
             *[t for t in TINY if not t.startswith("model.")])
    assert torch.load(tuned / "ckpt.pt", weights_only=False)["model_config"]["d_model"] == 32


def test_unknown_config_key_is_rejected(dataset: Path, tmp_path: Path):
    proc = subprocess.run([sys.executable, "tools/train.py", f"data={dataset}", "max_stepz=3"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "max_stepz" in proc.stderr


def test_ddp_two_cpu_processes_keep_replicas_identical(dataset: Path, tmp_path: Path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run_tool("-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
             "tools/train.py", f"data={dataset}", f"out_dir={out}", "max_steps=3", "save_replicas=true", *TINY, env=env)
    a = torch.load(out / "replica0.pt")
    b = torch.load(out / "replica1.pt")
    init = torch.load(out / "ckpt.pt", weights_only=False)
    assert init["step"] == 3
    for name in a:
        assert torch.equal(a[name], b[name]), name
