"""A small Mamba-2 language model built on our SSD layer, for the Brown LM comparison.

One Mamba-2 block (§7, Fig. 6 of the paper), for input u of width d:
    [z, x, B, C, Δ] = u W_in                     (all projections made at once, in parallel)
    x, B, C = SiLU(causal depthwise conv(x, B, C))
    Δ_t = softplus(Δ_t + Δ_bias),  a_t = exp(Δ_t · A),  A = −exp(A_log) < 0, one per head
    y = SSD(x · Δ, log a, B, C) + D · x          (B and C shared by all heads: one group)
    out = (RMSNorm(y ⊙ SiLU(z))) W_out            (the extra norm before the output projection)
The language model stacks pre-norm residual blocks x ← x + block(RMSNorm(x)) with no MLPs and
no position embedding (the recurrence orders the tokens), then a final norm and a head tied to
the embedding.

Left out: the fused kernels, multi-group B/C, the initial-state and variable-length paths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from repro.common.tinylm import RMSNorm


def decay_mask(log_a: torch.Tensor) -> torch.Tensor:
    """(B, T, H) -> L (B, H, T, T), L[t, s] = a_{s+1}⋯a_t below the diagonal, 0 above.

    As a difference of prefix sums, exp(S_t − S_s): cheaper than ``ssd.segsum``'s column sums,
    and accurate enough at the 64-token training length (the tests compare it with
    ``ssd.ssd_mask``); long sequences should use ``ssd.segsum``.
    """
    cs = torch.cumsum(log_a.transpose(1, 2), dim=-1)  # (B, H, T)
    T = cs.shape[-1]
    causal = torch.ones(T, T, dtype=torch.bool, device=cs.device).tril()
    return torch.exp((cs[..., :, None] - cs[..., None, :]).masked_fill(~causal, float("-inf")))


def ssd_shared_bc(x, log_a, b, c) -> torch.Tensor:
    """The SSD layer in its quadratic (attention-like) form, Y = (L ∘ C Bᵀ) X, with B and C
    shared by every head (one group, as in the paper's default block).

    x (B, T, H, P), log_a (B, T, H), b and c (B, T, N) -> y (B, T, H, P). C Bᵀ is formed once
    for all heads; only the decay mask L is per head. At our training length (64 tokens) this
    form is the cheapest of the three on a CPU; the tests check it against ``ssd_chunked`` and
    ``ssd_scan`` with b and c copied to every head.
    """
    scores = c @ b.transpose(1, 2)  # (B, T, T): C Bᵀ
    m = decay_mask(log_a) * scores[:, None]  # (B, H, T, T)
    return (m @ x.transpose(1, 2)).transpose(1, 2)  # (B, T, H, P)


@dataclass(frozen=True)
class Mamba2Config:
    vocab_size: int
    d_model: int
    n_layer: int
    d_state: int = 16  # N
    head_dim: int = 16  # P
    expand: int = 2  # d_inner = expand · d_model
    d_conv: int = 4  # causal depthwise convolution width


class Mamba2Mixer(nn.Module):
    def __init__(self, c: Mamba2Config):
        super().__init__()
        self.c = c
        self.d_inner = c.expand * c.d_model
        if self.d_inner % c.head_dim:
            raise ValueError(
                f"expand·d_model = {self.d_inner} is not a multiple of head_dim = {c.head_dim}"
            )
        self.n_heads = self.d_inner // c.head_dim
        conv_dim = self.d_inner + 2 * c.d_state
        self.in_proj = nn.Linear(c.d_model, self.d_inner + conv_dim + self.n_heads, bias=False)
        self.conv = nn.Conv1d(conv_dim, conv_dim, c.d_conv, groups=conv_dim, padding=c.d_conv - 1)
        # Δ starts log-uniform in [1e-3, 1e-1] (the paper's S4/Mamba initialisation): store the
        # inverse softplus of that draw as the bias
        dt = torch.exp(torch.empty(self.n_heads).uniform_(math.log(1e-3), math.log(1e-1)))
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))
        self.A_log = nn.Parameter(torch.log(torch.empty(self.n_heads).uniform_(1, 16)))
        self.D = nn.Parameter(torch.ones(self.n_heads))
        self.norm = RMSNorm(self.d_inner)
        self.out_proj = nn.Linear(self.d_inner, c.d_model, bias=False)

    def causal_conv(self, v: torch.Tensor) -> torch.Tensor:
        """The depthwise causal convolution of ``self.conv``'s weights over (B, T, C), as K
        shifted multiply-adds: the same numbers as ``conv(v)[..., :T]`` (tested), about three
        times cheaper to train through on a CPU than the convolution kernel at these sizes."""
        K, T = self.c.d_conv, v.shape[1]
        w = self.conv.weight[:, 0]  # (C, K); tap j multiplies the input j − (K − 1) steps away
        vp = F.pad(v, (0, 0, K - 1, 0))
        out = self.conv.bias + vp[:, :T] * w[:, 0]
        for j in range(1, K):
            out = out + vp[:, j : j + T] * w[:, j]
        return out

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        Bsz, T, _ = u.shape
        H, P, N = self.n_heads, self.c.head_dim, self.c.d_state
        z, xbc, dt = self.in_proj(u).split([self.d_inner, self.d_inner + 2 * N, H], dim=-1)
        xbc = F.silu(self.causal_conv(xbc))
        x, b, cc = xbc.split([self.d_inner, N, N], dim=-1)
        dt = F.softplus(dt + self.dt_bias)  # (B, T, H)
        log_a = dt * -torch.exp(self.A_log)
        x = x.reshape(Bsz, T, H, P)
        y = ssd_shared_bc(x * dt[..., None], log_a, b, cc) + x * self.D[:, None]
        y = self.norm(y.reshape(Bsz, T, self.d_inner) * F.silu(z))
        return self.out_proj(y)


class Mamba2LM(nn.Module):
    def __init__(self, c: Mamba2Config):
        super().__init__()
        self.c = c
        self.tok = nn.Embedding(c.vocab_size, c.d_model)
        self.norms = nn.ModuleList(RMSNorm(c.d_model) for _ in range(c.n_layer))
        self.mixers = nn.ModuleList(Mamba2Mixer(c) for _ in range(c.n_layer))
        self.norm_f = RMSNorm(c.d_model)
        self.head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        self.head.weight = self.tok.weight
        nn.init.normal_(self.tok.weight, 0.0, 0.02)
        for m in self.mixers:  # GPT-2-style: projections N(0, 0.02), the output one by depth
            nn.init.normal_(m.in_proj.weight, 0.0, 0.02)
            nn.init.normal_(m.out_proj.weight, 0.0, 0.02 / math.sqrt(2 * c.n_layer))

    def non_embedding_params(self) -> int:
        return sum(p.numel() for p in self.parameters()) - self.tok.weight.numel()

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        x = self.tok(idx)
        for norm, mixer in zip(self.norms, self.mixers):
            x = x + mixer(norm(x))
        logits = self.head(self.norm_f(x))
        if targets is None:
            return logits
        return logits, F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
