"""Relative self-attention (Shaw et al. 2018) in the naive form and with Music Transformer's skew.

Relative attention adds a term that depends on the distance between query i and key j:

    RelativeAttention = Softmax((Q Kᵀ + S_rel) / √D_h) V                 (Huang et al., eq. 3)

with S_rel[i, j] = q_i · r_{j−i}, one learned embedding r per distance (per head). We keep the
embeddings as a table E_r of shape (L, D_h), row m holding distance m − (L − 1): the causal
distances −(L − 1) … 0, the last row being "same position".

* The naive form (Shaw et al.) gathers R[i, j] = E_r[L − 1 + j − i] into an (L, L, D_h) tensor
  and contracts each q_i with its row of R: O(L² D_h) memory.
* The skew (Huang et al. §3.4.1) multiplies Q E_rᵀ, an (L, L) matrix indexed by (query,
  distance) rather than (query, key), then pads one zero column on the left, reshapes
  (L, L + 1) → (L + 1, L) and drops the first row. Row i then lands at column j exactly the
  entry for distance j − i, for every j ≤ i; entries above the diagonal are garbage that the
  causal mask removes. Only E_r (L × D_h) is stored beyond logit-sized (L × L) buffers.

Why the reshape works: in the flat (L, L + 1) buffer, entry (i, c) sits at i(L + 1) + c. After
the reshape and dropping row 0, output (i, j) reads flat index (i + 1)L + j = i(L + 1) + (L + j − i),
i.e. padded column L + j − i = column L − 1 + j − i of Q E_rᵀ: distance j − i.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def relative_index(L: int, device=None) -> torch.Tensor:
    """idx[i, j] = L − 1 + j − i: the E_r row for distance j − i (clamped to 0 above the
    diagonal, where the causal mask discards the value)."""
    i = torch.arange(L, device=device)[:, None]
    j = torch.arange(L, device=device)[None, :]
    return (L - 1 + j - i).clamp(max=L - 1)


def rel_logits_naive(q: torch.Tensor, e_rel: torch.Tensor) -> torch.Tensor:
    """S_rel[b, h, i, j] = q[b, h, i] · R[h, i, j] with R[h, i, j] = E_r[h, L − 1 + j − i].

    q: (B, H, L, D), e_rel: (H, L, D) -> (B, H, L, L). Materialises R: (H, L, L, D).
    """
    L = q.shape[-2]
    r = e_rel[:, relative_index(L, q.device)]  # (H, L, L, D)
    return torch.einsum("bhid,hijd->bhij", q, r)


def skew(m: torch.Tensor) -> torch.Tensor:
    """Pad, reshape, slice (Huang et al. §3.4.1, Fig. 1). m: (..., L, L) indexed by (query,
    distance row of E_r) -> (..., L, L) indexed by (query, key); valid for key ≤ query."""
    *lead, L, _ = m.shape
    padded = F.pad(m, (1, 0))  # (..., L, L + 1): a zero column on the left
    return padded.reshape(*lead, L + 1, L)[..., 1:, :]  # (..., L, L)


def skew_view(m: torch.Tensor) -> torch.Tensor:
    """The same index map as ``skew`` without a copy: S[i, j] = m[i, L − 1 + j − i] is the
    element at offset (L − 1) + i(L − 1) + j of the contiguous (L, L) matrix, so one strided
    view with row stride L − 1 does it (the last offset, L² − 1, stays inside the buffer)."""
    m = m.contiguous()
    *lead, L, _ = m.shape
    if L == 1:
        return m
    lead_strides = m.stride()[:-2]
    return m.as_strided((*lead, L, L), (*lead_strides, L - 1, 1), m.storage_offset() + L - 1)


def rel_logits_skew(q: torch.Tensor, e_rel: torch.Tensor, view: bool = False) -> torch.Tensor:
    """S_rel by the skewing trick: skew(Q E_rᵀ). q: (B, H, L, D), e_rel: (H, L, D)."""
    m = q @ e_rel.transpose(-2, -1).unsqueeze(0)  # (B, H, L, L): (query, distance)
    return skew_view(m) if view else skew(m)


def relative_attention(q, k, v, e_rel, method: str = "skew") -> torch.Tensor:
    """Causal Softmax((Q Kᵀ + S_rel) / √D) V with S_rel from ``method``: naive | skew | view."""
    if method == "naive":
        s_rel = rel_logits_naive(q, e_rel)
    elif method in ("skew", "view"):
        s_rel = rel_logits_skew(q, e_rel, view=method == "view")
    else:
        raise ValueError(f"method {method!r}: use naive, skew or view")
    L = q.shape[-2]
    logits = (q @ k.transpose(-2, -1) + s_rel) / math.sqrt(q.shape[-1])  # (B, H, L, L)
    causal = torch.ones(L, L, dtype=torch.bool, device=q.device).tril()
    return logits.masked_fill(~causal, float("-inf")).softmax(-1) @ v
