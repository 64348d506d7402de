"""A small BART-style encoder–decoder (§2.1): the standard sequence-to-sequence Transformer
with GELU activations, learned positions, a LayerNorm on the embeddings, post-LN blocks (as in
the fairseq model the paper builds on), weights drawn from N(0, 0.02), and one token
embedding shared by the encoder, the decoder and the output projection."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class BartConfig:
    vocab_size: int = 2048
    max_len: int = 128  # learned positions per side
    d_model: int = 64
    n_head: int = 4
    n_layer: int = 2  # encoder layers = decoder layers
    d_ff: int = 256
    pad_id: int = 0
    pre_ln: bool = False  # LayerNorm before each sub-layer (+ a final one) instead of after


class Attention(nn.Module):
    """Attention(Q, K, V) = softmax(QKᵀ/√d_k + mask) V, per head, heads concatenated."""

    def __init__(self, d: int, n_head: int):
        super().__init__()
        self.n_head = n_head
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))

    def forward(self, x, kv, keep=None, causal: bool = False):
        B, T, d = x.shape
        S = kv.shape[1]
        h = self.n_head
        q = self.q(x).view(B, T, h, d // h).transpose(1, 2)  # (B, h, T, hs)
        k = self.k(kv).view(B, S, h, d // h).transpose(1, 2)  # (B, h, S, hs)
        v = self.v(kv).view(B, S, h, d // h).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, is_causal=causal)
        return self.o(y.transpose(1, 2).reshape(B, T, d))  # (B, T, d)


class Block(nn.Module):
    """Post-LN: x ← LN(x + SelfAttn(x)); [x ← LN(x + CrossAttn(x, memory))]; x ← LN(x + FFN(x)).
    Pre-LN:  x ← x + SelfAttn(LN(x)); ... (the LayerNorm moves inside the residual branch)."""

    def __init__(self, cfg: BartConfig, cross: bool):
        super().__init__()
        d = cfg.d_model
        self.pre = cfg.pre_ln
        self.self_attn = Attention(d, cfg.n_head)
        self.ln1 = nn.LayerNorm(d)
        self.cross_attn = Attention(d, cfg.n_head) if cross else None
        self.ln2 = nn.LayerNorm(d) if cross else None
        self.ff = nn.Sequential(nn.Linear(d, cfg.d_ff), nn.GELU(), nn.Linear(cfg.d_ff, d))
        self.ln3 = nn.LayerNorm(d)

    def forward(self, x, self_keep=None, causal=False, memory=None, memory_keep=None):
        if self.pre:
            h = self.ln1(x)
            x = x + self.self_attn(h, h, self_keep, causal)
            if self.cross_attn is not None:
                x = x + self.cross_attn(self.ln2(x), memory, memory_keep)
            return x + self.ff(self.ln3(x))
        x = self.ln1(x + self.self_attn(x, x, self_keep, causal))
        if self.cross_attn is not None:
            x = self.ln2(x + self.cross_attn(x, memory, memory_keep))
        return self.ln3(x + self.ff(x))


class Bart(nn.Module):
    def __init__(self, cfg: BartConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.tok = nn.Embedding(cfg.vocab_size, d)  # shared: encoder, decoder, output head
        self.enc_pos = nn.Embedding(cfg.max_len, d)
        self.dec_pos = nn.Embedding(cfg.max_len, d)
        self.enc_ln = nn.LayerNorm(d)
        self.dec_ln = nn.LayerNorm(d)
        self.encoder = nn.ModuleList(Block(cfg, cross=False) for _ in range(cfg.n_layer))
        self.decoder = nn.ModuleList(Block(cfg, cross=True) for _ in range(cfg.n_layer))
        # pre-LN leaves the residual stream un-normalised: one LayerNorm closes each stack
        self.enc_out = nn.LayerNorm(d) if cfg.pre_ln else nn.Identity()
        self.dec_out = nn.LayerNorm(d) if cfg.pre_ln else nn.Identity()
        self.apply(self._init)

    @staticmethod
    def _init(m):
        if isinstance(m, nn.Linear | nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def encode(self, src):
        """src (B, S) with pad_id after the end → memory (B, S, d) and the key mask
        (B, 1, 1, S), True where a key may be attended to."""
        keep = (src != self.cfg.pad_id)[:, None, None, :]
        pos = torch.arange(src.shape[1], device=src.device)
        x = self.enc_ln(self.tok(src) + self.enc_pos(pos))
        for block in self.encoder:
            x = block(x, self_keep=keep)
        return self.enc_out(x), keep

    def decode(self, dec_in, memory, memory_keep):
        """Causal decoder over dec_in (B, T) → logits (B, T, V) through the tied embedding."""
        pos = torch.arange(dec_in.shape[1], device=dec_in.device)
        y = self.dec_ln(self.tok(dec_in) + self.dec_pos(pos))
        for block in self.decoder:
            y = block(y, causal=True, memory=memory, memory_keep=memory_keep)
        return self.dec_out(y) @ self.tok.weight.T  # (B, T, V)

    def forward(self, src, dec_in):
        memory, keep = self.encode(src)
        return self.decode(dec_in, memory, keep)

    @torch.no_grad()
    def generate(self, src, bos_id: int, length: int):
        """Greedy decoding of ``length`` tokens."""
        memory, keep = self.encode(src)
        out = torch.full((src.shape[0], 1), bos_id, dtype=torch.long, device=src.device)
        for _ in range(length):
            nxt = self.decode(out, memory, keep)[:, -1].argmax(-1, keepdim=True)
            out = torch.cat([out, nxt], dim=1)
        return out[:, 1:]
