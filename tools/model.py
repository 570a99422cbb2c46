"""The event transformer: pure torch, no I/O (training and export import it; the daemon never does).

One position per event (a row of livejam.events.COLUMNS). The input embedding
is the sum of the seven field embeddings (part, dt, chord, pitch, vel, pos,
tempo) plus a learned position embedding. The backbone is a pre-LayerNorm
decoder-only transformer. The output is factorised: heads predict the *next*
event's fields in the order part -> dt -> chord -> pitch -> vel. Head k sees the
backbone state plus embeddings of what is already known of the next event,
`cond = next_row[COND_COLUMNS]` = (part, dt, pos, chord, pitch), of which it reads
the first COND_COUNTS[k]: pos is not predicted, the beat map gives it once dt is
chosen, and it tells the chord head where in the bar the event falls. So one
backbone step yields a whole event and each field can be constrained (masked)
before the next is sampled.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from livejam.events import COND_COLUMNS, COND_COUNTS, FIELDS, Vocab  # noqa: F401 (FIELDS: re-exported)


@dataclass(frozen=True)
class ModelConfig:
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 192
    d_ff: int = 768
    max_len: int = 1024  # positions (events) the KV cache holds
    dropout: float = 0.1
    vocab: Vocab = field(default_factory=Vocab)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.ff1 = nn.Linear(cfg.d_model, cfg.d_ff)
        self.ff2 = nn.Linear(cfg.d_ff, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, past_k: torch.Tensor | None = None, past_v: torch.Tensor | None = None):
        """x: (B, T, C); past_k/v: (B, P, C) or None. Returns (y, k, v) with k, v of the T new positions."""
        B, T, C = x.shape
        H = self.n_head
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)  # (B, T, C) each
        k_all = k if past_k is None else torch.cat([past_k, k], dim=1)  # (B, P+T, C)
        v_all = v if past_v is None else torch.cat([past_v, v], dim=1)
        S = k_all.shape[1]
        qh = q.view(B, T, H, C // H).transpose(1, 2)  # (B, H, T, hd)
        kh = k_all.view(B, S, H, C // H).transpose(1, 2)  # (B, H, S, hd)
        vh = v_all.view(B, S, H, C // H).transpose(1, 2)
        dropout = self.drop.p if self.training else 0.0
        if S == T:  # no past (training): the fused causal kernel, no mask tensor
            att = F.scaled_dot_product_attention(qh, kh, vh, is_causal=True, dropout_p=dropout)
        else:  # causal over the new positions, full view of the past
            mask = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(diagonal=S - T)
            att = F.scaled_dot_product_attention(qh, kh, vh, attn_mask=mask, dropout_p=dropout)
        y = att.transpose(1, 2).reshape(B, T, C)
        x = x + self.drop(self.proj(y))
        x = x + self.drop(self.ff2(F.gelu(self.ff1(self.ln2(x)))))
        return x, k, v


class Head(nn.Module):
    """One field's head: MLP over the backbone state plus the chosen earlier fields."""

    def __init__(self, d_model: int, size: int):
        super().__init__()
        self.ln = nn.LayerNorm(d_model)
        self.fc = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, size)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.out(F.gelu(self.fc(self.ln(h))))


class EventTransformer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        v = cfg.vocab
        self.embed = nn.ModuleList(nn.Embedding(n, cfg.d_model) for n in v.field_sizes)  # COLUMNS order
        self.pos = nn.Embedding(cfg.max_len, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        # embeddings of the next event's known fields (COND_COLUMNS order), shared by the heads
        self.cond = nn.ModuleList(nn.Embedding(n, cfg.d_model) for n in v.cond_sizes)
        self.heads = nn.ModuleList(Head(cfg.d_model, n) for n in v.head_sizes)
        self.apply(self._init)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight") or name.endswith("ff2.weight"):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    def backbone(self, events: torch.Tensor, start_pos: int | torch.Tensor = 0,
                 past: list[tuple[torch.Tensor, torch.Tensor]] | None = None):
        """events: (B, T, 7) ids. Returns h (B, T, C) and the new (k, v) per layer, each (B, T, C)."""
        B, T, _ = events.shape
        x = sum(emb(events[..., i]) for i, emb in enumerate(self.embed))  # (B, T, C)
        pos = torch.arange(T, device=events.device) + start_pos
        x = self.drop(x + self.pos(pos))
        present = []
        for i, block in enumerate(self.blocks):
            pk, pv = past[i] if past is not None else (None, None)
            x, k, v = block(x, pk, pv)
            present.append((k, v))
        return self.ln_f(x), present

    def head_logits(self, h: torch.Tensor, k: int, cond: torch.Tensor | None) -> torch.Tensor:
        """Logits of field k of the next event. h: (..., C); cond: (..., >= COND_COUNTS[k]) ids of
        the next event's (part, dt, pos, chord, pitch)."""
        for j in range(COND_COUNTS[k]):
            h = h + self.cond[j](cond[..., j])
        return self.heads[k](h)

    def forward(self, events: torch.Tensor, context: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Teacher-forced logits for positions 0..T-2 predicting events 1..T-1: one (B, T-1, V_k) per field.

        context: what the backbone reads, when it differs from the targets `events` (training hides
        the chord fields of some windows there, as live melody carries no chord); the heads' cond
        always comes from `events`: the chord the next event is played in is known when its pitch is drawn."""
        h, _ = self.backbone(events if context is None else context)
        h = h[:, :-1]
        cond = events[:, 1:, list(COND_COLUMNS)]  # (B, T-1, 5)
        return [self.head_logits(h, k, cond) for k in range(len(FIELDS))]

    def loss(self, events: torch.Tensor, weights: torch.Tensor | None = None, context: torch.Tensor | None = None):
        """Mean NLL per event (sum over the predicted fields) and the per-field means.

        weights: (B, T-1) float mask of which targets count (e.g. 0 on padding); context: see forward.
        """
        logits = self.forward(events, context)
        target = events[:, 1:]
        per_field = []
        total = 0.0
        for k, lg in enumerate(logits):
            nll = F.cross_entropy(lg.reshape(-1, lg.shape[-1]), target[..., k].reshape(-1), reduction="none")
            nll = nll.view(target.shape[:2])
            if weights is not None:
                m = (nll * weights).sum() / weights.sum().clamp(min=1)
            else:
                m = nll.mean()
            per_field.append(m)
            total = total + m
        return total, per_field
