"""A BERT encoder whose crammed changes are switches, so both recipes share one code path.

The switches (``ModelConfig``) and what each recipe sets (see ``recipes.py``):

================  =======================  ==========================================
switch            original BERT            crammed (Geiping & Goldstein 2022, §4.2)
================  =======================  ==========================================
norm              post-LN                  pre-LN
bias              on every linear layer    off on linear layers, kept in LayerNorm
ffn               GELU, F wide             gated GELU, F split in value and gate
final_norm        no                       a LayerNorm after the last block
pos_embedding     learned                  scaled sinusoidal
head_transform    dense + GELU + LN        skipped
sparse_prediction decoder on every token   decoder only on the masked tokens
dropout           0.1                      0
tie_embeddings    yes                      yes
================  =======================  ==========================================

Attention goes through ``torch.nn.functional.scaled_dot_product_attention``; ``attention="flash"``
swaps in the project's Triton FlashAttention kernel on a GPU, and ``attention="manual"`` is the
readable softmax(QKᵀ/√d)V path the tests compare against.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int = 4096
    hidden: int = 128
    layers: int = 2
    heads: int = 2
    ffn: int = 512  # width of the first FFN projection (split in two when gated)
    max_seq: int = 128
    norm: Literal["pre", "post"] = "pre"
    bias: bool = False
    ffn_kind: Literal["glu", "gelu"] = "glu"
    final_norm: bool = True
    pos_embedding: Literal["learned", "sinusoidal", "scaled_sinusoidal", "none"] = (
        "scaled_sinusoidal"
    )
    embed_norm: bool = True  # LayerNorm on the summed embeddings (both recipes)
    head_transform: bool = False  # BERT's dense+GELU+LN before the decoder
    decoder_bias: bool = False
    tie_embeddings: bool = True
    sparse_prediction: bool = True
    dropout: float = 0.0
    attention: Literal["sdpa", "flash", "manual"] = "sdpa"
    norm_eps: float = 1e-12
    init_std: float = 0.02


# Sizes. `paper` is the crammed BERT of the paper (§4.2: 16 layers, 768 wide, 12 heads, FFN 3072
# gated, sequence 128, vocabulary 2^15); the others are the same shape shrunk for a CPU.
MODEL_SIZES: dict[str, dict[str, int]] = {
    "paper": dict(hidden=768, layers=16, heads=12, ffn=3072, max_seq=128, vocab_size=32768),
    "small": dict(hidden=256, layers=4, heads=4, ffn=1024, max_seq=128, vocab_size=8192),
    "tiny": dict(hidden=128, layers=2, heads=2, ffn=512, max_seq=128, vocab_size=4096),
    "micro": dict(hidden=32, layers=2, heads=2, ffn=64, max_seq=32, vocab_size=512),
}


def model_config(size: str, **overrides) -> ModelConfig:
    if size not in MODEL_SIZES:
        raise ValueError(f"model size {size!r}: choose one of {', '.join(MODEL_SIZES)}")
    return replace(ModelConfig(**MODEL_SIZES[size]), **overrides)


# --------------------------------------------------------------------------- embeddings
def sinusoidal_table(positions: int, dim: int) -> torch.Tensor:
    """PE(p, 2i) = sin(p / 10000^(2i/d)), PE(p, 2i+1) = cos(p / 10000^(2i/d))."""
    pos = torch.arange(positions, dtype=torch.float32)[:, None]
    inv_freq = torch.pow(10000.0, -torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    table = torch.zeros(positions, dim)
    table[:, 0::2] = torch.sin(pos * inv_freq)
    table[:, 1::2] = torch.cos(pos * inv_freq)[:, : dim // 2]
    return table


class Embeddings(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.kind = cfg.pos_embedding
        self.tok = nn.Embedding(cfg.vocab_size, cfg.hidden)
        if self.kind == "learned":
            self.pos = nn.Embedding(cfg.max_seq, cfg.hidden)
        elif self.kind in ("sinusoidal", "scaled_sinusoidal"):
            self.register_buffer(
                "table", sinusoidal_table(cfg.max_seq, cfg.hidden), persistent=False
            )
            # Scaled sinusoidal: one learned gain, started at 1/√d so the fixed table does not
            # swamp token embeddings drawn with std 0.02.
            init = 1 / math.sqrt(cfg.hidden) if self.kind == "scaled_sinusoidal" else 1.0
            self.scale = nn.Parameter(
                torch.tensor(init), requires_grad=self.kind == "scaled_sinusoidal"
            )
        self.norm = nn.LayerNorm(cfg.hidden, eps=cfg.norm_eps) if cfg.embed_norm else None
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.tok(ids)  # (B, T, H)
        T = ids.shape[1]
        if self.kind == "learned":
            x = x + self.pos.weight[:T]
        elif self.kind != "none":
            x = x + self.scale * self.table[:T]
        if self.norm is not None:
            x = self.norm(x)
        return self.drop(x)


# --------------------------------------------------------------------------- attention
def manual_attention(q, k, v, dropout_p: float = 0.0, training: bool = False):
    """softmax(Q Kᵀ / √d) V with the whole score matrix in memory (the readable reference)."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, nh, T, T)
    probs = F.dropout(scores.softmax(-1), dropout_p, training)
    return probs @ v


def _flash_attention():
    """The project's Triton kernel, imported only when asked for (it needs CUDA and Triton)."""
    try:
        from repro.papers.flash_attention.kernel import flash_attention
    except ImportError as e:
        raise ImportError(
            "attention='flash' needs repro.papers.flash_attention.kernel (the project's Triton "
            f"FlashAttention kernel), which could not be imported: {e}. Use attention='sdpa'."
        ) from e
    return flash_attention


class SelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.hidden % cfg.heads:
            raise ValueError(f"hidden={cfg.hidden} is not divisible by heads={cfg.heads}")
        self.heads = cfg.heads
        self.qkv = nn.Linear(cfg.hidden, 3 * cfg.hidden, bias=cfg.bias)
        self.out = nn.Linear(cfg.hidden, cfg.hidden, bias=cfg.bias)
        self.dropout = cfg.dropout
        self.kind = cfg.attention
        self._flash = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, H = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.heads, H // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 × (B, nh, T, hs)
        p = self.dropout if self.training else 0.0
        if self.kind == "sdpa":
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        elif self.kind == "flash":
            if not q.is_cuda and os.environ.get("TRITON_INTERPRET") != "1":
                raise RuntimeError(
                    "attention='flash' runs on a CUDA device (or, slowly, with TRITON_INTERPRET=1); "
                    "use 'sdpa' on a CPU"
                )
            if p:
                raise ValueError("attention='flash' has no attention dropout; use dropout=0")
            if self._flash is None:
                self._flash = _flash_attention()
            y = self._flash(q, k, v, causal=False)
        else:
            y = manual_attention(q, k, v, p, self.training)
        y = y.transpose(1, 2).reshape(B, T, H)  # (B, T, H)
        return self.out(y)


# --------------------------------------------------------------------------- feed-forward
class FeedForward(nn.Module):
    """GELU:       FFN(x) = W₂ GELU(W₁ x)
    gated GELU: FFN(x) = W₂ (GELU(x W_g) ⊙ x W_v), with [W_v W_g] the F-wide first projection
    split in halves, so the gated layer has fewer weights than the plain one of equal F."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.gated = cfg.ffn_kind == "glu"
        if self.gated and cfg.ffn % 2:
            raise ValueError(f"ffn={cfg.ffn} must be even for the gated FFN")
        inner = cfg.ffn // 2 if self.gated else cfg.ffn
        self.up = nn.Linear(cfg.hidden, cfg.ffn, bias=cfg.bias)
        self.down = nn.Linear(inner, cfg.hidden, bias=cfg.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.up(x)
        if self.gated:
            value, gate = h.chunk(2, dim=-1)
            h = F.gelu(gate) * value
        else:
            h = F.gelu(h)
        return self.down(h)


class Block(nn.Module):
    """pre-LN:  x ← x + Attn(LN(x));  x ← x + FFN(LN(x))
    post-LN: x ← LN(x + Attn(x));  x ← LN(x + FFN(x))   (the original Transformer/BERT)"""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.pre = cfg.norm == "pre"
        self.norm1 = nn.LayerNorm(cfg.hidden, eps=cfg.norm_eps)
        self.norm2 = nn.LayerNorm(cfg.hidden, eps=cfg.norm_eps)
        self.attn = SelfAttention(cfg)
        self.ffn = FeedForward(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pre:
            x = x + self.drop(self.attn(self.norm1(x)))
            return x + self.drop(self.ffn(self.norm2(x)))
        x = self.norm1(x + self.drop(self.attn(x)))
        return self.norm2(x + self.drop(self.ffn(x)))


class Encoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = Embeddings(cfg)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.final_norm = nn.LayerNorm(cfg.hidden, eps=cfg.norm_eps) if cfg.final_norm else None

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids)
        for block in self.blocks:
            x = block(x)
        return self.final_norm(x) if self.final_norm is not None else x


def init_weights(module: nn.Module, std: float) -> None:
    for m in module.modules():
        if isinstance(m, nn.Linear | nn.Embedding):
            nn.init.normal_(m.weight, std=std)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)


# --------------------------------------------------------------------------- heads
class MaskedLM(nn.Module):
    """Encoder + decoder over the vocabulary. ``loss_terms`` returns sums, not means, so that
    gradient accumulation and DDP can divide by the number of masked tokens in the global batch."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        if cfg.head_transform:
            self.transform = nn.Sequential(
                nn.Linear(cfg.hidden, cfg.hidden, bias=cfg.bias),
                nn.GELU(),
                nn.LayerNorm(cfg.hidden, eps=cfg.norm_eps),
            )
        else:
            self.transform = nn.Identity()
        self.decoder = nn.Linear(cfg.hidden, cfg.vocab_size, bias=cfg.decoder_bias)
        init_weights(self, cfg.init_std)
        if cfg.tie_embeddings:
            self.decoder.weight = self.encoder.embed.tok.weight

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.transform(hidden))

    def loss_terms(self, ids: torch.Tensor, labels: torch.Tensor):
        """(sum of cross-entropy over masked tokens, number of correct predictions, masked count).

        Sparse prediction runs the decoder on the masked positions only: L = Σ_{i∈M} −log p(x_i).
        Full prediction runs it on every position and ignores the unmasked ones in the loss, which
        is the same number at (1/mask rate)× the decoder cost.
        """
        hidden = self.encoder(ids)  # (B, T, H)
        if self.cfg.sparse_prediction:
            keep = labels.view(-1) != -100
            logits = self.logits(hidden.view(-1, hidden.shape[-1])[keep])  # (M, V)
            target = labels.view(-1)[keep]
        else:
            logits = self.logits(hidden).view(-1, self.cfg.vocab_size)  # (B·T, V)
            target = labels.view(-1)
        loss = F.cross_entropy(logits.float(), target, ignore_index=-100, reduction="sum")
        valid = target != -100
        correct = (logits.argmax(-1) == target)[valid].sum()
        return loss, correct, valid.sum()

    def forward(self, ids: torch.Tensor, labels: torch.Tensor):
        """The loss terms; the training loop calls the module (not ``loss_terms``) so that DDP's
        forward hooks run."""
        return self.loss_terms(ids, labels)

    def mean_loss(self, ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        loss, _, n = self.loss_terms(ids, labels)
        return loss / n.clamp(min=1)


class SequenceClassifier(nn.Module):
    """Encoder, pooling, then Linear, tanh, dropout, Linear (the paper's downstream head).
    pooler="cls" reads the first ([CLS]) position, "mean" averages all positions (both are
    options of the paper's code)."""

    def __init__(
        self,
        cfg: ModelConfig,
        num_labels: int,
        dropout: float = 0.1,
        pooler: Literal["cls", "mean"] = "mean",
    ):
        super().__init__()
        self.pooler = pooler
        self.encoder = Encoder(cfg)
        self.pool = nn.Linear(cfg.hidden, cfg.hidden)
        self.drop = nn.Dropout(dropout)
        self.classify = nn.Linear(cfg.hidden, num_labels)
        init_weights(self, cfg.init_std)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.encoder(ids)  # (B, T, H)
        h = h[:, 0] if self.pooler == "cls" else h.mean(1)  # (B, H)
        return self.classify(self.drop(torch.tanh(self.pool(h))))
