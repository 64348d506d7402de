"""A small decoder-only language model with one switch: where the LayerNorms sit.

For a sub-layer F (causal self-attention or the feed-forward network) acting on the residual
stream x, the three placements of Kim et al. (2025), §2 / Fig. 2, are

    Post-LN:  x ← LN(x + F(x))                    (Vaswani et al. 2017; no final norm needed)
    Pre-LN:   x ← x + F(LN_in(x))                 (GPT-2, Llama; a final LN before the head)
    Peri-LN:  x ← x + LN_out(F(LN_in(x)))         (Gemma 2, OLMo 2; a final LN before the head)

Everything else (widths, initialisation, positional embeddings, tied head) is shared, so a
difference between runs comes from the placement alone. ``forward(..., return_hidden=True)``
also returns the residual stream after the embedding and after every block, which is what
the variance measurements read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

PLACEMENTS = ("post", "pre", "peri")


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int = 2048
    seq_len: int = 64  # longest context (learned positional embeddings)
    d_model: int = 64
    n_layer: int = 6
    n_head: int = 4
    placement: str = "pre"  # post | pre | peri
    init_std: float = 0.02  # N(0, 0.02²) for every weight matrix, as in GPT-2 / Megatron


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        assert cfg.d_model % cfg.n_head == 0, "d_model must divide by n_head"
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.out = nn.Linear(cfg.d_model, cfg.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (
            t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v)
        )  # (B, nh, T, hs)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, nh, T, hs)
        return self.out(y.transpose(1, 2).reshape(B, T, C))  # (B, T, C)


class FeedForward(nn.Module):
    """FFN(x) = W_2 GELU(W_1 x), hidden width 4·d_model."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.up = nn.Linear(cfg.d_model, 4 * cfg.d_model)
        self.out = nn.Linear(4 * cfg.d_model, cfg.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(F.gelu(self.up(x)))


class Residual(nn.Module):
    """One sub-layer F with its residual connection and norms, placed as ``placement`` says."""

    def __init__(self, sublayer: nn.Module, d_model: int, placement: str):
        super().__init__()
        if placement not in PLACEMENTS:
            raise ValueError(f"placement {placement!r}: use one of {PLACEMENTS}")
        self.placement = placement
        self.f = sublayer
        # Post-LN has one norm after the addition; Pre-LN one before F; Peri-LN both sides of F
        self.ln_in = nn.LayerNorm(d_model) if placement in ("pre", "peri") else None
        self.ln_out = nn.LayerNorm(d_model) if placement in ("post", "peri") else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.placement == "post":
            return self.ln_out(x + self.f(x))  # x ← LN(x + F(x))
        h = self.f(self.ln_in(x))
        if self.placement == "peri":
            h = self.ln_out(h)  # x ← x + LN_out(F(LN_in(x)))
        return x + h  # Pre-LN: x ← x + F(LN_in(x))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.attn = Residual(CausalSelfAttention(cfg), cfg.d_model, cfg.placement)
        self.mlp = Residual(FeedForward(cfg), cfg.d_model, cfg.placement)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.attn(x))


class NormPlacementLM(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos = nn.Embedding(cfg.seq_len, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        # Post-LN's stream is already normalised after the last block; the other two need a
        # final norm before the head (the paper's Pre-LN and Peri-LN both have one).
        self.ln_f = nn.LayerNorm(cfg.d_model) if cfg.placement != "post" else nn.Identity()
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.head.weight = self.tok.weight  # tied input/output embeddings
        for m in self.modules():
            if isinstance(m, nn.Linear | nn.Embedding):
                nn.init.normal_(m.weight, 0.0, cfg.init_std)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        # The same plain N(0, 0.02²) init for all three placements, without GPT-2's 1/√(2L)
        # shrink of the output projections: that shrink is itself a fix for Pre-LN's growth,
        # and the comparison is of placements, not of init recipes.

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None, *, return_hidden=False
    ):
        B, T = idx.shape
        x = self.tok(idx) + self.pos(torch.arange(T, device=idx.device))  # (B, T, C)
        hidden = [x]
        for block in self.blocks:
            x = block(x)
            hidden.append(x)
        logits = self.head(self.ln_f(x))  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
        if return_hidden:
            return logits, loss, hidden
        return logits, loss


def depth_profile(hidden: list[torch.Tensor]) -> tuple[list[float], list[float]]:
    """Variance and largest |value| of each hidden state in ``hidden``.

    Variance is taken over every entry (batch, position and feature together, population
    form): the spread of the residual stream at that depth, which is what the paper plots
    against layer index. ``max |h|`` is the single largest entry, the quantity in which
    "massive activations" show.
    """
    var = [h.detach().double().var(unbiased=False).item() for h in hidden]
    amax = [h.detach().abs().max().item() for h in hidden]
    return var, amax


def growth_ratio(var: list[float]) -> float:
    """Var(x_L) / Var(x_1): the stream's variance after the last block over its variance after
    the first. Starting at block 1 rather than at the embedding keeps the ratio free of the
    embedding's init scale (0.02² here), which would otherwise dominate it."""
    return var[-1] / var[1]


def lr_at(step: int, total: int, peak: float, warmup: int, floor: float = 0.1) -> float:
    """Linear warm-up to ``peak``, then cosine decay to ``floor·peak``."""
    if step < warmup:
        return peak * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t)))
