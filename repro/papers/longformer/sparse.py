"""Sparse attention patterns of Longformer and BigBird, computed blockwise without the n×n
matrix, and the dense masked attention they must equal.

A pattern, for n tokens split into blocks of b:
  * sliding window (Longformer): query i sees key j when |i - j| ≤ w·dilation and
    (i - j) is a multiple of the dilation (dilation 1 = plain window);
  * global tokens (Longformer, BigBird): a few positions G that every query sees and that
    see every key;
  * random blocks (BigBird): each query block also sees r key blocks drawn at random from
    outside its window.
Shapes: q, k, v are (B, H, n, d); outputs (B, H, n, d).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Pattern:
    block: int = 16  # b: tokens per block
    window: int = 8  # w: keys on each side of the query (before dilation)
    dilation: int = 1
    globals_: tuple[int, ...] = ()  # positions with global attention
    random_blocks: int = 0  # r: random key blocks per query block (BigBird)
    seed: int = 0  # draws the random blocks

    @property
    def span(self) -> int:
        """Neighbour blocks on each side that can hold window keys."""
        return math.ceil(self.window * self.dilation / self.block)


def random_block_choice(p: Pattern, n_blocks: int) -> torch.Tensor:
    """(n_blocks, r) key blocks for each query block, outside its window span, no repeats:
    the r largest of uniform draws over the allowed blocks of each row."""
    if p.random_blocks == 0:
        return torch.zeros(n_blocks, 0, dtype=torch.long)
    if n_blocks - (2 * p.span + 1) < p.random_blocks:
        raise ValueError(
            f"sequence too short for {p.random_blocks} random blocks outside the window"
        )
    gen = torch.Generator().manual_seed(p.seed)
    draws = torch.rand(n_blocks, n_blocks, generator=gen)  # (query block, key block)
    idx = torch.arange(n_blocks)
    near = (idx[:, None] - idx[None, :]).abs() <= p.span
    return draws.masked_fill(near, -1.0).topk(p.random_blocks, dim=-1).indices


def in_window(qpos: torch.Tensor, kpos: torch.Tensor, p: Pattern) -> torch.Tensor:
    diff = qpos - kpos
    return (diff.abs() <= p.window * p.dilation) & (diff % p.dilation == 0)


def pattern_mask(n: int, p: Pattern) -> torch.Tensor:
    """The (n, n) boolean mask of the pattern: True where query i may attend key j."""
    pos = torch.arange(n)
    mask = in_window(pos[:, None], pos[None, :], p)
    nb = n // p.block
    rand = random_block_choice(p, nb)
    block_mask = torch.zeros(nb, nb, dtype=torch.bool)
    block_mask[torch.arange(nb)[:, None].expand_as(rand), rand] = True
    blk = pos // p.block
    mask |= block_mask[blk][:, blk]  # (n, n): query block sees the whole random key block
    g = torch.tensor(p.globals_, dtype=torch.long)
    mask[:, g] = True
    mask[g, :] = True
    return mask


def dense_masked_attention(q, k, v, mask: torch.Tensor) -> torch.Tensor:
    """softmax(QKᵀ/√d + log mask) V: the reference, with the full n×n score matrix."""
    s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # (B, H, n, n)
    return torch.softmax(s.masked_fill(~mask, float("-inf")), dim=-1) @ v


def sparse_attention(q, k, v, p: Pattern) -> torch.Tensor:
    """The same attention, block by block: each query block gathers its window blocks, its
    random blocks and the global keys, so the largest score tensor is (n, m) with
    m = (2·span+1)·b + r·b + |G| keys per query, independent of n. Global queries attend to
    every key in an extra |G|×n step. Every key appears once per query (keys that are both
    global and in the window or a random block count in the global part only)."""
    B, H, n, d = q.shape
    b = p.block
    assert n % b == 0, "n must be a multiple of the block size"
    nb = n // b
    g = torch.tensor(p.globals_, dtype=torch.long)
    is_global = torch.zeros(n, dtype=torch.bool)
    is_global[g] = True

    # key positions per query block: window blocks, random blocks, then global keys
    offsets = torch.arange(-p.span, p.span + 1)
    win_blocks = torch.arange(nb)[:, None] + offsets  # (nb, 2s+1), may run off either end
    win_pos = (win_blocks[..., None] * b + torch.arange(b)).flatten(1)  # (nb, (2s+1)b)
    rnd_pos = (random_block_choice(p, nb)[..., None] * b + torch.arange(b)).flatten(1)
    glb_pos = g.expand(nb, -1)
    key_pos = torch.cat([win_pos, rnd_pos, glb_pos], dim=1)  # (nb, m)
    n_win, n_rnd = win_pos.shape[1], rnd_pos.shape[1]

    # which (query, key) pairs count: (nb, b, m)
    qpos = (torch.arange(nb)[:, None] * b + torch.arange(b))[..., None]  # (nb, b, 1)
    kpos = key_pos[:, None, :]  # (nb, 1, m)
    inside = (kpos >= 0) & (kpos < n)
    safe = key_pos.clamp(0, n - 1)
    not_glob = ~is_global[safe][:, None, :]
    part = torch.arange(key_pos.shape[1])
    valid = torch.where(
        part < n_win,
        inside & in_window(qpos, kpos, p) & not_glob,
        torch.where(part < n_win + n_rnd, not_glob, torch.ones_like(not_glob)),
    )  # (nb, b, m)

    qb = q.view(B, H, nb, b, d)
    kg = k[:, :, safe]  # (B, H, nb, m, d): gathered keys, linear in n
    vg = v[:, :, safe]
    s = torch.einsum("bhnqd,bhnmd->bhnqm", qb, kg) / math.sqrt(d)  # (B, H, nb, b, m)
    a = torch.softmax(s.masked_fill(~valid, float("-inf")), dim=-1)
    out = torch.einsum("bhnqm,bhnmd->bhnqd", a, vg).reshape(B, H, n, d)

    if len(g):  # global queries see everything: |G| dense rows
        sg = q[:, :, g] @ k.transpose(-1, -2) / math.sqrt(d)  # (B, H, |G|, n)
        out[:, :, g] = torch.softmax(sg, dim=-1) @ v
    return out


def attended_pairs(n: int, p: Pattern) -> int:
    """Number of (query, key) pairs the pattern allows."""
    return int(pattern_mask(n, p).sum())
