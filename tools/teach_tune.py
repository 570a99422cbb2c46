"""Fine-tuning for `teach`: from a model's weights, on a few sessions, stopped early on held-out ones.

The schedule is a fine-tune's, not training's from scratch (issue 19: lr 1e-3 and 200 warm-up steps
on a few thousand events made the model worse and taught it to copy): a small learning rate with a
short warm-up and a cosine decay (tools/train.py's lr_at), few steps, and the held-out sessions'
NLL measured every `eval_every` steps over all their events (the same windows each time). The
weights of the lowest held-out NLL are kept, the step-0 weights (the starting model) included, and
training stops after `patience` measurements without a new best, at `steps`, or at `minutes`.
"""
from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from livejam.events import CHORD, FIELDS, TEMPO
from tools.model import EventTransformer, ModelConfig
from tools.train import Shards, TrainConfig, adapt_to_start_model, load_compatible, lr_at, read_start_model

log = logging.getLogger("teach")

# The fields a session teaches: its rows carry no chord labels (chord N, as tools/prepare_data.py
# writes a MIDI file without annotations), and "the chord is always N" is not a style: the chord
# head is neither trained nor scored (live, the chord listener fills that column).
TAUGHT = tuple(k for k in range(len(FIELDS)) if k != CHORD)


@dataclass(frozen=True)
class TuneConfig:
    lr: float = 1e-4
    min_lr: float = 1e-5
    warmup_steps: int = 10
    steps: int = 300  # at most
    batch_size: int = 8
    seq_len: int = 256  # events per training window (at most the model's max_len - 1)
    eval_every: int = 10
    patience: int = 4  # measurements without a new best before stopping
    minutes: float = 10.0  # wall-time limit (0: none)
    transpose: int = 2  # random transposition in [-transpose, transpose] semitones
    stretch: float = 0.05  # random tempo stretch
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    seed: int = 0


@dataclass
class TuneResult:
    model: EventTransformer  # the kept (best) weights, in eval mode
    best_step: int  # 0: the starting model was never beaten
    best_nll: float  # held-out NLL per event of the kept weights (torch windows)
    start_nll: float  # the same for the starting model
    steps: int  # steps run
    seconds: float
    history: list[tuple[int, float]]  # (step, held-out NLL)
    stopped: str  # why it stopped: "patience", "steps" or "time"


def load_start(path: str | Path) -> tuple[EventTransformer, ModelConfig]:
    """The model to start from (a livejam ONNX file or a checkpoint: tools/train.py --init) in torch."""
    start, weights = read_start_model(str(path))
    cfg = adapt_to_start_model(TrainConfig(), start).model
    model = EventTransformer(cfg)
    load_compatible(model, weights, str(path))
    return model, cfg


def eval_windows(rows_list: list[np.ndarray], seq_len: int, vocab) -> tuple[torch.Tensor, torch.Tensor]:
    """Every event of every sequence once, in windows of `seq_len` behind a start row (as training
    batches them): (W, seq_len + 1, 7) ids and the (W, seq_len) mask of real targets."""
    wins = []
    for rows in rows_list:
        body = np.asarray(rows[1:], np.int64)  # the sequence's own start row is context, never a target
        for i in range(0, len(body), seq_len):
            wins.append(body[i:i + seq_len])
    x = np.zeros((len(wins), seq_len + 1, rows_list[0].shape[1]), np.int64)
    m = np.zeros((len(wins), seq_len), np.float32)
    for w, win in enumerate(wins):
        x[w, 0] = vocab.bos_row(int(win[0, TEMPO]))
        x[w, 1:1 + len(win)] = win
        m[w, :len(win)] = 1.0
    return torch.from_numpy(x), torch.from_numpy(m)


def taught_loss(model: EventTransformer, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Mean NLL per event over the TAUGHT fields."""
    _, per_field = model.loss(x, m)
    return sum(per_field[k] for k in TAUGHT)


@torch.no_grad()
def held_out_nll(model: EventTransformer, windows: tuple[torch.Tensor, torch.Tensor], batch: int = 8) -> float:
    """NLL per event (nats, summed over the TAUGHT fields) over every held-out event."""
    was = model.training
    model.eval()
    x, m = windows
    total, count = 0.0, 0.0
    for i in range(0, len(x), batch):
        xb, mb = x[i:i + batch], m[i:i + batch]
        loss = taught_loss(model, xb, mb)
        n = float(mb.sum())
        total, count = total + float(loss) * n, count + n
    model.train(was)
    return total / max(count, 1.0)


def schedule(cfg: TuneConfig) -> TrainConfig:
    """tools/train.py's learning-rate schedule with the fine-tune's numbers (lr_at reads these keys)."""
    return replace(TrainConfig(), lr=cfg.lr, min_lr=cfg.min_lr, warmup_steps=cfg.warmup_steps,
                   max_steps=cfg.steps, max_minutes=cfg.minutes)


def fine_tune(model: EventTransformer, data: Path, held_out: list[np.ndarray], cfg: TuneConfig) -> TuneResult:
    """Fine-tune `model` on the shards in `data` (train.tokens.npy/train.songs.npy: teach_data.write_shards)."""
    vocab = model.cfg.vocab
    seq_len = min(cfg.seq_len, model.cfg.max_len - 1)
    shards = Shards(data, "train", vocab)
    windows = eval_windows(held_out, seq_len, vocab)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": rest, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.95))
    lr_cfg = schedule(cfg)
    start_nll = held_out_nll(model, windows)
    best = (start_nll, 0, copy.deepcopy(model.state_dict()))
    history = [(0, start_nll)]
    log.info("step 0: held-out NLL %.3f per event (the starting model)", start_nll)
    t0, step, since_best, stopped = time.time(), 0, 0, "steps"
    model.train()
    while step < cfg.steps:
        minutes = (time.time() - t0) / 60
        if cfg.minutes and minutes >= cfg.minutes:
            stopped = "time"
            break
        for group in opt.param_groups:
            group["lr"] = lr_at(step, lr_cfg, minutes)
        x, m = shards.batch(rng, cfg.batch_size, seq_len, cfg.transpose, cfg.stretch)
        loss = taught_loss(model, x, m)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        step += 1
        if step % cfg.eval_every == 0 or step == cfg.steps:
            nll = held_out_nll(model, windows)
            history.append((step, nll))
            better = nll < best[0] - 1e-4
            log.info("step %d: train loss %.3f, held-out NLL %.3f%s (%.1f min)", step, loss.item(), nll,
                     " (best)" if better else "", (time.time() - t0) / 60)
            if better:
                best, since_best = (nll, step, copy.deepcopy(model.state_dict())), 0
            else:
                since_best += 1
                if cfg.patience and since_best >= cfg.patience:
                    stopped = "patience"
                    break
    model.load_state_dict(best[2])
    model.eval()
    return TuneResult(model, best[1], best[0], start_nll, step, time.time() - t0, history, stopped)
