"""Post-LN and Pre-LN decoder-only Transformers as defined in Xiong et al. (2020), Fig. 1.

Post-LN (the original Transformer), layer l:
    x_{l,1} = LN(x_l + MultiHeadAtt(x_l))
    x_{l+1} = LN(x_{l,1} + FFN(x_{l,1}))
Pre-LN:
    x_{l,1} = x_l + MultiHeadAtt(LN(x_l))
    x_{l+1} = x_{l,1} + FFN(LN(x_{l,1}))
    final:   LN(x_{L+1}) before the output projection
with FFN(x) = ReLU(x W¹ + b¹) W² + b². Weights use Xavier initialisation, as in the paper's
analysis (§3.2), and nothing scales them with depth: that scaling would itself change the
gradient profile being measured. As in the Transformer the paper builds on (and fairseq,
which its experiments use), token embeddings are multiplied by √d and sinusoidal positions
are added, so the input entries have unit variance.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F


def sinusoidal(positions: int, d: int) -> torch.Tensor:
    """PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(pos / 10000^(2i/d))."""
    pos = torch.arange(positions, dtype=torch.float32)[:, None]
    angles = pos * torch.pow(10000.0, -torch.arange(0, d, 2, dtype=torch.float32) / d)  # (P, d/2)
    pe = torch.zeros(positions, d)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(angles), torch.cos(angles)
    return pe


class Block(nn.Module):
    def __init__(self, d: int, n_head: int, d_ff: int, norm: Literal["post", "pre"]):
        super().__init__()
        self.norm, self.n_head = norm, n_head
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.w1, self.w2 = nn.Linear(d, d_ff), nn.Linear(d_ff, d)
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)

    def attn(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, nh, T, hs)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))

    def ffn(self, x):
        return self.w2(F.relu(self.w1(x)))

    def forward(self, x):
        if self.norm == "post":
            x = self.ln1(x + self.attn(x))
            return self.ln2(x + self.ffn(x))
        x = x + self.attn(self.ln1(x))
        return x + self.ffn(self.ln2(x))


class LM(nn.Module):
    def __init__(
        self,
        vocab: int,
        d: int,
        n_layer: int,
        n_head: int,
        seq_len: int,
        norm: Literal["post", "pre"],
        d_ff: int | None = None,
    ):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.register_buffer("pos", sinusoidal(seq_len, d), persistent=False)
        self.blocks = nn.ModuleList(Block(d, n_head, d_ff or 4 * d, norm) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(d) if norm == "pre" else nn.Identity()
        self.head = nn.Linear(d, vocab, bias=False)
        for name, p in self.named_parameters():
            if p.dim() == 2 and not name.startswith("tok"):
                nn.init.xavier_uniform_(p)
            elif name.endswith("bias"):
                nn.init.zeros_(p)
        nn.init.normal_(self.tok.weight, 0.0, d**-0.5)
        self.scale = math.sqrt(d)

    def forward(self, idx, targets=None):
        T = idx.shape[1]
        x = self.tok(idx) * self.scale + self.pos[:T]  # (B, T, C)
        for block in self.blocks:
            x = block(x)
        logits = self.head(self.ln_f(x))
        if targets is None:
            return logits
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def layer_grad_norms(model: LM, batches) -> dict[str, list[float]]:
    """Mean over batches of ‖∂L/∂W‖_F for each block's W¹, W² (FFN) and W^{QKV}; one value
    per layer, input side first. Gradients are taken at the model's current weights."""
    out = {"w1": [], "w2": [], "qkv": []}
    sums = {k: [0.0] * len(model.blocks) for k in out}
    n = 0
    for x, y in batches:
        model.zero_grad(set_to_none=True)
        model(x, y).backward()
        for i, b in enumerate(model.blocks):
            sums["w1"][i] += b.w1.weight.grad.norm().item()
            sums["w2"][i] += b.w2.weight.grad.norm().item()
            sums["qkv"][i] += b.qkv.weight.grad.norm().item()
        n += 1
    model.zero_grad(set_to_none=True)
    return {k: [s / n for s in v] for k, v in sums.items()}
