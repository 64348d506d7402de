"""Causal language models whose attention is full or a sliding window (Longformer §3.1), trained
side by side on the Brown corpus for the window-size findings.

Every arm is the project's TinyLM (pre-LN, learned positions, tied embeddings) with the same
initial weights for a given seed; only the attention mask differs. A causal window of w lets
query i see keys i − w + 1 … i (w keys, itself included); w ≥ n is full causal attention.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from repro.common.tinylm import CausalSelfAttention, LMConfig, TinyLM


def window_mask(n: int, window: int) -> torch.Tensor:
    """(n, n) boolean: True where query i may attend key j (j ≤ i and i − j < window)."""
    if window < 1:
        raise ValueError(f"window must be at least 1 key; got {window}")
    i = torch.arange(n)[:, None]
    j = torch.arange(n)[None, :]
    return (j <= i) & (i - j < window)


class WindowedSelfAttention(CausalSelfAttention):
    """TinyLM's causal attention with a sliding-window mask (the same q, k, v projections)."""

    def __init__(self, cfg: LMConfig, window: int):
        super().__init__(cfg)
        self.window = window
        self.register_buffer("mask", window_mask(cfg.seq_len, window), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=self.mask[:T, :T])
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


def build_lm(cfg, window: int, seed: int) -> TinyLM:
    """A TinyLM drawn with ``seed`` whose attention sees the last ``window`` keys; the weights
    do not depend on the window, so arms with one seed start identical."""
    torch.manual_seed(seed)
    model = TinyLM(LMConfig.like(cfg))
    if window < cfg.seq_len:
        for blk in model.blocks:
            attn = WindowedSelfAttention(model.cfg, window)
            attn.load_state_dict(blk.attn.state_dict())
            blk.attn = attn
    return model


def train_lm(model, train_ids, cfg, lr: float, seed: int, ctx, desc: str) -> list[float]:
    """Next-token training with ``repro.common.tinylm.train``: AdamW β = (0.9, 0.95), no weight
    decay, 5% warm-up then cosine, clip 1. ``seed`` draws the windows: the same for all arms."""
    from repro.common.data import random_windows
    from repro.common.tinylm import cosine_lr, train

    gen = torch.Generator().manual_seed(seed + 1)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.0)
    label = desc
    t0 = time.process_time()
    losses = train(
        model,
        random_windows(train_ids, cfg.batch_size, cfg.seq_len, generator=gen),
        cfg.steps,
        optimizer=opt,
        lr_at=lambda step: cosine_lr(step, cfg.steps, lr, max(1, cfg.steps // 20)),
        clip=1.0,
        progress=lambda it, desc="": ctx.progress(it, desc=label),
    )
    ctx.log(f"  {desc}: {len(losses)} steps, {time.process_time() - t0:.1f} CPU-s")
    return losses


def held_out_windows(val_ids, seq_len: int, skip: int, count: int):
    """(x, y) for ``count`` contiguous next-token windows of the held-out split after the
    first ``skip``; raises if the split is too short."""
    need = (skip + count) * (seq_len + 1)
    if len(val_ids) < need:
        raise ValueError(f"held-out split has {len(val_ids)} tokens; {need} needed")
    w = val_ids[skip * (seq_len + 1) : need].view(count, seq_len + 1)
    return w[:, :-1], w[:, 1:]


@torch.no_grad()
def lm_loss(model, xy, batch: int = 64) -> float:
    """Mean next-token cross-entropy (nats) over the windows."""
    model.eval()
    x, y = xy
    total = 0.0
    for i in range(0, len(x), batch):
        total += model(x[i : i + batch], y[i : i + batch])[1].item() * len(x[i : i + batch])
    model.train()
    return total / len(x)
