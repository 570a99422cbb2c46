"""Train the event transformer on shards from tools/prepare_data.py.

    python -m tools.train                                  # default config
    python -m tools.train --config configs/quick.toml      # a minute on CPU
    python -m tools.train max_steps=20000 model.n_layer=6  # overrides (unknown keys are errors)
    python -m tools.train --resume                         # continue from out_dir/ckpt.pt
    python -m tools.train --init runs/x/ckpt.pt data=data/mine  # fine-tune on your own MIDI ("teach it my style")
    torchrun --nproc_per_node 2 -m tools.train ...         # DistributedDataParallel (gloo on CPU, nccl on CUDA)

Checkpoints (out_dir/ckpt.pt) hold the model and training configs, so
tools/export_onnx.py rebuilds the model from the file alone.

Batches are random windows of the prepared songs, each behind a start row.
Augmentation (livejam/events.py): a transposition moves pitches
and chord roots together; a tempo stretch moves the tempo bin of beat-grid
material (its dt and pos are in beats and do not change) and re-bins dt of
free-time material (its beats are nominal, so a slower performance has longer dts).
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from livejam.config import ConfigError, from_dict, load, to_dict
from livejam.events import COLUMNS, FORMAT_VERSION, Vocab
from livejam.harmony import transpose_ids
from tools.model import FIELDS, EventTransformer, ModelConfig

log = logging.getLogger("train")


@dataclass(frozen=True)
class TrainConfig:
    data: str = "data/events"
    out_dir: str = "runs/default"
    model: ModelConfig = field(default_factory=ModelConfig)
    seq_len: int = 512  # events per training window (plus the start marker)
    batch_size: int = 16
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 200
    max_steps: int = 20000
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    transpose: int = 5  # random transposition in [-transpose, transpose] semitones
    stretch: float = 0.1  # random tempo stretch in [1-stretch, 1+stretch]
    # share of windows whose context chord fields are hidden (N): live, a melody carries no chord, so
    # the chord head must learn to infer the harmony from the notes, the bar and the song so far, not
    # copy the previous event's label; the targets keep the annotation (hide_chords)
    chord_hide: float = 0.5
    eval_interval: int = 250
    eval_batches: int = 20
    ckpt_interval: int = 250
    max_minutes: float = 0.0  # stop (with a checkpoint) after this wall time; 0 = no limit
    seed: int = 1337
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 0  # torch CPU threads; 0 = torch's default
    save_replicas: bool = False  # DDP test hook: every rank saves its weights at the end
    keep_best: bool = True  # also keep out_dir/best.pt: the weights of the lowest validation NLL (chords hidden)


PART, DT, CHORD, PITCH, VEL, POS, TEMPO = range(len(COLUMNS))


class Shards:
    """Random training windows from a tokens memmap, each starting with a start row."""

    def __init__(self, folder: Path, split: str, vocab: Vocab):
        self.tokens = np.load(folder / f"{split}.tokens.npy", mmap_mode="r")
        if self.tokens.ndim != 2 or self.tokens.shape[1] != len(COLUMNS):
            raise ValueError(f"{folder}: {split} rows have {self.tokens.shape[1:]} columns, format "
                             f"{FORMAT_VERSION} has {len(COLUMNS)}: prepare the data again (python -m tools.prepare_data)")
        offsets = np.load(folder / f"{split}.songs.npy")
        self.starts = offsets
        self.ends = np.append(offsets[1:], len(self.tokens))
        self.vocab = vocab
        lengths = self.ends - self.starts
        self.weights = lengths / lengths.sum()  # long songs are sampled more often
        self.tempo_bpm = np.array([vocab.tempo_bpm(b) or 0.0 for b in range(vocab.n_tempo)])

    def batch(self, rng: np.random.Generator, batch_size: int, seq_len: int, transpose: int, stretch: float):
        out = np.zeros((batch_size, seq_len + 1, len(COLUMNS)), dtype=np.int64)
        mask = np.zeros((batch_size, seq_len), dtype=np.float32)
        for b in range(batch_size):
            s = rng.choice(len(self.starts), p=self.weights)
            lo, hi = self.starts[s] + 1, self.ends[s]  # skip the song's own start row
            begin = rng.integers(lo, max(lo + 1, hi - seq_len + 1))
            win = np.asarray(self.tokens[begin: min(hi, begin + seq_len)], dtype=np.int64)
            win = self.augment(win, rng, transpose, stretch)
            out[b, 0] = self.vocab.bos_row(int(win[0, TEMPO]) if len(win) else 0)
            out[b, 1: 1 + len(win)] = win
            mask[b, : len(win)] = 1.0
            out[b, 1 + len(win):, POS] = self.vocab.pos_unknown  # padding: any valid ids (masked out)
        return torch.from_numpy(out), torch.from_numpy(mask)

    def augment(self, win: np.ndarray, rng, transpose: int, stretch: float) -> np.ndarray:
        win = win.copy()
        if transpose and len(win):
            lo, hi = win[:, PITCH].min(), win[:, PITCH].max()
            shift = int(rng.integers(max(-transpose, -lo), min(transpose, 127 - hi) + 1))
            win[:, PITCH] += shift
            win[:, CHORD] = transpose_ids(win[:, CHORD], shift)
        if stretch and len(win):
            factor = rng.uniform(1 - stretch, 1 + stretch)  # tempo multiplier (> 1: faster)
            v = self.vocab
            if win[0, TEMPO] > 0:  # beat grid: only the tempo changes
                table = [0] + [v.tempo_bin(self.tempo_bpm[b] * factor) for b in range(1, v.n_tempo)]
                win[:, TEMPO] = np.asarray(table)[win[:, TEMPO]]
            else:  # free time: the same notes played faster take fewer nominal ticks; cumulative, no drift
                ticks = np.rint(np.cumsum(win[:, DT]) / factor).astype(np.int64)
                win[:, DT] = np.clip(np.diff(ticks, prepend=0), 0, v.max_dt_ticks)
        return win


def hide_chords(events: torch.Tensor, rng: np.random.Generator, share: float) -> torch.Tensor | None:
    """The backbone's view of a batch: the chord column set to N in a `share` of its windows
    (None when nothing is hidden: the context is the batch itself)."""
    hide = rng.random(events.shape[0]) < share
    if not hide.any():
        return None
    context = events.clone()
    context[torch.from_numpy(hide), :, CHORD] = 0
    return context


def lr_at(step: int, cfg: TrainConfig, minutes: float = 0.0) -> float:
    """Warm-up, then cosine decay to min_lr at max_steps or at max_minutes, whichever comes first,
    so a run with a wall-time budget still ends with a decayed learning rate."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    if cfg.max_minutes:
        progress = max(progress, min(1.0, minutes / cfg.max_minutes))
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * progress))


@torch.no_grad()
def evaluate(model, shards: Shards, cfg: TrainConfig, device) -> dict:
    """Validation NLL per event and per field (fixed windows: comparable across evals), with the
    annotated chords in the context (a chart) and with them hidden (`hidden_*`: a melody alone)."""
    model.eval()
    rng = np.random.default_rng(0)
    totals = np.zeros(len(FIELDS))
    hidden = np.zeros(len(FIELDS))
    for _ in range(cfg.eval_batches):
        x, m = shards.batch(rng, cfg.batch_size, cfg.seq_len, 0, 0.0)
        x, m = x.to(device), m.to(device)
        _, per_field = model.loss(x, m)
        totals += [p.item() for p in per_field]
        _, per_field = model.loss(x, m, hide_chords(x.cpu(), rng, 1.0).to(device))
        hidden += [p.item() for p in per_field]
    model.train()
    per_field, hidden = totals / cfg.eval_batches, hidden / cfg.eval_batches
    return {"nll": float(per_field.sum()), **{f: float(v) for f, v in zip(FIELDS, per_field)},
            "hidden_nll": float(hidden.sum()), **{f"hidden_{f}": float(v) for f, v in zip(FIELDS, hidden)}}


def save_loss_plot(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    train = [h for h in history if "train" in h]
    val = [h for h in history if "val" in h]
    ax.plot([h["step"] for h in train], [h["train"] for h in train], label="train NLL/event", alpha=0.6)
    ax.plot([h["step"] for h in val], [h["val"]["nll"] for h in val], "o-", label="val NLL/event")
    ax.set_xlabel("step")
    ax.set_ylabel("nats per event")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


ARCH_KEYS = ("n_layer", "n_head", "d_model", "d_ff", "max_len")


def read_start_model(path: str) -> tuple[dict, dict | None]:
    """The model config (a dict) and the weights of the model to fine-tune: a checkpoint's, or
    those of a livejam ONNX file (tools/onnx_weights.py: the shipped model itself will do)."""
    if path.endswith(".onnx"):
        import onnx

        from tools.onnx_weights import state_dict_from_onnx

        proto = onnx.load(path)
        meta = {p.key: p.value for p in proto.metadata_props}
        if "livejam.config" not in meta:
            raise ConfigError(f"{path}: not a livejam model (no livejam.config metadata)")
        return json.loads(meta["livejam.config"]), state_dict_from_onnx(path)
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    return ckpt["model_config" if "model_config" in ckpt else "config"], ckpt["model"]


def adapt_to_start_model(cfg: TrainConfig, start: dict) -> TrainConfig:
    """The architecture of the starting model with this version's vocabulary; windows that fit its positions."""
    model = replace(cfg.model, **{k: start[k] for k in ARCH_KEYS if k in start})
    seq_len = min(cfg.seq_len, model.max_len - 1)  # + the start row
    if seq_len != cfg.seq_len:
        log.info("init: seq_len %d -> %d (the starting model holds %d positions)", cfg.seq_len, seq_len, model.max_len)
    return replace(cfg, model=model, seq_len=seq_len)


def load_compatible(model: torch.nn.Module, state: dict, source: str) -> None:
    """Load every tensor whose name and shape match (a v1 model gives its backbone; tables that
    changed size start fresh) and log what was loaded and what was not."""
    own = model.state_dict()
    take = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(take, strict=False)
    fresh = [k for k in own if k not in take]
    log.info("init from %s: loaded %d of %d tensors; fresh: %s", source, len(take), len(own),
             ", ".join(fresh) if fresh else "none")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", help="TOML file of TrainConfig keys")
    p.add_argument("--resume", action="store_true", help="continue from out_dir/ckpt.pt")
    p.add_argument("--init", metavar="CKPT_OR_ONNX",
                   help="fine-tune: the starting model's architecture (and a checkpoint's matching weights)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. max_steps=1000 model.n_layer=2")
    return p.parse_intermixed_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    cfg = load(TrainConfig, args.config, args.overrides)
    out = Path(cfg.out_dir)
    ckpt_path = out / "ckpt.pt"
    resume = torch.load(ckpt_path, map_location="cpu", weights_only=False) if args.resume and ckpt_path.exists() else None
    if args.resume and resume is None:
        log.info("no checkpoint at %s: starting fresh", ckpt_path)
    init_weights = None
    if args.init and resume is None:  # the fine-tuned model keeps the architecture it was trained with
        try:
            start, init_weights = read_start_model(args.init)
        except (OSError, ConfigError, KeyError) as e:
            raise SystemExit(f"train: cannot start from {args.init}: {e}") from None
        cfg = adapt_to_start_model(cfg, start)
    elif resume is not None:
        cfg = replace(cfg, model=from_dict(ModelConfig, resume["model_config"]))
    if cfg.seq_len + 1 > cfg.model.max_len:
        raise SystemExit(f"train: seq_len {cfg.seq_len} + the start row exceeds model.max_len {cfg.model.max_len}")

    ddp = int(os.environ.get("WORLD_SIZE", "1")) > 1
    rank = int(os.environ.get("RANK", "0"))
    if cfg.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(cfg.device)
    if ddp:
        import torch.distributed as dist

        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")
            torch.cuda.set_device(device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)  # same init on every rank; DDP also broadcasts rank 0's weights
    master = rank == 0

    data = Path(cfg.data)
    try:
        meta = json.loads((data / "meta.json").read_text())
    except OSError:
        raise SystemExit(f"train: no prepared data at {data} (python -m tools.prepare_data --out {data})") from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise SystemExit(f"train: {data} holds format {meta.get('format_version', 1)} events, this is format "
                         f"{FORMAT_VERSION}: prepare the data again (python -m tools.prepare_data --out {data})")
    train_shards = Shards(data, "train", cfg.model.vocab)
    val_shards = Shards(data, "val", cfg.model.vocab)
    model = EventTransformer(cfg.model).to(device)
    if init_weights is not None:
        load_compatible(model, init_weights, args.init)
    if resume is not None:
        model.load_state_dict(resume["model"])
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.95))
    step, history, elapsed = 0, [], 0.0
    if resume is not None:
        opt.load_state_dict(resume["optimizer"])
        step, history, elapsed = resume["step"], resume["history"], resume["wall_seconds"]
    train_model = model
    if ddp:
        from torch.nn.parallel import DistributedDataParallel

        train_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp and not torch.cuda.is_bf16_supported())
    amp_dtype = torch.bfloat16 if amp and torch.cuda.is_bf16_supported() else torch.float16
    rng = np.random.default_rng(cfg.seed + 1000 * rank + step)  # each rank, and each resume, draws new windows
    n_params = sum(p.numel() for p in model.parameters())
    if master:
        out.mkdir(parents=True, exist_ok=True)
        log.info("model %.2fM parameters, %s, train %d events, val %d events", n_params / 1e6, device,
                 meta["train"]["events"], meta["val"]["events"])

    best_nll = [min((h["val"].get("hidden_nll", np.inf) for h in history if "val" in h), default=np.inf)]

    def checkpoint(final: bool = False, at: tuple[int, float] = (0, 0.0), best: float | None = None) -> None:
        """The resumable checkpoint; with `best`, the weights alone to best.pt when that NLL is the lowest yet."""
        if not master:
            return
        step, elapsed = at
        if best is not None:
            if best < best_nll[0]:
                best_nll[0] = best
                tmp = out / "best.tmp"
                torch.save({"model": model.state_dict(), "step": step, "model_config": to_dict(cfg.model),
                            "train_config": to_dict(cfg), "history": history, "wall_seconds": elapsed,
                            "parameters": n_params, "format_version": FORMAT_VERSION}, tmp)
                os.replace(tmp, out / "best.pt")
            return
        state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                 "model_config": to_dict(cfg.model), "train_config": to_dict(cfg), "history": history,
                 "wall_seconds": elapsed, "parameters": n_params, "format_version": FORMAT_VERSION, "data_meta": {k: meta[k] for k in ("train", "val", "sources")}}
        tmp = ckpt_path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, ckpt_path)  # never leave a half-written checkpoint
        if final:
            save_loss_plot(history, out / "loss.png")

    t_start = time.time() - elapsed
    bar = tqdm(total=cfg.max_steps, initial=step, unit="step", disable=not master, dynamic_ncols=True,
               mininterval=1.0 if os.isatty(2) else 30.0)  # a log file gets a line every 30 s
    with logging_redirect_tqdm():
        step, elapsed = _loop(cfg, model, train_model, opt, scaler, amp, amp_dtype, ddp, master, rng, device,
                              train_shards, val_shards, history, step, t_start, bar, checkpoint)
    bar.close()
    if master:
        if not any("val" in h and h["step"] == step for h in history):
            history.append({"step": step, "val": evaluate(model, val_shards, cfg, device)})
        if cfg.keep_best:
            checkpoint(at=(step, elapsed), best=history[-1]["val"]["hidden_nll"])
        checkpoint(final=True, at=(step, elapsed))
        log.info("done: step %d, %.1f min, val NLL/event %.3f", step, elapsed / 60, history[-1]["val"]["nll"])
    if cfg.save_replicas:
        torch.save(model.state_dict(), out / f"replica{rank}.pt")
    if ddp:
        import torch.distributed as dist

        dist.destroy_process_group()
    return 0


def _loop(cfg, model, train_model, opt, scaler, amp, amp_dtype, ddp, master, rng, device, train_shards, val_shards,
          history, step, t_start, bar, checkpoint):
    """The optimisation steps until max_steps or max_minutes; returns (step, elapsed seconds)."""
    elapsed = time.time() - t_start
    t_session, first_step = time.time(), step
    while step < cfg.max_steps:
        if cfg.max_minutes and (time.time() - t_start) / 60 >= cfg.max_minutes:
            log.info("time limit reached at step %d", step)
            break
        lr = lr_at(step, cfg, (time.time() - t_start) / 60)
        for group in opt.param_groups:
            group["lr"] = lr
        x, m = train_shards.batch(rng, cfg.batch_size, cfg.seq_len, cfg.transpose, cfg.stretch)
        context = hide_chords(x, rng, cfg.chord_hide)
        x, m = x.to(device), m.to(device)
        context = context.to(device) if context is not None else None
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp):
            if ddp:
                logits = train_model(x, context)
                loss = sum(torch.nn.functional.cross_entropy(lg.float().transpose(1, 2), x[:, 1:, k], reduction="none")
                           .mul(m).sum() / m.sum() for k, lg in enumerate(logits))
            else:
                loss, _ = model.loss(x, m, context)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        scaler.step(opt)
        scaler.update()
        step += 1
        elapsed = time.time() - t_start
        if master and (step % 25 == 0 or step == 1):
            history.append({"step": step, "train": loss.item()})
            log.info("step %d  loss %.3f  lr %.2e  %.1f min", step, loss.item(), lr, elapsed / 60)
        if master and step % cfg.eval_interval == 0:
            val = evaluate(model, val_shards, cfg, device)
            history.append({"step": step, "val": val})
            log.info("step %d  val NLL/event %.3f, chords hidden %.3f  (%s)", step, val["nll"], val["hidden_nll"],
                     ", ".join(f"{f} {val[f]:.3f}/{val['hidden_' + f]:.3f}" for f in FIELDS))
            if cfg.keep_best:
                checkpoint(at=(step, elapsed), best=val["hidden_nll"])
        if step % cfg.ckpt_interval == 0:
            checkpoint(at=(step, elapsed))
        bar.update(1)
        if master and cfg.max_minutes:  # tqdm's ETA counts steps: aim it at the step the time budget ends on
            left = max(0.0, cfg.max_minutes * 60 - elapsed)
            per_step = (time.time() - t_session) / max(1, step - first_step)
            bar.total = min(cfg.max_steps, step + int(left / per_step))
            bar.set_postfix_str(f"loss {loss.item():.3f}, time limit in {left / 60:.0f} min", refresh=False)
    return step, elapsed


if __name__ == "__main__":
    raise SystemExit(main())
