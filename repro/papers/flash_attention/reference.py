"""The readable side: standard attention, and FlashAttention's tiled algorithms in plain PyTorch.

* ``naive_attention``: softmax(scale · Q Kᵀ) V with the N×N matrices materialised, the
  baseline every claim is measured against (autograd gives its backward).
* ``tiled_forward`` / ``tiled_backward``: the paper's Algorithm 1 (forward) and Algorithm 4
  (backward, without dropout), loop for loop: the outer loop runs over key/value blocks, the inner
  one over query blocks, and O, ℓ, m live in "HBM" (full tensors) while only tiles are worked on.
  Nothing of size N×N is ever allocated, so they run at 16k tokens on a CPU.
* ``standard_forward`` / ``standard_backward``: the paper's Algorithm 0 and 3 (standard
  attention written out step by step), used to count the baseline's memory traffic.
* ``HBM``: a counter every load and store of these four functions goes through, which is how
  the IO-complexity claim (Theorem 2) is measured: elements moved, not a formula.

All functions take (B, H, N, D) tensors (any leading dims) and the kernels' conventions: the
softmax scale defaults to 1/√D, and the causal mask is aligned bottom-right (query i of N_q may
see key j of N_k when j ≤ i + N_k − N_q); a query row that sees no key gets O = 0 and LSE = +inf.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def causal_mask(
    n_q: int, n_k: int, device=None, rows: slice | None = None, cols: slice | None = None
) -> torch.Tensor:
    """Bool mask, True where query i may attend to key j (bottom-right aligned), for all
    (n_q, n_k) pairs or only the tile [rows, cols] (so the tiled code never builds N×N)."""
    rows, cols = rows or slice(0, n_q), cols or slice(0, n_k)
    i = torch.arange(rows.start, rows.stop, device=device)[:, None]
    j = torch.arange(cols.start, cols.stop, device=device)[None, :]
    return j <= i + (n_k - n_q)


def _scale(q: torch.Tensor, scale: float | None) -> float:
    return 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)


def naive_attention(q, k, v, causal: bool = False, scale: float | None = None) -> torch.Tensor:
    """Standard attention in the inputs' own precision: S = scale·QKᵀ, P = softmax(S), O = PV."""
    s = (q @ k.transpose(-1, -2)) * _scale(q, scale)  # (B, H, N_q, N_k)
    if causal:
        s = s.masked_fill(~causal_mask(q.shape[-2], k.shape[-2], q.device), float("-inf"))
    # A row with every key masked is all -inf and softmax gives NaN there; the convention is 0.
    p = torch.softmax(s, dim=-1).nan_to_num(0.0)
    return p @ v


# --------------------------------------------------------------------------- memory traffic
@dataclass
class HBM:
    """Counts elements read from and written to slow memory. A tile handed to ``load`` is what
    the algorithm is allowed to hold on chip; a ``store`` writes a tile back."""

    reads: int = 0
    writes: int = 0

    def load(self, x: torch.Tensor) -> torch.Tensor:
        self.reads += x.numel()
        return x

    def store(self, dst: torch.Tensor, index, value: torch.Tensor) -> None:
        self.writes += value.numel()
        dst[index] = value

    @property
    def total(self) -> int:
        return self.reads + self.writes


def block_sizes(sram: int, d: int) -> tuple[int, int]:
    """Algorithm 1, line 1: B_c = ⌈M / 4d⌉, B_r = min(⌈M / 4d⌉, d) for an on-chip memory of M
    elements (four tiles of B × d must fit: Q_i, K_j, V_j, O_i)."""
    b_c = math.ceil(sram / (4 * d))
    return min(b_c, d), b_c


def _tiles(n: int, size: int) -> list[slice]:
    return [slice(s, min(s + size, n)) for s in range(0, n, size)]


def _sees_any(rows: slice, cols: slice, n_q: int, n_k: int) -> bool:
    """Does any query in rows see any key in cols under the causal mask? (else skip the tile)"""
    return cols.start <= (rows.stop - 1) + (n_k - n_q)


# --------------------------------------------------------------------------- Algorithm 1
def tiled_forward(
    q,
    k,
    v,
    causal: bool = False,
    scale: float | None = None,
    block_r: int = 64,
    block_c: int = 64,
    hbm: HBM | None = None,
):
    """FlashAttention forward (Algorithm 1). Returns (O, LSE), LSE = m + log ℓ per query row.

    For each key/value block j and each query block i, with S_ij = scale · Q_i K_jᵀ:
        m̃_ij = rowmax(S_ij),  P̃_ij = exp(S_ij − m̃_ij),  ℓ̃_ij = rowsum(P̃_ij)
        m_new = max(m_i, m̃_ij),  ℓ_new = e^(m_i − m_new) ℓ_i + e^(m̃_ij − m_new) ℓ̃_ij
        O_i  ← diag(ℓ_new)⁻¹ (diag(ℓ_i) e^(m_i − m_new) O_i + e^(m̃_ij − m_new) P̃_ij V_j)
    """
    hbm = hbm or HBM()
    scale = _scale(q, scale)
    n_q, n_k = q.shape[-2], k.shape[-2]
    o = torch.zeros_like(q)
    l = torch.zeros(q.shape[:-1], dtype=q.dtype, device=q.device)  # (B, H, N_q)
    m = torch.full(q.shape[:-1], float("-inf"), dtype=q.dtype, device=q.device)
    for cols in _tiles(n_k, block_c):
        k_j, v_j = hbm.load(k[..., cols, :]), hbm.load(v[..., cols, :])
        for rows in _tiles(n_q, block_r):
            if causal and not _sees_any(rows, cols, n_q, n_k):
                continue  # a tile above the diagonal: nothing to load or compute
            q_i, o_i = hbm.load(q[..., rows, :]), hbm.load(o[..., rows, :])
            l_i, m_i = hbm.load(l[..., rows]), hbm.load(m[..., rows])
            s_ij = (q_i @ k_j.transpose(-1, -2)) * scale  # (B, H, B_r, B_c)
            if causal:
                keep = causal_mask(n_q, n_k, q.device, rows, cols)
                s_ij = s_ij.masked_fill(~keep, float("-inf"))
            m_ij = s_ij.amax(-1)
            # Rows with every key masked so far have max -inf: subtract 0 there, not -inf.
            p_ij = torch.exp(s_ij - _finite(m_ij)[..., None])
            l_ij = p_ij.sum(-1)
            m_new = torch.maximum(m_i, m_ij)
            a = torch.exp(m_i - _finite(m_new))  # weight of what was accumulated so far
            b = torch.exp(m_ij - _finite(m_new))  # weight of this tile
            l_new = a * l_i + b * l_ij
            o_new = (l_i * a)[..., None] * o_i + b[..., None] * (p_ij @ v_j)
            o_new = o_new / _nonzero(l_new)[..., None]
            hbm.store(o, (..., rows, slice(None)), o_new)
            hbm.store(l, (..., rows), l_new)
            hbm.store(m, (..., rows), m_new)
    lse = torch.where(l > 0, m + torch.log(_nonzero(l)), torch.full_like(l, float("inf")))
    return o, lse


def _finite(x: torch.Tensor) -> torch.Tensor:
    return torch.where(torch.isfinite(x), x, torch.zeros_like(x))


def _nonzero(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x > 0, x, torch.ones_like(x))


# --------------------------------------------------------------------------- Algorithm 4
def tiled_backward(
    do,
    q,
    k,
    v,
    o,
    lse,
    causal: bool = False,
    scale: float | None = None,
    block_r: int = 64,
    block_c: int = 64,
    hbm: HBM | None = None,
):
    """FlashAttention backward (Algorithm 4 without dropout): P is recomputed per tile from the
    stored LSE, never stored. For key block j and query block i:
        P_ij = exp(S_ij − LSE_i),   dV_j += P_ijᵀ dO_i,   dP_ij = dO_i V_jᵀ
        D_i = rowsum(dO_i ∘ O_i),   dS_ij = P_ij ∘ (dP_ij − D_i)
        dQ_i += scale · dS_ij K_j,  dK_j += scale · dS_ijᵀ Q_i
    """
    hbm = hbm or HBM()
    scale = _scale(q, scale)
    n_q, n_k = q.shape[-2], k.shape[-2]
    dq, dk, dv = torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)
    for cols in _tiles(n_k, block_c):
        k_j, v_j = hbm.load(k[..., cols, :]), hbm.load(v[..., cols, :])
        dk_j, dv_j = torch.zeros_like(k_j), torch.zeros_like(v_j)  # on chip
        for rows in _tiles(n_q, block_r):
            if causal and not _sees_any(rows, cols, n_q, n_k):
                continue
            q_i, o_i = hbm.load(q[..., rows, :]), hbm.load(o[..., rows, :])
            do_i, dq_i = hbm.load(do[..., rows, :]), hbm.load(dq[..., rows, :])
            lse_i = hbm.load(lse[..., rows])
            s_ij = (q_i @ k_j.transpose(-1, -2)) * scale  # (B, H, B_r, B_c)
            p_ij = torch.exp(s_ij - lse_i[..., None])  # LSE = +inf on empty rows gives 0
            if causal:
                keep = causal_mask(n_q, n_k, q.device, rows, cols)
                p_ij = p_ij.masked_fill(~keep, 0.0)
            dv_j = dv_j + p_ij.transpose(-1, -2) @ do_i
            dp_ij = do_i @ v_j.transpose(-1, -2)
            d_i = (do_i * o_i).sum(-1)
            ds_ij = p_ij * (dp_ij - d_i[..., None])
            hbm.store(dq, (..., rows, slice(None)), dq_i + scale * (ds_ij @ k_j))
            dk_j = dk_j + scale * (ds_ij.transpose(-1, -2) @ q_i)
        hbm.store(dk, (..., cols, slice(None)), dk_j)
        hbm.store(dv, (..., cols, slice(None)), dv_j)
    return dq, dk, dv


# --------------------------------------------------------------------------- Algorithms 0 and 3
def standard_forward(
    q, k, v, causal: bool = False, scale: float | None = None, hbm: HBM | None = None
):
    """Algorithm 0: S = QKᵀ written to HBM, read back for P = softmax(S), P written, read back
    with V for O = PV. Returns (O, P) since the standard backward needs P."""
    hbm = hbm or HBM()
    s = torch.empty(*q.shape[:-1], k.shape[-2], dtype=q.dtype, device=q.device)
    hbm.store(s, ..., (hbm.load(q) @ hbm.load(k).transpose(-1, -2)) * _scale(q, scale))
    p = torch.empty_like(s)
    s_in = hbm.load(s)
    if causal:
        s_in = s_in.masked_fill(~causal_mask(q.shape[-2], k.shape[-2], q.device), float("-inf"))
    hbm.store(p, ..., torch.softmax(s_in, dim=-1).nan_to_num(0.0))
    o = torch.empty_like(q)
    hbm.store(o, ..., hbm.load(p) @ hbm.load(v))
    return o, p


def standard_backward(do, q, k, v, p, scale: float | None = None, hbm: HBM | None = None):
    """Algorithm 3: dV = PᵀdO, dP = dO Vᵀ, dS = P ∘ (dP − rowsum(dP ∘ P)), dQ = dS K, dK = dSᵀ Q,
    every N×N intermediate going through HBM."""
    hbm = hbm or HBM()
    scale = _scale(q, scale)
    dv, dq, dk = torch.empty_like(v), torch.empty_like(q), torch.empty_like(k)
    hbm.store(dv, ..., hbm.load(p).transpose(-1, -2) @ hbm.load(do))
    dp = torch.empty_like(p)
    hbm.store(dp, ..., hbm.load(do) @ hbm.load(v).transpose(-1, -2))
    ds = torch.empty_like(p)
    p_in, dp_in = hbm.load(p), hbm.load(dp)
    hbm.store(ds, ..., p_in * (dp_in - (p_in * dp_in).sum(-1, keepdim=True)))
    hbm.store(dq, ..., scale * (hbm.load(ds) @ hbm.load(k)))
    hbm.store(dk, ..., scale * (hbm.load(ds).transpose(-1, -2) @ hbm.load(q)))
    return dq, dk, dv
