"""FlashAttention-2 as Triton kernels: forward, backward, and the flash-attn calling convention.

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

``_attn_bwd_dkdv`` owns a block of keys of one K/V head and loops over the query heads of its
group and their queries (dK, dV summed over the group in a fixed order); ``_attn_bwd_dq`` owns a
block of queries and loops over keys (dQ). Two backward runs give the same bits.

What users call
  * ``flash_attn_func(q, k, v, dropout_p=0.0, softmax_scale=None, causal=False,
    window_size=(-1, -1))`` on (batch, seqlen, nheads, headdim) tensors and
    ``flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k,
    ...)`` on packed (total_tokens, nheads, headdim) tensors: the ``flash-attn`` package's
    signatures and semantics, both differentiable. Dropout, ALiBi and soft-capping raise
    NotImplementedError.
  * ``flash_attention(q, k, v, causal, scale)`` on (B, H, N, D), like
    ``torch.nn.functional.scaled_dot_product_attention`` (the kernels are stride-based, so this
    is the same kernels on transposed views).

Conventions
  * GQA/MQA: k and v may have H_kv heads, H_kv dividing the H query heads; query head h reads
    K/V head h // (H / H_kv) inside the kernels, so the repeated K/V are never materialised.
  * Variable length: with cu_seqlens every program loads its sequence's start and length and
    returns at once when its block lies past the end, so no padding is computed.
  * Masks are aligned to the bottom-right corner, as in FlashAttention ≥ 2.1: with
    diag = N_k − N_q, query i sees key j when i + diag − left ≤ j ≤ i + diag + right
    (``window_size=(left, right)``, −1 for unbounded; causal is right = 0). Key tiles outside a
    query block's window (and query tiles outside a key block's) are skipped by the loop bounds;
    tiles wholly inside it run without masks. A query row that sees no key (N_q > N_k causal,
    or a narrow window) gets output 0 and LSE = +inf, so its recomputed P is 0 too.
  * Head dims 1..256, any value (59, 80, 111, ...): the kernels work on tiles of the next power
    of two (at least 16, the smallest ``tl.dot``) and mask the rest. The autotune configs are
    chosen per head-dim class (≤ 64, ≤ 128, ≤ 256) so that they fit shared memory.
  * fp16, bf16 and fp32 inputs; accumulation in fp32; P and dS are rounded to the input dtype
    before their matmuls (as every FlashAttention kernel does). fp32 inputs use exact ("ieee")
    products, since TF32 would lose the exactness the paper claims.

Running without a GPU
  Triton decides when a kernel is *decorated* whether it is compiled for a GPU or run by its CPU
  interpreter. This module therefore sets ``TRITON_INTERPRET=1`` before it defines the kernels
  whenever no CUDA device is present (unless the environment says ``TRITON_INTERPRET=0``), so
  the same kernels run, slowly, on CPU tensors. The interpreter cannot compute on bfloat16 (it
  keeps bf16 as raw 16-bit patterns and a bf16 ``tl.dot`` returns garbage), so under the
  interpreter bf16 tiles are cast to fp32 right after loading (the ``UPCAST`` switch). To judge
  the numerics the GPU gives, that path rounds P and dS to bf16 (round to nearest even, on the
  bits) before their dots, and rounds outputs the same way before the interpreter's truncating
  store: the values entering every product are then the GPU's bf16 values. fp16 needs no such
  help (the interpreter computes fp16 tiles in numpy's float16 with fp32 accumulation). On a GPU
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

MAX_HEAD_DIM = 256

# Tests set this to fill every output buffer with NaN before a kernel writes it, so an element
# the kernels forget to store shows up instead of passing with stale memory.
POISON_OUTPUTS = False

# The kernels below keep argument lists grouped (a pointer with its strides, the sizes, the
# compile-time switches) instead of ruff's one-argument-per-line layout, which would triple
# their length and hide the algorithm.
# fmt: off


# --------------------------------------------------------------------------- tile configs
# Autotune tables: (largest padded head dim the row serves, BLOCK_M, BLOCK_N, warps, stages).
# Shared memory holds the resident tile plus ``stages`` copies of the streamed tiles, so big
# head dims get smaller blocks and fewer stages; every row is compiled for sm_80 (A100, 163 KiB
# per block) and sm_90 (H100, 227 KiB) by the tests, which check the shared memory it needs.
_FWD_TABLE = [
    (64, 128, 64, 4, 3), (64, 128, 64, 8, 3), (64, 128, 128, 8, 3), (64, 64, 64, 4, 3),
    (64, 64, 32, 4, 4), (64, 128, 32, 4, 4),
    (128, 128, 64, 8, 3), (128, 128, 64, 4, 2), (128, 64, 64, 4, 3), (128, 128, 32, 8, 3),
    (128, 64, 32, 4, 4),
    (256, 64, 64, 8, 2), (256, 64, 32, 4, 2), (256, 128, 32, 8, 2), (256, 32, 64, 4, 2),
]
# BLOCK_M tiles queries and BLOCK_N keys in both backward kernels. dK/dV programs own a key
# block and hold two fp32 accumulators of BLOCK_N × HEAD_DIM, so they favour small query tiles;
# the dQ programs are the mirror image.
_DKDV_TABLE = [
    (64, 32, 64, 4, 3), (64, 32, 128, 8, 2), (64, 64, 64, 8, 3), (64, 64, 128, 8, 2),
    (64, 16, 64, 4, 3),
    (128, 32, 64, 4, 3), (128, 32, 128, 8, 2), (128, 64, 64, 8, 2), (128, 16, 64, 4, 3),
    (128, 16, 128, 8, 2),
    (256, 16, 32, 4, 2), (256, 32, 32, 8, 2), (256, 16, 64, 8, 2), (256, 32, 64, 8, 1),
]
_DQ_TABLE = [
    (64, 64, 64, 4, 2), (64, 128, 32, 8, 2), (64, 64, 32, 4, 3), (64, 128, 64, 8, 2),
    (64, 64, 128, 8, 2),
    (128, 64, 64, 4, 2), (128, 128, 32, 8, 2), (128, 64, 32, 4, 3), (128, 128, 64, 8, 2),
    (128, 64, 64, 8, 3),
    (256, 32, 32, 4, 2), (256, 64, 32, 8, 2), (256, 32, 64, 8, 2), (256, 64, 16, 4, 2),
]
_TABLES = {"fwd": _FWD_TABLE, "dkdv": _DKDV_TABLE, "dq": _DQ_TABLE}
# Under the interpreter: one small config, with unequal tiles that exercise the masking of
# partial, diagonal and window-edge blocks at the short test lengths.
_INTERPRET_TILES = {"fwd": (32, 16), "dkdv": (16, 32), "dq": (16, 32)}


def head_dim_class(head_dim_pad: int) -> int:
    """The table rows that serve a padded head dim: 64 (≤ 64), 128 or 256."""
    return 64 if head_dim_pad <= 64 else 128 if head_dim_pad <= 128 else 256


def _configs(kind: str) -> list[triton.Config]:
    if INTERPRET:
        bm, bn = _INTERPRET_TILES[kind]
        return [triton.Config({"BLOCK_M": bm, "BLOCK_N": bn}, num_warps=4, num_stages=1)]
    rows = dict.fromkeys(row[1:] for row in _TABLES[kind])  # a row may serve two classes
    return [triton.Config({"BLOCK_M": bm, "BLOCK_N": bn}, num_warps=w, num_stages=s)
            for bm, bn, w, s in rows]


def configs_for(kind: str, head_dim_pad: int) -> list[tuple[int, int, int, int]]:
    """(BLOCK_M, BLOCK_N, warps, stages) of the rows of a table serving this head dim."""
    cls = head_dim_class(head_dim_pad)
    return [(bm, bn, w, s) for c, bm, bn, w, s in _TABLES[kind] if c == cls]


# How many rows of its class the autotuner may try (None: all). A short GPU session (the
# benchmark's ``device`` preset, the GPU-evidence script's tests through
# REPRO_FLASH_TUNE_CONFIGS) sets it low: every config tried is one more compilation.
TUNE_CONFIGS: int | None = int(os.environ.get("REPRO_FLASH_TUNE_CONFIGS", "0") or 0) or None


def _pruner(kind: str):
    def prune(configs, named_args, **kwargs):
        if INTERPRET:
            return configs
        by_row = {(c.kwargs["BLOCK_M"], c.kwargs["BLOCK_N"], c.num_warps, c.num_stages): c
                  for c in configs}  # fmt: skip
        rows = configs_for(kind, kwargs["HEAD_DIM_PAD"])[:TUNE_CONFIGS]
        return [by_row[r] for r in rows]

    return {"early_config_prune": prune}


# Autotuning is keyed on the length bucket (next power of two, so a new length does not retune
# every time), the padded head dim and the kind of masking.
_TUNE_KEY = ["N_BUCKET", "HEAD_DIM_PAD", "HAS_LEFT", "HAS_RIGHT", "VARLEN"]


# --------------------------------------------------------------------------- helpers
@triton.jit
def _round_like_input(x, like, EMULATE_BF16: tl.constexpr):
    """x (fp32) rounded to the inputs' dtype before it enters a tl.dot, as the GPU kernel does
    with ``x.to(bf16 / fp16)``. Under the interpreter bf16 tiles travel as fp32 (EMULATE_BF16),
    so the rounding is done on the bits: round to nearest even at bit 16, keep it in fp32."""
    if EMULATE_BF16:
        u = x.to(tl.uint32, bitcast=True)
        u = u + 0x7FFF + ((u >> 16) & 1)
        y = ((u >> 16) << 16).to(tl.float32, bitcast=True)
    else:
        y = x.to(like.dtype)
    return y


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
def _store_rows(base, x, rows, stride_row, n_rows, cols, HEAD_DIM: tl.constexpr,
                UPCAST: tl.constexpr):
    mask = (cols[None, :] < HEAD_DIM) & (rows[:, None] < n_rows)
    if UPCAST:  # the interpreter's fp32 -> bf16 cast truncates; round to nearest even first
        x = _round_like_input(x, x, True)
    tl.store(base + rows[:, None] * stride_row + cols[None, :],
             x.to(base.dtype.element_ty), mask=mask)


@triton.jit
def _visible(qi, kj, n_q, n_k, win_left, win_right,
             HAS_LEFT: tl.constexpr, HAS_RIGHT: tl.constexpr):
    """Query qi may see key kj (broadcast shapes): the key exists and lies in the query's window
    [qi + diag − left, qi + diag + right], bottom-right aligned (diag = N_k − N_q)."""
    keep = kj < n_k
    diag = n_k - n_q
    if HAS_RIGHT:
        keep = keep & (kj <= qi + diag + win_right)
    if HAS_LEFT:
        keep = keep & (kj >= qi + diag - win_left)
    return keep


@triton.jit
def _clamp_split(lo, full_lo, full_hi, hi):
    """Tiles [lo, b) masked, [b, c) whole (no mask), [c, hi) masked, with lo <= b <= c <= hi
    (an empty range when lo >= hi)."""
    b = tl.minimum(tl.maximum(full_lo, lo), hi)
    c = tl.minimum(tl.maximum(full_hi, b), hi)
    return b, c


@triton.jit
def _key_range(start_m, n_q, n_k, win_left, win_right, BLOCK_M: tl.constexpr,
               BLOCK_N: tl.constexpr, HAS_LEFT: tl.constexpr, HAS_RIGHT: tl.constexpr):
    """Keys a block of queries [start_m, start_m + BLOCK_M) visits, as (lo, b, c, hi): tiles
    outside [lo, hi) are seen by none of its queries and skipped; [b, c) are whole tiles every
    query of the block sees, which need no mask."""
    diag = n_k - n_q
    if HAS_LEFT:
        lo = tl.maximum(start_m + diag - win_left, 0) // BLOCK_N * BLOCK_N
        full_lo = tl.cdiv(tl.maximum(start_m + BLOCK_M - 1 + diag - win_left, 0),
                          BLOCK_N) * BLOCK_N
    else:
        lo = start_m * 0
        full_lo = start_m * 0
    if HAS_RIGHT:
        hi = tl.minimum(tl.maximum(start_m + BLOCK_M + diag + win_right, 0), n_k)
        full_hi = tl.minimum(tl.maximum(start_m + diag + win_right + 1, 0),
                             n_k) // BLOCK_N * BLOCK_N
    else:
        hi = start_m * 0 + n_k
        full_hi = n_k // BLOCK_N * BLOCK_N
    b, c = _clamp_split(lo, full_lo, full_hi, hi)
    return lo, b, c, hi


@triton.jit
def _query_range(start_n, n_q, n_k, win_left, win_right, BLOCK_M: tl.constexpr,
                 BLOCK_N: tl.constexpr, HAS_LEFT: tl.constexpr, HAS_RIGHT: tl.constexpr):
    """The mirror image for a block of keys [start_n, start_n + BLOCK_N): key j is seen by the
    queries i with j − diag − right <= i <= j − diag + left."""
    diag = n_k - n_q
    if HAS_RIGHT:
        lo = tl.maximum(start_n - diag - win_right, 0) // BLOCK_M * BLOCK_M
        full_lo = tl.cdiv(tl.maximum(start_n + BLOCK_N - 1 - diag - win_right, 0),
                          BLOCK_M) * BLOCK_M
    else:
        lo = start_n * 0
        full_lo = start_n * 0
    if HAS_LEFT:
        hi = tl.minimum(tl.maximum(start_n + BLOCK_N - diag + win_left, 0), n_q)
        full_hi = tl.minimum(tl.maximum(start_n - diag + win_left + 1, 0),
                             n_q) // BLOCK_M * BLOCK_M
    else:
        hi = start_n * 0 + n_q
        full_hi = n_q // BLOCK_M * BLOCK_M
    b, c = _clamp_split(lo, full_lo, full_hi, hi)
    return lo, b, c, hi


@triton.jit
def _sequence(CU, b, N_FIXED, VARLEN: tl.constexpr):
    """(first row, length) of batch entry b: from cu_seqlens when VARLEN, else (0, N_FIXED)."""
    if VARLEN:
        start = tl.load(CU + b)
        n = tl.load(CU + b + 1) - start
    else:
        start = b * 0
        n = b * 0 + N_FIXED
    return start, n


# --------------------------------------------------------------------------- forward
@triton.jit
def _fwd_inner(acc, l_i, m_i, q, k_base, v_base, stride_kn, stride_vn, offs_m, offs_d,
               lo, hi, qk_scale, n_q, n_k, win_left, win_right,
               BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr, HAS_LEFT: tl.constexpr,
               HAS_RIGHT: tl.constexpr, MASKED: tl.constexpr, UPCAST: tl.constexpr,
               DOT_PRECISION: tl.constexpr):
    for start_n in range(lo, hi, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        k = _load_rows(k_base, offs_n, stride_kn, n_k, offs_d, HEAD_DIM, MASKED, UPCAST)
        v = _load_rows(v_base, offs_n, stride_vn, n_k, offs_d, HEAD_DIM, MASKED, UPCAST)
        # -- scores, already in the log2 domain
        s = tl.dot(q, tl.trans(k), input_precision=DOT_PRECISION) * qk_scale  # (BLOCK_M, BLOCK_N)
        if MASKED:
            keep = _visible(offs_m[:, None], offs_n[None, :], n_q, n_k, win_left, win_right,
                            HAS_LEFT, HAS_RIGHT)
            s = tl.where(keep, s, float("-inf"))
        # -- online softmax: new running max, rescale what was accumulated under the old one
        m_new = tl.maximum(m_i, tl.max(s, 1))
        # A row that has seen only masked keys still has max -inf; subtract 0 there instead so
        # that exp2(-inf - -inf) does not turn into NaN (its p and alpha come out 0).
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        alpha = tl.math.exp2(m_i - m_safe)
        p = tl.math.exp2(s - m_safe[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        # P enters the dot in the inputs' precision, as on the GPU (bf16 emulated when UPCAST)
        acc = acc * alpha[:, None] + tl.dot(_round_like_input(p, v, UPCAST), v,
                                            input_precision=DOT_PRECISION)
        m_i = m_new
    return acc, l_i, m_i


@triton.autotune(configs=_configs("fwd"), key=_TUNE_KEY, prune_configs_by=_pruner("fwd"))
@triton.jit
def _attn_fwd(Q, K, V, O, LSE, CU_Q, CU_K, sm_scale,
              stride_qb, stride_qn, stride_qh, stride_kb, stride_kn, stride_kh,
              stride_vb, stride_vn, stride_vh, stride_ob, stride_on, stride_oh,
              stride_lb, stride_lh,
              H, GROUP, N_Q, N_K, WIN_LEFT, WIN_RIGHT, N_BUCKET,
              HEAD_DIM: tl.constexpr, HEAD_DIM_PAD: tl.constexpr, VARLEN: tl.constexpr,
              HAS_LEFT: tl.constexpr, HAS_RIGHT: tl.constexpr,
              UPCAST: tl.constexpr, DOT_PRECISION: tl.constexpr,
              BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    start_m = tl.program_id(0) * BLOCK_M
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    q0, n_q = _sequence(CU_Q, b, N_Q, VARLEN)
    k0, n_k = _sequence(CU_K, b, N_K, VARLEN)
    if start_m >= n_q:  # a short sequence of a packed batch: this block has no queries
        return
    hk = (h // GROUP).to(tl.int64)  # GQA: query heads h of one group share K/V head h // GROUP
    b = b.to(tl.int64)  # int64: batch and packed offsets can pass 2^31 elements
    h = h.to(tl.int64)
    q_base = Q + b * stride_qb + q0.to(tl.int64) * stride_qn + h * stride_qh
    k_base = K + b * stride_kb + k0.to(tl.int64) * stride_kn + hk * stride_kh
    v_base = V + b * stride_vb + k0.to(tl.int64) * stride_vn + hk * stride_vh
    o_base = O + b * stride_ob + q0.to(tl.int64) * stride_on + h * stride_oh

    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, HEAD_DIM_PAD)
    q = _load_rows(q_base, offs_m, stride_qn, n_q, offs_d, HEAD_DIM, True, UPCAST)
    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, HEAD_DIM_PAD], dtype=tl.float32)
    qk_scale = sm_scale * 1.4426950408889634  # 1/ln 2: scores go straight into exp2

    # -- key tiles outside the window are never visited; whole tiles go without masks
    lo, mid_lo, mid_hi, hi = _key_range(start_m, n_q, n_k, WIN_LEFT, WIN_RIGHT, BLOCK_M,
                                        BLOCK_N, HAS_LEFT, HAS_RIGHT)
    acc, l_i, m_i = _fwd_inner(acc, l_i, m_i, q, k_base, v_base, stride_kn, stride_vn, offs_m,
                               offs_d, lo, mid_lo, qk_scale, n_q, n_k, WIN_LEFT, WIN_RIGHT,
                               BLOCK_N, HEAD_DIM, HAS_LEFT, HAS_RIGHT, True, UPCAST,
                               DOT_PRECISION)
    acc, l_i, m_i = _fwd_inner(acc, l_i, m_i, q, k_base, v_base, stride_kn, stride_vn, offs_m,
                               offs_d, mid_lo, mid_hi, qk_scale, n_q, n_k, WIN_LEFT, WIN_RIGHT,
                               BLOCK_N, HEAD_DIM, HAS_LEFT, HAS_RIGHT, False, UPCAST,
                               DOT_PRECISION)
    acc, l_i, m_i = _fwd_inner(acc, l_i, m_i, q, k_base, v_base, stride_kn, stride_vn, offs_m,
                               offs_d, mid_hi, hi, qk_scale, n_q, n_k, WIN_LEFT, WIN_RIGHT,
                               BLOCK_N, HEAD_DIM, HAS_LEFT, HAS_RIGHT, True, UPCAST,
                               DOT_PRECISION)

    # -- epilogue: normalise once; rows that saw no key get O = 0 and LSE = +inf
    empty = l_i == 0.0
    l_safe = tl.where(empty, 1.0, l_i)
    _store_rows(o_base, acc / l_safe[:, None], offs_m, stride_on, n_q, offs_d, HEAD_DIM, UPCAST)
    lse = tl.where(empty, float("inf"), (m_i + tl.math.log2(l_safe)) * 0.6931471805599453)  # ln 2
    tl.store(LSE + b * stride_lb + h * stride_lh + q0 + offs_m, lse, mask=offs_m < n_q)


# --------------------------------------------------------------------------- backward
@triton.jit
def _attn_bwd_delta(O, DO, DELTA, CU_Q, stride_ob, stride_on, stride_oh,
                    stride_dob, stride_don, stride_doh, stride_lb, stride_lh, H, N_Q,
                    HEAD_DIM: tl.constexpr, HEAD_DIM_PAD: tl.constexpr, VARLEN: tl.constexpr,
                    BLOCK_M: tl.constexpr):
    """D_i = rowsum(dO_i ∘ O_i), the term that replaces rowsum(P ∘ dP) in dS."""
    bh = tl.program_id(1)
    b = bh // H
    h = (bh % H).to(tl.int64)
    q0, n_q = _sequence(CU_Q, b, N_Q, VARLEN)
    start_m = tl.program_id(0) * BLOCK_M
    if start_m >= n_q:
        return
    b = b.to(tl.int64)
    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, HEAD_DIM_PAD)
    row0 = q0.to(tl.int64)
    o = _load_rows(O + b * stride_ob + row0 * stride_on + h * stride_oh, offs_m, stride_on, n_q,
                   offs_d, HEAD_DIM, True, True)
    do = _load_rows(DO + b * stride_dob + row0 * stride_don + h * stride_doh, offs_m, stride_don,
                    n_q, offs_d, HEAD_DIM, True, True)
    tl.store(DELTA + b * stride_lb + h * stride_lh + q0 + offs_m, tl.sum(o * do, 1),
             mask=offs_m < n_q)


@triton.jit
def _dkdv_inner(dk, dv, k, v, q_base, do_base, lse_base, delta_base, stride_qn, stride_don,
                offs_n, offs_d, lo, hi, qk_scale, n_q, n_k, win_left, win_right,
                BLOCK_M: tl.constexpr, HEAD_DIM: tl.constexpr, HAS_LEFT: tl.constexpr,
                HAS_RIGHT: tl.constexpr, MASKED: tl.constexpr, UPCAST: tl.constexpr,
                DOT_PRECISION: tl.constexpr):
    # Works on transposed tiles (keys along rows) so that dK and dV come out without transposes.
    for start_m in range(lo, hi, BLOCK_M):
        offs_m = start_m + tl.arange(0, BLOCK_M)
        q = _load_rows(q_base, offs_m, stride_qn, n_q, offs_d, HEAD_DIM, MASKED, UPCAST)
        do = _load_rows(do_base, offs_m, stride_don, n_q, offs_d, HEAD_DIM, MASKED, UPCAST)
        # LSE = +inf past the end makes the recomputed P exactly 0 there
        lse2 = tl.load(lse_base + offs_m, mask=offs_m < n_q, other=float("inf"))
        lse2 = lse2 * 1.4426950408889634  # 1/ln 2
        delta = tl.load(delta_base + offs_m, mask=offs_m < n_q, other=0.0)
        # -- recompute Pᵀ from the stored log-sum-exp
        s_t = tl.dot(k, tl.trans(q), input_precision=DOT_PRECISION) * qk_scale  # (BLOCK_N, BLOCK_M)
        p_t = tl.math.exp2(s_t - lse2[None, :])
        if MASKED:
            keep = _visible(offs_m[None, :], offs_n[:, None], n_q, n_k, win_left, win_right,
                            HAS_LEFT, HAS_RIGHT) & (offs_m[None, :] < n_q)
            p_t = tl.where(keep, p_t, 0.0)
        # -- dV += Pᵀ dO;  dSᵀ = Pᵀ ∘ (dPᵀ − D);  dK += dSᵀ Q  (scale applied once at the end).
        #    Pᵀ and dSᵀ enter their dots in the inputs' precision, as on the GPU.
        dv += tl.dot(_round_like_input(p_t, do, UPCAST), do, input_precision=DOT_PRECISION)
        dp_t = tl.dot(v, tl.trans(do), input_precision=DOT_PRECISION)
        ds_t = p_t * (dp_t - delta[None, :])
        dk += tl.dot(_round_like_input(ds_t, q, UPCAST), q, input_precision=DOT_PRECISION)
    return dk, dv


@triton.autotune(configs=_configs("dkdv"), key=_TUNE_KEY, prune_configs_by=_pruner("dkdv"))
@triton.jit
def _attn_bwd_dkdv(Q, K, V, DO, LSE, DELTA, DK, DV, CU_Q, CU_K, sm_scale,
                   stride_qb, stride_qn, stride_qh, stride_kb, stride_kn, stride_kh,
                   stride_vb, stride_vn, stride_vh, stride_dob, stride_don, stride_doh,
                   stride_dkb, stride_dkn, stride_dkh, stride_dvb, stride_dvn, stride_dvh,
                   stride_lb, stride_lh,
                   H, GROUP, N_Q, N_K, WIN_LEFT, WIN_RIGHT, N_BUCKET,
                   HEAD_DIM: tl.constexpr, HEAD_DIM_PAD: tl.constexpr, VARLEN: tl.constexpr,
                   HAS_LEFT: tl.constexpr, HAS_RIGHT: tl.constexpr,
                   UPCAST: tl.constexpr, DOT_PRECISION: tl.constexpr,
                   BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """One program per (key block, batch entry, K/V head). With GQA it loops over the GROUP
    query heads that share its K/V head, so dK and dV are summed over the group in registers,
    in a fixed order: no atomics, and two runs give the same bits."""
    start_n = tl.program_id(0) * BLOCK_N
    H_KV = H // GROUP
    b = tl.program_id(1) // H_KV
    hk = tl.program_id(1) % H_KV
    q0, n_q = _sequence(CU_Q, b, N_Q, VARLEN)
    k0, n_k = _sequence(CU_K, b, N_K, VARLEN)
    if start_n >= n_k:
        return
    b = b.to(tl.int64)
    hk = hk.to(tl.int64)
    row_q0 = q0.to(tl.int64)
    row_k0 = k0.to(tl.int64)

    offs_n = start_n + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, HEAD_DIM_PAD)
    k = _load_rows(K + b * stride_kb + row_k0 * stride_kn + hk * stride_kh, offs_n, stride_kn,
                   n_k, offs_d, HEAD_DIM, True, UPCAST)
    v = _load_rows(V + b * stride_vb + row_k0 * stride_vn + hk * stride_vh, offs_n, stride_vn,
                   n_k, offs_d, HEAD_DIM, True, UPCAST)
    dk = tl.zeros([BLOCK_N, HEAD_DIM_PAD], dtype=tl.float32)
    dv = tl.zeros([BLOCK_N, HEAD_DIM_PAD], dtype=tl.float32)
    qk_scale = sm_scale * 1.4426950408889634  # 1/ln 2

    # -- query tiles that see none of these keys are skipped; whole tiles go without masks
    lo, mid_lo, mid_hi, hi = _query_range(start_n, n_q, n_k, WIN_LEFT, WIN_RIGHT, BLOCK_M,
                                          BLOCK_N, HAS_LEFT, HAS_RIGHT)
    for g in range(0, GROUP):
        h = hk * GROUP + g
        q_base = Q + b * stride_qb + row_q0 * stride_qn + h * stride_qh
        do_base = DO + b * stride_dob + row_q0 * stride_don + h * stride_doh
        lse_base = LSE + b * stride_lb + h * stride_lh + q0
        delta_base = DELTA + b * stride_lb + h * stride_lh + q0
        dk, dv = _dkdv_inner(dk, dv, k, v, q_base, do_base, lse_base, delta_base, stride_qn,
                             stride_don, offs_n, offs_d, lo, mid_lo, qk_scale, n_q, n_k,
                             WIN_LEFT, WIN_RIGHT, BLOCK_M, HEAD_DIM, HAS_LEFT, HAS_RIGHT, True,
                             UPCAST, DOT_PRECISION)
        dk, dv = _dkdv_inner(dk, dv, k, v, q_base, do_base, lse_base, delta_base, stride_qn,
                             stride_don, offs_n, offs_d, mid_lo, mid_hi, qk_scale, n_q, n_k,
                             WIN_LEFT, WIN_RIGHT, BLOCK_M, HEAD_DIM, HAS_LEFT, HAS_RIGHT, False,
                             UPCAST, DOT_PRECISION)
        dk, dv = _dkdv_inner(dk, dv, k, v, q_base, do_base, lse_base, delta_base, stride_qn,
                             stride_don, offs_n, offs_d, mid_hi, hi, qk_scale, n_q, n_k,
                             WIN_LEFT, WIN_RIGHT, BLOCK_M, HEAD_DIM, HAS_LEFT, HAS_RIGHT, True,
                             UPCAST, DOT_PRECISION)

    _store_rows(DK + b * stride_dkb + row_k0 * stride_dkn + hk * stride_dkh, dk * sm_scale,
                offs_n, stride_dkn, n_k, offs_d, HEAD_DIM, UPCAST)
    _store_rows(DV + b * stride_dvb + row_k0 * stride_dvn + hk * stride_dvh, dv,
                offs_n, stride_dvn, n_k, offs_d, HEAD_DIM, UPCAST)


@triton.jit
def _dq_inner(dq, q, do, lse2, delta, k_base, v_base, stride_kn, stride_vn, offs_m, offs_d,
              lo, hi, qk_scale, n_q, n_k, win_left, win_right,
              BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr, HAS_LEFT: tl.constexpr,
              HAS_RIGHT: tl.constexpr, MASKED: tl.constexpr, UPCAST: tl.constexpr,
              DOT_PRECISION: tl.constexpr):
    for start_n in range(lo, hi, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        k = _load_rows(k_base, offs_n, stride_kn, n_k, offs_d, HEAD_DIM, MASKED, UPCAST)
        v = _load_rows(v_base, offs_n, stride_vn, n_k, offs_d, HEAD_DIM, MASKED, UPCAST)
        s = tl.dot(q, tl.trans(k), input_precision=DOT_PRECISION) * qk_scale  # (BLOCK_M, BLOCK_N)
        p = tl.math.exp2(s - lse2[:, None])
        if MASKED:
            keep = _visible(offs_m[:, None], offs_n[None, :], n_q, n_k, win_left, win_right,
                            HAS_LEFT, HAS_RIGHT)
            p = tl.where(keep, p, 0.0)
        # -- dS = P ∘ (dP − D);  dQ += dS K  (dS in the inputs' precision, as on the GPU)
        dp = tl.dot(do, tl.trans(v), input_precision=DOT_PRECISION)
        ds = p * (dp - delta[:, None])
        dq += tl.dot(_round_like_input(ds, k, UPCAST), k, input_precision=DOT_PRECISION)
    return dq


@triton.autotune(configs=_configs("dq"), key=_TUNE_KEY, prune_configs_by=_pruner("dq"))
@triton.jit
def _attn_bwd_dq(Q, K, V, DO, LSE, DELTA, DQ, CU_Q, CU_K, sm_scale,
                 stride_qb, stride_qn, stride_qh, stride_kb, stride_kn, stride_kh,
                 stride_vb, stride_vn, stride_vh, stride_dob, stride_don, stride_doh,
                 stride_dqb, stride_dqn, stride_dqh, stride_lb, stride_lh,
                 H, GROUP, N_Q, N_K, WIN_LEFT, WIN_RIGHT, N_BUCKET,
                 HEAD_DIM: tl.constexpr, HEAD_DIM_PAD: tl.constexpr, VARLEN: tl.constexpr,
                 HAS_LEFT: tl.constexpr, HAS_RIGHT: tl.constexpr,
                 UPCAST: tl.constexpr, DOT_PRECISION: tl.constexpr,
                 BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    start_m = tl.program_id(0) * BLOCK_M
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    q0, n_q = _sequence(CU_Q, b, N_Q, VARLEN)
    k0, n_k = _sequence(CU_K, b, N_K, VARLEN)
    if start_m >= n_q:
        return
    hk = (h // GROUP).to(tl.int64)
    b = b.to(tl.int64)
    h = h.to(tl.int64)
    row_q0 = q0.to(tl.int64)
    row_k0 = k0.to(tl.int64)
    k_base = K + b * stride_kb + row_k0 * stride_kn + hk * stride_kh
    v_base = V + b * stride_vb + row_k0 * stride_vn + hk * stride_vh

    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, HEAD_DIM_PAD)
    q = _load_rows(Q + b * stride_qb + row_q0 * stride_qn + h * stride_qh, offs_m, stride_qn,
                   n_q, offs_d, HEAD_DIM, True, UPCAST)
    do = _load_rows(DO + b * stride_dob + row_q0 * stride_don + h * stride_doh, offs_m,
                    stride_don, n_q, offs_d, HEAD_DIM, True, UPCAST)
    row_ok = offs_m < n_q
    lse2 = tl.load(LSE + b * stride_lb + h * stride_lh + q0 + offs_m, mask=row_ok,
                   other=float("inf"))
    lse2 = lse2 * 1.4426950408889634  # 1/ln 2
    delta = tl.load(DELTA + b * stride_lb + h * stride_lh + q0 + offs_m, mask=row_ok, other=0.0)
    dq = tl.zeros([BLOCK_M, HEAD_DIM_PAD], dtype=tl.float32)
    qk_scale = sm_scale * 1.4426950408889634  # 1/ln 2

    lo, mid_lo, mid_hi, hi = _key_range(start_m, n_q, n_k, WIN_LEFT, WIN_RIGHT, BLOCK_M,
                                        BLOCK_N, HAS_LEFT, HAS_RIGHT)
    dq = _dq_inner(dq, q, do, lse2, delta, k_base, v_base, stride_kn, stride_vn, offs_m, offs_d,
                   lo, mid_lo, qk_scale, n_q, n_k, WIN_LEFT, WIN_RIGHT, BLOCK_N, HEAD_DIM,
                   HAS_LEFT, HAS_RIGHT, True, UPCAST, DOT_PRECISION)
    dq = _dq_inner(dq, q, do, lse2, delta, k_base, v_base, stride_kn, stride_vn, offs_m, offs_d,
                   mid_lo, mid_hi, qk_scale, n_q, n_k, WIN_LEFT, WIN_RIGHT, BLOCK_N, HEAD_DIM,
                   HAS_LEFT, HAS_RIGHT, False, UPCAST, DOT_PRECISION)
    dq = _dq_inner(dq, q, do, lse2, delta, k_base, v_base, stride_kn, stride_vn, offs_m, offs_d,
                   mid_hi, hi, qk_scale, n_q, n_k, WIN_LEFT, WIN_RIGHT, BLOCK_N, HEAD_DIM,
                   HAS_LEFT, HAS_RIGHT, True, UPCAST, DOT_PRECISION)
    _store_rows(DQ + b * stride_dqb + row_q0 * stride_dqn + h * stride_dqh, dq * sm_scale,
                offs_m, stride_dqn, n_q, offs_d, HEAD_DIM, UPCAST)


# fmt: on
# --------------------------------------------------------------------------- host side
_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def _check_tensors(q, k, v, layout: str, dims: int) -> None:
    """Shared checks of q, k, v given in ``layout`` (the names of their ``dims`` axes)."""
    if q.dim() != dims or k.dim() != dims or v.dim() != dims:
        raise ValueError(
            f"expected {layout} tensors, got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    if not (q.dtype == k.dtype == v.dtype) or q.dtype not in _DTYPES:
        raise TypeError(
            f"q, k, v must share one of fp16/bf16/fp32; got {q.dtype}, {k.dtype}, {v.dtype}"
        )
    if INTERPRET and q.device.type != "cpu":
        raise RuntimeError("TRITON_INTERPRET=1: the kernels run on CPU tensors only")
    if not INTERPRET and q.device.type != "cuda":
        raise RuntimeError(
            "the compiled kernels need CUDA tensors (or run with TRITON_INTERPRET=1)"
        )
    if not (q.device == k.device == v.device):
        raise ValueError(f"q, k, v on different devices: {q.device}, {k.device}, {v.device}")
    d = q.shape[-1]
    if not 1 <= d <= MAX_HEAD_DIM:
        raise ValueError(f"head dim {d} is not in 1..{MAX_HEAD_DIM}")


def _check_heads(q_heads: int, kv_heads: int, shapes: str) -> None:
    if kv_heads < 1 or q_heads % kv_heads:
        raise ValueError(
            f"shapes do not fit: {shapes}; the number of K/V heads ({kv_heads}) must divide "
            f"the number of query heads ({q_heads}) (GQA/MQA)"
        )


def _last_dim_contiguous(x: torch.Tensor) -> torch.Tensor:
    return x if x.stride(-1) == 1 else x.contiguous()


def _new(shape, like: torch.Tensor, dtype=None) -> torch.Tensor:
    dtype = dtype or like.dtype
    if POISON_OUTPUTS:
        return torch.full(shape, float("nan"), dtype=dtype, device=like.device)
    return torch.empty(shape, dtype=dtype, device=like.device)


def _new_like(x: torch.Tensor) -> torch.Tensor:
    """An output of x's shape and, where x is a dense permutation, x's memory layout."""
    if POISON_OUTPUTS:
        return torch.full_like(x, float("nan"))
    return torch.empty_like(x)


def _bucket(n: int) -> int:
    return max(16, triton.next_power_of_2(n))


def _window(window_size, causal: bool, n_k: int) -> tuple[int, int]:
    """flash-attn's rules: -1 is unbounded; a side at least N_k wide is unbounded too; causal
    fixes the right side to 0 (bottom-right aligned)."""
    try:
        left, right = (int(w) for w in window_size)
    except (TypeError, ValueError):
        raise ValueError(
            f"window_size must be a pair (left, right) of ints >= -1, got {window_size!r}"
        ) from None
    if left < -1 or right < -1:
        raise ValueError(
            f"window_size must be a pair of ints >= -1 (-1: unbounded), got {window_size!r}"
        )
    left = -1 if left >= n_k else left
    right = -1 if right >= n_k else right
    if causal:
        right = 0
    return left, right


class _Problem:
    """Everything the kernels need besides the tensors: sizes, layout strides, window."""

    def __init__(self, q, k, *, cu_q, cu_k, batch, n_q, n_k, scale, left, right):
        self.varlen = cu_q is not None
        self.cu_q, self.cu_k = cu_q, cu_k
        self.batch, self.n_q, self.n_k = batch, n_q, n_k
        self.heads, self.kv_heads, self.d = q.shape[-2], k.shape[-2], q.shape[-1]
        self.group = self.heads // self.kv_heads
        self.scale = 1.0 / math.sqrt(self.d) if scale is None else float(scale)
        self.left, self.right = left, right
        self.meta = dict(
            HEAD_DIM=self.d,
            HEAD_DIM_PAD=max(16, triton.next_power_of_2(self.d)),
            VARLEN=self.varlen,
            HAS_LEFT=left >= 0,
            HAS_RIGHT=right >= 0,
            UPCAST=INTERPRET and q.dtype == torch.bfloat16,
            DOT_PRECISION="ieee" if q.dtype == torch.float32 else "tf32",
        )
        self.bucket = _bucket(max(n_q, n_k))

    def strides(self, *tensors) -> list[int]:
        """(batch, sequence, head) strides of each (B, N, H, D) or packed (T, H, D) tensor."""
        out = []
        for t in tensors:
            out += [0, *t.stride()[:2]] if self.varlen else list(t.stride()[:3])
        return out

    def new_lse(self, like):
        """LSE-shaped fp32 buffer and its (batch, head) strides: (B, H, N_q), or (H, T_q)."""
        if self.varlen:
            t = _new((self.heads, like.shape[0]), like, torch.float32)
            return t, [0, t.stride(0)]
        t = _new((self.batch, self.heads, self.n_q), like, torch.float32)
        return t, [t.stride(0), t.stride(1)]

    def lse_strides(self, lse) -> list[int]:
        return [0, lse.stride(0)] if self.varlen else [lse.stride(0), lse.stride(1)]

    def cu(self, like):
        if self.varlen:
            return self.cu_q, self.cu_k
        dummy = torch.zeros(1, dtype=torch.int32, device=like.device)
        return dummy, dummy

    def sizes(self) -> list[int]:
        return [self.heads, self.group, self.n_q, self.n_k, self.left, self.right, self.bucket]


def _forward(pb: _Problem, q, k, v):
    o = _new_like(q)
    lse, lse_strides = pb.new_lse(q)
    cu_q, cu_k = pb.cu(q)

    def grid(m):
        return (triton.cdiv(pb.n_q, m["BLOCK_M"]), pb.batch * pb.heads)

    _attn_fwd[grid](q, k, v, o, lse, cu_q, cu_k, pb.scale, *pb.strides(q, k, v, o),
                    *lse_strides, *pb.sizes(), **pb.meta)  # fmt: skip
    return o, lse


def _backward(pb: _Problem, do, q, k, v, o, lse):
    cu_q, cu_k = pb.cu(q)
    lse_strides = pb.lse_strides(lse)
    # -- D = rowsum(dO ∘ O) first: both gradient kernels need all of it
    delta = _new(lse.shape, lse, torch.float32)
    block = 64
    _attn_bwd_delta[(triton.cdiv(pb.n_q, block), pb.batch * pb.heads)](
        o, do, delta, cu_q, *pb.strides(o, do), *lse_strides, pb.heads, pb.n_q,
        pb.d, pb.meta["HEAD_DIM_PAD"], pb.varlen, block,
    )  # fmt: skip
    # -- dK, dV (one program per key block and K/V head, looping over its query heads) and dQ
    #    (one per query block and query head): no atomics needed
    dq, dk, dv = _new_like(q), _new_like(k), _new_like(v)
    strides = pb.strides(q, k, v, do)
    _attn_bwd_dkdv[lambda m: (triton.cdiv(pb.n_k, m["BLOCK_N"]), pb.batch * pb.kv_heads)](
        q, k, v, do, lse, delta, dk, dv, cu_q, cu_k, pb.scale, *strides, *pb.strides(dk, dv),
        *lse_strides, *pb.sizes(), **pb.meta,
    )  # fmt: skip
    _attn_bwd_dq[lambda m: (triton.cdiv(pb.n_q, m["BLOCK_M"]), pb.batch * pb.heads)](
        q, k, v, do, lse, delta, dq, cu_q, cu_k, pb.scale, *strides, *pb.strides(dq),
        *lse_strides, *pb.sizes(), **pb.meta,
    )  # fmt: skip
    return dq, dk, dv


class _FlashAttn(torch.autograd.Function):
    """Keeps only Q, K, V, O and the per-row LSE for the backward (O(N·d) memory, no N×N)."""

    @staticmethod
    def forward(ctx, q, k, v, pb: _Problem):
        q, k, v = (_last_dim_contiguous(x) for x in (q, k, v))
        o, lse = _forward(pb, q, k, v)
        ctx.save_for_backward(q, k, v, o, lse)
        ctx.pb = pb
        ctx.mark_non_differentiable(lse)
        return o, lse

    @staticmethod
    def backward(ctx, do, _dlse):
        q, k, v, o, lse = ctx.saved_tensors
        dq, dk, dv = _backward(ctx.pb, _last_dim_contiguous(do), q, k, v, o, lse)
        return dq, dk, dv, None


def _no_extras(dropout_p, softcap, alibi_slopes) -> None:
    if dropout_p:
        raise NotImplementedError(
            f"dropout_p={dropout_p}: this kernel has no attention dropout; pass dropout_p=0.0 "
            "(e.g. dropout_p=p if self.training else 0.0 and train without attention dropout)"
        )
    if softcap:
        raise NotImplementedError(
            f"softcap={softcap}: logit soft-capping is not implemented; pass 0.0"
        )
    if alibi_slopes is not None:
        raise NotImplementedError("alibi_slopes: ALiBi biases are not implemented; pass None")


def flash_attn_func(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    dropout_p: float = 0.0,
    softmax_scale: float | None = None,
    causal: bool = False,
    window_size: tuple[int, int] = (-1, -1),
    softcap: float = 0.0,
    alibi_slopes=None,
    deterministic: bool = False,
    return_attn_probs: bool = False,
):
    """flash-attn's ``flash_attn_func``: q (B, N_q, H, D), k and v (B, N_k, H_kv, D) with H_kv
    dividing H (GQA/MQA: query head h uses K/V head h // (H / H_kv)). Returns (B, N_q, H, D).

    ``softmax_scale`` defaults to 1/√D. ``causal`` and ``window_size=(left, right)`` are aligned
    bottom-right: query i sees keys j with i + N_k − N_q − left ≤ j ≤ i + N_k − N_q + right
    (-1: unbounded on that side; causal sets right = 0). A query that sees no key gets 0.
    ``deterministic`` is accepted and always true (no atomics anywhere). With
    ``return_attn_probs`` it returns (out, softmax_lse (B, H, N_q), None), as flash-attn does
    without dropout. Dropout, soft-capping and ALiBi raise NotImplementedError."""
    _no_extras(dropout_p, softcap, alibi_slopes)
    _check_tensors(q, k, v, "(batch, seqlen, nheads, headdim)", 4)
    shapes = f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
    if (q.shape[0] != k.shape[0] or k.shape != v.shape or q.shape[3] != k.shape[3]
            or k.shape[1] == 0):  # fmt: skip
        raise ValueError(
            f"shapes do not fit: {shapes} (same batch and head dim; k and v alike, non-empty)"
        )
    _check_heads(q.shape[2], k.shape[2], shapes)
    left, right = _window(window_size, causal, k.shape[1])
    pb = _Problem(q, k, cu_q=None, cu_k=None, batch=q.shape[0], n_q=q.shape[1], n_k=k.shape[1],
                  scale=softmax_scale, left=left, right=right)  # fmt: skip
    o, lse = _FlashAttn.apply(q, k, v, pb)
    return (o, lse, None) if return_attn_probs else o


def _check_cu(cu: torch.Tensor, name: str, total: int, max_seqlen: int, device) -> torch.Tensor:
    if not isinstance(cu, torch.Tensor) or cu.dim() != 1 or cu.numel() < 2:
        raise ValueError(f"{name} must be a 1-D int32 tensor [0, len_0, len_0 + len_1, ...]")
    if cu.dtype != torch.int32:
        raise TypeError(f"{name} must be int32 (as flash-attn takes it), got {cu.dtype}")
    if cu.device != device:
        raise ValueError(f"{name} is on {cu.device}, the tensors on {device}")
    # One small copy to the host: a wrong cu_seqlens would otherwise leave rows unwritten.
    c = cu.tolist()
    lengths = [b - a for a, b in zip(c, c[1:])]
    if c[0] != 0 or min(lengths) < 0 or c[-1] != total:
        raise ValueError(
            f"{name} must start at 0, never decrease and end at the packed length {total}; "
            f"got {c[:4]}{'...' if len(c) > 4 else ''} ending at {c[-1]}"
        )
    if max(lengths) > max_seqlen:
        raise ValueError(
            f"max_seqlen for {name} is {max_seqlen} but a sequence has {max(lengths)} tokens"
        )
    return cu.contiguous()


def flash_attn_varlen_func(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    cu_seqlens_q: torch.Tensor,
    cu_seqlens_k: torch.Tensor,
    max_seqlen_q: int,
    max_seqlen_k: int,
    dropout_p: float = 0.0,
    softmax_scale: float | None = None,
    causal: bool = False,
    window_size: tuple[int, int] = (-1, -1),
    softcap: float = 0.0,
    alibi_slopes=None,
    deterministic: bool = False,
    return_attn_probs: bool = False,
):
    """flash-attn's ``flash_attn_varlen_func``: a packed batch, q (T_q, H, D) and k, v
    (T_k, H_kv, D), sequence b being rows cu_seqlens_q[b] : cu_seqlens_q[b + 1] of q (likewise
    for k, v with cu_seqlens_k; int32, B + 1 entries). Each program reads its sequence's start and
    length, so no padding is computed. Masks as in ``flash_attn_func``, per sequence; a window
    side of at least max_seqlen_k is unbounded. With ``return_attn_probs`` the LSE is (H, T_q)."""
    _no_extras(dropout_p, softcap, alibi_slopes)
    _check_tensors(q, k, v, "packed (total_tokens, nheads, headdim)", 3)
    shapes = f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
    if k.shape != v.shape or q.shape[2] != k.shape[2]:
        raise ValueError(f"shapes do not fit: {shapes} (same head dim; k and v alike)")
    _check_heads(q.shape[1], k.shape[1], shapes)
    for name, m in (("max_seqlen_q", max_seqlen_q), ("max_seqlen_k", max_seqlen_k)):
        if isinstance(m, bool) or not isinstance(m, int) or m < 1:
            raise ValueError(f"{name} must be a positive int, got {m!r}")
    cu_q = _check_cu(cu_seqlens_q, "cu_seqlens_q", q.shape[0], max_seqlen_q, q.device)
    cu_k = _check_cu(cu_seqlens_k, "cu_seqlens_k", k.shape[0], max_seqlen_k, q.device)
    if cu_q.numel() != cu_k.numel():
        raise ValueError(
            f"cu_seqlens_q has {cu_q.numel() - 1} sequences, cu_seqlens_k {cu_k.numel() - 1}"
        )
    left, right = _window(window_size, causal, max_seqlen_k)
    pb = _Problem(q, k, cu_q=cu_q, cu_k=cu_k, batch=cu_q.numel() - 1, n_q=max_seqlen_q,
                  n_k=max_seqlen_k, scale=softmax_scale, left=left, right=right)  # fmt: skip
    o, lse = _FlashAttn.apply(q, k, v, pb)
    return (o, lse, None) if return_attn_probs else o


# --------------------------------------------------------------------------- (B, H, N, D) API
def _check_bhnd(q, k, v) -> None:
    _check_tensors(q, k, v, "(B, H, N, D)", 4)
    shapes = f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
    if q.shape[0] != k.shape[0] or k.shape != v.shape or q.shape[3] != k.shape[3]:
        raise ValueError(f"shapes do not fit: {shapes} (same B and D; k and v of the same shape)")
    _check_heads(q.shape[1], k.shape[1], shapes)
    if k.shape[2] == 0:
        raise ValueError("k and v need at least one position")


def _bhnd_problem(q, k, causal, scale) -> _Problem:
    return _Problem(q, k, cu_q=None, cu_k=None, batch=q.shape[0], n_q=q.shape[1],
                    n_k=k.shape[1], scale=scale, left=-1, right=0 if causal else -1)  # fmt: skip


def attention_forward(q, k, v, causal: bool = False, scale: float | None = None):
    """Forward only on (B, H, N, D): returns (O, LSE) with O like q and LSE (B, H, N_q) fp32 in
    natural log."""
    _check_bhnd(q, k, v)
    q, k, v = (_last_dim_contiguous(x).transpose(1, 2) for x in (q, k, v))  # (B, N, H, D) views
    o, lse = _forward(_bhnd_problem(q, k, causal, scale), q, k, v)
    return o.transpose(1, 2), lse


def attention_backward(do, q, k, v, o, lse, causal: bool, scale: float | None = None):
    """Gradients (dQ, dK, dV) on (B, H, N, D) from dO and the forward's O and LSE, recomputing P
    tile by tile."""
    do, q, k, v, o = (_last_dim_contiguous(x).transpose(1, 2) for x in (do, q, k, v, o))
    grads = _backward(_bhnd_problem(q, k, causal, scale), do, q, k, v, o, lse)
    return tuple(g.transpose(1, 2) for g in grads)


def flash_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool = False,
    scale: float | None = None,
) -> torch.Tensor:
    """softmax(scale · Q Kᵀ [+ causal mask]) V for (B, H, N, D) tensors (k, v may have fewer
    heads: GQA), differentiable.

    scale defaults to 1/√D. causal masks bottom-right aligned (query i sees keys
    j ≤ i + N_k − N_q); see the module docstring.
    """
    _check_bhnd(q, k, v)
    qt, kt, vt = (x.transpose(1, 2) for x in (q, k, v))  # (B, N, H, D) views, no copies
    o, _ = _FlashAttn.apply(qt, kt, vt, _bhnd_problem(qt, kt, causal, scale))
    return o.transpose(1, 2)
