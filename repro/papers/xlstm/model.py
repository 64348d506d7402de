"""A small xLSTM language model: residual stacks of mLSTM and sLSTM blocks (§2.4).

mLSTM block ("pre up-projection"): LayerNorm, project up by 2, a causal convolution and
swish feed q and k, v comes from the up-projected input, the cell runs per head, a per-head
norm and a learnable skip from the convolution follow, the result is gated by swish of a
second up-projected branch and projected back down.
sLSTM block ("post up-projection"): LayerNorm, the sLSTM cell with block-diagonal recurrent
weights per head, a per-head norm, then a gated feed-forward network (factor 4/3, GELU).

Simplifications (stated, not hidden): dense instead of block-diagonal q/k/v projections in
the mLSTM block, and no convolution in front of the sLSTM gates (optional in the paper).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .cells import mlstm_parallel, mlstm_recurrent, slstm_recurrent


@dataclass(frozen=True)
class XLSTMConfig:
    vocab_size: int = 2048
    d_model: int = 64
    blocks: str = "ms"  # one letter per block: m = mLSTM, s = sLSTM (the paper's xLSTM[a:b])
    heads: int = 4
    conv: int = 4  # causal convolution width in the mLSTM block
    mlstm_form: str = "parallel"  # "parallel" (training) or "recurrent"


class HeadNorm(nn.Module):
    """LayerNorm over each head's channels separately (the paper's GroupNorm)."""

    def __init__(self, heads: int, dim: int):
        super().__init__()
        self.heads = heads
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):  # (B, T, dim)
        B, T, D = x.shape
        h = x.view(B, T, self.heads, D // self.heads)
        h = F.layer_norm(h, h.shape[-1:])
        return h.reshape(B, T, D) * self.weight


class MLSTMBlock(nn.Module):
    def __init__(self, cfg: XLSTMConfig):
        super().__init__()
        d, inner = cfg.d_model, 2 * cfg.d_model
        self.heads, self.form = cfg.heads, cfg.mlstm_form
        self.ln = nn.LayerNorm(d)
        self.up = nn.Linear(d, 2 * inner)
        self.conv = nn.Conv1d(inner, inner, cfg.conv, groups=inner, padding=cfg.conv - 1)
        self.q = nn.Linear(inner, inner, bias=False)
        self.k = nn.Linear(inner, inner, bias=False)
        self.v = nn.Linear(inner, inner, bias=False)
        self.gates = nn.Linear(3 * inner, 2 * cfg.heads)  # (ĩ, f̃) per head from q, k, v
        self.norm = HeadNorm(cfg.heads, inner)
        self.skip = nn.Parameter(torch.ones(inner))
        self.down = nn.Linear(inner, d)
        with torch.no_grad():
            # forget gates start near 1 (σ(3..6)) so memories last; input gates near e^0
            self.gates.bias[cfg.heads :] = torch.linspace(3.0, 6.0, cfg.heads)
            self.gates.bias[: cfg.heads].normal_(0, 0.1)
            self.gates.weight.zero_()
        nn.init.zeros_(self.down.weight)

    def forward(self, x):
        B, T, _ = x.shape
        xm, z = self.up(self.ln(x)).chunk(2, dim=-1)  # (B, T, inner) each
        xc = F.silu(self.conv(xm.transpose(1, 2))[..., :T].transpose(1, 2))  # causal: cut the tail
        q, k, v = self.q(xc), self.k(xc), self.v(xm)
        i_pre, f_pre = self.gates(torch.cat([q, k, v], -1)).transpose(1, 2).chunk(2, dim=1)

        def heads(t):
            return t.view(B, T, self.heads, -1).transpose(1, 2)  # (B, H, T, dh)

        cell = mlstm_parallel if self.form == "parallel" else mlstm_recurrent
        h = cell(heads(q), heads(k), heads(v), i_pre, f_pre)  # (B, H, T, dh)
        h = self.norm(h.transpose(1, 2).reshape(B, T, -1)) + self.skip * xc
        return x + self.down(h * F.silu(z))


class SLSTMBlock(nn.Module):
    def __init__(self, cfg: XLSTMConfig):
        super().__init__()
        d, H = cfg.d_model, cfg.heads
        self.heads = H
        self.ln = nn.LayerNorm(d)
        self.w = nn.Linear(d, 4 * d)  # z̃, ĩ, f̃, õ from the input
        self.R = nn.Parameter(torch.randn(4, H, d // H, d // H) / math.sqrt(d // H))
        self.norm = HeadNorm(H, d)
        self.ln2 = nn.LayerNorm(d)
        ff = int(round(4 * d / 3))
        self.ff_in = nn.Linear(d, 2 * ff)
        self.ff_out = nn.Linear(ff, d)
        with torch.no_grad():
            self.w.bias.view(4, d)[2] = torch.linspace(3.0, 6.0, d)  # forget gates near 1
        nn.init.zeros_(self.ff_out.weight)

    def forward(self, x):
        B, T, d = x.shape
        proj = self.w(self.ln(x)).view(B, T, 4, self.heads, d // self.heads)
        h = slstm_recurrent(proj, self.R).reshape(B, T, d)
        x = x + self.norm(h)
        a, b = self.ff_in(self.ln2(x)).chunk(2, dim=-1)
        return x + self.ff_out(F.gelu(a) * b)


class XLSTM(nn.Module):
    def __init__(self, cfg: XLSTMConfig):
        super().__init__()
        self.cfg = cfg
        self.emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        kinds = {"m": MLSTMBlock, "s": SLSTMBlock}
        self.blocks = nn.ModuleList(kinds[c](cfg) for c in cfg.blocks)
        self.ln_out = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.head.weight = self.emb.weight  # tied, as in the Transformer peer
        nn.init.normal_(self.emb.weight, 0.0, 0.02)

    def forward(self, idx, targets=None):
        x = self.emb(idx)  # (B, T, d)
        for blk in self.blocks:
            x = blk(x)
        logits = self.head(self.ln_out(x))
        if targets is None:
            return logits
        return logits, F.cross_entropy(logits.flatten(0, 1), targets.flatten())
