"""A small RWKV-4 language model (time mixing + channel mixing), run either in parallel over
a sequence (training) or one token at a time with a constant-size state (inference), and the
peer it is timed against: a GPT-style decoder with a key/value cache.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .wkv import wkv_init_state, wkv_parallel, wkv_recurrent, wkv_step


@dataclass(frozen=True)
class RWKVConfig:
    vocab_size: int = 4096
    d_model: int = 128
    n_layer: int = 2
    ffn_mult: int = 4  # channel-mixing hidden width = ffn_mult · d_model (the paper's 4)
    # training path: "scan" (a loop over time, what the paper's CUDA kernel computes per
    # channel) or "parallel" (the T×T form)
    wkv_impl: str = "scan"


def token_shift(x: torch.Tensor, before: torch.Tensor | None = None) -> torch.Tensor:
    """x_{t-1} for every t; ``before`` (B, C) is the token ahead of the first (zeros if none).
    (B, T, C) -> (B, T, C)"""
    if before is None:
        return F.pad(x, (0, 0, 1, -1))
    return torch.cat([before[:, None], x[:, :-1]], dim=1)


class TimeMix(nn.Module):
    """r_t = W_r(μ_r x_t + (1-μ_r) x_{t-1}), same for k and v;  o_t = W_o(σ(r_t) ⊙ wkv_t)."""

    def __init__(self, cfg: RWKVConfig, layer: int):
        super().__init__()
        C = cfg.d_model
        self.impl = cfg.wkv_impl
        ratio = layer / max(1, cfg.n_layer - 1)  # 0 for the first layer, 1 for the last
        ramp = torch.arange(C) / C
        # Decays spread over channels from e^{-e^{-6}} ≈ 1 (long memory) to e^{-e^{1}} ≈ 0.07
        # (about one token), deeper layers leaning to longer memory: the paper's init shape.
        self.log_w = nn.Parameter(-6 + 7 * ramp ** (0.7 + 1.3 * ratio))
        self.u = nn.Parameter(
            torch.full((C,), math.log(0.3)) + 0.5 * ((torch.arange(C) + 1) % 3 - 1)
        )
        # Token-shift mixes: channels that take more of x_{t-1} in early layers.
        self.mu_k = nn.Parameter(ramp ** (1 - ratio))
        self.mu_v = nn.Parameter(ramp ** (1 - ratio) + 0.3 * ratio)
        self.mu_r = nn.Parameter(ramp ** (0.5 * (1 - ratio)))
        self.key = nn.Linear(C, C, bias=False)
        self.value = nn.Linear(C, C, bias=False)
        self.receptance = nn.Linear(C, C, bias=False)
        self.output = nn.Linear(C, C, bias=False)

    @property
    def w(self) -> torch.Tensor:
        return torch.exp(self.log_w)  # the decay must stay positive

    def mix(self, x: torch.Tensor, x_prev: torch.Tensor):
        k = self.key(self.mu_k * x + (1 - self.mu_k) * x_prev)
        v = self.value(self.mu_v * x + (1 - self.mu_v) * x_prev)
        r = self.receptance(self.mu_r * x + (1 - self.mu_r) * x_prev)
        return r, k, v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r, k, v = self.mix(x, token_shift(x))
        if self.impl == "parallel":
            y = wkv_parallel(self.w, self.u, k, v)
        else:  # same numbers (tests check it); a loop of T steps is cheaper than T×T on a CPU
            y = wkv_recurrent(self.w, self.u, k, v)[0]
        return self.output(torch.sigmoid(r) * y)

    def step(self, x: torch.Tensor, state):
        """x: (B, C) one token; state: (x_{t-1}, a', b', p)."""
        x_prev, *wkv_state = state
        r, k, v = self.mix(x, x_prev)
        y, wkv_state = wkv_step(self.w, self.u, k, v, wkv_state)
        return self.output(torch.sigmoid(r) * y), (x, *wkv_state)

    def prefill(self, x: torch.Tensor, state=None):
        """A whole prompt through the recurrence (linear in T), from ``state`` if given,
        keeping the final state."""
        x_prev, *wkv_state = state if state is not None else (None, None)
        r, k, v = self.mix(x, token_shift(x, x_prev))
        y, wkv_state = wkv_recurrent(self.w, self.u, k, v, wkv_state if state is not None else None)
        return self.output(torch.sigmoid(r) * y), (x[:, -1], *wkv_state)


class ChannelMix(nn.Module):
    """r'_t = W'_r(μ'_r x_t + (1-μ'_r) x_{t-1}),  k'_t likewise;
    o'_t = σ(r'_t) ⊙ W'_v max(k'_t, 0)²."""

    def __init__(self, cfg: RWKVConfig, layer: int):
        super().__init__()
        C = cfg.d_model
        ratio = layer / max(1, cfg.n_layer - 1)
        ramp = torch.arange(C) / C
        self.mu_k = nn.Parameter(ramp ** (1 - ratio))
        self.mu_r = nn.Parameter(ramp ** (1 - ratio))
        self.key = nn.Linear(C, cfg.ffn_mult * C, bias=False)
        self.receptance = nn.Linear(C, C, bias=False)
        self.value = nn.Linear(cfg.ffn_mult * C, C, bias=False)

    def mixed(self, x, x_prev):
        k = self.key(self.mu_k * x + (1 - self.mu_k) * x_prev)
        r = self.receptance(self.mu_r * x + (1 - self.mu_r) * x_prev)
        return torch.sigmoid(r) * self.value(torch.relu(k) ** 2)

    def forward(self, x, before=None):
        return self.mixed(x, token_shift(x, before))

    def step(self, x, x_prev):
        return self.mixed(x, x_prev), x


class RWKVBlock(nn.Module):
    def __init__(self, cfg: RWKVConfig, layer: int):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.att = TimeMix(cfg, layer)
        self.ffn = ChannelMix(cfg, layer)

    def forward(self, x):
        x = x + self.att(self.ln1(x))
        return x + self.ffn(self.ln2(x))

    def step(self, x, state):
        att_state, ffn_prev = state
        h, att_state = self.att.step(self.ln1(x), att_state)
        x = x + h
        h, ffn_prev = self.ffn.step(self.ln2(x), ffn_prev)
        return x + h, (att_state, ffn_prev)

    def prefill(self, x, state=None):
        att_state, ffn_prev = state if state is not None else (None, None)
        h, att_state = self.att.prefill(self.ln1(x), att_state)
        x = x + h
        x2 = self.ln2(x)
        return x + self.ffn(x2, ffn_prev), (att_state, x2[:, -1])


class RWKV(nn.Module):
    def __init__(self, cfg: RWKVConfig):
        super().__init__()
        self.cfg = cfg
        self.emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.ln0 = nn.LayerNorm(cfg.d_model)  # the paper normalises right after the embedding
        self.blocks = nn.ModuleList(RWKVBlock(cfg, i) for i in range(cfg.n_layer))
        self.ln_out = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        # Small embedding init (the paper's §4.4 "small init embedding") and output
        # projections started at zero so each block begins as the identity.
        nn.init.uniform_(self.emb.weight, -1e-4, 1e-4)
        nn.init.normal_(self.head.weight, 0.0, 0.5 / math.sqrt(cfg.d_model))
        for blk in self.blocks:
            nn.init.zeros_(blk.att.output.weight)
            nn.init.zeros_(blk.ffn.value.weight)
            for lin in (
                blk.att.key,
                blk.att.value,
                blk.att.receptance,
                blk.ffn.key,
                blk.ffn.receptance,
            ):
                nn.init.normal_(lin.weight, 0.0, 1 / math.sqrt(lin.in_features))

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        x = self.ln0(self.emb(idx))  # (B, T, C)
        for blk in self.blocks:
            x = blk(x)
        logits = self.head(self.ln_out(x))  # (B, T, V)
        if targets is None:
            return logits
        return logits, F.cross_entropy(logits.flatten(0, 1), targets.flatten())

    def init_state(self, B: int, device="cpu"):
        C = self.cfg.d_model
        z = torch.zeros(B, C, device=device)
        return [((z, *wkv_init_state(B, C, device=device)), z) for _ in self.blocks]

    def step(self, idx_t: torch.Tensor, state):
        """One token (B,) -> logits (B, V) and the new state; the state's size never changes."""
        x = self.ln0(self.emb(idx_t))  # (B, C)
        new = []
        for blk, s in zip(self.blocks, state):
            x, s = blk.step(x, s)
            new.append(s)
        return self.head(self.ln_out(x)), new

    def prefill(self, idx: torch.Tensor, state=None):
        """(B, T) prompt -> logits (B, T, V) and the state after its last token; ``state``
        continues from an earlier prompt."""
        x = self.ln0(self.emb(idx))
        states = []
        for i, blk in enumerate(self.blocks):
            x, s = blk.prefill(x, state[i] if state is not None else None)
            states.append(s)
        return self.head(self.ln_out(x)), states


def state_bytes(state) -> int:
    """Bytes of every tensor carried from one token to the next."""
    if isinstance(state, torch.Tensor):
        return state.numel() * state.element_size()
    return sum(state_bytes(s) for s in state)


# --------------------------------------------------------------------------- peer
class GPTBlock(nn.Module):
    def __init__(self, d: int, n_head: int, ffn_hidden: int | None = None):
        super().__init__()
        self.n_head = n_head
        hidden = ffn_hidden or 4 * d
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.proj = nn.Linear(d, d, bias=False)
        self.mlp = nn.Sequential(
            nn.Linear(d, hidden, bias=False), nn.GELU(), nn.Linear(hidden, d, bias=False)
        )

    def heads(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        return (
            t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v)
        )  # (B, nh, T, hs)

    def out(self, x, y):
        B, T, C = x.shape
        x = x + self.proj(y.transpose(1, 2).reshape(B, T, C))
        return x + self.mlp(self.ln2(x))

    def forward(self, x):
        q, k, v = self.heads(self.ln1(x))
        return self.out(x, F.scaled_dot_product_attention(q, k, v, is_causal=True)), (k, v)

    def step(self, x, cache, pos: int):
        """x (B, 1, C) at position ``pos``; the cache buffers (B, nh, max_len, hs) hold the
        keys and values of positions < pos and get this token's written in place."""
        q, k, v = self.heads(self.ln1(x))
        K, V = cache
        K[:, :, pos], V[:, :, pos] = k[:, :, 0], v[:, :, 0]
        # one query against every cached key: no mask; cost grows with pos
        y = F.scaled_dot_product_attention(q, K[:, :, : pos + 1], V[:, :, : pos + 1])
        return self.out(x, y)


class GPT(nn.Module):
    """Pre-LN decoder with learned positions and a preallocated key/value cache for decoding
    (written in place, so a step costs attention over the cache, not a copy of it).
    ``ffn_hidden`` (default 4·d) sets the feed-forward width, so that the LM comparison can
    match RWKV's non-embedding parameter count (see ``matched_ffn_hidden``)."""

    def __init__(
        self,
        vocab_size: int,
        d: int,
        n_layer: int,
        n_head: int,
        max_len: int,
        ffn_hidden: int | None = None,
    ):
        super().__init__()
        self.n_head, self.max_len = n_head, max_len
        self.emb = nn.Embedding(vocab_size, d)
        self.pos = nn.Embedding(max_len, d)
        self.blocks = nn.ModuleList(GPTBlock(d, n_head, ffn_hidden) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab_size, bias=False)
        for name, p in self.named_parameters():  # GPT-2 init; residual outputs scaled by depth
            if p.dim() == 2:
                resid = name.endswith(("proj.weight", "mlp.2.weight"))
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * n_layer) if resid else 0.02)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        x = self.emb(idx) + self.pos(torch.arange(idx.shape[1], device=idx.device))
        for blk in self.blocks:
            x = blk(x)[0]
        logits = self.head(self.ln_f(x))
        if targets is None:
            return logits
        return logits, F.cross_entropy(logits.flatten(0, 1), targets.flatten())

    def empty_cache(self, B: int):
        d = self.emb.embedding_dim
        shape = (B, self.n_head, self.max_len, d // self.n_head)
        return [(torch.zeros(shape), torch.zeros(shape)) for _ in self.blocks]

    def prefill(self, idx, cache):
        """Run a prompt and write its keys and values into ``cache``."""
        T = idx.shape[1]
        x = self.emb(idx) + self.pos(torch.arange(T, device=idx.device))
        for blk, (K, V) in zip(self.blocks, cache):
            x, (k, v) = blk(x)
            K[:, :, :T], V[:, :, :T] = k, v
        return self.head(self.ln_f(x))

    def step(self, idx_t, cache, pos: int):
        """One token (B,) at position ``pos`` -> logits (B, V)."""
        x = (self.emb(idx_t) + self.pos.weight[pos])[:, None]  # (B, 1, C)
        for blk, c in zip(self.blocks, cache):
            x = blk.step(x, c, pos)
        return self.head(self.ln_f(x))[:, 0]


def kv_bytes(cache, length: int) -> int:
    """Bytes of the cache entries in use after ``length`` tokens."""
    return sum(K[:, :, :length].numel() * K.element_size() * 2 for K, _ in cache)


def non_embedding_params(model: nn.Module) -> int:
    """Parameters outside the token embedding, the position embedding and the output head
    (Kaplan et al.'s convention; both LMs here have the same vocabulary-sized embedding and
    untied head, so those are equal anyway)."""
    skip = {"emb.weight", "pos.weight", "head.weight"}
    return sum(p.numel() for n, p in model.named_parameters() if n not in skip)


def matched_ffn_hidden(d: int, n_layer: int, ffn_mult: int = 4) -> int:
    """The GPT feed-forward width that gives it RWKV's non-embedding parameter count.

    RWKV, per layer: time mixing 4·d² + 5·d (W_r, W_k, W_v, W_o; w, u, three μ), channel
    mixing (2·ffn_mult + 1)·d² + 2·d, two LayerNorms 4·d; plus ln0 and ln_out, 4·d.
    GPT, per layer: 4·d² (qkv, proj) + 2·d·h (the MLP) + 4·d (two LayerNorms); plus ln_f, 2·d.
    Equal when h = (2·ffn_mult + 1)·d / 2 + 3.5 + 1 / n_layer, rounded to the nearest
    integer (exact for even d with 2 layers)."""
    rwkv = n_layer * ((4 + 2 * ffn_mult + 1) * d * d + 11 * d) + 4 * d
    per_layer = (rwkv - 2 * d) / n_layer - 4 * d * d - 4 * d
    return round(per_layer / (2 * d))
