"""FNet's Fourier mixing sub-layer and a small BERT-style encoder with a choice of token mixer.

FNet (Lee-Thorp et al. 2021, §3.2) replaces self-attention by

    y = Re( F_seq( F_hidden(x) ) )                                          (eq. 3)

a discrete Fourier transform along the hidden dimension, then along the sequence, keeping the
real part. With X of shape (N, d) and DFT matrices F_N[n, k] = exp(−2πi·nk/N), that is
Re(F_N X F_d): no parameters, O(N d log(N d)) with the FFT.

The encoder keeps everything else of a BERT layer (post-LayerNorm residuals, GELU FFN), so the
only difference between the models compared is the mixing sub-layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


def fourier_mix(x: torch.Tensor) -> torch.Tensor:
    """Re(FFT2) over the last two dims (sequence, hidden). x: (B, N, d) real -> (B, N, d)."""
    return torch.fft.fft2(x, dim=(-2, -1)).real


def dft_matrix(n: int, dtype=torch.complex128) -> torch.Tensor:
    """F_n[j, k] = exp(−2πi·jk/n), the matrix the FFT multiplies by."""
    j = torch.arange(n, dtype=torch.float64)
    return torch.exp(-2j * math.pi * torch.outer(j, j) / n).to(dtype)


def fourier_mix_dft(x: torch.Tensor) -> torch.Tensor:
    """The same mixing written as two dense DFT matrix products, Re(F_N X F_d): O(N² d + N d²)."""
    N, d = x.shape[-2:]
    xc = x.to(torch.complex128)
    return (dft_matrix(N) @ xc @ dft_matrix(d)).real.to(x.dtype)


@dataclass(frozen=True)
class EncoderConfig:
    vocab_size: int = 2048
    seq_len: int = 128
    d_model: int = 64
    n_layer: int = 2
    n_head: int = 4
    d_ff: int = 256
    n_classes: int = 4
    mixing: str = "fourier"  # fourier | attention | none
    dropout: float = 0.1


class FourierMixing(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fourier_mix(x)


class SelfAttention(nn.Module):
    """Bidirectional multi-head self-attention, as in BERT."""

    def __init__(self, d_model: int, n_head: int):
        super().__init__()
        self.n_head = n_head
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (t.view(B, N, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v)  # (B, nh, N, hs)
        return self.proj(y.transpose(1, 2).reshape(B, N, C))


class ZeroMixing(nn.Module):
    """No token mixing at all: the sub-layer adds nothing, so each token is processed alone
    and the classifier sees a bag of contextless token features (a floor for the others)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


def make_mixer(cfg: EncoderConfig) -> nn.Module:
    if cfg.mixing == "fourier":
        return FourierMixing()
    if cfg.mixing == "attention":
        return SelfAttention(cfg.d_model, cfg.n_head)
    if cfg.mixing == "none":
        return ZeroMixing()
    raise ValueError(f"mixing {cfg.mixing!r}: use fourier, attention or none")


class EncoderLayer(nn.Module):
    """x = LN(x + Mix(x)); x = LN(x + FFN(x))  (post-LN, as in BERT and FNet)."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.mix = make_mixer(cfg)
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.ff = nn.Sequential(
            nn.Linear(cfg.d_model, cfg.d_ff), nn.GELU(), nn.Linear(cfg.d_ff, cfg.d_model)
        )
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.ln1(x + self.drop(self.mix(x)))
        return self.ln2(x + self.drop(self.ff(x)))


class Classifier(nn.Module):
    """Token + position embeddings, encoder layers, mean pooling, a linear classifier."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.tok = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos = nn.Embedding(cfg.seq_len, cfg.d_model)
        self.ln = nn.LayerNorm(cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.n_layer))
        self.head = nn.Linear(cfg.d_model, cfg.n_classes)
        for m in self.modules():
            if isinstance(m, nn.Linear | nn.Embedding):
                nn.init.normal_(m.weight, 0.0, 0.02)
                if getattr(m, "bias", None) is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        N = idx.shape[1]
        x = self.drop(self.ln(self.tok(idx) + self.pos(torch.arange(N, device=idx.device))))
        for layer in self.layers:
            x = layer(x)  # (B, N, d)
        return self.head(x.mean(dim=1))  # (B, n_classes)
