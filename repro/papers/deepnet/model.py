"""A decoder-only Post-LN Transformer with DeepNorm's residual scale α and initialisation gain β.

DeepNorm (§3, Fig. 2 pseudo-code) changes two things in a Post-LN block:

    x_{l+1} = LN(α · x_l + G_l(x_l))            (plain Post-LN: α = 1)

and initialises the feed-forward weights and the attention's value and output projections with
Xavier-normal gain β (the query and key projections keep gain 1). For a decoder-only model with
N layers (Table 1, "decoder-only" row):

    α = (2N)^(1/4),    β = (8N)^(-1/4)

Plain Post-LN is the same code with α = β = 1, so the two differ in nothing else.

The query, key and value projections are one ``Linear`` of width 3d (one matmul instead of
three: at 100+ layers of width 16 the run time is almost all per-operation overhead), but each
d×d slice is initialised on its own, so that Xavier's fan-in/fan-out are those of a d×d
projection, as in the paper.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def deepnorm_constants(n_layer: int) -> tuple[float, float]:
    """(α, β) for a decoder-only DeepNet with ``n_layer`` layers (Table 1)."""
    return (2 * n_layer) ** 0.25, (8 * n_layer) ** -0.25


class Block(nn.Module):
    """One decoder layer: causal self-attention then a GELU feed-forward, each Post-LN."""

    def __init__(self, d: int, n_head: int, d_ff: int, alpha: float, beta: float):
        super().__init__()
        assert d % n_head == 0, "d must divide by n_head"
        self.n_head, self.alpha = n_head, alpha
        self.qkv = nn.Linear(d, 3 * d)
        self.o = nn.Linear(d, d)
        self.ln1 = nn.LayerNorm(d)
        self.ff1 = nn.Linear(d, d_ff)
        self.ff2 = nn.Linear(d_ff, d)
        self.ln2 = nn.LayerNorm(d)
        with torch.no_grad():
            # Fig. 2: xavier_normal_(w, gain=β) for v_proj, out_proj and the FFN; q, k gain 1
            for w, gain in zip(self.qkv.weight.split(d), (1.0, 1.0, beta)):
                w.copy_(nn.init.xavier_normal_(torch.empty(d, d), gain=gain))
            for lin in (self.o, self.ff1, self.ff2):
                nn.init.xavier_normal_(lin.weight, gain=beta)
            for lin in (self.qkv, self.o, self.ff1, self.ff2):
                nn.init.zeros_(lin.bias)

    def attn(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_head, C // self.n_head).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.o(y.transpose(1, 2).reshape(B, T, C))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.ln1(self.alpha * x + self.attn(x))
        return self.ln2(self.alpha * x + self.ff2(F.gelu(self.ff1(x))))


class DeepPostLN(nn.Module):
    """Token + learned position embeddings, ``n_layer`` Post-LN blocks, a linear head.

    ``deepnorm=False`` gives plain Post-LN (α = β = 1). ``alpha``/``beta`` override the
    Table 1 constants (used by the tests and to study other settings).
    """

    def __init__(
        self,
        vocab: int,
        seq_len: int,
        d: int,
        n_layer: int,
        n_head: int,
        d_ff: int,
        deepnorm: bool,
        alpha: float | None = None,
        beta: float | None = None,
    ):
        super().__init__()
        a, b = deepnorm_constants(n_layer) if deepnorm else (1.0, 1.0)
        self.alpha = a if alpha is None else alpha
        self.beta = b if beta is None else beta
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(seq_len, d)
        # unit-variance embeddings: what a Post-LN block's LayerNorm hands on anyway
        nn.init.normal_(self.tok.weight, 0.0, 1.0)
        nn.init.normal_(self.pos.weight, 0.0, 1.0)
        self.blocks = nn.ModuleList(
            Block(d, n_head, d_ff, self.alpha, self.beta) for _ in range(n_layer)
        )
        self.head = nn.Linear(d, vocab, bias=False)
        # F has unit variance per coordinate (it leaves a LayerNorm): logits start with std 1
        nn.init.normal_(self.head.weight, 0.0, 1 / math.sqrt(d))

    def hidden(self, idx: torch.Tensor) -> torch.Tensor:
        """F(x; θ): the last block's output, the quantity whose update DeepNet bounds."""
        x = self.tok(idx) + self.pos(torch.arange(idx.size(1), device=idx.device))  # (B, T, d)
        for block in self.blocks:
            x = block(x)
        return x

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        logits = self.head(self.hidden(idx))  # (B, T, V)
        if targets is None:
            return logits
        return logits, F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))


def sublayer_parameters(model: DeepPostLN, biases: bool = False) -> list[nn.Parameter]:
    """θ_1 … θ_2N of Theorem 4.1: the weight matrices of every self-attention and feed-forward
    sub-layer (W^Q, W^K, W^V, W^O, W^1, W^2).

    The theorem's sub-layers have no bias vectors and its LayerNorm has no parameters, so by
    default the biases, the LayerNorm gains/biases and the embeddings are left out;
    ``biases=True`` adds the sub-layers' bias vectors.
    """
    lins = [lin for b in model.blocks for lin in (b.qkv, b.o, b.ff1, b.ff2)]
    return [lin.weight for lin in lins] + ([lin.bias for lin in lins] if biases else [])
