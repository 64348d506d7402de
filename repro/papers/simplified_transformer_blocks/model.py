"""Pre-LN blocks, simplified attention sub-blocks (SAS) with shaped attention, and a naive
skipless block, in one small decoder (He & Hofmann 2023, §4).

Shaped attention (§4.1, after Noci et al. 2023) replaces each head's attention matrix by

    A(X) = α·I + β·softmax(Q Kᵀ/√d_h + M) − γ·C,     C = softmax(M)

with M the causal mask, so C is the matrix that averages over the visible prefix (C_ij = 1/i
for j ≤ i). α, β, γ are trainable, one per head. The query weights start at zero, so at
initialisation softmax(QKᵀ + M) = C and, with β = γ = 1 and α = 1, A = I: every token starts
by passing its own vector through, which is what the removed skip connection used to do.

SAS block (§4.2–4.3): the attention sub-block loses its skip connection and its value and
projection matrices (both fixed to the identity, so head h reads and writes its own slice of
the normalised input); the MLP sub-block keeps its skip and its normalisation:

    X_attn = ShapedAttention(Norm(X)) · (values = Norm(X) itself)
    X_out  = X_attn + MLP(Norm(X_attn))

The naive block removes the same parts but keeps the ordinary softmax attention (α = 0,
β = 1, γ = 0, fixed), the ablation that shows why the shaping is needed.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from repro.common.tinylm import Block, FeedForward, LMConfig, make_norm

KINDS = ("pre_ln", "sas", "naive_skipless")


class ShapedAttention(nn.Module):
    """Multi-head attention with identity values and projection; optionally shaped."""

    def __init__(self, cfg: LMConfig, shaped: bool):
        super().__init__()
        self.n_head, self.shaped = cfg.n_head, shaped
        self.qk = nn.Linear(cfg.d_model, 2 * cfg.d_model, bias=False)
        if shaped:
            self.alpha = nn.Parameter(torch.ones(cfg.n_head))
            self.beta = nn.Parameter(torch.ones(cfg.n_head))
            self.gamma = nn.Parameter(torch.ones(cfg.n_head))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        hs = C // self.n_head
        q, k = self.qk(x).split(C, dim=2)
        q, k, v = (
            t.view(B, T, self.n_head, hs).transpose(1, 2) for t in (q, k, x)
        )  # (B, nh, T, hs)
        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(hs)  # (B, nh, T, T)
        attn = scores.masked_fill(~mask, float("-inf")).softmax(-1)
        if self.shaped:
            uniform = mask / mask.sum(-1, keepdim=True)  # C = softmax(M), (T, T)
            eye = torch.eye(T, device=x.device)
            a = self.alpha.view(1, -1, 1, 1) * eye
            attn = a + self.beta.view(1, -1, 1, 1) * attn - self.gamma.view(1, -1, 1, 1) * uniform
        y = attn @ v  # (B, nh, T, hs)
        return y.transpose(1, 2).reshape(B, T, C)


class SimplifiedBlock(nn.Module):
    def __init__(self, cfg: LMConfig, shaped: bool):
        super().__init__()
        self.ln1 = make_norm(cfg.norm, cfg.d_model)
        self.attn = ShapedAttention(cfg, shaped)
        self.ln2 = make_norm(cfg.norm, cfg.d_model)
        self.mlp = FeedForward(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.attn(self.ln1(x))  # no skip around attention
        return h + self.mlp(self.ln2(h))


class SmallLM(nn.Module):
    """Token + position embeddings, n_layer blocks of one kind, final norm, tied unembedding."""

    def __init__(self, cfg: LMConfig, kind: str):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind {kind!r}: use one of {KINDS}")
        self.cfg, self.kind = cfg, kind
        self.tok = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos = nn.Embedding(cfg.seq_len, cfg.d_model)
        if kind == "pre_ln":
            self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        else:
            self.blocks = nn.ModuleList(
                SimplifiedBlock(cfg, shaped=kind == "sas") for _ in range(cfg.n_layer)
            )
        self.ln_f = make_norm(cfg.norm, cfg.d_model)
        for m in self.modules():
            if isinstance(m, nn.Linear | nn.Embedding):
                nn.init.normal_(m.weight, 0.0, 0.02)
                if getattr(m, "bias", None) is not None:
                    nn.init.zeros_(m.bias)
        for name, p in self.named_parameters():
            if name.endswith(("proj.weight", "w_out.weight")):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * cfg.n_layer))
        if kind == "sas":
            for block in self.blocks:  # W_Q = 0: softmax starts uniform, so A = I (§4.1)
                nn.init.zeros_(block.attn.qk.weight[: cfg.d_model])

    def non_embedding_params(self) -> int:
        emb = self.tok.weight.numel() + self.pos.weight.numel()
        return sum(p.numel() for p in self.parameters()) - emb

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        T = idx.shape[1]
        x = self.tok(idx) + self.pos(torch.arange(T, device=idx.device))  # (B, T, C)
        for block in self.blocks:
            x = block(x)
        logits = F.linear(self.ln_f(x), self.tok.weight)  # (B, T, V)
        if targets is None:
            return logits
        return logits, F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
