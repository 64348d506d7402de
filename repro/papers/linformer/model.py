"""A small bidirectional encoder for masked-language modelling whose attention is either full
softmax attention or Linformer's projected attention, and tools to read its attention maps.

Linformer (§4): with learned E, F ∈ R^{k×n} acting on the sequence axis,
    head = softmax(Q (E K)ᵀ / √d_h) · (F V)        (n×k scores instead of n×n)
E and F are shared by the heads of a layer (the paper's "headwise sharing").

The same blocks also build a causal language model (``causal=True``). Full attention is then
masked to j ≤ i. Linformer's projection mixes the whole sequence, so its causal form here
projects each query's *prefix* only: the i-th query sees Σ_{j≤i} E[:, j] k_j and
Σ_{j≤i} F[:, j] v_j (a running sum over positions), k slots of size d_h per query, memory
n·k·d_h per head: still linear in n, and at i = n − 1 exactly the paper's E K and F V.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class EncoderConfig:
    vocab_size: int = 2048
    seq_len: int = 128  # n, fixed: Linformer's projections are n wide
    d_model: int = 64
    n_layer: int = 2
    n_head: int = 4
    proj_k: int = 0  # 0 = full attention, else Linformer with this k
    causal: bool = False  # a causal LM (next-token targets) instead of a bidirectional encoder


def full_attention(q, k, v, causal: bool = False):
    """softmax(Q Kᵀ/√d) V with the n×n matrix P materialised.  q, k, v: (B, H, n, d).
    ``causal`` masks the keys after each query (j > i)."""
    s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # (B, H, n, n)
    if causal:
        n = s.shape[-1]
        s = s.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf"))
    p = torch.softmax(s, dim=-1)
    return p @ v, p


def linformer_attention(q, k, v, e, f):
    """softmax(Q (E K)ᵀ/√d) (F V); e, f: (k, n). Scores are (B, H, n, k)."""
    k_proj = torch.einsum("kn,bhnd->bhkd", e, k)  # (B, H, k, d)
    v_proj = torch.einsum("kn,bhnd->bhkd", f, v)
    p = torch.softmax(q @ k_proj.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1)
    return p @ v_proj, p


def causal_linformer_prefix_sums(q, k, v, e, f):
    """The causal Linformer written as its definition: query i attends over the k rows of
    Σ_{j≤i} E[:, j] k_jᵀ (and the same sum with F for the values), materialised as running
    sums: memory n·k·d per head, linear in n. Scores are (B, H, n, k); the last query's
    projected keys/values equal ``linformer_attention``'s."""
    k_proj = torch.einsum("kn,bhnd->bhnkd", e, k).cumsum(2)  # (B, H, n, k, d)
    v_proj = torch.einsum("kn,bhnd->bhnkd", f, v).cumsum(2)
    s = torch.einsum("bhnd,bhnkd->bhnk", q, k_proj) / math.sqrt(q.shape[-1])
    p = torch.softmax(s, dim=-1)
    return torch.einsum("bhnk,bhnkd->bhnd", p, v_proj), p


def causal_linformer_attention(q, k, v, e, f):
    """The same function as ``causal_linformer_prefix_sums``, regrouped for speed at short n:
    q_i · Σ_{j≤i} E[r, j] k_j = Σ_{j≤i} (q_i · k_j) E[r, j], so the scores are
    (masked Q Kᵀ) Eᵀ, and the output is ((P F) masked) V. Two n×n products instead of the
    n·k·d running sums (cheaper on a CPU at n = 64; the prefix-sum form is the linear-memory
    one, and a test checks that both agree)."""
    n = q.shape[-2]
    future = torch.ones(n, n, dtype=torch.bool, device=q.device).triu(1)
    qk = (q @ k.transpose(-1, -2)).masked_fill(future, 0.0)  # (B, H, n, n), j ≤ i only
    p = torch.softmax(qk @ e.T / math.sqrt(q.shape[-1]), dim=-1)  # (B, H, n, k)
    mix = (p @ f).masked_fill(future, 0.0)  # (B, H, n, n): weight of v_j in query i's output
    return mix @ v, p


class SelfAttention(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.h = cfg.n_head
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.k = cfg.proj_k
        self.causal = cfg.causal
        if cfg.proj_k:
            # E, F start as random projections scaled like JL maps (entries N(0, 1/k))
            self.e = nn.Parameter(torch.randn(cfg.proj_k, cfg.seq_len) / math.sqrt(cfg.proj_k))
            self.f = nn.Parameter(torch.randn(cfg.proj_k, cfg.seq_len) / math.sqrt(cfg.proj_k))
        self.keep = False  # when set, forward stores its attention maps and q, k, v
        self.saved = None

    def forward(self, x):
        B, n, C = x.shape
        q, k, v = (
            t.view(B, n, self.h, C // self.h).transpose(1, 2) for t in self.qkv(x).split(C, 2)
        )  # (B, H, n, d_h)
        if self.k and self.causal:
            y, p = causal_linformer_attention(q, k, v, self.e[:, :n], self.f[:, :n])
        elif self.k:
            y, p = linformer_attention(q, k, v, self.e[:, :n], self.f[:, :n])
        else:
            y, p = full_attention(q, k, v, causal=self.causal)
        if self.keep:
            self.saved = {"p": p.detach(), "q": q.detach(), "k": k.detach(), "v": v.detach()}
        return self.proj(y.transpose(1, 2).reshape(B, n, C))


class EncoderBlock(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.attn = SelfAttention(cfg)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.d_model, 4 * cfg.d_model),
            nn.GELU(),
            nn.Linear(4 * cfg.d_model, cfg.d_model),
        )

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class Encoder(nn.Module):
    """Pre-LN encoder with learned positions and a tied output layer: for MLM, or a causal LM
    when ``cfg.causal``."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos = nn.Embedding(cfg.seq_len, cfg.d_model)
        self.blocks = nn.ModuleList(EncoderBlock(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        for m in self.modules():
            if isinstance(m, nn.Linear | nn.Embedding):
                nn.init.normal_(m.weight, 0.0, 0.02)

    def forward(self, idx, targets=None):
        x = self.tok(idx) + self.pos(torch.arange(idx.shape[1], device=idx.device))
        for blk in self.blocks:
            x = blk(x)
        logits = self.ln_f(x) @ self.tok.weight.T  # (B, n, V)
        if targets is None:
            return logits
        # targets hold -100 where nothing was masked (MLM), or the next tokens (causal LM)
        return logits, F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)


def mask_tokens(x: torch.Tensor, mask_id: int, vocab: int, rate: float, gen: torch.Generator):
    """BERT's recipe: choose ``rate`` of the positions; of those 80% become [MASK], 10% a random
    token, 10% stay; the loss is on the chosen positions only."""
    chosen = torch.rand(x.shape, generator=gen) < rate
    targets = torch.where(chosen, x, torch.full_like(x, -100))
    roll = torch.rand(x.shape, generator=gen)
    inp = torch.where(chosen & (roll < 0.8), torch.full_like(x, mask_id), x)
    rand_tok = torch.randint(0, vocab, x.shape, generator=gen)
    inp = torch.where(chosen & (roll >= 0.8) & (roll < 0.9), rand_tok, inp)
    return inp, targets
