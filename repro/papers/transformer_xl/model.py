"""A small Transformer-XL: segment-level recurrence with relative positional attention.

Recurrence (Dai et al. 2019, §3.2). For layer n and segment τ + 1, the keys and values come
from the previous segment's cached layer input (no gradient) joined to the current one:

    h̃^{n−1}_{τ+1} = [SG(h^{n−1}_τ) ∘ h^{n−1}_{τ+1}]
    q = h^{n−1}_{τ+1} W_q,   k = h̃^{n−1}_{τ+1} W_k,   v = h̃^{n−1}_{τ+1} W_v

Relative attention score between query i and key j (§3.3), with R the sinusoidal encoding of
the distance i − j, a separate key projection W_{k,R} for positions and two learned biases:

    A_ij = q_iᵀ k_j + q_iᵀ W_{k,R} R_{i−j} + uᵀ k_j + vᵀ W_{k,R} R_{i−j}
         = (q_i + u)ᵀ k_j  +  (q_i + v)ᵀ W_{k,R} R_{i−j}           (terms a+c, b+d)

The second term is computed once per distance (an L × K matrix) and shifted into (query, key)
order, as in the paper's appendix B, instead of building an L × K × d tensor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class XLConfig:
    vocab_size: int = 2048
    d_model: int = 64
    n_layer: int = 2
    n_head: int = 4
    d_ff: int = 256
    dropout: float = 0.0


def sinusoid(distances: torch.Tensor, d: int) -> torch.Tensor:
    """R_k = [sin(k/10000^(2i/d)), cos(k/10000^(2i/d))] for each distance k. -> (K, d)"""
    inv = 10000 ** (-torch.arange(0, d, 2, dtype=torch.float32, device=distances.device) / d)
    ang = distances.float()[:, None] * inv
    return torch.cat((ang.sin(), ang.cos()), dim=-1)


def rel_shift(bd: torch.Tensor) -> torch.Tensor:
    """bd[..., i, r]: score of query i with distance row r, rows ordered from distance K − 1
    down to 0. Returns [..., i, j] = bd[..., i, j + L − 1 − i], the score for distance
    (M + i) − j where M = K − L; valid for j ≤ M + i (the causal part).

    Pad one zero column on the left, read the (L, K + 1) buffer as (K + 1, L), drop the first
    row, read back as (L, K): row i then starts L − i − 1 columns further along."""
    *lead, L, K = bd.shape
    padded = F.pad(bd, (1, 0))  # (..., L, K + 1)
    return padded.reshape(*lead, K + 1, L)[..., 1:, :].reshape(*lead, L, K)


def rel_scores_explicit(q_v: torch.Tensor, pos_k: torch.Tensor, M: int) -> torch.Tensor:
    """The same term the slow way: gather W_{k,R} R_{i−j} for every (i, j). For tests.
    q_v: (B, h, L, hs); pos_k: (K, h, hs) ordered by distance K − 1 … 0."""
    L, K = q_v.shape[-2], pos_k.shape[0]
    i = torch.arange(L)[:, None]
    j = torch.arange(K)[None, :]
    dist = (M + i - j).clamp(0, K - 1)  # (L, K)
    rows = K - 1 - dist
    gathered = pos_k[rows]  # (L, K, h, hs)
    return torch.einsum("bhid,ijhd->bhij", q_v, gathered)


class RelAttention(nn.Module):
    def __init__(self, c: XLConfig):
        super().__init__()
        self.c = c
        self.hs = c.d_model // c.n_head
        self.q = nn.Linear(c.d_model, c.d_model, bias=False)
        self.kv = nn.Linear(c.d_model, 2 * c.d_model, bias=False)
        self.k_pos = nn.Linear(c.d_model, c.d_model, bias=False)  # W_{k,R}
        self.u = nn.Parameter(torch.zeros(c.n_head, self.hs))
        self.v = nn.Parameter(torch.zeros(c.n_head, self.hs))
        self.out = nn.Linear(c.d_model, c.d_model, bias=False)

    def forward(self, h: torch.Tensor, mem: torch.Tensor | None) -> torch.Tensor:
        B, L, C = h.shape
        nh, hs = self.c.n_head, self.hs
        full = h if mem is None else torch.cat((mem, h), dim=1)  # (B, K, C), K = M + L
        K = full.shape[1]
        M = K - L
        q = self.q(h).view(B, L, nh, hs).transpose(1, 2)  # (B, nh, L, hs)
        k, v = self.kv(full).split(C, dim=2)
        k = k.view(B, K, nh, hs).transpose(1, 2)  # (B, nh, K, hs)
        v = v.view(B, K, nh, hs).transpose(1, 2)
        dist = torch.arange(K - 1, -1, -1, device=h.device)  # distances K − 1 … 0
        pos_k = self.k_pos(sinusoid(dist, C)).view(K, nh, hs)  # (K, nh, hs)
        ac = (q + self.u[:, None]) @ k.transpose(-2, -1)  # (B, nh, L, K)
        bd = rel_shift(torch.einsum("bhid,khd->bhik", q + self.v[:, None], pos_k))
        scores = (ac + bd) / math.sqrt(hs)
        causal = torch.ones(L, K, dtype=torch.bool, device=h.device).tril(diagonal=M)
        att = scores.masked_fill(~causal, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, L, C)
        return self.out(y)


class Block(nn.Module):
    def __init__(self, c: XLConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(c.d_model)
        self.attn = RelAttention(c)
        self.ln2 = nn.LayerNorm(c.d_model)
        self.ff = nn.Sequential(
            nn.Linear(c.d_model, c.d_ff), nn.GELU(), nn.Linear(c.d_ff, c.d_model)
        )
        self.drop = nn.Dropout(c.dropout)

    def forward(self, h: torch.Tensor, mem: torch.Tensor | None) -> torch.Tensor:
        # Pre-LN; the memory is the cached *input* of this layer, normalised the same way.
        h = h + self.drop(self.attn(self.ln1(h), None if mem is None else self.ln1(mem)))
        return h + self.drop(self.ff(self.ln2(h)))


class TransformerXL(nn.Module):
    def __init__(self, c: XLConfig):
        super().__init__()
        self.c = c
        self.emb = nn.Embedding(c.vocab_size, c.d_model)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.n_layer))
        self.ln_f = nn.LayerNorm(c.d_model)
        self.head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        self.head.weight = self.emb.weight
        for m in self.modules():
            if isinstance(m, nn.Linear | nn.Embedding):
                nn.init.normal_(m.weight, 0.0, 0.02)

    def forward(self, idx: torch.Tensor, mems: list | None, mem_len: int):
        """Logits for one segment and the memory for the next: each layer's input over the
        last ``mem_len`` positions of [old memory, this segment], detached (SG in §3.2)."""
        h = self.emb(idx)  # (B, L, d)
        new_mems = []
        for n, block in enumerate(self.blocks):
            mem = None if not mems or mem_len == 0 else mems[n]
            if mem_len > 0:
                cat = h if mem is None else torch.cat((mem, h), dim=1)
                new_mems.append(cat[:, -mem_len:].detach())
            h = block(h, mem)
        return self.head(self.ln_f(h)), new_mems
