"""FlashAttention: the Triton kernel, the tiled reference, the counters and the measurements.

Without a GPU the kernel runs under Triton's interpreter (kernel.py switches it on before the
kernels are defined), so these tests use small shapes. With a GPU the same tests run the compiled
kernel, and the ``gpu``-marked ones add larger shapes. Every kernel output buffer is filled with
NaN before the kernel writes it (``POISON_OUTPUTS``), so an element a kernel forgets to store
fails the comparison instead of passing on stale memory.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F

from repro.papers.flash_attention import kernel
from repro.papers.flash_attention import reference as ref
from repro.papers.flash_attention.run import (
    PeakTensorMemory,
    growth_exponent,
    io_counts,
    loglog_slope,
    memory_point,
    parse_case,
)

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
U = {torch.float16: 2.0**-11, torch.bfloat16: 2.0**-8, torch.float32: 2.0**-24}
gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(autouse=True)
def poison(monkeypatch):
    monkeypatch.setattr(kernel, "POISON_OUTPUTS", True)


def draw(gen, *shape, dtype=torch.float32, device=DEVICE):
    return torch.randn(*shape, generator=gen).to(device=device, dtype=dtype)


def run_three(q, k, v, do, causal, scale=None):
    """(out, dq, dk, dv) of float64 naive, naive in the inputs' dtype, and our kernel."""
    res = {}
    for name, fn, cast in (
        ("ref", ref.naive_attention, torch.float64),
        ("naive", ref.naive_attention, q.dtype),
        ("ours", kernel.flash_attention, q.dtype),
    ):
        leaves = [x.detach().to(cast).requires_grad_() for x in (q, k, v)]
        out = fn(*leaves, causal=causal, scale=scale)
        out.backward(do.to(cast))
        res[name] = [out.detach()] + [x.grad for x in leaves]
    return res


def assert_exact(res, dtype):
    """FlashAttention's test rule for fp16/bf16: error vs float64 at most 2× (3× for gradients)
    that of naive attention in the same dtype. Below one rounding unit of the dtype at the scale
    of the computation (the result's, or 1 for these unit-normal inputs, whichever is larger)
    nothing is resolvable, so that is the smallest naive error counted; it matters where the
    true result is exactly 0 (dQ at N = 1) and naive happens to hit it. fp32 has
    no lower-precision baseline worth the name (naive fp32 is nearly exact, and the backward's
    D = rowsum(dO ∘ O) uses the rounded O by design), so fp32 uses PyTorch's default float32
    tolerances against float64."""
    for i, name in enumerate(("out", "dq", "dk", "dv")):
        r, ours, naive = res["ref"][i], res["ours"][i], res["naive"][i]
        assert torch.isfinite(ours).all(), f"{name}: non-finite values (an unwritten element?)"
        if dtype == torch.float32:
            torch.testing.assert_close(ours.double(), r, rtol=1.3e-6, atol=1e-5, msg=name)
            continue
        err = (ours.double() - r).abs().max().item()
        err_naive = (naive.double() - r).abs().max().item()
        floor = U[dtype] * max(r.abs().max().item(), 1.0)
        factor = 2.0 if name == "out" else 3.0
        assert err <= factor * max(err_naive, floor), (
            f"{name}: error {err:.3g} > {factor}× naive {err_naive:.3g} (floor {floor:.3g})"
        )


# (N_q, N_k, D, causal, dtype): every length of the issue, both N_q ≠ N_k directions, every head
# dim incl. non-powers of two, causal on and off and all three dtypes, without the full product.
CASES = [
    (1, 1, 16, True, torch.float16),
    (1, 1, 64, False, torch.bfloat16),
    (17, 17, 16, False, torch.float32),
    (17, 17, 80, True, torch.float16),
    (64, 64, 32, True, torch.bfloat16),
    (64, 64, 128, False, torch.float16),
    (97, 97, 64, False, torch.float16),
    (97, 97, 80, True, torch.bfloat16),
    (97, 97, 32, True, torch.float32),
    (128, 128, 128, True, torch.bfloat16),
    (128, 128, 16, False, torch.float32),
    (200, 200, 64, True, torch.float16),
    (200, 200, 96, False, torch.bfloat16),
    (113, 203, 80, True, torch.float16),
    (113, 203, 64, False, torch.bfloat16),
    (113, 203, 32, True, torch.float32),
    (64, 17, 128, True, torch.bfloat16),  # N_q > N_k, causal: 47 query rows see no key
    (64, 17, 16, False, torch.float16),
    (64, 17, 64, True, torch.float32),
    (17, 64, 96, True, torch.float16),
]


def _id(c):
    return f"{c[0]}x{c[1]}-d{c[2]}-{'causal' if c[3] else 'full'}-{str(c[4])[6:]}"


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_kernel_matches_float64_attention(case):
    n_q, n_k, d, causal, dtype = case
    gen = torch.Generator().manual_seed(CASES.index(case))
    q, k, v = (
        draw(gen, 1, 1, n_q, d, dtype=dtype),
        draw(gen, 1, 1, n_k, d, dtype=dtype),
        draw(gen, 1, 1, n_k, d, dtype=dtype),
    )
    do = draw(gen, 1, 1, n_q, d, dtype=dtype)
    assert_exact(run_three(q, k, v, do, causal), dtype)


def test_kernel_batch_heads_scale_and_strides():
    """B, H > 1 in the grid, a custom softmax scale, and non-contiguous inputs: a (B, N, H, D)
    tensor viewed as (B, H, N, D) the way models usually produce q, k, v."""
    gen = torch.Generator().manual_seed(3)
    b, h, n, d = 2, 3, 45, 32

    def bnhd(n_):
        return draw(gen, b, n_, h, d, dtype=torch.float16).transpose(1, 2)  # (B, H, N, D) view

    q, k, v, do = bnhd(n), bnhd(n + 7), bnhd(n + 7), bnhd(n)
    assert not q.is_contiguous()
    assert_exact(run_three(q, k, v, do, causal=True, scale=0.3), torch.float16)


def test_forward_lse_and_empty_rows():
    """LSE is the natural-log log-sum-exp of the scaled, masked scores; a query that sees no
    key (bottom-right causal with N_q > N_k) gets O = 0 and LSE = +inf."""
    gen = torch.Generator().manual_seed(4)
    n_q, n_k, d = 40, 25, 64
    q, k, v = (draw(gen, 1, 2, n, d) for n in (n_q, n_k, n_k))
    o, lse = kernel.attention_forward(q, k, v, causal=True)
    s = (q.double() @ k.double().transpose(-1, -2)) / math.sqrt(d)
    keep = ref.causal_mask(n_q, n_k, q.device)
    expect = torch.logsumexp(s.masked_fill(~keep, float("-inf")), -1)
    empty = ~keep.any(-1)  # rows 0 .. n_q - n_k - 1
    assert empty.sum() == n_q - n_k
    assert torch.isinf(lse[..., empty]).all() and (lse[..., empty] > 0).all()
    assert (o[..., empty, :] == 0).all()
    torch.testing.assert_close(lse[..., ~empty].double(), expect[..., ~empty], rtol=0, atol=1e-5)


def test_causal_is_bottom_right_and_matches_sdpa():
    """Same convention as SDPA's causal_lower_right bias (FlashAttention ≥ 2.1); with N_q = N_k it
    is SDPA's is_causal=True."""
    from torch.nn.attention.bias import causal_lower_right

    gen = torch.Generator().manual_seed(5)
    for n_q, n_k in ((30, 70), (48, 48)):
        q, k, v = (draw(gen, 1, 2, n, 32) for n in (n_q, n_k, n_k))
        ours = kernel.flash_attention(q, k, v, causal=True)
        peer = F.scaled_dot_product_attention(q, k, v, attn_mask=causal_lower_right(n_q, n_k))
        torch.testing.assert_close(ours, peer, rtol=1e-5, atol=1e-5)
        if n_q == n_k:
            torch.testing.assert_close(
                ours, F.scaled_dot_product_attention(q, k, v, is_causal=True), rtol=1e-5, atol=1e-5
            )


def test_kernel_rejects_bad_inputs():
    x = torch.randn(1, 1, 8, 16)
    with pytest.raises(ValueError, match="head dim"):
        kernel.flash_attention(*(torch.randn(1, 1, 8, 300),) * 3)
    with pytest.raises(TypeError):
        kernel.flash_attention(x, x.half(), x)
    with pytest.raises(ValueError, match="shapes"):
        kernel.flash_attention(x, torch.randn(1, 2, 8, 16), torch.randn(1, 2, 8, 16))
    with pytest.raises(ValueError, match="B, H, N, D"):
        kernel.flash_attention(x[0], x[0], x[0])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU interpreter switch")
def test_interpreter_is_on_without_a_gpu():
    assert kernel.INTERPRET and os.environ.get("TRITON_INTERPRET") == "1"
    x = torch.empty(1, 1, 1, 80, dtype=torch.bfloat16)
    pb = kernel._Problem(
        x, x, cu_q=None, cu_k=None, batch=1, n_q=1, n_k=1, scale=None, left=-1, right=0
    )
    assert pb.meta["UPCAST"]


# --------------------------------------------------------------------------- compiled kernels
_COMPILE_CHECK = textwrap.dedent("""
    import json, os, sys
    os.environ["TRITON_INTERPRET"] = "0"   # compile for the GPU even though none is here
    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    import triton
    from triton.backends.compiler import GPUTarget
    from repro.papers.flash_attention import kernel as K
    assert not K.INTERPRET
    PTRS = {"Q", "K", "V", "O", "DO", "DQ", "DK", "DV"}
    # Shared memory a block may use: A100 (sm_80) 163 KiB, H100 (sm_90) 227 KiB.
    SHARED = {80: 163 * 1024, 90: 227 * 1024}
    FNS = {"fwd": K._attn_fwd.fn, "dkdv": K._attn_bwd_dkdv.fn, "dq": K._attn_bwd_dq.fn}

    def build(fn, dtype, d, masks, varlen, tiles, warps, stages, arch):
        const = dict(HEAD_DIM=d, HEAD_DIM_PAD=max(16, triton.next_power_of_2(d)), VARLEN=varlen)
        if "HAS_LEFT" in fn.arg_names:
            const.update(HAS_LEFT=masks[0], HAS_RIGHT=masks[1], UPCAST=False,
                         DOT_PRECISION="ieee" if dtype == "fp32" else "tf32")
        const.update(tiles)
        sig = {}
        for n in fn.arg_names:
            sig[n] = ("constexpr" if n in const else f"*{dtype}" if n in PTRS
                      else "*fp32" if n in ("LSE", "DELTA") else "*i32" if n.startswith("CU_")
                      else "fp32" if n == "sm_scale" else "i32")
        src = triton.compiler.ASTSource(fn=fn, signature=sig, constexprs={
            (fn.arg_names.index(k),): v for k, v in const.items()})
        ck = triton.compile(src, target=GPUTarget("cuda", arch, 32),
                            options=dict(num_warps=warps, num_stages=stages))
        return ck.metadata.shared

    # each job: arch, dtype, head dim, (left, right) masks, varlen, which configs ("all" or
    # the index of one in its head-dim class)
    for arch, dtype, d, masks, varlen, which in json.loads(sys.argv[1]):
        for kind, fn in FNS.items():
            rows = K.configs_for(kind, max(16, triton.next_power_of_2(d)))
            for bm, bn, w, s in (rows if which == "all" else [rows[which]]):
                shared = build(fn, dtype, d, masks, varlen, {"BLOCK_M": bm, "BLOCK_N": bn},
                               w, s, arch)
                print(json.dumps([arch, dtype, d, kind, bm, bn, w, s, shared]), flush=True)
                assert shared <= SHARED[arch], (kind, arch, d, bm, bn, w, s, shared)
        build(K._attn_bwd_delta, dtype, d, masks, varlen, {"BLOCK_M": 64}, 4, 2, arch)
    print("compiled")
""")


def _compile(jobs, tmp_path):
    env = {**os.environ, "TRITON_CACHE_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-c", _COMPILE_CHECK, json.dumps(jobs)],
        env=env, capture_output=True, text=True, timeout=3600,
    )  # fmt: skip
    assert proc.returncode == 0 and "compiled" in proc.stdout, proc.stderr[-3000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("[")]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU runs the compiled kernels directly")
def test_kernels_compile_for_gpus(tmp_path):
    """Without a GPU the tests above only exercise the interpreter, which accepts things the
    compiler rejects. Compile every kernel to a cubin for sm_90 and sm_80 (ptxas ships with
    triton), with a fresh cache so nothing is taken from an earlier build, and check its shared
    memory against the GPU's limit: one head dim of each autotune class (≤ 64, ≤ 128, ≤ 256),
    bf16 and fp16, every mask switch, padded and packed. Here one config per kernel and class;
    every config of every class is compiled by ``test_every_autotune_config_compiles``
    (REPRO_FLASH_SWEEP=1; about 40 compilations per GPU, too slow for CI)."""
    jobs = [
        [90, "bf16", 80, [False, True], False, 0],  # causal, class 128
        [80, "fp16", 256, [True, True], True, 0],  # sliding window, packed, class 256
        [80, "bf16", 59, [True, False], False, 1],  # left window only, class 64
    ]
    rows = _compile(jobs, tmp_path)
    assert len(rows) == 3 * len(jobs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU runs the compiled kernels directly")
@pytest.mark.skipif(
    os.environ.get("REPRO_FLASH_SWEEP", "") in ("", "0"),
    reason="set REPRO_FLASH_SWEEP=1 to compile every autotune config (about 15 CPU-minutes)",
)
@pytest.mark.slow
@pytest.mark.parametrize("arch", [80, 90])
def test_every_autotune_config_compiles(arch, tmp_path):
    """Every row of every autotune table, at the largest head dim of its class, compiles for the
    GPU and fits its shared memory."""
    jobs = [[arch, "bf16", d, [True, True], False, "all"] for d in (64, 128, 256)]
    rows = _compile(jobs, tmp_path)
    assert len(rows) == sum(len(kernel._TABLES[k]) for k in ("fwd", "dkdv", "dq"))


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("d", [64, 128])
def test_kernel_gpu_larger_shapes(d, causal):
    gen = torch.Generator().manual_seed(d + causal)
    q, k, v, do = (draw(gen, 2, 4, 1500, d, dtype=torch.bfloat16) for _ in range(4))
    assert_exact(run_three(q, k, v, do, causal), torch.bfloat16)


@gpu
@pytest.mark.gpu
def test_kernel_gpu_memory_is_linear():
    gen = torch.Generator().manual_seed(0)
    pts = [memory_point(n, 64, 128, True, "cuda", gen) for n in (2048, 4096, 8192)]
    assert 0.8 <= growth_exponent([p["n"] for p in pts], [p["tiled_bytes"] for p in pts]) <= 1.2


# --------------------------------------------------------------------------- reference
@pytest.mark.parametrize(
    "n_q,n_k,causal",
    [(97, 97, False), (113, 203, True), (64, 17, True), (1, 1, True), (70, 70, True)],
)
def test_tiled_reference_is_exact_in_float64(n_q, n_k, causal):
    gen = torch.Generator().manual_seed(n_q * n_k)
    q, k, v = (
        torch.randn(2, 2, n, 24, generator=gen, dtype=torch.float64) for n in (n_q, n_k, n_k)
    )
    do = torch.randn(2, 2, n_q, 24, generator=gen, dtype=torch.float64)
    leaves = [x.clone().requires_grad_() for x in (q, k, v)]
    expect = ref.naive_attention(*leaves, causal=causal, scale=0.2)
    expect.backward(do)
    o, lse = ref.tiled_forward(q, k, v, causal, scale=0.2, block_r=16, block_c=24)
    grads = ref.tiled_backward(do, q, k, v, o, lse, causal, scale=0.2, block_r=32, block_c=8)
    torch.testing.assert_close(o, expect.detach(), rtol=0, atol=1e-12)
    for g, x in zip(grads, leaves):
        torch.testing.assert_close(g, x.grad, rtol=0, atol=1e-12)
    o_std, p = ref.standard_forward(q, k, v, causal, scale=0.2)
    torch.testing.assert_close(o_std, expect.detach(), rtol=0, atol=1e-12)
    for g, x in zip(ref.standard_backward(do, q, k, v, p, scale=0.2), leaves):
        torch.testing.assert_close(g, x.grad, rtol=0, atol=1e-12)


def test_hbm_counts_match_the_proof_of_theorem_2():
    """Algorithm 1 reads K, V once (2Nd) and, for each of the T_c key blocks, reads Q, O, ℓ, m
    and writes O, ℓ, m for every query block (3Nd + 4N); Algorithm 0 moves 4Nd + 4N²."""
    n, d, m = 256, 32, 2048  # B_c = ⌈M/4d⌉ = 16
    row = io_counts(n, d, m, torch.Generator().manual_seed(0))
    t_c = math.ceil(n / row["block_c"])
    assert row["block_c"] == 16 and row["block_r"] == 16
    assert row["flash_fwd"] == 2 * n * d + t_c * (3 * n * d + 4 * n)
    assert row["standard_fwd"] == 4 * n * d + 4 * n * n
    # backward (Algorithm 4): K, V read and dK, dV written once; per key block Q, O, dO, dQ, LSE
    # read and dQ written
    assert row["flash_bwd"] == 4 * n * d + t_c * (5 * n * d + n)
    bigger = io_counts(n, d, 4 * m, torch.Generator().manual_seed(0))
    assert bigger["flash_fwd"] < row["flash_fwd"] / 3  # 4× the memory, ~4× fewer accesses


def test_peak_tensor_memory_tracks_allocations_not_views():
    with PeakTensorMemory() as t:
        a = torch.empty(1000, dtype=torch.float32)  # 4000 bytes
        b = a.view(10, 100)[2:]  # a view: nothing new
        a.add_(1.0)  # in place: nothing new
        del a, b
        c = torch.empty(500, dtype=torch.float64)  # 4000 bytes, after a was freed
        d = c * 2  # 4000 more while c is alive
        del c, d
    assert t.peak == 8000 and t.live == 0


def test_memory_growth_tiled_linear_naive_quadratic():
    gen = torch.Generator().manual_seed(0)
    pts = [memory_point(n, 16, 32, True, "cpu", gen) for n in (128, 256, 512)]
    ns = [p["n"] for p in pts]
    assert abs(growth_exponent(ns, [p["tiled_bytes"] for p in pts]) - 1) < 0.1
    assert abs(growth_exponent(ns, [p["naive_bytes"] for p in pts]) - 2) < 0.1
    assert pts[-1]["naive_bytes"] > 4 * pts[-1]["tiled_bytes"]


def test_growth_exponent_recovers_planted_power():
    ns = [1000, 2000, 4000, 8000]
    for alpha in (1.0, 1.5, 2.0):
        ms = [7e6 + 3.0 * n**alpha for n in ns]
        assert growth_exponent(ns, ms) == pytest.approx(alpha, abs=1e-9)
    assert loglog_slope(ns, [5 * n**2 for n in ns]) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        growth_exponent([1000, 2000, 3000], [1, 2, 3])


def test_parse_case():
    assert parse_case("113x203-d80-causal-bf16") == (113, 203, 80, True, torch.bfloat16)
    with pytest.raises(ValueError, match="expected like"):
        parse_case("113-203-d80")


# --------------------------------------------------------------------------- benchmark helpers
def test_bench_flops_summary_and_plot(tmp_path):
    """The FLOP count of DESIGN.md, the target ratios computed from benchmark rows, and the
    plot, on made-up rows (the timing itself needs a GPU)."""
    from repro.papers.flash_attention import bench

    assert bench.attention_flops(2, 3, 128, 64, False, "fwd") == 4 * 2 * 3 * 128**2 * 64
    assert bench.attention_flops(2, 3, 128, 64, True, "fwd") == 2 * 2 * 3 * 128**2 * 64
    assert bench.attention_flops(1, 1, 8, 16, False, "fwd_bwd") == 3.5 * 4 * 8**2 * 16
    tflops = {"ours": 300.0, "sdpa-flash": 250.0, "naive": 50.0}
    rows = [
        {"d": d, "causal": c, "n": n, "provider": p, "mode": m, "tflops": t * (0.8 if m == "fwd_bwd" else 1)}
        for d in (64, 128) for c in (False, True) for n in (1024, 2048, 4096)
        for p, t in tflops.items() for m in ("fwd", "fwd_bwd")
    ]  # fmt: skip
    summary = bench._summary(rows)
    assert summary["min_ours_over_sdpa_flash_fwd_d128_n2k+"] == pytest.approx(300 / 250)
    assert summary["min_ours_over_naive_fwd_bwd_n4k"] == pytest.approx(6.0)
    memory = [{"n": 1024, "tiled_bytes": 1e6, "naive_bytes": 1e7},
              {"n": 2048, "tiled_bytes": 2e6, "naive_bytes": 4e7}]  # fmt: skip
    bench._plot(rows, memory, tmp_path / "bench.png", "test")
    assert (tmp_path / "bench.png").stat().st_size > 0


def test_declaration_is_consistent():
    from repro.papers.flash_attention import REPRO

    assert REPRO.problems() == []
    kinds = {c.id: c.kind for c in REPRO.claims}
    assert [k for k, v in kinds.items() if v == "finding"] == ["speed-fwd-bwd"]
    speed = next(c for c in REPRO.claims if c.id == "speed-fwd-bwd")
    assert speed.gpu_only and speed.verify_rtol is None
    assert REPRO.make_config("quick", {}).speed_rounds == 3
    assert REPRO.make_config("full", {}).speed_rounds == 5


def test_bench_device_preset_plan_and_dry_run(capsys, tmp_path, monkeypatch):
    """`repro bench flash-attention --preset device --dry_run` prints the plan with its compile +
    run estimate, which fits the 6-minute device window, and measures and writes nothing; the
    slices narrow the plan; unknown values are refused with the field's name."""
    from repro.cli import main as cli
    from repro.papers.flash_attention import bench

    monkeypatch.setenv("REPRO_RESULTS", str(tmp_path))
    assert cli(["bench", "flash-attention", "--preset", "device", "--dry_run"]) == 0
    err = capsys.readouterr().err
    assert (
        "plan" in err and "estimate:" in err and "dry run" in err and "kernel compilations" in err
    )
    from repro.config import build_config

    cfg = build_config(bench.BenchConfig, bench.PRESETS["device"], {})
    p = bench.plan(cfg)
    assert p["total_s"] <= bench.DEVICE_WINDOW_S
    assert {s["variant"] for s in bench.shapes(cfg)} == {"mha", "gqa", "varlen"}
    assert p["compiles"] > 0 and p["timings"] == sum(
        len(bench._providers(cfg, s["variant"])) * 2 for s in bench.shapes(cfg)
    )
    narrow = build_config(
        bench.BenchConfig, {}, {"head_dims": "128", "lengths": "2048", "modes": "fwd"}
    )
    assert len(bench.shapes(narrow)) == 2 + 1 + 1  # mha causal off/on, gqa, varlen
    assert bench.plan(narrow)["timings"] < p["timings"]
    assert not list(tmp_path.rglob("*.json"))
    assert cli(["bench", "flash-attention", "--dry_run", "--modes=bwd"]) != 0
    assert "--modes" in capsys.readouterr().err
    assert cli(["bench", "flash-attention", "--preset", "fast", "--dry_run"]) != 0
    assert "choose from device" in capsys.readouterr().err


def test_bench_agreement_fails_a_wrong_kernel_and_varlen_lengths():
    from repro.config import build_config
    from repro.papers.flash_attention import bench

    cfg = build_config(bench.BenchConfig, {}, {})
    gen = torch.Generator().manual_seed(0)
    q, k, v, do = (torch.randn(1, 2, 20, 16, generator=gen) for _ in range(4))
    good = bench.agreement(
        lambda *x: kernel.flash_attention(*x, causal=True),
        lambda *x: F.scaled_dot_product_attention(*x, is_causal=True),
        (q, k, v), do, cfg,
    )  # fmt: skip
    assert good["ok"] == {"fwd": True, "fwd_bwd": True}
    bad = bench.agreement(
        lambda *x: F.scaled_dot_product_attention(*x, is_causal=False),  # the wrong mask
        lambda *x: F.scaled_dot_product_attention(*x, is_causal=True),
        (q, k, v), do, cfg,
    )  # fmt: skip
    assert bad["ok"] == {"fwd": False, "fwd_bwd": False}
    lengths = bench.varlen_lengths(1024, 16384)
    assert sum(lengths) == 16384 and max(lengths) <= 1024 and min(lengths) >= 1
    assert len(set(lengths)) > len(lengths) // 2  # uneven


def test_bench_speed_rows_run_end_to_end(monkeypatch):
    """The GPU speed code (mha, gqa and varlen rows, agreement checks, failed rows) run on the
    CPU through the interpreter at toy sizes, with the timer replaced by a stub: what the GPU
    session will execute, minus the clock."""
    from repro.config import build_config
    from repro.papers.flash_attention import bench

    monkeypatch.setattr(bench, "DEVICE", DEVICE)
    monkeypatch.setattr(bench, "time_ms", lambda *a, **k: 1.0)
    cfg = build_config(
        bench.BenchConfig,
        {},
        {"lengths": "32", "head_dims": "16", "variant_head_dims": "16", "tokens": "64",
         "model_dim": "64", "providers": "ours,naive,sdpa-flash", "dtype": "fp32"},
    )  # fmt: skip
    rows = bench._gpu_speed(cfg, lambda msg: None)
    by = {(r["variant"], r["provider"], r["causal"], r["mode"]) for r in rows}
    assert ("gqa", "ours", True, "fwd_bwd") in by and ("varlen", "ours-varlen", True, "fwd") in by
    assert all(r["ok"] for r in rows if "ok" in r) and all(r["tflops"] for r in rows)
    gqa = next(r for r in rows if r["variant"] == "gqa")
    assert gqa["heads"] == 4 and gqa["kv_heads"] == 1
    summary = bench._summary(rows)
    assert summary["min_varlen_over_sdpa_flash_padded_fwd"] is not None
    # a kernel that disagrees with SDPA fails its rows and is not timed
    monkeypatch.setattr(bench, "relative_diffs", lambda a, b: [1.0, 1.0, 1.0, 1.0])
    rows = bench._gpu_speed(cfg, lambda msg: None)
    ours = [r for r in rows if r["provider"] in ("ours", "ours-varlen")]
    assert ours and all(r["ok"] is False and r["tflops"] is None for r in ours)
