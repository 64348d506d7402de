"""A small encoder–decoder Transformer as described in §3 of the paper.

Post-LN residual blocks (§3.1: LayerNorm(x + Sublayer(x))), multi-head attention (§3.2.2),
position-wise feed-forward (§3.3), embeddings scaled by √d_model and tied to the output
projection (§3.4), sinusoidal positions (§3.5). Dropout is kept as a switch; the synthetic
tasks here need none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


def sinusoidal_encoding(positions: int, d_model: int) -> torch.Tensor:
    """PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(pos / 10000^(2i/d))  (§3.5)."""
    pos = torch.arange(positions, dtype=torch.float64)[:, None]  # (P, 1)
    inv_freq = torch.pow(10000.0, -torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
    angles = pos * inv_freq  # (P, d/2)
    pe = torch.empty(positions, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angles)
    pe[:, 1::2] = torch.cos(angles)
    return pe


class MultiHeadAttention(nn.Module):
    """MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W^O,
    head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V),
    Attention(Q, K, V) = softmax(Q Kᵀ / √d_k) V                      (§3.2.1–3.2.2)

    The h per-head projections are stored as one d_model × d_model matrix each for Q, K and V,
    split into heads after the product. Written out (no fused kernel) so that the test can
    compare it with ``torch.nn.MultiheadAttention`` term by term.
    """

    def __init__(self, d_model: int, n_head: int, dropout: float = 0.0):
        super().__init__()
        assert d_model % n_head == 0, "d_model must divide by n_head"
        self.n_head, self.d_k = n_head, d_model // n_head
        self.w_q = nn.Linear(d_model, d_model)
        self.w_k = nn.Linear(d_model, d_model)
        self.w_v = nn.Linear(d_model, d_model)
        self.w_o = nn.Linear(d_model, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(
        self,
        query,
        key,
        value,
        *,
        attn_mask=None,
        key_padding_mask=None,
        return_weights: bool = False,
    ):
        """query (B, Tq, d), key/value (B, Tk, d).

        attn_mask: (Tq, Tk) bool, True where attention is *forbidden* (as in torch's MHA).
        key_padding_mask: (B, Tk) bool, True at padding keys.
        """
        B, Tq, d = query.shape
        Tk = key.shape[1]
        q = self.w_q(query).view(B, Tq, self.n_head, self.d_k).transpose(1, 2)  # (B, h, Tq, d_k)
        k = self.w_k(key).view(B, Tk, self.n_head, self.d_k).transpose(1, 2)  # (B, h, Tk, d_k)
        v = self.w_v(value).view(B, Tk, self.n_head, self.d_k).transpose(1, 2)  # (B, h, Tk, d_k)
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.d_k)  # (B, h, Tq, Tk)
        if attn_mask is not None:
            scores = scores.masked_fill(attn_mask, float("-inf"))
        if key_padding_mask is not None:
            scores = scores.masked_fill(key_padding_mask[:, None, None, :], float("-inf"))
        weights = scores.softmax(-1)
        out = self.drop(weights) @ v  # (B, h, Tq, d_k)
        out = self.w_o(out.transpose(1, 2).reshape(B, Tq, d))  # concat heads, then W^O
        return (out, weights) if return_weights else out


class FeedForward(nn.Module):
    """FFN(x) = max(0, x W_1 + b_1) W_2 + b_2   (§3.3)."""

    def __init__(self, d_model: int, d_ff: int, dropout: float):
        super().__init__()
        self.w_1, self.w_2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        return self.w_2(self.drop(F.relu(self.w_1(x))))


class EncoderLayer(nn.Module):
    def __init__(self, d_model: int, n_head: int, d_ff: int, dropout: float):
        super().__init__()
        self.attn = MultiHeadAttention(d_model, n_head, dropout)
        self.ff = FeedForward(d_model, d_ff, dropout)
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, pad):
        x = self.ln1(x + self.drop(self.attn(x, x, x, key_padding_mask=pad)))
        return self.ln2(x + self.drop(self.ff(x)))


class DecoderLayer(nn.Module):
    """Masked self-attention, then attention over the encoder output, then the FFN (§3.1)."""

    def __init__(self, d_model: int, n_head: int, d_ff: int, dropout: float):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, n_head, dropout)
        self.cross_attn = MultiHeadAttention(d_model, n_head, dropout)
        self.ff = FeedForward(d_model, d_ff, dropout)
        self.ln1, self.ln2, self.ln3 = (nn.LayerNorm(d_model) for _ in range(3))
        self.drop = nn.Dropout(dropout)

    def forward(self, y, memory, causal, src_pad):
        y = self.ln1(y + self.drop(self.self_attn(y, y, y, attn_mask=causal)))
        y = self.ln2(y + self.drop(self.cross_attn(y, memory, memory, key_padding_mask=src_pad)))
        return self.ln3(y + self.drop(self.ff(y)))


@dataclass(frozen=True)
class Seq2SeqConfig:
    vocab_size: int
    d_model: int = 64
    n_head: int = 4
    d_ff: int = 256
    n_layer: int = 2  # encoder layers = decoder layers
    dropout: float = 0.0
    max_len: int = 128
    pad_id: int = 0


class Transformer(nn.Module):
    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model, padding_idx=cfg.pad_id)
        nn.init.normal_(self.embed.weight, 0.0, cfg.d_model**-0.5)
        self.register_buffer(
            "pe", sinusoidal_encoding(cfg.max_len, cfg.d_model).float(), persistent=False
        )
        args = (cfg.d_model, cfg.n_head, cfg.d_ff, cfg.dropout)
        self.encoder = nn.ModuleList(EncoderLayer(*args) for _ in range(cfg.n_layer))
        self.decoder = nn.ModuleList(DecoderLayer(*args) for _ in range(cfg.n_layer))
        self.drop = nn.Dropout(cfg.dropout)

    def _embed(self, ids):
        # §3.4: embeddings are multiplied by √d_model before the positions are added
        return self.drop(self.embed(ids) * math.sqrt(self.cfg.d_model) + self.pe[: ids.shape[1]])

    def encode(self, src):
        pad = src == self.cfg.pad_id
        x = self._embed(src)
        for layer in self.encoder:
            x = layer(x, pad)
        return x, pad

    def decode(self, tgt_in, memory, src_pad):
        T = tgt_in.shape[1]
        causal = torch.ones(T, T, dtype=torch.bool, device=tgt_in.device).triu(1)
        y = self._embed(tgt_in)
        for layer in self.decoder:
            y = layer(y, memory, causal, src_pad)
        return y @ self.embed.weight.T  # (B, T, V): output projection shares the embedding

    def forward(self, src, tgt_in):
        memory, pad = self.encode(src)
        return self.decode(tgt_in, memory, pad)

    @torch.no_grad()
    def greedy(self, src, bos: int, eos: int, max_new: int):
        """Decode one token at a time, always taking the most likely; stops when all hit EOS."""
        memory, pad = self.encode(src)
        out = torch.full((src.shape[0], 1), bos, dtype=torch.long, device=src.device)
        done = torch.zeros(src.shape[0], dtype=torch.bool, device=src.device)
        for _ in range(max_new):
            nxt = self.decode(out, memory, pad)[:, -1].argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, self.cfg.pad_id), nxt)
            out = torch.cat([out, nxt[:, None]], dim=1)
            done |= nxt == eos
            if done.all():
                break
        return out[:, 1:]


def noam_lr(step: int, d_model: int, warmup: int, scale: float = 1.0) -> float:
    """lrate = d_model^−0.5 · min(step^−0.5, step · warmup^−1.5)   (§5.3), step counted from 1."""
    step = max(step, 1)
    return scale * d_model**-0.5 * min(step**-0.5, step * warmup**-1.5)
