"""A small decoder with three position encodings: learned absolute, rotary, and CoPE.

Contextual Position Encoding (Golovneva et al. 2024, §3). For query i and an earlier key j:

    g_ij = σ(q_iᵀ k_j)                          gate: does token j count for query i?   (eq. 3)
    p_ij = Σ_{t=j}^{i} g_it                     position = number of counted tokens     (eq. 4)
    e[p] = (p − ⌊p⌋) e[⌈p⌉] + (1 − p + ⌊p⌋) e[⌊p⌋]   interpolated position embedding    (eq. 5)
    a_ij = Softmax_j( q_iᵀ (k_j + e[p_ij]) )                                            (eq. 6)

Positions are clipped at ``npos_max − 1``. Computing q_iᵀ e[p] for every integer p first and
interpolating those logits (rather than the embeddings) gives the same a_ij with an (T, npos)
matrix instead of a (T, T, d) one (§3, "computation").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn


@dataclass(frozen=True)
class DecoderConfig:
    vocab_size: int = 5
    max_len: int = 128  # longest sequence (absolute embeddings need it)
    d_model: int = 64
    n_layer: int = 2
    n_head: int = 4
    pos: str = "cope"  # absolute | rope | cope
    npos_max: int = 16  # CoPE: positions are clipped below this
    rope_base: float = 10000.0


def cope_positions(gate_logits: torch.Tensor) -> torch.Tensor:
    """p_ij = Σ_{t=j}^{i} σ(q_iᵀ k_t) for j ≤ i. gate_logits: (..., T, T) = q kᵀ (unscaled).
    Entries above the diagonal are zeroed before the reverse cumulative sum so they add
    nothing; their own values are meaningless and masked later."""
    T = gate_logits.shape[-1]
    causal = torch.ones(T, T, dtype=torch.bool, device=gate_logits.device).tril()
    gates = torch.sigmoid(gate_logits).masked_fill(~causal, 0.0)
    # Σ_{t=j}^{i} g_it = Σ_t g_it − Σ_{t<j} g_it: one forward cumsum, no reversed copies
    return gates.sum(-1, keepdim=True) - gates.cumsum(-1) + gates  # (..., T, T)


def interpolate_logits(pos_logits: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """q_iᵀ e[p_ij] from the integer table z[i, n] = q_iᵀ e[n], by linear interpolation.
    pos_logits: (..., T, npos), p: (..., T, T) already clipped to [0, npos − 1]."""
    lo = p.floor()
    frac = p - lo
    lo = lo.long()
    hi = (lo + 1).clamp(max=pos_logits.shape[-1] - 1)
    z_lo = pos_logits.gather(-1, lo)
    z_hi = pos_logits.gather(-1, hi)
    return frac * z_hi + (1 - frac) * z_lo


def rope(x: torch.Tensor, base: float) -> torch.Tensor:
    """Rotate pairs (x_i, x_{i + hs/2}) by angle t·base^(−2i/hs). x: (B, nh, T, hs)."""
    T, hs = x.shape[-2:]
    inv = base ** (-torch.arange(0, hs, 2, dtype=torch.float32, device=x.device) / hs)
    ang = torch.arange(T, dtype=torch.float32, device=x.device)[:, None] * inv  # (T, hs/2)
    cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)


class Attention(nn.Module):
    def __init__(self, c: DecoderConfig):
        super().__init__()
        self.c = c
        self.hs = c.d_model // c.n_head
        self.qkv = nn.Linear(c.d_model, 3 * c.d_model)
        self.proj = nn.Linear(c.d_model, c.d_model)
        if c.pos == "cope":
            # e[0 … npos_max − 1], one table per layer shared by the heads (as in the paper)
            self.pos_emb = nn.Parameter(torch.zeros(c.npos_max, self.hs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.c.n_head, self.hs).transpose(1, 2) for t in (q, k, v))
        if self.c.pos == "rope":
            q, k = rope(q, self.c.rope_base), rope(k, self.c.rope_base)
        logits = q @ k.transpose(-2, -1)  # (B, nh, T, T)
        if self.c.pos == "cope":
            # clamp(0, …): rounding can leave −1e-7 where the exact sum is 0
            p = cope_positions(logits).clamp(0, self.c.npos_max - 1)
            logits = logits + interpolate_logits(q @ self.pos_emb.T, p)  # (B, nh, T, T)
        causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        att = (logits / math.sqrt(self.hs)).masked_fill(~causal, float("-inf")).softmax(-1)
        y = att @ v  # (B, nh, T, hs)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class Block(nn.Module):
    def __init__(self, c: DecoderConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(c.d_model)
        self.attn = Attention(c)
        self.ln2 = nn.LayerNorm(c.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(c.d_model, 4 * c.d_model), nn.GELU(), nn.Linear(4 * c.d_model, c.d_model)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class Decoder(nn.Module):
    def __init__(self, c: DecoderConfig):
        super().__init__()
        self.c = c
        self.tok = nn.Embedding(c.vocab_size, c.d_model)
        self.pos = nn.Embedding(c.max_len, c.d_model) if c.pos == "absolute" else None
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.n_layer))
        self.ln_f = nn.LayerNorm(c.d_model)
        self.head = nn.Linear(c.d_model, c.vocab_size, bias=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.tok(idx)
        if self.pos is not None:
            x = x + self.pos(torch.arange(idx.shape[1], device=idx.device))
        for b in self.blocks:
            x = b(x)
        return self.head(self.ln_f(x))  # (B, T, V)
