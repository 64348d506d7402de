"""The WKV operator of RWKV-4 in three forms: parallel (training), recurrent (inference) with
the shared-exponent trick, and the naive recurrence that the trick replaces.

All functions take per-channel decay ``w`` (C,), bonus ``u`` (C,), keys ``k`` and values ``v``
(B, T, C) and return ``wkv`` (B, T, C). Positions are 0-based here; the paper's are 1-based.

    wkv_t = ( Σ_{i<t} e^{-(t-1-i)w + k_i} v_i  +  e^{u + k_t} v_t )
            / ( Σ_{i<t} e^{-(t-1-i)w + k_i}      +  e^{u + k_t} )
"""

from __future__ import annotations

import torch


def decay_logits(w: torch.Tensor, u: torch.Tensor, T: int) -> torch.Tensor:
    """The position-only part of the WKV exponents, (C, T, T):
    D[t, i] = -(t-1-i)·w for i < t,  u for i = t,  -inf for i > t."""
    t = torch.arange(T, device=w.device)
    lag = (t[:, None] - 1 - t[None, :]).to(w.dtype)  # (T, T): t-1-i
    d = -lag * w[:, None, None]  # (C, T, T)
    d = torch.where(torch.eye(T, dtype=torch.bool, device=w.device), u[:, None, None], d)
    return d.masked_fill(t[None, :] > t[:, None], float("-inf"))


def wkv_logits(w: torch.Tensor, u: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """The exponents of the WKV weights as a causal (B, C, T, T) matrix:
    L[t, i] = -(t-1-i)·w + k_i  for i < t,   u + k_t  for i = t,   -inf for i > t."""
    return decay_logits(w, u, k.shape[1]) + k.transpose(1, 2)[:, :, None, :]  # (B, C, T, T)


def wkv_parallel(
    w: torch.Tensor, u: torch.Tensor, k: torch.Tensor, v: torch.Tensor
) -> torch.Tensor:
    """Transformer-like form (§4.2): every position at once. The weights are a row-wise softmax
    of the logits above, so subtracting each row's maximum (which softmax does) keeps it finite
    for any k; the cost is O(T²C) time and memory, as for attention."""
    att = torch.softmax(wkv_logits(w, u, k), dim=-1)  # (B, C, T, T)
    return (att @ v.transpose(1, 2)[..., None]).squeeze(-1).transpose(1, 2)  # (B, T, C)


def wkv_parallel_naive(w, u, k, v) -> torch.Tensor:
    """The same sum with the exponentials taken as written: overflows once k + u ≳ 88 (float32)."""
    e = torch.exp(wkv_logits(w, u, k))  # (B, C, T, T)
    num = (e @ v.transpose(1, 2)[..., None]).squeeze(-1)
    return (num / e.sum(-1)).transpose(1, 2)


def wkv_recurrent_naive(w, u, k, v) -> torch.Tensor:
    """RNN form as first written (§4.3):
        wkv_t = (a_{t-1} + e^{u+k_t} v_t) / (b_{t-1} + e^{u+k_t})
        a_t = e^{-w} a_{t-1} + e^{k_t} v_t,   b_t = e^{-w} b_{t-1} + e^{k_t}
    e^{k} overflows float32 for k > 88.7 and underflows to 0/0 for very negative k."""
    B, T, C = k.shape
    a = torch.zeros(B, C, dtype=k.dtype, device=k.device)
    b = torch.zeros_like(a)
    decay = torch.exp(-w)
    out = []
    for t in range(T):
        ek, euk = torch.exp(k[:, t]), torch.exp(u + k[:, t])
        out.append((a + euk * v[:, t]) / (b + euk))
        a = decay * a + ek * v[:, t]
        b = decay * b + ek
    return torch.stack(out, dim=1)


def wkv_init_state(B: int, C: int, dtype=torch.float32, device="cpu"):
    """(a', b', p): numerator and denominator scaled by e^{-p}, and the shared exponent p.
    p = -inf means "nothing seen yet"; every max() below then picks the finite side."""
    a = torch.zeros(B, C, dtype=dtype, device=device)
    return a, torch.zeros_like(a), torch.full_like(a, float("-inf"))


def wkv_step(w, u, k_t, v_t, state):
    """One token of the stable recurrence (the paper's appendix on the RNN cell).

    With a_{t-1} = e^{p} a', b_{t-1} = e^{p} b':
        q  = max(p, u + k_t)
        wkv_t = (e^{p-q} a' + e^{u+k_t-q} v_t) / (e^{p-q} b' + e^{u+k_t-q})
        q' = max(p - w, k_t)
        a' ← e^{p-w-q'} a' + e^{k_t-q'} v_t,   b' ← e^{p-w-q'} b' + e^{k_t-q'},   p ← q'
    Every exponent is ≤ 0, so nothing overflows; the larger of each pair is exactly e^0 = 1,
    so the denominator never underflows to 0 either.
    """
    a, b, p = state
    q = torch.maximum(p, u + k_t)
    e1, e2 = torch.exp(p - q), torch.exp(u + k_t - q)
    out = (e1 * a + e2 * v_t) / (e1 * b + e2)
    q2 = torch.maximum(p - w, k_t)
    e1, e2 = torch.exp(p - w - q2), torch.exp(k_t - q2)
    return out, (e1 * a + e2 * v_t, e1 * b + e2, q2)


def wkv_recurrent(w, u, k, v, state=None):
    """The stable recurrence over a whole sequence; returns (wkv, final state)."""
    B, T, C = k.shape
    state = state if state is not None else wkv_init_state(B, C, k.dtype, k.device)
    out = []
    for t in range(T):
        y, state = wkv_step(w, u, k[:, t], v[:, t], state)
        out.append(y)
    return torch.stack(out, dim=1), state
