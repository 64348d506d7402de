"""The two xLSTM cells with exponential input gates, with and without the stabiliser.

mLSTM (matrix memory, §2.3), per head with key size d, inputs (B, H, T, d) and gate
pre-activations ĩ, f̃ (B, H, T):
    C_t = f_t C_{t-1} + i_t v_t k_tᵀ        n_t = f_t n_{t-1} + i_t k_t
    h̃_t = C_t q_t / max(|n_tᵀ q_t|, 1)      i_t = exp(ĩ_t),  f_t = σ(f̃_t),  k ← k/√d
sLSTM (scalar memory with recurrent connections, §2.2), per unit:
    c_t = f_t c_{t-1} + i_t z_t             n_t = f_t n_{t-1} + i_t          h_t = o_t c_t / n_t
Stabiliser (both cells): carry m_t = max(log f_t + m_{t-1}, ĩ_t) and keep every memory
scaled by e^{-m_t}; then i'_t = exp(ĩ_t - m_t) ≤ 1 and f'_t = exp(log f_t + m_{t-1} - m_t) ≤ 1,
and the ratios that make the output are unchanged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


# --------------------------------------------------------------------------- mLSTM
def mlstm_parallel(q, k, v, i_pre, f_pre) -> torch.Tensor:
    """All positions at once (the paper's parallel formulation, appendix):
    D̃[t, s] = Σ_{u=s+1}^{t} log f_u + ĩ_s  (s ≤ t),   m_t = max_s D̃[t, s]
    S = (q kᵀ/√d) ∘ exp(D̃ - m),   h̃ = S v / max(|Σ_s S[t, s]|, e^{-m_t})
    """
    T, d = q.shape[-2], q.shape[-1]
    logf = F.logsigmoid(f_pre)
    cum = torch.cumsum(logf, dim=-1)  # (B, H, T)
    dlog = cum[..., :, None] - cum[..., None, :] + i_pre[..., None, :]  # (B, H, T, T)
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool, device=q.device))
    dlog = dlog.masked_fill(~causal, float("-inf"))
    m = dlog.amax(dim=-1, keepdim=True)  # (B, H, T, 1)
    s = (q @ k.transpose(-1, -2)) / math.sqrt(d) * torch.exp(dlog - m)
    norm = torch.maximum(s.sum(-1, keepdim=True).abs(), torch.exp(-m))
    return (s @ v) / norm


def mlstm_parallel_naive(q, k, v, i_pre, f_pre) -> torch.Tensor:
    """The same sum with exp(D̃) taken directly: overflows once ĩ ≳ 88 in float32."""
    T, d = q.shape[-2], q.shape[-1]
    cum = torch.cumsum(F.logsigmoid(f_pre), dim=-1)
    dlog = cum[..., :, None] - cum[..., None, :] + i_pre[..., None, :]
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool, device=q.device))
    s = (q @ k.transpose(-1, -2)) / math.sqrt(d) * torch.exp(dlog).masked_fill(~causal, 0)
    return (s @ v) / torch.clamp(s.sum(-1, keepdim=True).abs(), min=1.0)


def mlstm_recurrent(q, k, v, i_pre, f_pre, stabilise: bool = True) -> torch.Tensor:
    """One step per token with a (d, d) memory per head; ``stabilise=False`` runs the
    equations as first written, with i_t = exp(ĩ_t) taken directly."""
    B, H, T, d = q.shape
    C = q.new_zeros(B, H, d, d)
    n = q.new_zeros(B, H, d)
    m = q.new_full((B, H), float("-inf"))
    logf = F.logsigmoid(f_pre)
    k = k / math.sqrt(d)
    out = []
    for t in range(T):
        if stabilise:
            m_new = torch.maximum(logf[..., t] + m, i_pre[..., t])
            i_t = torch.exp(i_pre[..., t] - m_new)
            f_t = torch.exp(logf[..., t] + m - m_new)  # exp(-inf) = 0 before the first token
            floor = torch.exp(-m_new)  # the "1" of max(|nᵀq|, 1), scaled like n
            m = m_new
        else:
            i_t, f_t, floor = torch.exp(i_pre[..., t]), torch.exp(logf[..., t]), 1.0
        C = f_t[..., None, None] * C + i_t[..., None, None] * (
            v[..., t, :, None] * k[..., t, None, :]
        )  # (B, H, d, d): v kᵀ
        n = f_t[..., None] * n + i_t[..., None] * k[..., t, :]
        qt = q[..., t, :]
        num = (C @ qt[..., None]).squeeze(-1)  # (B, H, d)
        den = torch.maximum((n * qt).sum(-1).abs(), torch.as_tensor(floor, dtype=q.dtype))
        out.append(num / den[..., None])
    return torch.stack(out, dim=2)


# --------------------------------------------------------------------------- sLSTM
def slstm_recurrent(x_proj, R, stabilise: bool = True):
    """x_proj: (B, T, 4, H, dh) input contributions to (z̃, ĩ, f̃, õ), biases included;
    R: (4, H, dh, dh) block-diagonal recurrent weights (heads do not mix).
    Returns h (B, T, H, dh).

        z = tanh(z̃), i = exp(ĩ), f = σ(f̃), o = σ(õ), with z̃ = W_z x + R_z h_{t-1} + b_z, …
    """
    B, T, _, H, dh = x_proj.shape
    h = x_proj.new_zeros(B, H, dh)
    c = torch.zeros_like(h)
    n = torch.zeros_like(h)
    m = torch.full_like(h, float("-inf"))
    out = []
    for t in range(T):
        rec = torch.einsum("ghij,bhj->bghi", R, h)  # (B, 4, H, dh)
        zt, it, ft, ot = (x_proj[:, t] + rec).unbind(1)
        logf = F.logsigmoid(ft)
        if stabilise:
            m_new = torch.maximum(logf + m, it)
            i_g, f_g = torch.exp(it - m_new), torch.exp(logf + m - m_new)
            m = m_new
        else:
            i_g, f_g = torch.exp(it), torch.exp(logf)
        c = f_g * c + i_g * torch.tanh(zt)
        n = f_g * n + i_g
        h = torch.sigmoid(ot) * c / n
        out.append(h)
    return torch.stack(out, dim=1)
