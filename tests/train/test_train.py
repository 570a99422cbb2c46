"""Training pipeline (format 2): data preparation on beats and chords, augmentation, training, resume,
fine-tuning from a checkpoint or an ONNX file, DDP replicas (torch, CPU)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from livejam.events import Note, Vocab  # noqa: E402
from livejam.midi.files import write_midi  # noqa: E402
from livejam.harmony import chord_name, parse_chord  # noqa: E402
from tools.train import Shards  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TINY = ["seq_len=32", "batch_size=4", "eval_batches=1", "eval_interval=1000", "ckpt_interval=1000",
        "warmup_steps=2", "model.n_layer=1", "model.n_head=2", "model.d_model=32", "model.d_ff=64",
        "model.max_len=64", "model.dropout=0.0", "threads=1"]
CHORDS = ["C:maj", "A:min7", "F:maj/3", "G:sus4(b7)"]


def run_tool(*args: str, env: dict | None = None, ok: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    if ok:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def pop909(tmp_path_factory) -> Path:
    """A POP909-shaped folder: twelve two-track songs with beat and chord files (the first beat at
    0.25 s, 100 bpm), and one corrupt song."""
    root = tmp_path_factory.mktemp("pop909")
    rng = np.random.default_rng(0)
    beat = 0.6
    for s in range(12):
        song = root / f"{s + 1:03d}"
        song.mkdir()
        beats = 0.25 + beat * np.arange(80)
        (song / "beat_midi.txt").write_text("".join(f"{t:.6f} 1.0 {1.0 if i % 4 == 0 else 0.0}\n"
                                                    for i, t in enumerate(beats)))
        (song / "chord_midi.txt").write_text("".join(f"{beats[i]:.6f}\t{beats[i + 4]:.6f}\t{CHORDS[i // 4 % 4]}\n"
                                                     for i in range(0, 72, 4)))
        tracks = []
        for name, low in (("MELODY", 60), ("PIANO", 40)):
            onsets = beats[0] + beat * np.cumsum(rng.choice([0.25, 0.5, 1.0], 60))
            tracks.append((name, [Note(float(t), float(t + 0.3), int(rng.integers(low, low + 20)), 80)
                                  for t in onsets]))
        write_midi(song / f"{s + 1:03d}.mid", tracks)
    (root / "013").mkdir()
    (root / "013" / "013.mid").write_bytes(b"MThd\x00\x00garbage")
    return root


@pytest.fixture(scope="module")
def dataset(pop909: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("events")
    env = {**os.environ, "LIVEJAM_DATA": str(pop909)}  # the data folder from the environment
    run_tool("-m", "tools.prepare_data", "--out", str(out), "--val-frac", "0.25", "--free-frac", "0.3", env=env)
    return out


def test_prepare_data_splits_by_song_on_beats_and_chords(dataset: Path):
    meta = json.loads((dataset / "meta.json").read_text())
    assert meta["format_version"] == 2 and meta["columns"][2] == "chord"
    assert len(meta["skipped"]) == 1 and meta["skipped"][0][0] == "pop909/013"
    train, val = set(meta["train"]["songs"]), set(meta["val"]["songs"])
    assert train and val and not (train & val) and meta["held_out"] == sorted(val)
    tokens = np.load(dataset / "train.tokens.npy")
    assert tokens.shape[1] == 7 and meta["train"]["events"] == len(tokens)
    # four part assignments per song (events.part_variants), and four more in free time for the free-time copies
    free = set(meta["free_time_copies"])
    assert free and meta["train"]["sequences"] == 4 * len(train) + 4 * len(train & free)
    grid = tokens[(tokens[:, 6] > 0) & (tokens[:, 0] < 2)]  # beat-grid events (not start rows)
    assert len(grid) and (grid[:, 5] < 96).all() and (grid[:, 1] % 3 == 0).all()  # 16ths of a steady grid
    assert (tokens[tokens[:, 6] == 0][:, 5] == 96).all()  # free time: no bar position
    ons = grid[grid[:, 4] > 0]
    assert {chord_name(int(c)) for c in ons[:, 2]} <= {chord_name(parse_chord(c)) for c in CHORDS} | {"N"}
    assert ons[ons[:, 5] == 0].shape[0] > 0  # downbeats are position 0 (the first beat at 0.25 s)


def test_prepare_data_says_where_it_looked(tmp_path: Path):
    env = {**os.environ, "LIVEJAM_DATA": str(tmp_path / "nowhere")}
    proc = run_tool("-m", "tools.prepare_data", "--out", str(tmp_path / "x"), env=env, ok=False)
    assert proc.returncode == 2
    assert str(tmp_path / "nowhere") in proc.stderr and "--pop909" in proc.stderr and "LIVEJAM_DATA" in proc.stderr
    assert "github.com/music-x-lab/POP909-Dataset" in proc.stderr


def test_augmentation_moves_chords_with_pitches_and_stretches_by_kind(dataset: Path):
    vocab = Vocab()
    shards = Shards(dataset, "train", vocab)
    rows = np.asarray(shards.tokens[1:200], dtype=np.int64)
    assert rows[0, 6] > 0  # a beat-grid sequence
    rng = np.random.default_rng(0)
    for _ in range(10):
        moved = shards.augment(rows, rng, transpose=5, stretch=0.0)
        shift = int(moved[0, 3] - rows[0, 3])
        assert (moved[:, 3] - rows[:, 3] == shift).all()
        for a, b in zip(rows[:, 2], moved[:, 2]):
            assert (a == 0) == (b == 0) and (a == 0 or (b - 1) // 15 == ((a - 1) // 15 + shift) % 12)
    moved_tempo = False
    for seed in range(5):
        stretched = shards.augment(rows, np.random.default_rng(seed), transpose=0, stretch=0.3)
        assert (stretched[:, :6] == rows[:, :6]).all()  # beats: only the tempo moves
        moved_tempo |= bool((stretched[:, 6] != rows[:, 6]).any())
    assert moved_tempo
    free = rows.copy()
    free[:, 5], free[:, 6] = 96, 0
    out = shards.augment(free, np.random.default_rng(1), transpose=0, stretch=0.3)
    factor = free[:, 1].sum() / max(1, out[:, 1].sum())
    assert (out[:, 6] == 0).all() and 0.7 <= factor <= 1.3 and factor != 1.0
    x, m = shards.batch(np.random.default_rng(2), 3, 40, 5, 0.1)
    assert x.shape == (3, 41, 7) and (x[:, 0, 0] == vocab.bos_part).all() and (x[:, 0, 5] == 96).all()


def test_train_resume_and_finetune(dataset: Path, tmp_path: Path):
    out = tmp_path / "run"
    run_tool("-m", "tools.train", f"data={dataset}", f"out_dir={out}", "max_steps=3", *TINY)
    ckpt = torch.load(out / "ckpt.pt", weights_only=False)
    assert ckpt["step"] == 3 and ckpt["model_config"]["d_model"] == 32 and ckpt["format_version"] == 2
    fields = {"part", "dt", "chord", "pitch", "vel"}
    assert set(ckpt["history"][-1]["val"]) == {"nll", "hidden_nll", *fields, *(f"hidden_{f}" for f in fields)}
    assert (out / "best.pt").exists()
    assert (out / "loss.png").stat().st_size > 0
    run_tool("-m", "tools.train", f"data={dataset}", f"out_dir={out}", "max_steps=5", "--resume", *TINY)
    assert torch.load(out / "ckpt.pt", weights_only=False)["step"] == 5
    # fine-tuning keeps the starting model's architecture and loads its weights
    tuned = tmp_path / "tuned"
    proc = run_tool("-m", "tools.train", f"data={dataset}", f"out_dir={tuned}", "max_steps=2", "--init",
                    str(out / "ckpt.pt"), *[t for t in TINY if not t.startswith("model.")])
    assert torch.load(tuned / "ckpt.pt", weights_only=False)["model_config"]["d_model"] == 32
    assert "fresh: none" in proc.stderr


def test_finetune_from_onnx_adapts_seq_len(dataset: Path, tmp_path: Path):
    model = tmp_path / "m.onnx"
    run_tool("-m", "tools.export_onnx", "--random", "--no-check", "--out", str(model), "n_layer=1", "n_head=2",
             "d_model=32", "d_ff=64", "max_len=24")
    out = tmp_path / "tuned"
    proc = run_tool("-m", "tools.train", f"data={dataset}", f"out_dir={out}", "max_steps=1", "--init", str(model),
                    *[t for t in TINY if not t.startswith("model.")])
    ckpt = torch.load(out / "ckpt.pt", weights_only=False)
    assert ckpt["model_config"]["max_len"] == 24 and ckpt["train_config"]["seq_len"] == 23
    assert "seq_len 32 -> 23" in proc.stderr and "fresh: none" in proc.stderr  # a v2 file gives every tensor


def test_unknown_config_key_is_rejected(dataset: Path):
    proc = run_tool("-m", "tools.train", f"data={dataset}", "max_stepz=3", ok=False)
    assert proc.returncode != 0 and "max_stepz" in proc.stderr


def test_ddp_two_cpu_processes_keep_replicas_identical(dataset: Path, tmp_path: Path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run_tool("-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
             "-m", "tools.train", f"data={dataset}", f"out_dir={out}", "max_steps=3", "save_replicas=true", *TINY,
             env=env)
    a = torch.load(out / "replica0.pt")
    b = torch.load(out / "replica1.pt")
    assert torch.load(out / "ckpt.pt", weights_only=False)["step"] == 3
    for name in a:
        assert torch.equal(a[name], b[name]), name
