"""A Gemma-style decoder (Gemma Team 2024, §2 "Model Architecture") and its parameter count.

Pieces, in the order a token meets them:
  embedding E (V × d), scaled by √d           x_0 = √d · E[token]
  N blocks, each                              x = x + Attn(RMSNorm(x)); x = x + GeGLU(RMSNorm(x))
  a final RMSNorm and the tied output layer   logits = RMSNorm(x_N) Eᵀ

RMSNorm keeps a zero-initialised weight w and scales by (1 + w), so a fresh norm is the plain
x / rms(x). Attention has n_head query heads and n_kv_head key/value heads: 1 for the 2B model
(multi-query attention, Shazeer 2019) and n_head for the 7B (multi-head). Rotary embeddings
(Su et al. 2021) rotate q and k. The head size (256) times the head count need not equal d:
for the 7B model 16 · 256 = 4096 ≠ 3072.

Table 1's "feedforward hidden dims" (32768 for 2B, 49152 for 7B) is the width of the gate and
up projections together: each of the two is half of it. Only that reading gives Table 2's
counts (see ``param_counts``); the released checkpoints' configs list 16384 and 24576.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class GemmaConfig:
    vocab_size: int = 256128  # SentencePiece vocabulary (Table 1)
    d_model: int = 2048
    n_layer: int = 18
    n_head: int = 8  # query heads
    n_kv_head: int = 1  # 1 = multi-query attention (2B); n_head = multi-head (7B)
    head_dim: int = 256
    ffn_hidden: int = 32768  # Table 1's number: gate + up together, each ffn_hidden // 2
    rope_base: float = 10000.0
    eps: float = 1e-6


# Table 1 of the paper.
GEMMA_2B = GemmaConfig(256128, 2048, 18, 8, 1, 256, 32768)
GEMMA_7B = GemmaConfig(256128, 3072, 28, 16, 16, 256, 49152)


def param_counts(c: GemmaConfig) -> tuple[int, int]:
    """(embedding, non-embedding) parameters in closed form.

    per layer: q and o       2 · d · n_head · head_dim
               k and v       2 · d · n_kv_head · head_dim
               GeGLU         3 · d · ffn_hidden/2      (gate, up: d → ffn/2; down: ffn/2 → d)
               two RMSNorms  2 · d
    plus one final RMSNorm (d). The output layer is the embedding (tied), so it adds nothing.
    """
    d = c.d_model
    attn = 2 * d * c.n_head * c.head_dim + 2 * d * c.n_kv_head * c.head_dim
    ffn = 3 * d * (c.ffn_hidden // 2)
    per_layer = attn + ffn + 2 * d
    return c.vocab_size * d, c.n_layer * per_layer + d


class RMSNorm(nn.Module):
    """y = x / sqrt(mean(x²) + eps) · (1 + w), with w initialised to zero."""

    def __init__(self, d: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.zeros(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * (1 + self.weight)


def rope_cos_sin(T: int, head_dim: int, base: float, device=None, dtype=torch.float32):
    """θ_i = base^(−2i/head_dim), angle(t, i) = t · θ_i; returns cos and sin of shape (T, hd/2)."""
    inv_freq = base ** (
        -torch.arange(0, head_dim, 2, device=device, dtype=torch.float64) / head_dim
    )
    angles = torch.arange(T, device=device, dtype=torch.float64)[:, None] * inv_freq
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each pair (x_i, x_{i + hd/2}) by angle(t, i). x: (B, h, T, hd)."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)


class Attention(nn.Module):
    def __init__(self, c: GemmaConfig):
        super().__init__()
        assert c.n_head % c.n_kv_head == 0, "query heads must divide into key/value groups"
        self.c = c
        self.q_proj = nn.Linear(c.d_model, c.n_head * c.head_dim, bias=False)
        self.k_proj = nn.Linear(c.d_model, c.n_kv_head * c.head_dim, bias=False)
        self.v_proj = nn.Linear(c.d_model, c.n_kv_head * c.head_dim, bias=False)
        self.o_proj = nn.Linear(c.n_head * c.head_dim, c.d_model, bias=False)

    def forward(self, x: torch.Tensor, manual: bool = False) -> torch.Tensor:
        c = self.c
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, c.n_head, c.head_dim).transpose(1, 2)  # (B, nh, T, hs)
        k = self.k_proj(x).view(B, T, c.n_kv_head, c.head_dim).transpose(1, 2)  # (B, nkv, T, hs)
        v = self.v_proj(x).view(B, T, c.n_kv_head, c.head_dim).transpose(1, 2)
        cos, sin = rope_cos_sin(T, c.head_dim, c.rope_base, x.device, x.dtype)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if manual:
            # Readable path: every query head of a group reads the same key/value head.
            group = c.n_head // c.n_kv_head
            k = k.repeat_interleave(group, dim=1)  # (B, nh, T, hs)
            v = v.repeat_interleave(group, dim=1)
            att = (q @ k.transpose(-2, -1)) / math.sqrt(c.head_dim)  # (B, nh, T, T)
            mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
            y = att.masked_fill(~mask, float("-inf")).softmax(-1) @ v
        else:
            y = F.scaled_dot_product_attention(
                q, k, v, is_causal=True, enable_gqa=c.n_kv_head != c.n_head
            )
        return self.o_proj(y.transpose(1, 2).reshape(B, T, c.n_head * c.head_dim))


class GeGLU(nn.Module):
    """FFN(x) = W_down (GELU(W_gate x) ⊙ W_up x)  (Shazeer 2020), tanh-approximated GELU."""

    def __init__(self, c: GemmaConfig):
        super().__init__()
        hidden = c.ffn_hidden // 2
        self.gate_proj = nn.Linear(c.d_model, hidden, bias=False)
        self.up_proj = nn.Linear(c.d_model, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, c.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.gelu(self.gate_proj(x), approximate="tanh") * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, c: GemmaConfig):
        super().__init__()
        self.input_norm = RMSNorm(c.d_model, c.eps)
        self.attn = Attention(c)
        self.ffn_norm = RMSNorm(c.d_model, c.eps)
        self.mlp = GeGLU(c)

    def forward(self, x: torch.Tensor, manual: bool = False) -> torch.Tensor:
        x = x + self.attn(self.input_norm(x), manual)
        return x + self.mlp(self.ffn_norm(x))


class Gemma(nn.Module):
    def __init__(self, c: GemmaConfig, init_std: float = 0.02):
        super().__init__()
        self.c = c
        self.embed = nn.Embedding(c.vocab_size, c.d_model)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.n_layer))
        self.final_norm = RMSNorm(c.d_model, c.eps)
        for name, p in self.named_parameters():
            if p.dim() == 2:
                nn.init.normal_(p, 0.0, init_std)
            if name.endswith(("o_proj.weight", "down_proj.weight")):
                nn.init.normal_(p, 0.0, init_std / math.sqrt(2 * c.n_layer))

    def embedding_params(self) -> int:
        return self.embed.weight.numel()

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, manual=False):
        x = self.embed(idx) * math.sqrt(self.c.d_model)  # (B, T, d)
        for block in self.blocks:
            x = block(x, manual)
        logits = self.final_norm(x) @ self.embed.weight.T  # tied output layer, (B, T, V)
        if targets is None:
            return logits
        return logits, F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))


def count_instance(c: GemmaConfig) -> tuple[int, int]:
    """(embedding, non-embedding) by building the module on the meta device (no memory) and
    summing ``p.numel()``; ``parameters()`` lists the tied embedding once."""
    with torch.device("meta"):
        model = Gemma(c)
    total = sum(p.numel() for p in model.parameters())
    return model.embedding_params(), total - model.embedding_params()
