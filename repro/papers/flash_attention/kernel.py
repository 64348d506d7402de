"""FlashAttention as Triton kernels: forward, backward, autograd wrapper.

Forward (the paper's Algorithm 1, in the FlashAttention-2 loop order: one program per block of
queries, looping over blocks of keys). For a query row i and the key blocks j = 1, 2, ...:

    S_ij   = scale · Q_i K_jᵀ
    m_new  = max(m_i, rowmax(S_ij))
    P_ij   = exp(S_ij − m_new)
    l_i    = exp(m_i − m_new) · l_i + rowsum(P_ij)
    acc    = exp(m_i − m_new) · acc + P_ij V_j
    m_i    = m_new

and at the end O_i = acc / l_i and LSE_i = m_i + log l_i, which the backward keeps instead of the
N×N matrix P. All exponentials are taken base 2 (``exp2`` is one instruction on GPUs), so the
scores are multiplied by scale·log2(e) once and the running max lives in the log2 domain.

Backward (Algorithm 2/4, with FlashAttention-2's split into two kernels so no atomics are needed):
P is recomputed tile by tile from Q, K and the stored LSE, and with D_i = rowsum(dO_i ∘ O_i)

    dV = Pᵀ dO,   dP = dO Vᵀ,   dS = P ∘ (dP − D),   dQ = scale · dS K,   dK = scale · dSᵀ Q.

``_attn_bwd_dkdv`` owns a block of keys and loops over queries (dK, dV); ``_attn_bwd_dq`` owns a
block of queries and loops over keys (dQ).

Conventions
  * Layout (B, H, N, D) like ``torch.nn.functional.scaled_dot_product_attention``; q may have a
    different length than k and v. Head dims up to 128, any value (80, 96, ...): the kernels work
    on tiles of the next power of two (at least 16, the smallest ``tl.dot``) and mask the rest.
  * Causal masking is aligned to the bottom-right corner, as in FlashAttention ≥ 2.1: query i
    (of N_q) may see key j (of N_k) when j ≤ i + N_k − N_q. With N_q = N_k that is the usual
    causal mask; with fewer queries than keys the queries are the *last* N_q positions (decoding
    with a KV cache). SDPA's ``is_causal=True`` aligns top-left instead; the two agree only when
    N_q = N_k. A query row that sees no key (N_q > N_k) gets output 0 and LSE = +inf, so its
    recomputed P in the backward is 0 too.
  * fp16, bf16 and fp32 inputs; accumulation in fp32. fp32 inputs use exact ("ieee") products,
    since TF32 would lose the exactness the paper claims.

Running without a GPU
  Triton decides when a kernel is *decorated* whether it is compiled for a GPU or run by its CPU
  interpreter. This module therefore sets ``TRITON_INTERPRET=1`` before it defines the kernels
  whenever no CUDA device is present (unless the environment says ``TRITON_INTERPRET=0``), so
  the same kernels run, slowly, on CPU tensors. The interpreter cannot compute on bfloat16 (it
  keeps bf16 as raw 16-bit patterns and a bf16 ``tl.dot`` returns garbage), so under the
  interpreter bf16 tiles are cast to fp32 right after loading (the ``UPCAST`` switch); on a GPU
  bf16 stays native.
"""

from __future__ import annotations

import math
import os

import torch

if os.environ.get("TRITON_INTERPRET", "") == "" and not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"
INTERPRET = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")

import triton  # noqa: E402  (must come after the interpreter switch above)
import triton.language as tl  # noqa: E402

MAX_HEAD_DIM = 128

# Tests set this to fill every output buffer with NaN before a kernel writes it, so an element
# the kernels forget to store shows up instead of passing with stale memory.
POISON_OUTPUTS = False

# The kernels below keep argument lists grouped (a pointer with its strides, the sizes, the
# compile-time switches) instead of ruff's one-argument-per-line layout, which would triple
# their length and hide the algorithm.
# fmt: off


# --------------------------------------------------------------------------- tile configs
def _fwd_configs() -> list[triton.Config]:
    if INTERPRET:
        # One small config: the interpreter runs every program in numpy, and unequal tiles
        # exercise the masking of partial and diagonal blocks at the short test lengths.
        return [triton.Config({"BLOCK_M": 32, "BLOCK_N": 16}, num_warps=4, num_stages=1)]
    return [
        triton.Config({"BLOCK_M": bm, "BLOCK_N": bn}, num_warps=w, num_stages=s)
        for bm, bn, w, s in [
            (128, 64, 4, 3), (128, 64, 8, 3), (128, 128, 8, 3), (128, 32, 4, 4),
            (64, 64, 4, 3), (64, 64, 8, 3), (64, 32, 4, 4), (128, 64, 8, 4),
        ]
    ]


def _bwd_configs(kind: str) -> list[triton.Config]:
    """BLOCK_M tiles queries and BLOCK_N keys in both backward kernels. dK/dV programs own a key
    block and hold two fp32 accumulators of BLOCK_N × HEAD_DIM, so they favour small query
    tiles; the dQ programs are the mirror image. (Register use checked by compiling for sm_90:
    at HEAD_DIM 128 the 4-warp variants of the larger tiles spill.)"""
    if INTERPRET:
        return [triton.Config({"BLOCK_M": 16, "BLOCK_N": 32}, num_warps=4, num_stages=1)]
    shapes = {
        "dkdv": [(32, 64, 4, 3), (32, 128, 8, 2), (64, 64, 8, 3), (64, 128, 8, 2),
                 (16, 64, 4, 3), (16, 128, 8, 3), (32, 64, 8, 3)],
        "dq": [(64, 64, 4, 2), (128, 32, 8, 2), (64, 32, 4, 3), (128, 64, 8, 2),
               (64, 64, 8, 3), (64, 128, 8, 2)],
    }[kind]
    return [triton.Config({"BLOCK_M": bm, "BLOCK_N": bn}, num_warps=w, num_stages=s)
            for bm, bn, w, s in shapes]


# Autotuning is keyed on the length bucket (next power of two, so a new length does not retune
# every time), the padded head dim and causality.
_TUNE_KEY = ["N_BUCKET", "HEAD_DIM_PAD", "CAUSAL"]


# --------------------------------------------------------------------------- helpers
@triton.jit
def _load_rows(base, rows, stride_row, n_rows, cols, HEAD_DIM: tl.constexpr,
               CHECK_ROWS: tl.constexpr, UPCAST: tl.constexpr):
    """A (len(rows), HEAD_DIM_PAD) tile; zeros past the sequence end and past the head dim."""
    mask = cols[None, :] < HEAD_DIM
    if CHECK_ROWS:
        mask = mask & (rows[:, None] < n_rows)
    x = tl.load(base + rows[:, None] * stride_row + cols[None, :], mask=mask, other=0.0)
    if UPCAST:
        x = x.to(tl.float32)
    return x


@triton.jit
def _store_rows(base, x, rows, stride_row, n_rows, cols, HEAD_DIM: tl.constexpr):
    mask = (cols[None, :] < HEAD_DIM) & (rows[:, None] < n_rows)
    tl.store(base + rows[:, None] * stride_row + cols[None, :],
             x.to(base.dtype.element_ty), mask=mask)


@triton.jit
def _query_tile_key_range(start_m, N_Q, N_K, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                          CAUSAL: tl.constexpr):
    """Keys a block of queries [start_m, start_m + BLOCK_M) has to visit, split in two:
    [0, full_hi) are whole tiles every query of the block sees (no mask needed), and
    [full_hi, hi) are the tiles on the causal diagonal or past the end of the keys (masked)."""
    if CAUSAL:
        diag = N_K - N_Q  # bottom-right alignment: query i sees keys j <= i + diag
        hi = tl.minimum(tl.maximum(start_m + BLOCK_M + diag, 0), N_K)
        full_hi = tl.maximum(start_m + diag + 1, 0) // BLOCK_N * BLOCK_N
        full_hi = tl.minimum(full_hi, N_K // BLOCK_N * BLOCK_N)
    else:
        hi = N_K
        full_hi = N_K // BLOCK_N * BLOCK_N
    return full_hi, hi


# --------------------------------------------------------------------------- forward
@triton.jit
def _fwd_inner(acc, l_i, m_i, q, k_base, v_base, stride_kn, stride_vn, offs_m, offs_d,
               lo, hi, qk_scale, N_Q, N_K,
               BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr, CAUSAL: tl.constexpr,
               MASKED: tl.constexpr, UPCAST: tl.constexpr, DOT_PRECISION: tl.constexpr):
    for start_n in range(lo, hi, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        k = _load_rows(k_base, offs_n, stride_kn, N_K, offs_d, HEAD_DIM, MASKED, UPCAST)
        v = _load_rows(v_base, offs_n, stride_vn, N_K, offs_d, HEAD_DIM, MASKED, UPCAST)
        # -- scores, already in the log2 domain
        s = tl.dot(q, tl.trans(k), input_precision=DOT_PRECISION) * qk_scale  # (BLOCK_M, BLOCK_N)
        if MASKED:
            keep = offs_n[None, :] < N_K
            if CAUSAL:
                keep = keep & (offs_n[None, :] <= offs_m[:, None] + (N_K - N_Q))
            s = tl.where(keep, s, float("-inf"))
        # -- online softmax: new running max, rescale what was accumulated under the old one
        m_new = tl.maximum(m_i, tl.max(s, 1))
        # A row that has seen only masked keys still has max -inf; subtract 0 there instead so
        # that exp2(-inf - -inf) does not turn into NaN (its p and alpha come out 0).
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        alpha = tl.math.exp2(m_i - m_safe)
        p = tl.math.exp2(s - m_safe[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=DOT_PRECISION)
        m_i = m_new
    return acc, l_i, m_i


@triton.autotune(configs=_fwd_configs(), key=_TUNE_KEY)
@triton.jit
def _attn_fwd(Q, K, V, O, LSE, sm_scale,
              stride_qb, stride_qh, stride_qn, stride_kb, stride_kh, stride_kn,
              stride_vb, stride_vh, stride_vn, stride_ob, stride_oh, stride_on,
              H, N_Q, N_K, N_BUCKET,
              HEAD_DIM: tl.constexpr, HEAD_DIM_PAD: tl.constexpr, CAUSAL: tl.constexpr,
              UPCAST: tl.constexpr, DOT_PRECISION: tl.constexpr,
              BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    start_m = tl.program_id(0) * BLOCK_M
    bh = tl.program_id(1)
    b = (bh // H).to(tl.int64)  # int64: batch offsets can pass 2^31 elements
    h = (bh % H).to(tl.int64)
    q_base = Q + b * stride_qb + h * stride_qh
    k_base = K + b * stride_kb + h * stride_kh
    v_base = V + b * stride_vb + h * stride_vh
    o_base = O + b * stride_ob + h * stride_oh

    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, HEAD_DIM_PAD)
    q = _load_rows(q_base, offs_m, stride_qn, N_Q, offs_d, HEAD_DIM, True, UPCAST)
    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, HEAD_DIM_PAD], dtype=tl.float32)
    qk_scale = sm_scale * 1.4426950408889634  # 1/ln 2: scores go straight into exp2

    # -- whole tiles without masks, then the diagonal / ragged tail with masks
    full_hi, hi = _query_tile_key_range(start_m, N_Q, N_K, BLOCK_M, BLOCK_N, CAUSAL)
    acc, l_i, m_i = _fwd_inner(acc, l_i, m_i, q, k_base, v_base, stride_kn, stride_vn, offs_m,
                               offs_d, 0, full_hi, qk_scale, N_Q, N_K, BLOCK_N, HEAD_DIM, CAUSAL,
                               False, UPCAST, DOT_PRECISION)
    acc, l_i, m_i = _fwd_inner(acc, l_i, m_i, q, k_base, v_base, stride_kn, stride_vn, offs_m,
                               offs_d, full_hi, hi, qk_scale, N_Q, N_K, BLOCK_N, HEAD_DIM, CAUSAL,
                               True, UPCAST, DOT_PRECISION)

    # -- epilogue: normalise once; rows that saw no key get O = 0 and LSE = +inf
    empty = l_i == 0.0
    l_safe = tl.where(empty, 1.0, l_i)
    _store_rows(o_base, acc / l_safe[:, None], offs_m, stride_on, N_Q, offs_d, HEAD_DIM)
    lse = tl.where(empty, float("inf"), (m_i + tl.math.log2(l_safe)) * 0.6931471805599453)  # ln 2
    tl.store(LSE + bh.to(tl.int64) * N_Q + offs_m, lse, mask=offs_m < N_Q)


# --------------------------------------------------------------------------- backward
@triton.jit
def _attn_bwd_delta(O, DO, DELTA, stride_ob, stride_oh, stride_on,
                    stride_dob, stride_doh, stride_don, H, N_Q,
                    HEAD_DIM: tl.constexpr, HEAD_DIM_PAD: tl.constexpr, BLOCK_M: tl.constexpr):
    """D_i = rowsum(dO_i ∘ O_i), the term that replaces rowsum(P ∘ dP) in dS."""
    bh = tl.program_id(1)
    b = (bh // H).to(tl.int64)
    h = (bh % H).to(tl.int64)
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, HEAD_DIM_PAD)
    o = _load_rows(O + b * stride_ob + h * stride_oh, offs_m, stride_on, N_Q, offs_d,
                   HEAD_DIM, True, True)
    do = _load_rows(DO + b * stride_dob + h * stride_doh, offs_m, stride_don, N_Q, offs_d,
                    HEAD_DIM, True, True)
    tl.store(DELTA + bh.to(tl.int64) * N_Q + offs_m, tl.sum(o * do, 1), mask=offs_m < N_Q)


@triton.jit
def _dkdv_inner(dk, dv, k, v, q_base, do_base, lse_base, delta_base, stride_qn, stride_don,
                offs_n, offs_d, lo, hi, qk_scale, N_Q, N_K,
                BLOCK_M: tl.constexpr, HEAD_DIM: tl.constexpr, CAUSAL: tl.constexpr,
                MASKED: tl.constexpr, UPCAST: tl.constexpr, DOT_PRECISION: tl.constexpr):
    # Works on transposed tiles (keys along rows) so that dK and dV come out without transposes.
    for start_m in range(lo, hi, BLOCK_M):
        offs_m = start_m + tl.arange(0, BLOCK_M)
        q = _load_rows(q_base, offs_m, stride_qn, N_Q, offs_d, HEAD_DIM, MASKED, UPCAST)
        do = _load_rows(do_base, offs_m, stride_don, N_Q, offs_d, HEAD_DIM, MASKED, UPCAST)
        # LSE = +inf past the end makes the recomputed P exactly 0 there
        lse2 = tl.load(lse_base + offs_m, mask=offs_m < N_Q, other=float("inf"))
        lse2 = lse2 * 1.4426950408889634  # 1/ln 2
        delta = tl.load(delta_base + offs_m, mask=offs_m < N_Q, other=0.0)
        # -- recompute Pᵀ from the stored log-sum-exp
        s_t = tl.dot(k, tl.trans(q), input_precision=DOT_PRECISION) * qk_scale  # (BLOCK_N, BLOCK_M)
        p_t = tl.math.exp2(s_t - lse2[None, :])
        if MASKED:
            keep = (offs_m[None, :] < N_Q) & (offs_n[:, None] < N_K)
            if CAUSAL:
                keep = keep & (offs_n[:, None] <= offs_m[None, :] + (N_K - N_Q))
            p_t = tl.where(keep, p_t, 0.0)
        # -- dV += Pᵀ dO;  dSᵀ = Pᵀ ∘ (dPᵀ − D);  dK += dSᵀ Q  (scale applied once at the end)
        dv += tl.dot(p_t.to(do.dtype), do, input_precision=DOT_PRECISION)
        dp_t = tl.dot(v, tl.trans(do), input_precision=DOT_PRECISION)
        ds_t = p_t * (dp_t - delta[None, :])
        dk += tl.dot(ds_t.to(q.dtype), q, input_precision=DOT_PRECISION)
    return dk, dv


@triton.autotune(configs=_bwd_configs("dkdv"), key=_TUNE_KEY)
@triton.jit
def _attn_bwd_dkdv(Q, K, V, DO, LSE, DELTA, DK, DV, sm_scale,
                   stride_qb, stride_qh, stride_qn, stride_kb, stride_kh, stride_kn,
                   stride_vb, stride_vh, stride_vn, stride_dob, stride_doh, stride_don,
                   stride_dkb, stride_dkh, stride_dkn, stride_dvb, stride_dvh, stride_dvn,
                   H, N_Q, N_K, N_BUCKET,
                   HEAD_DIM: tl.constexpr, HEAD_DIM_PAD: tl.constexpr, CAUSAL: tl.constexpr,
                   UPCAST: tl.constexpr, DOT_PRECISION: tl.constexpr,
                   BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    start_n = tl.program_id(0) * BLOCK_N
    bh = tl.program_id(1)
    b = (bh // H).to(tl.int64)
    h = (bh % H).to(tl.int64)
    q_base = Q + b * stride_qb + h * stride_qh
    do_base = DO + b * stride_dob + h * stride_doh
    lse_base = LSE + bh.to(tl.int64) * N_Q
    delta_base = DELTA + bh.to(tl.int64) * N_Q

    offs_n = start_n + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, HEAD_DIM_PAD)
    k = _load_rows(K + b * stride_kb + h * stride_kh, offs_n, stride_kn, N_K, offs_d,
                   HEAD_DIM, True, UPCAST)
    v = _load_rows(V + b * stride_vb + h * stride_vh, offs_n, stride_vn, N_K, offs_d,
                   HEAD_DIM, True, UPCAST)
    dk = tl.zeros([BLOCK_N, HEAD_DIM_PAD], dtype=tl.float32)
    dv = tl.zeros([BLOCK_N, HEAD_DIM_PAD], dtype=tl.float32)
    qk_scale = sm_scale * 1.4426950408889634  # 1/ln 2

    # -- which query tiles see these keys: masked ones on the diagonal, whole ones below it,
    #    and a masked ragged tail at the end of the queries
    full_hi = N_Q // BLOCK_M * BLOCK_M
    if CAUSAL:
        diag = N_K - N_Q
        lo = tl.maximum(start_n - diag, 0) // BLOCK_M * BLOCK_M  # earlier queries see none
        full_lo = tl.cdiv(tl.maximum(start_n + BLOCK_N - 1 - diag, 0), BLOCK_M) * BLOCK_M
    else:
        lo = 0
        full_lo = 0
    dk, dv = _dkdv_inner(dk, dv, k, v, q_base, do_base, lse_base, delta_base, stride_qn,
                         stride_don, offs_n, offs_d, lo, tl.minimum(full_lo, N_Q), qk_scale,
                         N_Q, N_K, BLOCK_M, HEAD_DIM, CAUSAL, True, UPCAST, DOT_PRECISION)
    dk, dv = _dkdv_inner(dk, dv, k, v, q_base, do_base, lse_base, delta_base, stride_qn,
                         stride_don, offs_n, offs_d, full_lo, full_hi, qk_scale,
                         N_Q, N_K, BLOCK_M, HEAD_DIM, CAUSAL, False, UPCAST, DOT_PRECISION)
    dk, dv = _dkdv_inner(dk, dv, k, v, q_base, do_base, lse_base, delta_base, stride_qn,
                         stride_don, offs_n, offs_d, tl.maximum(full_lo, full_hi), N_Q, qk_scale,
                         N_Q, N_K, BLOCK_M, HEAD_DIM, CAUSAL, True, UPCAST, DOT_PRECISION)

    _store_rows(DK + b * stride_dkb + h * stride_dkh, dk * sm_scale, offs_n, stride_dkn, N_K,
                offs_d, HEAD_DIM)
    _store_rows(DV + b * stride_dvb + h * stride_dvh, dv, offs_n, stride_dvn, N_K,
                offs_d, HEAD_DIM)


@triton.jit
def _dq_inner(dq, q, do, lse2, delta, k_base, v_base, stride_kn, stride_vn, offs_m, offs_d,
              lo, hi, qk_scale, N_Q, N_K,
              BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr, CAUSAL: tl.constexpr,
              MASKED: tl.constexpr, UPCAST: tl.constexpr, DOT_PRECISION: tl.constexpr):
    for start_n in range(lo, hi, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        k = _load_rows(k_base, offs_n, stride_kn, N_K, offs_d, HEAD_DIM, MASKED, UPCAST)
        v = _load_rows(v_base, offs_n, stride_vn, N_K, offs_d, HEAD_DIM, MASKED, UPCAST)
        s = tl.dot(q, tl.trans(k), input_precision=DOT_PRECISION) * qk_scale  # (BLOCK_M, BLOCK_N)
        p = tl.math.exp2(s - lse2[:, None])
        if MASKED:
            keep = offs_n[None, :] < N_K
            if CAUSAL:
                keep = keep & (offs_n[None, :] <= offs_m[:, None] + (N_K - N_Q))
            p = tl.where(keep, p, 0.0)
        # -- dS = P ∘ (dP − D);  dQ += dS K
        dp = tl.dot(do, tl.trans(v), input_precision=DOT_PRECISION)
        ds = p * (dp - delta[:, None])
        dq += tl.dot(ds.to(k.dtype), k, input_precision=DOT_PRECISION)
    return dq


@triton.autotune(configs=_bwd_configs("dq"), key=_TUNE_KEY)
@triton.jit
def _attn_bwd_dq(Q, K, V, DO, LSE, DELTA, DQ, sm_scale,
                 stride_qb, stride_qh, stride_qn, stride_kb, stride_kh, stride_kn,
                 stride_vb, stride_vh, stride_vn, stride_dob, stride_doh, stride_don,
                 stride_dqb, stride_dqh, stride_dqn,
                 H, N_Q, N_K, N_BUCKET,
                 HEAD_DIM: tl.constexpr, HEAD_DIM_PAD: tl.constexpr, CAUSAL: tl.constexpr,
                 UPCAST: tl.constexpr, DOT_PRECISION: tl.constexpr,
                 BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    start_m = tl.program_id(0) * BLOCK_M
    bh = tl.program_id(1)
    b = (bh // H).to(tl.int64)
    h = (bh % H).to(tl.int64)
    k_base = K + b * stride_kb + h * stride_kh
    v_base = V + b * stride_vb + h * stride_vh

    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, HEAD_DIM_PAD)
    q = _load_rows(Q + b * stride_qb + h * stride_qh, offs_m, stride_qn, N_Q, offs_d,
                   HEAD_DIM, True, UPCAST)
    do = _load_rows(DO + b * stride_dob + h * stride_doh, offs_m, stride_don, N_Q, offs_d,
                    HEAD_DIM, True, UPCAST)
    row_ok = offs_m < N_Q
    lse2 = tl.load(LSE + bh.to(tl.int64) * N_Q + offs_m, mask=row_ok, other=float("inf"))
    lse2 = lse2 * 1.4426950408889634  # 1/ln 2
    delta = tl.load(DELTA + bh.to(tl.int64) * N_Q + offs_m, mask=row_ok, other=0.0)
    dq = tl.zeros([BLOCK_M, HEAD_DIM_PAD], dtype=tl.float32)
    qk_scale = sm_scale * 1.4426950408889634  # 1/ln 2

    full_hi, hi = _query_tile_key_range(start_m, N_Q, N_K, BLOCK_M, BLOCK_N, CAUSAL)
    dq = _dq_inner(dq, q, do, lse2, delta, k_base, v_base, stride_kn, stride_vn, offs_m, offs_d,
                   0, full_hi, qk_scale, N_Q, N_K, BLOCK_N, HEAD_DIM, CAUSAL, False, UPCAST,
                   DOT_PRECISION)
    dq = _dq_inner(dq, q, do, lse2, delta, k_base, v_base, stride_kn, stride_vn, offs_m, offs_d,
                   full_hi, hi, qk_scale, N_Q, N_K, BLOCK_N, HEAD_DIM, CAUSAL, True, UPCAST,
                   DOT_PRECISION)
    _store_rows(DQ + b * stride_dqb + h * stride_dqh, dq * sm_scale, offs_m, stride_dqn, N_Q,
                offs_d, HEAD_DIM)


# fmt: on
# --------------------------------------------------------------------------- host side
def _check_inputs(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError(
            f"expected (B, H, N, D) tensors, got {tuple(q.shape)}, "
            f"{tuple(k.shape)}, {tuple(v.shape)}"
        )
    if not (q.dtype == k.dtype == v.dtype) or q.dtype not in (
        torch.float16,
        torch.bfloat16,
        torch.float32,
    ):
        raise TypeError(
            f"q, k, v must share one of fp16/bf16/fp32; got {q.dtype}, {k.dtype}, {v.dtype}"
        )
    if q.shape[:2] != k.shape[:2] or k.shape != v.shape or q.shape[3] != k.shape[3]:
        raise ValueError(
            f"shapes do not fit: q {tuple(q.shape)}, k {tuple(k.shape)}, "
            f"v {tuple(v.shape)} (same B, H, D; k and v of the same length)"
        )
    if not 1 <= q.shape[3] <= MAX_HEAD_DIM:
        raise ValueError(f"head dim {q.shape[3]} is not in 1..{MAX_HEAD_DIM}")
    if k.shape[2] == 0:
        raise ValueError("k and v need at least one position")
    if INTERPRET and q.device.type != "cpu":
        raise RuntimeError("TRITON_INTERPRET=1: the kernels run on CPU tensors only")
    if not INTERPRET and q.device.type != "cuda":
        raise RuntimeError(
            "the compiled kernels need CUDA tensors (or run with TRITON_INTERPRET=1)"
        )


def _last_dim_contiguous(x: torch.Tensor) -> torch.Tensor:
    return x if x.stride(-1) == 1 else x.contiguous()


def _new(shape, like: torch.Tensor, dtype=None) -> torch.Tensor:
    dtype = dtype or like.dtype
    if POISON_OUTPUTS:
        return torch.full(shape, float("nan"), dtype=dtype, device=like.device)
    return torch.empty(shape, dtype=dtype, device=like.device)


def _meta(q: torch.Tensor, causal: bool) -> dict:
    d = q.shape[3]
    return dict(
        HEAD_DIM=d,
        HEAD_DIM_PAD=max(16, triton.next_power_of_2(d)),
        CAUSAL=bool(causal),
        UPCAST=INTERPRET and q.dtype == torch.bfloat16,
        DOT_PRECISION="ieee" if q.dtype == torch.float32 else "tf32",
    )


def _bucket(n: int) -> int:
    return max(16, triton.next_power_of_2(n))


def _strides(*tensors: torch.Tensor) -> list[int]:
    """Batch, head and sequence strides of each (B, H, N, D) tensor (D is contiguous)."""
    return [st for t in tensors for st in t.stride()[:3]]


def attention_forward(q, k, v, causal: bool = False, scale: float | None = None):
    """Forward only: returns (O, LSE) with O like q and LSE (B, H, N_q) fp32 in natural log."""
    _check_inputs(q, k, v)
    q, k, v = (_last_dim_contiguous(x) for x in (q, k, v))
    B, H, n_q, d = q.shape
    n_k = k.shape[2]
    scale = 1.0 / math.sqrt(d) if scale is None else float(scale)
    o = _new(q.shape, q)
    lse = _new((B, H, n_q), q, torch.float32)
    meta, bucket = _meta(q, causal), _bucket(max(n_q, n_k))

    def grid(m):
        return (triton.cdiv(n_q, m["BLOCK_M"]), B * H)

    _attn_fwd[grid](q, k, v, o, lse, scale, *_strides(q, k, v, o), H, n_q, n_k, bucket, **meta)
    return o, lse


def attention_backward(do, q, k, v, o, lse, causal: bool, scale: float | None = None):
    """Gradients (dQ, dK, dV) from dO and the forward's O and LSE, recomputing P tile by tile."""
    do, q, k, v, o = (_last_dim_contiguous(x) for x in (do, q, k, v, o))
    B, H, n_q, d = q.shape
    n_k = k.shape[2]
    scale = 1.0 / math.sqrt(d) if scale is None else float(scale)
    meta, bucket = _meta(q, causal), _bucket(max(n_q, n_k))

    # -- D = rowsum(dO ∘ O) first: both gradient kernels need all of it
    delta = _new((B, H, n_q), q, torch.float32)
    block = 64
    _attn_bwd_delta[(triton.cdiv(n_q, block), B * H)](
        o, do, delta, *_strides(o, do), H, n_q, d, meta["HEAD_DIM_PAD"], block
    )
    # -- dK, dV (one program per key block) and dQ (one per query block): no atomics needed
    dq, dk, dv = _new(q.shape, q), _new(k.shape, k), _new(v.shape, v)
    strides = _strides(q, k, v, do)
    _attn_bwd_dkdv[lambda m: (triton.cdiv(n_k, m["BLOCK_N"]), B * H)](
        q, k, v, do, lse, delta, dk, dv, scale, *strides, *_strides(dk, dv), H, n_q, n_k, bucket,
        **meta,
    )  # fmt: skip
    _attn_bwd_dq[lambda m: (triton.cdiv(n_q, m["BLOCK_M"]), B * H)](
        q, k, v, do, lse, delta, dq, scale, *strides, *_strides(dq), H, n_q, n_k, bucket, **meta
    )
    return dq, dk, dv


class FlashAttentionFunction(torch.autograd.Function):
    """Keeps only Q, K, V, O and the per-row LSE for the backward (O(N·d) memory, no N×N)."""

    @staticmethod
    def forward(ctx, q, k, v, causal: bool, scale: float | None):
        o, lse = attention_forward(q, k, v, causal, scale)
        ctx.save_for_backward(q, k, v, o, lse)
        ctx.causal, ctx.scale = causal, scale
        return o

    @staticmethod
    def backward(ctx, do):
        q, k, v, o, lse = ctx.saved_tensors
        dq, dk, dv = attention_backward(do, q, k, v, o, lse, ctx.causal, ctx.scale)
        return dq, dk, dv, None, None


def flash_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool = False,
    scale: float | None = None,
) -> torch.Tensor:
    """softmax(scale · Q Kᵀ [+ causal mask]) V for (B, H, N, D) tensors, differentiable.

    scale defaults to 1/√D. causal masks bottom-right aligned (query i sees keys
    j ≤ i + N_k − N_q); see the module docstring.
    """
    return FlashAttentionFunction.apply(q, k, v, causal, scale)
