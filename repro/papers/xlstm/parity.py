"""State tracking on a formal language: running parity (the paper's Fig. 4 kind of task).

Input: a string of bits x_1..x_L. Target at every position t: the parity x_1 ⊕ … ⊕ x_t.
Models are trained on strings of ``train_len`` bits and tested on longer strings; positions
t ≤ train_len measure the in-distribution task, positions beyond it length extrapolation.
Accuracy is reported rescaled as in the paper's Fig. 4, so that chance is 0 and perfect is 1:
(accuracy − 1/2) / (1 − 1/2).

Two arms at the same width:
  * sLSTM: bit embedding, sLSTM blocks (``model.SLSTMBlock``: the cell with exponential
    gating and recurrent connections, then a gated feed-forward layer), a linear read-out.
  * Transformer: a Llama-style causal decoder (the paper's Transformer baseline is Llama):
    pre-RMSNorm, rotary position embeddings (so positions beyond the training length are
    defined), SwiGLU feed-forward, the same read-out. A learned absolute position table would
    have nothing at positions it never saw, which would decide the extrapolation by
    construction.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .model import SLSTMBlock, XLSTMConfig

ARMS = ("slstm", "transformer")


def parity_batch(batch: int, length: int, gen: torch.Generator):
    """Random bits (B, L) and their running parity (B, L)."""
    bits = torch.randint(0, 2, (batch, length), generator=gen)
    return bits, torch.cumsum(bits, dim=1) % 2


def scaled_accuracy(acc: float) -> float:
    """Fig. 4's rescaling for a two-class task: chance 0, perfect 1."""
    return (acc - 0.5) / 0.5


# --------------------------------------------------------------------------- the two arms
class SLSTMParity(nn.Module):
    def __init__(self, d_model: int, heads: int, layers: int):
        super().__init__()
        self.emb = nn.Embedding(2, d_model)
        cfg = XLSTMConfig(vocab_size=2, d_model=d_model, blocks="s" * layers, heads=heads)
        self.blocks = nn.ModuleList(SLSTMBlock(cfg) for _ in range(layers))
        self.ln = nn.LayerNorm(d_model)
        self.out = nn.Linear(d_model, 2)

    def forward(self, bits):
        x = self.emb(bits)
        for blk in self.blocks:
            x = blk(x)
        return self.out(self.ln(x))


def rotate(x: torch.Tensor, base: float = 10_000.0) -> torch.Tensor:
    """Rotary position embedding of (B, H, T, d) by position t (pairs of channels)."""
    T, d = x.shape[-2], x.shape[-1]
    inv = base ** (-torch.arange(0, d, 2, dtype=torch.float32) / d)  # (d/2,)
    ang = torch.arange(T, dtype=torch.float32)[:, None] * inv[None]  # (T, d/2)
    cos, sin = ang.cos(), ang.sin()
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)


class LlamaBlock(nn.Module):
    def __init__(self, d_model: int, heads: int):
        super().__init__()
        self.heads = heads
        self.n1, self.n2 = nn.RMSNorm(d_model), nn.RMSNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.o = nn.Linear(d_model, d_model, bias=False)
        hidden = int(round(8 * d_model / 3))
        self.up = nn.Linear(d_model, 2 * hidden, bias=False)
        self.down = nn.Linear(hidden, d_model, bias=False)

    def forward(self, x):
        B, T, D = x.shape
        q, k, v = (
            t.view(B, T, self.heads, D // self.heads).transpose(1, 2)
            for t in self.qkv(self.n1(x)).chunk(3, dim=-1)
        )
        y = F.scaled_dot_product_attention(rotate(q), rotate(k), v, is_causal=True)
        x = x + self.o(y.transpose(1, 2).reshape(B, T, D))
        a, b = self.up(self.n2(x)).chunk(2, dim=-1)
        return x + self.down(F.silu(a) * b)


class TransformerParity(nn.Module):
    def __init__(self, d_model: int, heads: int, layers: int):
        super().__init__()
        self.emb = nn.Embedding(2, d_model)
        self.blocks = nn.ModuleList(LlamaBlock(d_model, heads) for _ in range(layers))
        self.norm = nn.RMSNorm(d_model)
        self.out = nn.Linear(d_model, 2)

    def forward(self, bits):
        x = self.emb(bits)
        for blk in self.blocks:
            x = blk(x)
        return self.out(self.norm(x))


def build(arm: str, d_model: int, heads: int, layers: int) -> nn.Module:
    if arm == "slstm":
        return SLSTMParity(d_model, heads, layers)
    if arm == "transformer":
        return TransformerParity(d_model, heads, layers)
    raise ValueError(f"parity arm {arm!r}: use one of {ARMS}")


# --------------------------------------------------------------------------- train / test
@torch.no_grad()
def accuracy_by_position(model, length: int, sequences: int, gen):
    """Per-position accuracy (length,) on fresh strings, and the mean cross-entropy."""
    model.eval()
    bits, target = parity_batch(sequences, length, gen)
    logits = model(bits)
    acc = (logits.argmax(-1) == target).float().mean(0)
    loss = F.cross_entropy(logits.reshape(-1, 2), target.reshape(-1)).item()
    model.train()
    return acc, loss


def train_parity(
    arm: str,
    seed: int,
    *,
    lr: float,
    d_model: int,
    heads: int,
    layers: int,
    train_len: int,
    test_len: int,
    steps: int,
    batch: int,
    eval_sequences: int,
) -> dict[str, float]:
    """Train one arm on one seed; the seed fixes the training strings (the same for both arms)
    and the arm's initialisation. Returns scaled accuracies: ``dev`` (fresh strings of the
    training length, drawn from a stream of their own, used to pick the learning rate),
    with its cross-entropy ``dev_loss``, ``in_dist`` (positions ≤ train_len of the test strings) and ``extrap`` (positions
    train_len+1 .. test_len), plus the final training loss."""
    torch.manual_seed(seed)
    model = build(arm, d_model, heads, layers)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=0.0)
    warm = max(1, steps // 10)

    def lr_at(s: int) -> float:
        if s < warm:
            return lr * (s + 1) / warm
        return lr * 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, steps - warm)))

    gen = torch.Generator().manual_seed(seed)
    loss = torch.tensor(float("nan"))
    for s in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(s)
        bits, target = parity_batch(batch, train_len, gen)
        loss = F.cross_entropy(model(bits).reshape(-1, 2), target.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    dev, dev_loss = accuracy_by_position(
        model, train_len, eval_sequences, torch.Generator().manual_seed(7_000_003 + seed)
    )
    test, _ = accuracy_by_position(
        model, test_len, eval_sequences, torch.Generator().manual_seed(9_000_011 + seed)
    )
    return {
        "dev": scaled_accuracy(dev.mean().item()),
        "dev_loss": dev_loss,
        "in_dist": scaled_accuracy(test[:train_len].mean().item()),
        "extrap": scaled_accuracy(test[train_len:].mean().item()),
        "train_loss": float(loss.item()),
    }
