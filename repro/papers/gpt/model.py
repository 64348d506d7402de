"""A small GPT (Radford et al. 2018, §3): decoder-only Transformer, learned positions, GELU,
post-LN blocks as in the original Transformer (GPT-2 later moved the norms), output
projection tied to the token embedding.

Pre-training objective (§3.1):  L1(U) = Σ_i log P(u_i | u_{i−k}, …, u_{i−1}; Θ)
Fine-tuning (§3.2):             P(y | x¹…xᵐ) = softmax(h_l^m W_y),   L2 = Σ log P(y | x)
                                L3 = L2 + λ·L1,  λ = 0.5
where h_l^m is the last layer's state at the final (extract) token. We use means over
tokens and examples instead of the paper's sums (the same optimum; λ keeps its meaning as
the weight of one language-modelling token-average against one classification average).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int
    seq_len: int = 64  # context length k (the paper: 512)
    d_model: int = 64  # the paper: 768
    n_layer: int = 2  # the paper: 12
    n_head: int = 4  # the paper: 12
    dropout: float = 0.0  # residual, embedding and attention dropout (the paper: 0.1)
    causal: bool = True  # False only for the leak control: the same model without the mask


class CausalSelfAttention(nn.Module):
    """softmax(Q Kᵀ/√d_k + M) V with M_ij = −∞ for j > i: position i sees positions ≤ i."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_head, self.causal = cfg.n_head, cfg.causal
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        scores = q @ k.transpose(-2, -1) / math.sqrt(C // self.n_head)  # (B, nh, T, T)
        if self.causal:
            # −∞ rather than a large negative number: exp gives exactly 0, so a future
            # token's value cannot reach the past even at the level of rounding
            future = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
            scores = scores.masked_fill(future, float("-inf"))
        y = self.drop(scores.softmax(-1)) @ v  # (B, nh, T, hs)
        return self.drop(self.proj(y.transpose(1, 2).reshape(B, T, C)))  # (B, T, C)


class Block(nn.Module):
    """Post-LN: h = LN(x + Attn(x)); out = LN(h + MLP(h))."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        d = cfg.d_model
        self.attn = CausalSelfAttention(cfg)
        self.mlp = nn.Sequential(
            nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d), nn.Dropout(cfg.dropout)
        )
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)

    def forward(self, x):
        x = self.ln1(x + self.attn(x))
        return self.ln2(x + self.mlp(x))


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig, n_classes: int = 0):
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos = nn.Embedding(cfg.seq_len, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.apply(self._init)
        # The output layer is the embedding, so its scale sets the logits' scale: std 0.02 at
        # the paper's width 768 gives logits of std 0.02·√768 ≈ 0.55; at small widths we keep
        # that logit scale (0.02·√(768/d)). With plain 0.02 at d = 64 the logits start 3.5×
        # smaller and pre-training sat on the unigram plateau for hundreds of steps.
        nn.init.normal_(self.tok.weight, 0.0, 0.02 * math.sqrt(768 / cfg.d_model))
        self.cls = None  # W_y: the only parameters fine-tuning adds (§3.2)
        if n_classes:
            self.add_classifier(n_classes)

    @staticmethod
    def _init(m):
        if isinstance(m, nn.Linear | nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 0.02)  # N(0, 0.02) as in §4.1
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)

    def set_causal(self, causal: bool) -> None:
        """Switch the mask on or off in place (the leak control keeps the trained weights)."""
        for block in self.blocks:
            block.attn.causal = causal

    def hidden(self, idx):
        """h_0 = U W_e + W_p;  h_l = block(h_{l−1});  returns h_n of shape (B, T, C)."""
        T = idx.shape[1]
        h = self.drop(self.tok(idx) + self.pos(torch.arange(T, device=idx.device)))  # (B, T, C)
        for block in self.blocks:
            h = block(h)
        return h

    def forward(self, idx):
        """Next-token logits (B, T, V): P(u) = softmax(h_n W_eᵀ), the embedding reused."""
        return self.hidden(idx) @ self.tok.weight.T

    def lm_loss(self, idx, targets):
        """−L1 per token: mean cross-entropy of next-token predictions."""
        logits = self(idx)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))

    def add_classifier(self, n_classes: int) -> None:
        self.cls = nn.Linear(self.cfg.d_model, n_classes)
        nn.init.normal_(self.cls.weight, 0.0, 0.02)
        nn.init.zeros_(self.cls.bias)

    @staticmethod
    def _last(h, lengths):
        """The state at each sequence's last real token (index lengths − 1): the extract token."""
        return h[torch.arange(h.shape[0], device=h.device), lengths - 1]  # (B, C)

    def classify(self, idx, lengths):
        """Class logits h_l^m W_y. ``lengths`` counts the real tokens including the extract
        token; what follows is padding, which the causal mask keeps away from h_l^m."""
        return self.cls(self._last(self.hidden(idx), lengths))

    def finetune_losses(self, idx, lengths, labels, with_lm: bool = True):
        """(L2, L1) on a labelled batch, both as means. L1 predicts each text token from the
        ones before it; the extract token is excluded as a target (it marks the end of the
        passage, which the model cannot foresee) and so is padding."""
        h = self.hidden(idx)  # (B, T, C)
        l2 = F.cross_entropy(self.cls(self._last(h, lengths)), labels)
        if not with_lm:  # λ = 0: skip the vocabulary projection, the costliest part
            return l2, None
        logits = h[:, :-1] @ self.tok.weight.T  # (B, T−1, V)
        # position i predicts token i+1; targets are tokens 1 … lengths−2 (text only)
        pos = torch.arange(idx.shape[1] - 1, device=idx.device)[None]
        keep = pos < (lengths - 2)[:, None]  # (B, T−1)
        l1 = F.cross_entropy(logits[keep], idx[:, 1:][keep])
        return l2, l1

    def finetune_loss(self, idx, lengths, labels, lm_weight: float = 0.5):
        """L3 = L2 + λ·L1 (§3.2); λ = 0 is plain supervised fine-tuning."""
        l2, l1 = self.finetune_losses(idx, lengths, labels, with_lm=lm_weight != 0)
        return l2 + lm_weight * l1 if lm_weight else l2
