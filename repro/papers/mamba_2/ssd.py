"""The SSD layer (scalar-times-identity state matrix) computed three ways.

Shapes, for batch B, length T, heads H, head dim P, state size N:
    x (B, T, H, P)   inputs
    log_a (B, T, H)  log of the per-step decay a_t ∈ (0, 1]  (Mamba-2: a_t = exp(Δ_t·A))
    b, c (B, T, H, N)
and every function returns y (B, T, H, P).

The recurrence (§3, the SSM):
    h_t = a_t · h_{t-1} + b_t x_tᵀ        h_t ∈ R^{N×P}
    y_t = h_tᵀ c_t
unrolls to y = M x with M[t, s] = c_tᵀ b_s · a_{s+1}⋯a_t for s ≤ t, 0 above the diagonal:
    M = L ∘ (C Bᵀ),   L[t, s] = a_{s+1}⋯a_t   (the 1-semiseparable mask)
which is masked attention with queries C, keys B and values X (§4–5, the dual form).
"""

from __future__ import annotations

import torch


def segsum(log_a: torch.Tensor) -> torch.Tensor:
    """(…, T) -> (…, T, T) with S[t, s] = log a_{s+1} + … + log a_t for s ≤ t, -inf above.

    Built from one cumulative sum per column of a masked copy rather than as cs[t] - cs[s]:
    the difference of two long prefix sums loses digits once they are large, the direct
    column sums do not.
    """
    T = log_a.shape[-1]
    x = (
        log_a[..., None, :].expand(*log_a.shape, T).transpose(-1, -2)
    )  # (…, T, T): x[t, s] = log a_t
    strictly_below = torch.tril(torch.ones(T, T, dtype=torch.bool, device=log_a.device), -1)
    s = torch.cumsum(x.masked_fill(~strictly_below, 0), dim=-2)  # Σ_{k=s+1}^{t} log a_k
    below_or_on = torch.tril(torch.ones(T, T, dtype=torch.bool, device=log_a.device))
    return s.masked_fill(~below_or_on, float("-inf"))


def ssd_mask(log_a: torch.Tensor) -> torch.Tensor:
    """L = exp(segsum(log a)): the 1-semiseparable mask, (B, H, T, T)."""
    return torch.exp(segsum(log_a.transpose(1, 2)))


def ssd_quadratic(x, log_a, b, c) -> torch.Tensor:
    """Attention-like form: Y = (L ∘ C Bᵀ) X, O(T²) time and memory."""
    scores = torch.einsum("bthn,bshn->bhts", c, b)  # (B, H, T, T): C Bᵀ
    m = ssd_mask(log_a) * scores
    return torch.einsum("bhts,bshp->bthp", m, x)


def ssd_scan(x, log_a, b, c) -> torch.Tensor:
    """Recurrent form: one step per token with an (N, P) state per head; O(T) time."""
    B, T, H, P = x.shape
    h = x.new_zeros(B, H, b.shape[-1], P)
    a = torch.exp(log_a)
    ys = []
    for t in range(T):
        h = a[:, t, :, None, None] * h + b[:, t, :, :, None] * x[:, t, :, None, :]  # (B, H, N, P)
        ys.append(torch.einsum("bhnp,bhn->bhp", h, c[:, t]))
    return torch.stack(ys, dim=1)


def ssd_chunked(x, log_a, b, c, chunk: int, initial_state: torch.Tensor | None = None):
    """The block decomposition of §6: split the length into chunks of Q tokens, then

    1. diagonal blocks: the quadratic form inside each chunk;
    2. chunk states: the state each chunk would leave starting from zero;
    3. state passing: a recurrence over chunks, h_c = (Π_chunk a) · h_{c-1} + state_c;
    4. off-diagonal blocks: each token reads the state entering its chunk, decayed to it.

    Steps 1, 2 and 4 are batched matmuls; step 3 runs over T/Q chunks. Total O(T·Q) work,
    linear in T for fixed Q. Returns (y, final state (B, H, N, P)).
    """
    B, T, H, P = x.shape
    N = b.shape[-1]
    assert T % chunk == 0, "length must be a multiple of the chunk size"
    nc, Q = T // chunk, chunk
    x, b, c = (t.reshape(B, nc, Q, H, -1) for t in (x, b, c))  # (B, nc, Q, H, ·)
    la = log_a.reshape(B, nc, Q, H).permute(0, 3, 1, 2)  # (B, H, nc, Q)
    cs = torch.cumsum(la, dim=-1)  # log a_1⋯a_q inside each chunk

    # 1. inside each chunk
    L = torch.exp(segsum(la))  # (B, H, nc, Q, Q)
    y_diag = torch.einsum("bcqhn,bcshn,bhcqs,bcshp->bcqhp", c, b, L, x)

    # 2. state left by each chunk on its own: Σ_s (a_{s+1}⋯a_Q) b_s x_sᵀ
    to_end = torch.exp(cs[..., -1:] - cs)  # (B, H, nc, Q)
    states = torch.einsum("bcshn,bhcs,bcshp->bchnp", b, to_end, x)  # (B, nc, H, N, P)

    # 3. carry states across chunks
    h = x.new_zeros(B, H, N, P) if initial_state is None else initial_state
    chunk_decay = torch.exp(cs[..., -1])  # (B, H, nc)
    entering = []
    for i in range(nc):
        entering.append(h)
        h = chunk_decay[:, :, i, None, None] * h + states[:, i]
    entering = torch.stack(entering, dim=1)  # (B, nc, H, N, P)

    # 4. what the entering state contributes at each position: c_qᵀ (a_1⋯a_q) h
    from_start = torch.exp(cs)  # (B, H, nc, Q)
    y_off = torch.einsum("bcqhn,bchnp,bhcq->bcqhp", c, entering, from_start)
    return (y_diag + y_off).reshape(B, T, H, P), h


def ssd_matrix(log_a, b, c) -> torch.Tensor:
    """The full sequence-mixing matrix M = L ∘ C Bᵀ, (B, H, T, T)."""
    return ssd_mask(log_a) * torch.einsum("bthn,bshn->bhts", c, b)


def max_lower_rank(m: torch.Tensor, rel_tol: float = 1e-9) -> int:
    """Largest numerical rank among the blocks M[j:, :j+1] (rows from j down, columns up to
    j), j = 0..T-1. Every submatrix on or below the diagonal lies inside one of them, so M is
    N-semiseparable (the definition in §3) exactly when this is ≤ N."""
    T = m.shape[-1]
    worst = 0
    for j in range(T):
        s = torch.linalg.svdvals(m[j:, : j + 1])
        worst = max(worst, int((s > rel_tol * s[0]).sum()) if s[0] > 0 else 0)
    return worst
