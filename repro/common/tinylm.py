"""A small decoder-only Transformer LM and its training loop, for reproductions whose claim
is about something other than the architecture (optimisers, scaling, normalisation choice...).

Reproductions whose point *is* an architectural change write their own model in their own
folder; the switches here (norm kind and place, feed-forward kind) cover the common cases.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

SHAPE_FIELDS = ("vocab_size", "seq_len", "d_model", "n_layer", "n_head")


@dataclass(frozen=True)
class LMConfig:
    vocab_size: int = 4096
    seq_len: int = 128
    d_model: int = 128
    n_layer: int = 2
    n_head: int = 4
    d_ff: int | None = None  # default 4·d_model (2/3 of that for gated FFNs)
    norm: str = "layernorm"  # layernorm | rmsnorm
    norm_position: str = "pre"  # pre | post
    ffn: str = "gelu"  # relu | gelu | swish | glu | bilinear | reglu | geglu | swiglu
    bias: bool = True
    dropout: float = 0.0
    tie_embeddings: bool = True

    @classmethod
    def like(cls, cfg: Any, **overrides: Any) -> LMConfig:
        """The model shape from a reproduction's config (its vocab_size, seq_len, d_model,
        n_layer and n_head fields), with ``overrides`` for everything else or in place of those.
        Only these five are read: other fields of the same name may mean something else there."""
        shape = {k: getattr(cfg, k) for k in SHAPE_FIELDS if k not in overrides}
        return cls(**shape, **overrides)


class RMSNorm(nn.Module):
    """y = x / sqrt(mean(x²) + eps) · g   (Zhang & Sennrich 2019)."""

    def __init__(self, d: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def make_norm(kind: str, d: int) -> nn.Module:
    if kind == "layernorm":
        return nn.LayerNorm(d)
    if kind == "rmsnorm":
        return RMSNorm(d)
    raise ValueError(f"norm {kind!r}: use layernorm or rmsnorm")


GATED = {
    "glu": torch.sigmoid,
    "bilinear": lambda x: x,
    "reglu": F.relu,
    "geglu": F.gelu,
    "swiglu": F.silu,
}
PLAIN = {"relu": F.relu, "gelu": F.gelu, "swish": F.silu}


class FeedForward(nn.Module):
    """FFN(x) = W2 act(W1 x), or for gated variants W2 (act(W x) ⊙ V x)  (Shazeer 2020)."""

    def __init__(self, cfg: LMConfig):
        super().__init__()
        d = cfg.d_model
        if cfg.ffn in GATED:
            d_ff = cfg.d_ff or int(round(4 * d * 2 / 3))  # keeps parameters equal to the 4d MLP
            self.w_in = nn.Linear(d, 2 * d_ff, bias=cfg.bias)
            self.act = GATED[cfg.ffn]
            self.gated = True
        elif cfg.ffn in PLAIN:
            d_ff = cfg.d_ff or 4 * d
            self.w_in = nn.Linear(d, d_ff, bias=cfg.bias)
            self.act = PLAIN[cfg.ffn]
            self.gated = False
        else:
            raise ValueError(f"ffn {cfg.ffn!r}: use one of {sorted(PLAIN) + sorted(GATED)}")
        self.w_out = nn.Linear(d_ff, d, bias=cfg.bias)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.w_in(x)
        if self.gated:
            a, b = h.chunk(2, dim=-1)
            h = self.act(a) * b
        else:
            h = self.act(h)
        return self.drop(self.w_out(h))


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: LMConfig):
        super().__init__()
        assert cfg.d_model % cfg.n_head == 0, "d_model must divide by n_head"
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=cfg.bias)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.dropout = cfg.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (
            t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v)
        )  # (B, nh, T, hs)
        y = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0
        )
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class Block(nn.Module):
    def __init__(self, cfg: LMConfig):
        super().__init__()
        self.pre = cfg.norm_position == "pre"
        self.ln1 = make_norm(cfg.norm, cfg.d_model)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = make_norm(cfg.norm, cfg.d_model)
        self.mlp = FeedForward(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pre:
            x = x + self.attn(self.ln1(x))
            return x + self.mlp(self.ln2(x))
        x = self.ln1(x + self.attn(x))
        return self.ln2(x + self.mlp(x))


class TinyLM(nn.Module):
    def __init__(self, cfg: LMConfig):
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos = nn.Embedding(cfg.seq_len, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = (
            make_norm(cfg.norm, cfg.d_model) if cfg.norm_position == "pre" else nn.Identity()
        )
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.head.weight = self.tok.weight
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2: scale residual projections by depth
            if name.endswith(("proj.weight", "w_out.weight")):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 0.02)

    def non_embedding_params(self) -> int:
        emb = self.tok.weight.numel() + self.pos.weight.numel()
        head = 0 if self.cfg.tie_embeddings else self.head.weight.numel()
        return sum(p.numel() for p in self.parameters()) - emb - head

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        B, T = idx.shape
        x = self.drop(self.tok(idx) + self.pos(torch.arange(T, device=idx.device)))  # (B, T, C)
        for block in self.blocks:
            x = block(x)
        logits = self.head(self.ln_f(x))  # (B, T, V)
        if targets is None:
            return logits
        return logits, F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))


@torch.no_grad()
def evaluate(
    model: nn.Module,
    val_ids: torch.Tensor,
    seq_len: int,
    batch_size: int = 16,
    max_batches: int = 20,
    device: str = "cpu",
) -> float:
    """Mean cross-entropy (nats/token) over the first ``max_batches`` windows of ``val_ids``."""
    from repro.common.data import sequential_windows

    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for x, y in sequential_windows(val_ids, batch_size, seq_len, max_batches=max_batches):
        _, loss = model(x.to(device), y.to(device))
        total += loss.item() * x.numel()
        count += x.numel()
    model.train(was_training)
    return total / max(count, 1)


def cosine_lr(step: int, total: int, peak: float, warmup: int, floor: float = 0.1) -> float:
    """Linear warm-up then cosine decay to ``floor·peak``."""
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))


def train(
    model: nn.Module,
    batches,
    steps: int,
    *,
    optimizer: torch.optim.Optimizer,
    lr_at: Callable[[int], float] | None = None,
    clip: float | None = 1.0,
    device: str = "cpu",
    on_step: Callable[[int, float], None] | None = None,
    progress=None,
) -> list[float]:
    """Plain training loop; returns the training loss of every step. Stops early on NaN."""
    model.train()
    losses: list[float] = []
    steps_iter = range(steps) if progress is None else progress(range(steps), desc="train")
    for step in steps_iter:
        if lr_at is not None:
            for g in optimizer.param_groups:
                g["lr"] = lr_at(step)
        x, y = next(batches)
        _, loss = model(x.to(device), y.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        losses.append(loss.item())
        if on_step:
            on_step(step, losses[-1])
        if not math.isfinite(losses[-1]):
            break
    return losses
