"""A decoder with a shared trunk and n output heads, each predicting a different future token
(Gloeckle et al. 2024, §2):

    P(x_{t+i} | x_{≤t}) = softmax(f_u(f_{h_i}(f_s(x_{≤t})))),   i = 1 … n

f_s is the shared trunk (n_layer − 1 Transformer blocks), f_{h_i} one Transformer block per
head, and f_u the shared unembedding: the final norm and an output matrix of its own
(``cfg.tie_embeddings = False``, as in the paper's Llama-style models) or the input embedding
(tied). Training minimises
Σ_i CE(head i, x_{t+i}). With n = 1 this is an ordinary n_layer-block decoder, and for any n
the next-token model (trunk + head 1) has exactly that architecture: the extra heads only add
training signal, which is how the paper compares models "of the same size".
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from repro.common.tinylm import Block, LMConfig, make_norm


class MultiTokenLM(nn.Module):
    def __init__(self, cfg: LMConfig, n_future: int):
        super().__init__()
        if cfg.n_layer < 2:
            raise ValueError("need n_layer ≥ 2: a trunk of n_layer − 1 blocks and head blocks")
        self.cfg, self.n_future = cfg, n_future
        # Each part is initialised as soon as it is built, in the order embeddings, trunk,
        # unembedding, head 1, head 2…: for one seed, every n starts from the same initial
        # next-token model (the extra heads draw their weights after it).
        self.tok = self._initialised(nn.Embedding(cfg.vocab_size, cfg.d_model))
        self.pos = self._initialised(nn.Embedding(cfg.seq_len, cfg.d_model))
        self.trunk = nn.ModuleList(self._initialised(Block(cfg)) for _ in range(cfg.n_layer - 1))
        # f_u's matrix: its own (untied, as in the paper's models) or the input embedding's
        self.unembed = None
        if not cfg.tie_embeddings:
            self.unembed = self._initialised(nn.Linear(cfg.d_model, cfg.vocab_size, bias=False))
        self.heads = nn.ModuleList(self._initialised(Block(cfg)) for _ in range(n_future))
        self.ln_f = make_norm(cfg.norm, cfg.d_model)  # shared, as part of f_u

    def _initialised(self, module: nn.Module) -> nn.Module:
        """GPT-2 initialisation as in tinylm: N(0, 0.02), residual output projections scaled
        by 1/sqrt(2·n_layer)."""
        module.apply(self._init)
        for name, p in module.named_parameters():
            if name.endswith(("proj.weight", "w_out.weight")):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * self.cfg.n_layer))
        return module

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear | nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)

    def trunk_out(self, idx: torch.Tensor) -> torch.Tensor:
        T = idx.shape[1]
        x = self.tok(idx) + self.pos(torch.arange(T, device=idx.device))  # (B, T, C)
        for block in self.trunk:
            x = block(x)
        return x

    def head_logits(self, h: torch.Tensor, i: int) -> torch.Tensor:
        """Logits of head i (0-based: head 0 predicts the next token)."""
        w = self.tok.weight if self.unembed is None else self.unembed.weight
        return F.linear(self.ln_f(self.heads[i](h)), w)  # (B, T, V)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """Next-token model only (trunk + head 1): what inference and evaluation use."""
        logits = self.head_logits(self.trunk_out(idx), 0)
        if targets is None:
            return logits
        return logits, F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))

    def multi_token_loss(self, window: torch.Tensor) -> tuple[torch.Tensor, list[float]]:
        """Σ_i CE(head i, x_{t+i}) on windows of T + n tokens: inputs are the first T, head i's
        targets the T tokens starting i on. Returns the sum and each head's mean loss."""
        T = window.shape[1] - self.n_future
        h = self.trunk_out(window[:, :T])
        total, per_head = 0.0, []
        for i in range(self.n_future):
            logits = self.head_logits(h, i)
            target = window[:, i + 1 : i + 1 + T]
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), target.reshape(-1))
            total = total + loss
            per_head.append(loss.item())
        return total, per_head

    def next_token_params(self) -> int:
        """Parameters used at inference for next-token prediction (trunk + head 1 + embeddings)."""
        extra = sum(p.numel() for h in self.heads[1:] for p in h.parameters())
        return sum(p.numel() for p in self.parameters()) - extra
