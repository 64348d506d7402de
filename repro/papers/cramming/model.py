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

Attention goes through ``torch.nn.functional.scaled_dot_product_attention`` (on a GPU it picks
a fused FlashAttention-style kernel by itself); ``attention="manual"`` is the readable
softmax(QKᵀ/√d)V path the tests compare against. Both take a padding mask (``attention_mask``,
1 = a real token, 0 = padding) so that batches of sentences of unequal length (GLUE) never
attend to padding, and the classifier's mean pooling averages real tokens only.

Sparse prediction (the decoder on masked positions only) has two forms: a boolean gather of the
masked positions (their number varies from batch to batch), and, with ``masked_per_seq=k``, a
gather of exactly k positions per sequence, a static shape that ``torch.compile`` can trace
without recompiling (the masking then picks exactly k tokens per sequence, see
``data.mask_tokens``).
"""

from __future__ import annotations

import math
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
    attention: Literal["sdpa", "manual"] = "sdpa"
    norm_eps: float = 1e-12
    init_std: float = 0.02


# Sizes. `paper` is the crammed BERT of the paper (§4.2: 16 layers, 768 wide, 12 heads, FFN 3072
# gated, sequence 128, vocabulary 2^15); the others are the same shape shrunk for a CPU.
MODEL_SIZES: dict[str, dict[str, int]] = {
    "paper": dict(hidden=768, layers=16, heads=12, ffn=3072, max_seq=128, vocab_size=32768),
    "small": dict(hidden=256, layers=4, heads=4, ffn=1024, max_seq=128, vocab_size=8192),
    "tiny": dict(hidden=128, layers=2, heads=2, ffn=512, max_seq=128, vocab_size=4096),
    "mini": dict(hidden=64, layers=2, heads=2, ffn=256, max_seq=128, vocab_size=512),
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
def manual_attention(q, k, v, dropout_p: float = 0.0, training: bool = False, mask=None):
    """softmax(Q Kᵀ / √d + M) V with the whole score matrix in memory (the readable reference);
    M is 0 where a key may be attended and −∞ at padding (``mask``: bool (B, 1, 1, T), True =
    attend)."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, nh, T, T)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    probs = F.dropout(scores.softmax(-1), dropout_p, training)
    return probs @ v


def key_mask(attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """(B, T) 1/0 padding mask → (B, 1, 1, T) bool, broadcast over heads and queries."""
    if attention_mask is None:
        return None
    return attention_mask.bool()[:, None, None, :]


class SelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.hidden % cfg.heads:
            raise ValueError(f"hidden={cfg.hidden} is not divisible by heads={cfg.heads}")
        if cfg.attention not in ("sdpa", "manual"):
            raise ValueError(f"attention={cfg.attention!r}: use 'sdpa' or 'manual'")
        self.heads = cfg.heads
        self.qkv = nn.Linear(cfg.hidden, 3 * cfg.hidden, bias=cfg.bias)
        self.out = nn.Linear(cfg.hidden, cfg.hidden, bias=cfg.bias)
        self.dropout = cfg.dropout
        self.kind = cfg.attention

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        B, T, H = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.heads, H // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 × (B, nh, T, hs)
        p = self.dropout if self.training else 0.0
        if self.kind == "sdpa":
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        else:
            y = manual_attention(q, k, v, p, self.training, mask)
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

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.pre:
            x = x + self.drop(self.attn(self.norm1(x), mask))
            return x + self.drop(self.ffn(self.norm2(x)))
        x = self.norm1(x + self.drop(self.attn(x, mask)))
        return self.norm2(x + self.drop(self.ffn(x)))


class Encoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = Embeddings(cfg)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.final_norm = nn.LayerNorm(cfg.hidden, eps=cfg.norm_eps) if cfg.final_norm else None

    def forward(
        self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, T) token ids (and optionally a (B, T) 1/0 padding mask) → (B, T, H)."""
        x = self.embed(ids)
        mask = key_mask(attention_mask)
        for block in self.blocks:
            x = block(x, mask)
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

    def loss_terms(self, ids: torch.Tensor, labels: torch.Tensor, masked_per_seq: int = 0):
        """(sum of cross-entropy over masked tokens, number of correct predictions, masked count).

        Sparse prediction runs the decoder on the masked positions only: L = Σ_{i∈M} −log p(x_i).
        Full prediction runs it on every position and ignores the unmasked ones in the loss, which
        is the same number at (1/mask rate)× the decoder cost. With ``masked_per_seq=k`` (every
        sequence has exactly k masked tokens) the sparse gather has the static shape (B, k).
        """
        hidden = self.encoder(ids)  # (B, T, H)
        if self.cfg.sparse_prediction and masked_per_seq > 0:
            # the k masked positions of each row, found with a fixed-size top-k (no data-dependent
            # shapes): rows with fewer than k masked tokens contribute their padding as -100
            pos = (labels != -100).to(torch.int8).topk(masked_per_seq, dim=1, sorted=False).indices
            h = hidden.gather(1, pos[..., None].expand(-1, -1, hidden.shape[-1]))  # (B, k, H)
            logits = self.logits(h).view(-1, self.cfg.vocab_size)  # (B·k, V)
            target = labels.gather(1, pos).view(-1)
        elif self.cfg.sparse_prediction:
            keep = labels.view(-1) != -100
            logits = self.logits(hidden.view(-1, hidden.shape[-1])[keep])  # (M, V)
            target = labels.view(-1)[keep]
        else:
            logits = self.logits(hidden).view(-1, self.cfg.vocab_size)  # (B·T, V)
            target = labels.view(-1)
        loss = F.cross_entropy(logits.float(), target, ignore_index=-100, reduction="sum")
        valid = target != -100
        correct = ((logits.argmax(-1) == target) & valid).sum()
        return loss, correct, valid.sum()

    def forward(self, ids: torch.Tensor, labels: torch.Tensor, masked_per_seq: int = 0):
        """The loss terms; the training loop calls the module (not ``loss_terms``) so that DDP's
        forward hooks run."""
        return self.loss_terms(ids, labels, masked_per_seq)

    def mean_loss(self, ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        loss, _, n = self.loss_terms(ids, labels)
        return loss / n.clamp(min=1)


class SequenceClassifier(nn.Module):
    """Encoder, pooling, then Linear, tanh, dropout, Linear (the paper's downstream head).
    pooler="cls" reads the first ([CLS]) position (the released GLUE setting, ``zero_index``),
    "mean" averages the real (non-padding) positions. ``num_labels=1`` is a regression head
    (STS-B)."""

    def __init__(
        self,
        cfg: ModelConfig,
        num_labels: int,
        dropout: float = 0.1,
        pooler: Literal["cls", "mean"] = "mean",
    ):
        super().__init__()
        if pooler not in ("cls", "mean"):
            raise ValueError(f"pooler={pooler!r}: use 'cls' or 'mean'")
        self.pooler = pooler
        self.encoder = Encoder(cfg)
        self.pool = nn.Linear(cfg.hidden, cfg.hidden)
        self.drop = nn.Dropout(dropout)
        self.classify = nn.Linear(cfg.hidden, num_labels)
        init_weights(self, cfg.init_std)

    def forward(
        self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        h = self.encoder(ids, attention_mask)  # (B, T, H)
        if self.pooler == "cls":
            h = h[:, 0]
        elif attention_mask is None:
            h = h.mean(1)
        else:
            w = attention_mask.to(h.dtype)[..., None]  # (B, T, 1)
            h = (h * w).sum(1) / w.sum(1).clamp(min=1)  # (B, H): mean over real tokens
        return self.classify(self.drop(torch.tanh(self.pool(h))))
