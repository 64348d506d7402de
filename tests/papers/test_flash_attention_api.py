"""The flash-attn calling convention of our Triton FlashAttention kernel: flash_attn_func and
flash_attn_varlen_func with GQA/MQA, packed variable-length batches, sliding windows, head dims
up to 256 and three dtypes, forward and gradients, against float64 attention.

Without a GPU these run in Triton's interpreter with the bf16-faithful path (P and dS rounded to
the input dtype before their products, as on the GPU), so the grid is small: one axis of the
issue per group of cases rather than the full product. ``REPRO_FLASH_SWEEP=1`` adds a larger
cartesian sweep (minutes of CPU; CI does not set it).
"""

from __future__ import annotations

import itertools
import math
import os

import pytest
import torch

# FlashAttention's error rule (2x / 3x a same-dtype naive implementation's error), shared
from test_flash_attention import assert_exact as assert_rule

from repro.papers.flash_attention import flash_attn_func, flash_attn_varlen_func, kernel

SWEEP = os.environ.get("REPRO_FLASH_SWEEP", "") not in ("", "0")
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@pytest.fixture(autouse=True)
def poison(monkeypatch):
    monkeypatch.setattr(kernel, "POISON_OUTPUTS", True)


# --------------------------------------------------------------------------- reference
def visible(n_q: int, n_k: int, causal: bool, window, n_k_rule: int | None = None):
    """flash-attn's mask, written out independently of the kernel: bottom-right aligned, query i
    sees key j when i + N_k − N_q − left ≤ j ≤ i + N_k − N_q + right; −1 and any side at least
    N_k (max_seqlen_k for packed batches) wide are unbounded; causal makes right 0."""
    left, right = window
    n_rule = n_k if n_k_rule is None else n_k_rule
    left = -1 if left >= n_rule else left
    right = 0 if causal else (-1 if right >= n_rule else right)
    i = torch.arange(n_q)[:, None] + (n_k - n_q)
    j = torch.arange(n_k)[None, :]
    keep = torch.ones(n_q, n_k, dtype=torch.bool)
    if left >= 0:
        keep &= j >= i - left
    if right >= 0:
        keep &= j <= i + right
    return keep


def naive_bnhd(q, k, v, causal=False, window=(-1, -1), scale=None, n_k_rule=None):
    """Standard attention on (B, N, H, D) in the inputs' dtype, K/V heads repeated for GQA; rows
    that see no key give 0 (flash-attn's convention)."""
    group = q.shape[2] // k.shape[2]
    k, v = (x.repeat_interleave(group, dim=2) for x in (k, v))
    q, k, v = (x.transpose(1, 2) for x in (q, k, v))
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = (q @ k.transpose(-1, -2)) * scale
    keep = visible(q.shape[2], k.shape[2], causal, window, n_k_rule).to(q.device)
    p = torch.softmax(s.masked_fill(~keep, float("-inf")), -1).nan_to_num(0.0)
    return (p @ v).transpose(1, 2)


def naive_varlen(q, k, v, cu_q, cu_k, max_k, causal=False, window=(-1, -1), scale=None):
    outs = []
    for b in range(len(cu_q) - 1):
        sq, sk = slice(cu_q[b], cu_q[b + 1]), slice(cu_k[b], cu_k[b + 1])
        if sk.stop == sk.start:  # no keys: every query row gives 0
            outs.append(torch.zeros_like(q[sq]))
            continue
        outs.append(naive_bnhd(q[None, sq], k[None, sk], v[None, sk], causal, window, scale,
                               n_k_rule=max_k)[0])  # fmt: skip
    return torch.cat(outs)


def three_ways(inputs, do, ours, naive):
    """(out, dq, dk, dv) of naive in float64, naive in the inputs' dtype, and ours."""
    res = {}
    for name, fn, cast in (("ref", naive, torch.float64), ("naive", naive, None),
                           ("ours", ours, None)):  # fmt: skip
        leaves = [x.detach().to(cast or x.dtype).requires_grad_() for x in inputs]
        out = fn(*leaves)
        out.backward(do.to(cast or do.dtype))
        res[name] = [out.detach()] + [x.grad for x in leaves]
    return res


def draw(gen, *shape, dtype):
    return torch.randn(*shape, generator=gen).to(device=DEVICE, dtype=dtype)


# --------------------------------------------------------------------------- padded batches
# (B, N_q, N_k, H, H_kv, D, causal, window, dtype): each axis of the issue covered by a few
# cases, every dtype on every axis, instead of the full product.
F16, B16, F32 = torch.float16, torch.bfloat16, torch.float32
FIXED = [
    # GQA / MQA ratios 1, 2, 3, 4, 6
    (2, 70, 70, 4, 4, 64, True, (-1, -1), F16),
    (1, 50, 90, 4, 2, 32, True, (-1, -1), B16),
    (1, 33, 33, 6, 1, 16, False, (-1, -1), F32),
    (1, 40, 40, 8, 2, 59, False, (16, 0), B16),
    (1, 45, 45, 6, 2, 48, False, (-1, -1), F16),
    # windows: zero-width edges, one side, wider than the sequence, with N_q != N_k, + causal
    (1, 40, 40, 2, 1, 16, False, (0, 0), F16),
    (1, 64, 64, 2, 2, 32, False, (10, -1), B16),
    (1, 50, 50, 2, 1, 16, False, (0, 5), F32),
    (1, 60, 60, 2, 2, 64, False, (500, 500), F16),
    (1, 30, 100, 2, 1, 32, False, (8, 4), B16),
    (1, 48, 48, 2, 1, 96, True, (3, 3), B16),
    (1, 70, 70, 1, 1, 16, False, (20, 20), F32),
    # head dims 16..256, incl. odd ones
    (1, 45, 45, 2, 1, 111, True, (-1, -1), F16),
    (1, 40, 70, 2, 2, 80, False, (-1, -1), B16),
    (1, 40, 40, 2, 1, 256, True, (-1, -1), B16),
    (1, 33, 33, 1, 1, 256, False, (5, 5), F32),
    (1, 20, 20, 2, 2, 200, False, (-1, -1), F16),
    # causal with N_q != N_k (more queries than keys leaves rows that see nothing; decoding)
    (2, 90, 30, 2, 1, 32, True, (-1, -1), F16),
    (1, 1, 77, 4, 2, 64, True, (-1, -1), B16),
    (1, 60, 25, 2, 2, 16, True, (-1, -1), F32),
]


def _id(c):
    b, nq, nk, h, hk, d, causal, w, dt = c
    win = "" if w == (-1, -1) else f"-w{w[0]}_{w[1]}"
    return f"b{b}-{nq}x{nk}-h{h}kv{hk}-d{d}-{'causal' if causal else 'full'}{win}-{str(dt)[6:]}"


def check_fixed(case, seed):
    b, n_q, n_k, h, h_kv, d, causal, window, dtype = case
    gen = torch.Generator().manual_seed(seed)
    q = draw(gen, b, n_q, h, d, dtype=dtype)
    k, v = (draw(gen, b, n_k, h_kv, d, dtype=dtype) for _ in range(2))
    do = draw(gen, b, n_q, h, d, dtype=dtype)
    res = three_ways(
        (q, k, v), do,
        lambda q, k, v: flash_attn_func(q, k, v, causal=causal, window_size=window),
        lambda q, k, v: naive_bnhd(q, k, v, causal, window),
    )  # fmt: skip
    assert_rule(res, dtype)


@pytest.mark.parametrize("case", FIXED, ids=[_id(c) for c in FIXED])
def test_flash_attn_func_matches_float64(case):
    check_fixed(case, FIXED.index(case))


# --------------------------------------------------------------------------- packed batches
# (lengths_q, lengths_k, H, H_kv, D, causal, window, dtype): very uneven lengths 1..300, an
# empty key sequence, N_q != N_k per sequence.
VARLEN = [
    ((1, 300, 7, 64), None, 2, 1, 64, True, (-1, -1), B16),
    ((5, 120, 1), (37, 200, 1), 2, 2, 80, True, (-1, -1), F16),
    ((300, 3, 150), None, 2, 1, 16, False, (32, 8), F32),
    ((17, 1, 90), (40, 0, 90), 4, 2, 32, False, (-1, -1), B16),
    ((64, 200), None, 3, 3, 128, False, (0, 0), F16),
]


def _vid(c):
    lq, lk, h, hk, d, causal, w, dt = c
    win = "" if w == (-1, -1) else f"-w{w[0]}_{w[1]}"
    lens = "_".join(map(str, lq)) + ("" if lk is None else "-k" + "_".join(map(str, lk)))
    return f"{lens}-h{h}kv{hk}-d{d}-{'causal' if causal else 'full'}{win}-{str(dt)[6:]}"


def _cu(lengths):
    return [0, *itertools.accumulate(lengths)]


@pytest.mark.parametrize("case", VARLEN, ids=[_vid(c) for c in VARLEN])
def test_flash_attn_varlen_func_matches_float64(case):
    lq, lk, h, h_kv, d, causal, window, dtype = case
    lk = lk or lq
    gen = torch.Generator().manual_seed(VARLEN.index(case) + 100)
    cu_q, cu_k = _cu(lq), _cu(lk)
    q = draw(gen, cu_q[-1], h, d, dtype=dtype)
    k, v = (draw(gen, cu_k[-1], h_kv, d, dtype=dtype) for _ in range(2))
    do = draw(gen, cu_q[-1], h, d, dtype=dtype)
    cq, ck = (torch.tensor(c, dtype=torch.int32, device=DEVICE) for c in (cu_q, cu_k))
    res = three_ways(
        (q, k, v), do,
        lambda q, k, v: flash_attn_varlen_func(q, k, v, cq, ck, max(lq), max(lk), causal=causal,
                                               window_size=window),
        lambda q, k, v: naive_varlen(q, k, v, cu_q, cu_k, max(lk), causal, window),
    )  # fmt: skip
    assert_rule(res, dtype)


def test_varlen_equals_each_sequence_alone():
    """A packed batch gives each sequence exactly (bit for bit) what a batch of that sequence
    alone gives: no row of one sequence leaks into another."""
    gen = torch.Generator().manual_seed(7)
    lengths = (3, 41, 1, 77)
    cu = _cu(lengths)
    q, k, v = (draw(gen, cu[-1], 2, 32, dtype=F16) for _ in range(3))
    cu_t = torch.tensor(cu, dtype=torch.int32, device=DEVICE)
    packed = flash_attn_varlen_func(q, k, v, cu_t, cu_t, max(lengths), max(lengths), causal=True)
    for b in range(len(lengths)):
        s = slice(cu[b], cu[b + 1])
        alone = flash_attn_func(q[None, s], k[None, s], v[None, s], causal=True)[0]
        assert torch.equal(packed[s], alone), f"sequence {b}"


# --------------------------------------------------------------------------- GQA, determinism
def test_gqa_equals_repeated_kv_and_sums_the_group():
    """GQA reads K/V head h // group in the kernel: the output equals MHA on repeated K/V bit for
    bit, and dK/dV are the repeated heads' gradients summed over each group."""
    gen = torch.Generator().manual_seed(8)
    q = draw(gen, 1, 37, 6, 32, dtype=F32).requires_grad_()
    k, v = (draw(gen, 1, 37, 2, 32, dtype=F32).requires_grad_() for _ in range(2))
    do = draw(gen, 1, 37, 6, 32, dtype=F32)
    out = flash_attn_func(q, k, v, causal=True)
    out.backward(do)
    kr, vr = (x.detach().repeat_interleave(3, dim=2).requires_grad_() for x in (k, v))
    qr = q.detach().requires_grad_()
    out_r = flash_attn_func(qr, kr, vr, causal=True)
    out_r.backward(do)
    assert torch.equal(out, out_r)
    torch.testing.assert_close(q.grad, qr.grad, rtol=0, atol=0)
    for g, gr in ((k.grad, kr.grad), (v.grad, vr.grad)):
        torch.testing.assert_close(g, gr.view(1, 37, 2, 3, 32).sum(3), rtol=1e-6, atol=1e-6)


def test_backward_is_deterministic():
    """Two backward passes give the same bits (no atomics; dK/dV summed over the GQA group in a
    fixed order), for a padded and a packed batch."""
    gen = torch.Generator().manual_seed(9)
    q = draw(gen, 2, 50, 4, 64, dtype=B16)
    k, v = (draw(gen, 2, 50, 1, 64, dtype=B16) for _ in range(2))
    cu = torch.tensor([0, 30, 100], dtype=torch.int32, device=DEVICE)
    runs = []
    for _ in range(2):
        leaves = [x.detach().clone().requires_grad_() for x in (q, k, v)]
        flash_attn_func(*leaves, window_size=(12, 3)).float().square().sum().backward()
        packed = [x.detach().reshape(-1, *x.shape[2:]).requires_grad_() for x in (q, k, v)]
        flash_attn_varlen_func(*packed, cu, cu, 70, 70, causal=True).float().sum().backward()
        runs.append([x.grad for x in leaves + packed])
    for a, b in zip(*runs):
        assert torch.equal(a, b)


def test_tiles_outside_the_window_are_never_read():
    """Key rows that no query's window covers are NaN: if a tile of them were visited (even
    masked) a NaN would reach the output or the gradients through 0 · NaN. So the loops must
    skip them, in the forward, the dQ and the dK/dV kernels."""
    gen = torch.Generator().manual_seed(10)
    # 32 queries at the end of 400 keys, window 10 to the left: keys < 358 are seen by no one
    q = draw(gen, 1, 32, 2, 16, dtype=F32)
    k, v = (draw(gen, 1, 400, 1, 16, dtype=F32) for _ in range(2))
    k[:, :300], v[:, :300] = float("nan"), float("nan")
    leaves = [x.clone().requires_grad_() for x in (q, k, v)]
    out = flash_attn_func(*leaves, causal=True, window_size=(10, 0))
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(leaves[0].grad).all()
    assert (leaves[1].grad[:, :300] == 0).all() and torch.isfinite(leaves[2].grad).all()
    clean = [x.nan_to_num(0.0) for x in (q, k, v)]
    torch.testing.assert_close(out, naive_bnhd(*clean, True, (10, 0)), rtol=1e-5, atol=1e-5)
    # the mirror image: 400 queries on 32 keys, causal: queries < 368 see no key, and their
    # NaN rows of Q and dO must not reach dK/dV
    q = draw(gen, 1, 400, 2, 16, dtype=F32)
    k, v = (draw(gen, 1, 32, 2, 16, dtype=F32) for _ in range(2))
    q[:, :300] = float("nan")
    do = torch.randn(q.shape, generator=gen).to(DEVICE)
    do[:, :300] = float("nan")
    leaves = [x.clone().requires_grad_() for x in (q, k, v)]
    out = flash_attn_func(*leaves, causal=True)
    out.backward(do)
    assert (out[:, :300] == 0).all() and torch.isfinite(out).all()
    assert torch.isfinite(leaves[1].grad).all() and torch.isfinite(leaves[2].grad).all()


# --------------------------------------------------------------------------- API details
def test_layouts_scale_and_lse_match_flash_attn():
    """(B, N, H, D) in and out, softmax_scale, return_attn_probs' LSE (B, H, N_q) and (H, T_q),
    the (B, H, N, D) function on the same data, and non-contiguous inputs (a packed qkv)."""
    gen = torch.Generator().manual_seed(11)
    qkv = draw(gen, 2, 21, 3, 4, 16, dtype=F32)  # (B, N, 3, H, D): q, k, v are strided views
    q, k, v = qkv.unbind(2)
    out, lse, none = flash_attn_func(q, k, v, softmax_scale=0.3, causal=True,
                                     return_attn_probs=True)  # fmt: skip
    assert out.shape == q.shape and lse.shape == (2, 4, 21) and none is None
    expect = naive_bnhd(q, k, v, True, scale=0.3)
    torch.testing.assert_close(out, expect, rtol=1e-5, atol=1e-5)
    s = (q.transpose(1, 2) @ k.transpose(1, 2).transpose(-1, -2)) * 0.3
    s = s.masked_fill(~visible(21, 21, True, (-1, -1)), float("-inf"))
    torch.testing.assert_close(lse, torch.logsumexp(s, -1), rtol=1e-5, atol=1e-5)
    bhnd = kernel.flash_attention(*(x.transpose(1, 2) for x in (q, k, v)), causal=True, scale=0.3)
    torch.testing.assert_close(bhnd.transpose(1, 2), out, rtol=0, atol=0)
    cu = torch.tensor([0, 21, 42], dtype=torch.int32, device=DEVICE)
    flat = [x.reshape(42, 4, 16) for x in (q, k, v)]
    out_v, lse_v, _ = flash_attn_varlen_func(*flat, cu, cu, 21, 21, softmax_scale=0.3,
                                             causal=True, return_attn_probs=True)  # fmt: skip
    assert lse_v.shape == (4, 42)
    torch.testing.assert_close(out_v, out.reshape(42, 4, 16), rtol=0, atol=0)
    torch.testing.assert_close(lse_v, lse.transpose(0, 1).reshape(4, 42), rtol=0, atol=0)


def test_bad_arguments_get_clear_errors():
    x = torch.randn(1, 8, 4, 16, device=DEVICE)
    with pytest.raises(NotImplementedError, match="dropout_p"):
        flash_attn_func(x, x, x, dropout_p=0.1)
    with pytest.raises(ValueError, match="K/V heads"):
        flash_attn_func(x, torch.randn(1, 8, 3, 16), torch.randn(1, 8, 3, 16))
    with pytest.raises(ValueError, match="window_size"):
        flash_attn_func(x, x, x, window_size=(-2, 0))
    with pytest.raises(ValueError, match="head dim"):
        flash_attn_func(*(torch.randn(1, 8, 1, 257),) * 3)
    with pytest.raises(ValueError, match="batch, seqlen, nheads, headdim"):
        flash_attn_func(x[0], x[0], x[0])
    p = torch.randn(10, 4, 16)
    cu = torch.tensor([0, 4, 10], dtype=torch.int32)
    with pytest.raises(TypeError, match="int32"):
        flash_attn_varlen_func(p, p, p, cu.long(), cu, 6, 6)
    with pytest.raises(ValueError, match="end at the packed length 10"):
        flash_attn_varlen_func(p, p, p, torch.tensor([0, 4, 9], dtype=torch.int32), cu, 6, 6)
    with pytest.raises(ValueError, match="max_seqlen"):
        flash_attn_varlen_func(p, p, p, cu, cu, 5, 6)


# --------------------------------------------------------------------------- larger sweep
@pytest.mark.skipif(not SWEEP, reason="set REPRO_FLASH_SWEEP=1 for the full sweep (minutes)")
@pytest.mark.slow
@pytest.mark.parametrize("dtype", [F16, B16, F32], ids=str)
@pytest.mark.parametrize("d", [16, 59, 64, 96, 111, 128, 256])
def test_sweep_product(d, dtype):
    """Every head dim × dtype × (GQA ratio, causal/window, N_q vs N_k) combination."""
    for (h, h_kv), (causal, window), (n_q, n_k) in itertools.product(
        [(4, 4), (4, 2), (4, 1)],
        [(False, (-1, -1)), (True, (-1, -1)), (False, (0, 0)), (True, (7, 0)), (False, (9, 3))],
        [(77, 77), (40, 130), (130, 40)],
    ):
        check_fixed((1, n_q, n_k, h, h_kv, d, causal, window, dtype), d + n_q)


# --------------------------------------------------------------------------- drop-in proof
def test_tinylm_trains_the_same_with_flash_attn_func():
    """The project's TinyLM with its SDPA attention swapped for flash_attn_func (the model's
    q, k, v used in flash-attn's (B, T, H, D) layout, no transposes) trains to the same losses,
    step for step, from the same initialisation and batches. TinyLM itself is unchanged."""
    import copy
    import types

    from repro.common.tinylm import CausalSelfAttention, LMConfig, TinyLM, train

    def flash_forward(self, x):
        b, t, c = x.shape
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head) for z in self.qkv(x).split(c, 2))
        y = flash_attn_func(q, k, v, dropout_p=self.dropout if self.training else 0.0,
                            causal=True)  # fmt: skip
        return self.proj(y.reshape(b, t, c))

    torch.manual_seed(0)
    cfg = LMConfig(vocab_size=61, seq_len=24, d_model=32, n_layer=2, n_head=2)
    base = TinyLM(cfg)
    gen = torch.Generator().manual_seed(1)
    data = [torch.randint(0, 61, (2, 25), generator=gen)] * 4  # one batch, learnt by heart
    losses = {}
    for name in ("sdpa", "flash"):
        model = copy.deepcopy(base)
        if name == "flash":
            for m in model.modules():
                if isinstance(m, CausalSelfAttention):
                    m.forward = types.MethodType(flash_forward, m)
        opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
        batches = iter((x[:, :-1], x[:, 1:]) for x in data)
        losses[name] = train(model, batches, len(data), optimizer=opt)
    assert losses["flash"][-1] < losses["flash"][0]  # it trains
    torch.testing.assert_close(losses["flash"], losses["sdpa"], rtol=2e-5, atol=2e-5)
    assert type(base.blocks[0].attn).forward is CausalSelfAttention.forward  # default untouched


# --------------------------------------------------------------------------- bf16-faithful path
@pytest.mark.skipif(not kernel.INTERPRET, reason="the emulation is the interpreter's")
def test_interpreter_rounds_p_and_ds_to_bf16_as_the_gpu_does():
    """Under the interpreter bf16 tiles travel as fp32; the values that enter P·V, Pᵀ·dO, dS·K
    and dSᵀ·Q are rounded to bf16 on the bits (round to nearest, ties to even), exactly as
    ``.to(torch.bfloat16)`` does, including ties, tiny and huge values."""
    import triton
    import triton.language as tl

    @triton.jit
    def round_kernel(X, Y, N: tl.constexpr):
        offs = tl.arange(0, N)
        x = tl.load(X + offs)
        tl.store(Y + offs, kernel._round_like_input(x, x, True))

    gen = torch.Generator().manual_seed(12)
    x = torch.randn(4096, generator=gen) * torch.logspace(-30, 30, 4096)
    ties = torch.tensor([1 + 2**-8, 1 + 3 * 2**-8, -(1 + 2**-8), 2**-130 * 3, 3.0e38, 0.0])
    x = torch.cat([x, ties, torch.zeros(8192 - 4096 - ties.numel())])
    y = torch.empty_like(x)
    round_kernel[(1,)](x, y, x.numel())
    assert torch.equal(y, x.bfloat16().float())
    # and the kernel's bf16 path is switched on for bf16 inputs only
    q = torch.randn(1, 4, 1, 16)
    pb = kernel._Problem(q, q, cu_q=None, cu_k=None, batch=1, n_q=4, n_k=4, scale=None,
                         left=-1, right=-1)  # fmt: skip
    assert not pb.meta["UPCAST"]
    pb = kernel._Problem(q.bfloat16(), q, cu_q=None, cu_k=None, batch=1, n_q=4, n_k=4,
                         scale=None, left=-1, right=-1)  # fmt: skip
    assert pb.meta["UPCAST"]


def test_autotune_configs_are_chosen_by_head_dim_class(monkeypatch):
    """On a GPU the autotuner tries only the rows of the head dim's class (small tiles for big
    head dims, so they fit shared memory), and at most TUNE_CONFIGS of them."""
    import triton

    monkeypatch.setattr(kernel, "INTERPRET", False)
    for kind, table in kernel._TABLES.items():
        configs = [
            triton.Config({"BLOCK_M": bm, "BLOCK_N": bn}, num_warps=w, num_stages=s)
            for _, bm, bn, w, s in table
        ]
        prune = kernel._pruner(kind)["early_config_prune"]
        for pad, cls in ((16, 64), (64, 64), (128, 128), (256, 256)):
            kept = prune(configs, {}, HEAD_DIM_PAD=pad)
            rows = [(c.kwargs["BLOCK_M"], c.kwargs["BLOCK_N"], c.num_warps, c.num_stages)
                    for c in kept]  # fmt: skip
            assert rows == [r[1:] for r in table if r[0] == cls] and rows
        monkeypatch.setattr(kernel, "TUNE_CONFIGS", 2)
        assert len(prune(configs, {}, HEAD_DIM_PAD=256)) == 2
        monkeypatch.setattr(kernel, "TUNE_CONFIGS", None)
    # the 256 class uses smaller tiles than the 64 class
    big = [bm * bn for c, bm, bn, _, _ in kernel._FWD_TABLE if c == 256]
    small = [bm * bn for c, bm, bn, _, _ in kernel._FWD_TABLE if c == 64]
    assert max(big) < max(small)
