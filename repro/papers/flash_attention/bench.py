"""``repro bench flash-attention``: speed on a GPU, memory everywhere.

On a CUDA device: TFLOP/s of our Triton kernel, of ``scaled_dot_product_attention`` with each
backend PyTorch offers here (flash, cuDNN, memory-efficient) and of naive attention, forward and
forward + backward, in FlashAttention-2's benchmark setting: bf16, D ∈ {64, 128}, causal off and
on, N = 512 … 16k with B·N = 16k tokens and H = 2048 / D (the ``mha`` rows). Two more kinds of
row cover what models use today: ``gqa`` (H / ``gqa_group`` K/V heads; ours reads them in place,
SDPA gets ``enable_gqa``, naive repeats them) and ``varlen`` (a packed batch of uneven sequences
of up to N tokens: ours through ``flash_attn_varlen_func``, against ours and SDPA on the same
batch padded to N). Times are medians of ``triton.testing.do_bench``; FLOPs are counted as
fwd = 4·B·H·N²·D (halved when causal; for varlen rows the sum over the real sequences, so
padding earns nothing) and fwd + bwd = 3.5 × fwd, so every provider is credited with the same
work. A peak-memory table (forward + backward, our kernel vs naive attention, measured after a
warm-up call so the autotuner's buffers do not count) comes with it.

Before any timing, each shape's output (and, for fwd + bwd, its gradients) is compared with
SDPA's; a row whose values disagree beyond ``out_tol`` / ``grad_tol`` (relative to the larger of
1 and the peer's largest value) is failed: no timing is recorded, and the command exits 1.

The plan, with an estimate of compile + run time, is printed first. ``--preset device`` is a
selection that fits a 6-minute GPU session; ``--dry_run`` prints the plan and stops (on a CPU it
prints the GPU plan). Slices: ``--head_dims=128 --lengths=1024,4096 --modes=fwd_bwd
--variants=mha,gqa --causal=true`` etc.

On a CPU only the memory table runs (the kernel would run in Triton's interpreter, whose speed
means nothing): the tiled reference vs naive attention, measured as in ``run.py``.

Results go to ``results/flash-attention/bench/{gpu,cpu}.json`` and a PNG next to it, with the
device, library versions and every shape.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import itertools
import json
import math
import time
from dataclasses import dataclass

import torch

from . import reference as ref

DEVICE = "cuda"  # where the speed rows run (a test points it at the CPU, with a stub timer)
PROVIDERS = ("ours", "sdpa-flash", "sdpa-cudnn", "sdpa-efficient", "naive")
MODES = ("fwd", "fwd_bwd")
VARIANTS = ("mha", "gqa", "varlen")


@dataclass(frozen=True)
class BenchConfig:
    lengths: tuple[int, ...] = (512, 1024, 2048, 4096, 8192, 16384)
    head_dims: tuple[int, ...] = (64, 128)
    causal: tuple[bool, ...] = (False, True)
    modes: tuple[str, ...] = MODES
    variants: tuple[str, ...] = VARIANTS
    # gqa and varlen rows at these head dims and causal settings (a modern LM's: causal, 128)
    variant_head_dims: tuple[int, ...] = (128,)
    variant_causal: tuple[bool, ...] = (True,)
    gqa_group: int = 4  # query heads per K/V head in the gqa rows (Llama-2-70B: 8, Mistral: 4)
    tokens: int = 16384  # B·N: batch shrinks as N grows, so every point does similar work
    model_dim: int = 2048  # H = model_dim / D
    dtype: str = "bf16"
    providers: tuple[str, ...] = PROVIDERS
    warmup_ms: int = 25
    rep_ms: int = 100
    # agreement with SDPA, as max |ours − sdpa| / max(1, max |sdpa|): bf16 has 2^-8 ≈ 0.004
    # relative precision, so 0.02 allows a few roundings of the output; gradients sum N terms.
    out_tol: float = 0.02
    grad_tol: float = 0.05
    tune_configs: int = 0  # autotune configs tried per kernel and head-dim class (0: all)
    # memory table: forward + backward, batch 1, one head of mem_head_dim
    mem_lengths: tuple[int, ...] = (1024, 2048, 4096, 8192, 16384)
    mem_head_dim: int = 64
    mem_block: int = 128  # tile of the CPU reference
    dry_run: bool = False  # print the plan and stop


# A selection that fits a 6-minute GPU session (the plan's estimate is printed first; the test
# suite checks it stays under 6 minutes): the FlashAttention-2 shapes at three lengths, the
# three providers that matter, GQA and varlen rows at D = 128 causal, two autotune configs.
PRESETS = {
    "device": {
        "lengths": (1024, 4096, 16384),
        "providers": ("ours", "sdpa-flash", "naive"),
        "tune_configs": 2,
        "mem_lengths": (1024, 2048, 4096, 8192),
    },
}
DEVICE_WINDOW_S = 360.0

# Costs the plan assumes, per unit (seconds on a GPU host; revise after a measured run):
# one Triton compilation of one kernel config (measured 3-5 s on an idle CPU core here, more
# under load), one autotune trial, Python + torch + triton start-up, one agreement check.
COST_S = {"compile": 4.0, "tune_trial": 0.15, "startup": 20.0, "check": 0.5, "mem_point": 1.5}


def attention_flops(batch: int, heads: int, n: int, d: int, causal: bool, mode: str) -> float:
    """fwd: two N×N×D matmuls of 2 FLOPs per multiply-add = 4·B·H·N²·D; causal does half;
    the backward does 2.5× the forward's matmul work (five matmuls, one of them recomputed)."""
    f = 4.0 * batch * heads * n * n * d * (0.5 if causal else 1.0)
    return f * (3.5 if mode == "fwd_bwd" else 1.0)


# --------------------------------------------------------------------------- shapes and plan
def varlen_lengths(n: int, tokens: int, seed: int = 0) -> list[int]:
    """Uneven sequence lengths of at most n (uniform in [n/8, n]) adding up to `tokens`."""
    gen = torch.Generator().manual_seed(seed + n)
    out: list[int] = []
    while sum(out) < tokens:
        out.append(int(torch.randint(max(1, n // 8), n + 1, (1,), generator=gen)))
    out[-1] -= sum(out) - tokens
    return [x for x in out if x > 0]


def _providers(cfg: BenchConfig, variant: str) -> list[str]:
    if variant == "mha":
        return list(cfg.providers)
    if variant == "gqa":
        return [p for p in cfg.providers if p in ("ours", "sdpa-flash", "naive")]
    peers = ["sdpa-flash-padded"] if "sdpa-flash" in cfg.providers else []
    return ["ours-varlen", "ours-padded", *peers]


def shapes(cfg: BenchConfig) -> list[dict]:
    """Every (variant, D, causal, N) the speed table measures."""
    out = []
    for variant in cfg.variants:
        dims = cfg.head_dims if variant == "mha" else cfg.variant_head_dims
        causals = cfg.causal if variant == "mha" else cfg.variant_causal
        for d in dims:
            for causal in causals:
                for n in cfg.lengths:
                    out.append({"variant": variant, "d": d, "causal": causal, "n": n,
                                "batch": max(1, cfg.tokens // n),
                                "heads": max(1, cfg.model_dim // d)})  # fmt: skip
    return out


def plan(cfg: BenchConfig) -> dict:
    """What a GPU run does and roughly how long it takes, from COST_S."""
    from .kernel import configs_for

    shp = shapes(cfg)
    sets = {(s["variant"], s["d"], s["causal"]) for s in shp}  # a compile per constexpr set
    sets_mem = 1 if cfg.mem_lengths else 0

    def n_configs(d):
        pad = max(16, 1 << (d - 1).bit_length())
        return sum(
            len(configs_for(k, pad)[: cfg.tune_configs or None]) for k in ("fwd", "dkdv", "dq")
        )

    compiles = sum(n_configs(d) + 1 for _, d, _ in sets) + sets_mem * (
        n_configs(cfg.mem_head_dim) + 1
    )
    trials = sum(n_configs(s["d"]) for s in shp) + len(cfg.mem_lengths) * n_configs(
        cfg.mem_head_dim
    )
    timings = sum(len(_providers(cfg, s["variant"])) * len(cfg.modes) for s in shp)
    per_timing = (cfg.warmup_ms + cfg.rep_ms) / 1000 * 1.5 + 0.1
    est = {
        "startup": COST_S["startup"],
        "compile": compiles * COST_S["compile"],
        "autotune": trials * COST_S["tune_trial"],
        "checks": len(shp) * COST_S["check"],
        "timing": timings * per_timing,
        "memory": len(cfg.mem_lengths) * COST_S["mem_point"],
    }
    return {"shapes": len(shp), "compile_sets": len(sets) + sets_mem, "compiles": compiles,
            "autotune_trials": trials, "timings": timings, "estimate_s": est,
            "total_s": sum(est.values())}  # fmt: skip


def _print_plan(cfg: BenchConfig, gpu: bool, log) -> dict:
    p = plan(cfg)
    log(
        f"plan{'' if gpu else ' (for a GPU run; here only the memory table runs)'}: "
        f"{p['shapes']} shapes, variants {list(cfg.variants)}, head dims {list(cfg.head_dims)} "
        f"(gqa/varlen at {list(cfg.variant_head_dims)}), causal {list(cfg.causal)}, "
        f"N = {list(cfg.lengths)}, providers {list(cfg.providers)}, modes {list(cfg.modes)}: "
        f"{p['timings']} timings; peak memory at N = {sorted(cfg.mem_lengths)}"
    )
    est = p["estimate_s"]
    log(
        f"estimate: {p['compiles']} kernel compilations ({p['compile_sets']} constexpr sets, "
        f"{cfg.tune_configs or 'all'} autotune configs per kernel) ~{est['compile']:.0f} s, "
        f"autotuning ~{est['autotune']:.0f} s, checks ~{est['checks']:.0f} s, timing "
        f"~{est['timing']:.0f} s, memory ~{est['memory']:.0f} s, start-up ~{est['startup']:.0f} s"
        f": total ~{p['total_s']:.0f} s ({p['total_s'] / 60:.1f} min)"
    )
    return p


# --------------------------------------------------------------------------- providers
def _provider_fn(name: str):
    """(attention function on (B, H, N, D), context manager factory) for a provider."""
    import torch.nn.functional as F

    if name == "ours":
        from .kernel import flash_attention

        return flash_attention, contextlib.nullcontext
    if name == "naive":

        def naive(q, k, v, causal=False):
            group = q.shape[1] // k.shape[1]
            if group > 1:
                k, v = (x.repeat_interleave(group, dim=1) for x in (k, v))
            return ref.naive_attention(q, k, v, causal=causal)

        return naive, contextlib.nullcontext
    if name.startswith("sdpa-"):
        from torch.nn.attention import SDPBackend, sdpa_kernel

        backend = {
            "flash": SDPBackend.FLASH_ATTENTION,
            "cudnn": SDPBackend.CUDNN_ATTENTION,
            "efficient": SDPBackend.EFFICIENT_ATTENTION,
        }[name[5:]]

        def sdpa(q, k, v, causal=False):
            gqa = q.shape[1] != k.shape[1]
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=gqa)

        return sdpa, lambda: sdpa_kernel([backend])
    raise ValueError(f"unknown provider {name!r}; choose from {', '.join(PROVIDERS)}")


def time_ms(fn, q, k, v, do, causal: bool, mode: str, warmup: int = 25, rep: int = 100) -> float:
    """Median milliseconds of one forward (mode 'fwd') or forward + backward ('fwd_bwd')."""
    from triton.testing import do_bench

    if mode == "fwd":
        with torch.no_grad():
            return do_bench(
                lambda: fn(q, k, v, causal=causal), warmup=warmup, rep=rep, return_mode="median"
            )
    leaves = [x.detach().requires_grad_() for x in (q, k, v)]

    def step():
        fn(*leaves, causal=causal).backward(do)

    return do_bench(step, warmup=warmup, rep=rep, grad_to_none=leaves, return_mode="median")


def _inputs(batch, heads, n, d, dtype, seed=0, kv_heads=None):
    """q, k, v, do on the GPU, (B, H, N, D); k and v with kv_heads heads when given."""
    gen = torch.Generator(device=DEVICE).manual_seed(seed)
    kv = kv_heads or heads
    return [
        torch.randn(batch, h, n, d, device=DEVICE, dtype=dtype, generator=gen)
        for h in (heads, kv, kv, heads)
    ]


def speedup_vs_naive(n: int, d: int, tokens: int, dtype=torch.float16, causal=False) -> dict:
    """Forward + backward time of naive attention over ours at one length (for run.py)."""
    batch, heads = max(1, tokens // n), max(1, 2048 // d)
    q, k, v, do = _inputs(batch, heads, n, d, dtype)
    ours = time_ms(_provider_fn("ours")[0], q, k, v, do, causal, "fwd_bwd")
    try:
        naive = time_ms(ref.naive_attention, q, k, v, do, causal, "fwd_bwd")
    except torch.OutOfMemoryError:
        naive = None  # standard attention does not fit on the device at this length
    torch.cuda.empty_cache()
    return {
        "n": n,
        "batch": batch,
        "heads": heads,
        "d": d,
        "ours_ms": ours,
        "naive_ms": naive,
        "speedup": naive / ours if naive is not None else None,
    }


def relative_diffs(ours: list, peer: list) -> list[float]:
    """max |a − b| / max(1, max |b|) for each pair of tensors (output, then gradients)."""
    out = []
    for a, b in zip(ours, peer):
        scale = max(1.0, b.float().abs().max().item())
        out.append((a.float() - b.float()).abs().max().item() / scale)
    return out


def _fwd_bwd(fn, inputs, do):
    leaves = [x.detach().requires_grad_() for x in inputs]
    out = fn(*leaves)
    out.backward(do)
    return [out.detach()] + [x.grad for x in leaves]


def agreement(ours_fn, peer_fn, inputs, do, cfg: BenchConfig) -> dict:
    """Ours against the peer on one shape: relative differences, and which modes pass."""
    diffs = relative_diffs(_fwd_bwd(ours_fn, inputs, do), _fwd_bwd(peer_fn, inputs, do))
    names = ("out", "dq", "dk", "dv")
    return {
        "diff_vs_sdpa": dict(zip(names, diffs)),
        "ok": {
            "fwd": diffs[0] <= cfg.out_tol,
            "fwd_bwd": diffs[0] <= cfg.out_tol and max(diffs[1:]) <= cfg.grad_tol,
        },
    }


# --------------------------------------------------------------------------- speed
def _time_row(row, fn, context, args, do, causal, mode, cfg, flops):
    try:
        with context():
            ms = time_ms(fn, *args, do, causal, mode, cfg.warmup_ms, cfg.rep_ms)
        row["ms"] = ms
        row["tflops"] = flops / (ms * 1e-3) / 1e12
    except (RuntimeError, torch.OutOfMemoryError) as e:
        row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
    torch.cuda.empty_cache()


def _sdpa_reference(q, k, v, causal=False):
    """SDPA with whatever backend PyTorch picks: the peer of the agreement checks."""
    gqa = q.shape[1] != k.shape[1]
    return torch.nn.functional.scaled_dot_product_attention(
        q, k, v, is_causal=causal, enable_gqa=gqa
    )


def _speed_shape(s: dict, cfg: BenchConfig, dtype, log) -> list[dict]:
    from .kernel import flash_attn_func, flash_attn_varlen_func

    variant, d, causal, n, batch, heads = (s[k] for k in
                                           ("variant", "d", "causal", "n", "batch", "heads"))  # fmt: skip
    base = dict(s)
    rows = []
    if variant in ("mha", "gqa"):
        kv = heads // cfg.gqa_group if variant == "gqa" else heads
        base["kv_heads"] = kv
        q, k, v, do = _inputs(batch, heads, n, d, dtype, kv_heads=kv)
        check = agreement(lambda *x: _provider_fn("ours")[0](*x, causal=causal),
                          lambda *x: _sdpa_reference(*x, causal=causal), (q, k, v), do, cfg)  # fmt: skip
        flops = {m: attention_flops(batch, heads, n, d, causal, m) for m in MODES}
        for provider in _providers(cfg, variant):
            fn, context = _provider_fn(provider)
            for mode in cfg.modes:
                row = {**base, "provider": provider, "mode": mode, "ms": None, "tflops": None}
                if provider == "ours":
                    row.update(diff_vs_sdpa=check["diff_vs_sdpa"], ok=check["ok"][mode])
                if provider == "ours" and not check["ok"][mode]:
                    row["error"] = "disagrees with SDPA beyond out_tol/grad_tol: not timed"
                else:
                    _time_row(row, fn, context, (q, k, v), do, causal, mode, cfg, flops[mode])
                rows.append(row)
        del q, k, v, do
    else:  # varlen: a packed batch of uneven sequences, and the same batch padded to n
        lengths = varlen_lengths(n, cfg.tokens)
        cu = torch.tensor([0, *itertools.accumulate(lengths)], device=DEVICE, dtype=torch.int32)
        base.update(batch=len(lengths), kv_heads=heads, lengths=lengths)
        gen = torch.Generator(device=DEVICE).manual_seed(1)
        packed = [torch.randn(sum(lengths), heads, d, device=DEVICE, dtype=dtype, generator=gen)
                  for _ in range(4)]  # fmt: skip
        padded = [torch.zeros(len(lengths), n, heads, d, device=DEVICE, dtype=dtype)
                  for _ in range(4)]  # fmt: skip
        for b, (lo, hi) in enumerate(zip(cu.tolist(), cu.tolist()[1:])):
            for src, dst in zip(packed, padded):
                dst[b, : hi - lo] = src[lo:hi]

        def ours_varlen(q, k, v, causal=False):
            return flash_attn_varlen_func(q, k, v, cu, cu, max(lengths), max(lengths),
                                          causal=causal)  # fmt: skip

        def ours_padded(q, k, v, causal=False):
            return flash_attn_func(q, k, v, causal=causal)

        def per_sequence_sdpa(q, k, v):  # the peer: each sequence alone, (N, H, D) → (H, N, D)
            outs = [_sdpa_reference(*(x[lo:hi].transpose(0, 1)[None] for x in (q, k, v)),
                                    causal=causal)[0].transpose(0, 1)
                    for lo, hi in zip(cu.tolist(), cu.tolist()[1:])]  # fmt: skip
            return torch.cat(outs)

        check = agreement(lambda *x: ours_varlen(*x, causal=causal), per_sequence_sdpa,
                          packed[:3], packed[3], cfg)  # fmt: skip
        useful = sum(4.0 * heads * m * m * d * (0.5 if causal else 1.0) for m in lengths)
        flops = {"fwd": useful, "fwd_bwd": 3.5 * useful}
        bhnd = [x.transpose(1, 2) for x in padded]
        for provider in _providers(cfg, "varlen"):
            if provider == "ours-varlen":
                fn, context, args, do = ours_varlen, None, packed[:3], packed[3]
            elif provider == "ours-padded":
                fn, context, args, do = ours_padded, None, padded[:3], padded[3]
            else:
                fn, context = _provider_fn("sdpa-flash")
                args, do = bhnd[:3], bhnd[3]
            for mode in cfg.modes:
                row = {**base, "provider": provider, "mode": mode, "ms": None, "tflops": None}
                if provider == "ours-varlen":
                    row.update(diff_vs_sdpa=check["diff_vs_sdpa"], ok=check["ok"][mode])
                if provider == "ours-varlen" and not check["ok"][mode]:
                    row["error"] = "disagrees with SDPA beyond out_tol/grad_tol: not timed"
                else:
                    _time_row(row, fn, context or contextlib.nullcontext, args, do, causal, mode,
                              cfg, flops[mode])  # fmt: skip
                rows.append(row)
        del packed, padded, bhnd
    for row in rows:
        tf = f"{row['tflops']:7.1f}" if row["tflops"] else "    n/a"
        err = f"  ({row['error']})" if row.get("error") else ""
        log(f"{variant:6s} D={d:3d} causal={causal!s:5} N={n:6d} {row['provider']:17s} "
            f"{row['mode']:7s} {tf} TFLOP/s{err}")  # fmt: skip
    return rows


def _gpu_speed(cfg: BenchConfig, log) -> list[dict]:
    from .run import DTYPES

    dtype = DTYPES[cfg.dtype]
    rows = []
    for s in shapes(cfg):
        rows += _speed_shape(s, cfg, dtype, log)
    return rows


def _memory(cfg: BenchConfig, device: str, log) -> list[dict]:
    from .run import memory_point

    gen = torch.Generator().manual_seed(0)
    rows = []
    lengths = sorted(cfg.mem_lengths)
    last: tuple[int, float] | None = None  # (N, seconds) of the latest size, for estimates
    for i, n in enumerate(lengths):
        # Each point runs naive and tiled attention (forward + backward): time grows as N².
        eta = ""
        if last is not None:
            n0, t0 = last
            left = sum(t0 * (m / n0) ** 2 for m in lengths[i:])
            eta = f" (roughly {left:.0f} s left for the {len(lengths) - i} remaining sizes)"
        log(f"[{i + 1}/{len(lengths)}] N={n} ...{eta}")
        t_start = time.perf_counter()
        try:
            p = memory_point(n, cfg.mem_head_dim, cfg.mem_block, True, device, gen)
        except torch.OutOfMemoryError:
            log(f"N={n}: out of memory")
            continue
        last = (n, time.perf_counter() - t_start)
        p["ratio"] = p["naive_bytes"] / p["tiled_bytes"]
        rows.append(p)
        log(
            f"N={n:6d}  tiled {p['tiled_bytes'] / 2**20:9.1f} MiB  naive "
            f"{p['naive_bytes'] / 2**20:9.1f} MiB  ratio {p['ratio']:6.1f}×"
        )
    return rows


def _plot(speed: list[dict], memory: list[dict], path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = sorted({(r.get("variant", "mha"), r["d"], r["causal"]) for r in speed},
                    key=lambda p: (VARIANTS.index(p[0]), p[1], p[2]))  # fmt: skip
    ncols = len(panels) + 1
    fig, axes = plt.subplots(
        2 if speed else 1, ncols, figsize=(4 * ncols, 6.5 if speed else 4.0), squeeze=False
    )
    for col, (variant, d, causal) in enumerate(panels):
        for row_i, mode in enumerate(MODES):
            ax = axes[row_i][col]
            mine = [r for r in speed if (r.get("variant", "mha"), r["d"], r["causal"]) ==
                    (variant, d, causal) and r["mode"] == mode]  # fmt: skip
            for provider in dict.fromkeys(r["provider"] for r in mine):
                pts = [(r["n"], r["tflops"]) for r in mine
                       if r["provider"] == provider and r["tflops"]]  # fmt: skip
                if pts:
                    ax.plot(*zip(*pts), "o-", label=provider, ms=3)
            ax.set_xscale("log", base=2)
            ax.set_title(f"{variant} {mode}, D={d}, {'causal' if causal else 'full'}", fontsize=9)
            ax.set_xlabel("N")
            ax.set_ylabel("TFLOP/s")
            if row_i == 0 and (col == 0 or variant != panels[col - 1][0]):
                ax.legend(fontsize=7)
    ax = axes[0][ncols - 1]
    if memory:
        ns = [p["n"] for p in memory]
        ax.loglog(ns, [p["naive_bytes"] / 2**20 for p in memory], "o-", label="naive")
        ax.loglog(ns, [p["tiled_bytes"] / 2**20 for p in memory], "s-", label="ours / tiled")
        ax.set_xlabel("N")
        ax.set_ylabel("peak extra MiB, fwd + bwd")
        ax.set_title("memory", fontsize=9)
        ax.legend(fontsize=7)
    if speed:
        axes[1][ncols - 1].axis("off")
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _check_choices(cfg: BenchConfig) -> None:
    from repro.config import ConfigError

    for field, allowed in (("modes", MODES), ("variants", VARIANTS), ("providers", PROVIDERS)):
        bad = [x for x in getattr(cfg, field) if x not in allowed]
        if bad:
            raise ConfigError(f"--{field}: unknown {bad}; choose from {', '.join(allowed)}")
    for field in ("lengths", "head_dims", "variant_head_dims", "mem_lengths"):
        if any(x < 1 for x in getattr(cfg, field)):
            raise ConfigError(f"--{field}: every value must be at least 1")
    if cfg.gqa_group < 1 or any(cfg.model_dim // d % cfg.gqa_group for d in cfg.variant_head_dims
                                if "gqa" in cfg.variants):  # fmt: skip
        raise ConfigError(
            f"--gqa_group={cfg.gqa_group} must divide the head count model_dim / D at every "
            f"variant head dim {list(cfg.variant_head_dims)}"
        )
    if cfg.tune_configs < 0:
        raise ConfigError("--tune_configs: 0 (all) or a positive count")


def main(overrides: dict, device: str = "auto") -> int:
    import sys

    from repro.common import device_name, pick_device
    from repro.config import ConfigError, build_config
    from repro.paths import results_dir
    from repro.results import atomic_write_text, jsonable
    from repro.runner import library_versions

    overrides = dict(overrides)
    preset = overrides.pop("preset", None)
    if preset is not None and preset not in PRESETS:
        raise ConfigError(f"--preset {preset!r}: unknown; choose from {', '.join(PRESETS)}")
    cfg = build_config(BenchConfig, PRESETS.get(preset, {}), overrides)
    _check_choices(cfg)
    device = pick_device(device)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    gpu = device.startswith("cuda")
    from . import kernel  # (imports triton; its version goes into the results)

    log(
        f"flash-attention bench on {device_name(device)}" + (f", preset {preset}" if preset else "")
    )
    # The plan first, so a long run is never a silent one.
    the_plan = _print_plan(cfg, gpu, log)
    if preset == "device" and the_plan["total_s"] > DEVICE_WINDOW_S:
        log(f"warning: the estimate exceeds the {DEVICE_WINDOW_S / 60:.0f}-minute device window")
    if cfg.dry_run:
        log("dry run: nothing measured")
        return 0
    if not gpu:
        log("no GPU: memory table only (speed needs the compiled kernel); plan: naive vs tiled "
            f"attention (forward + backward) at N = {sorted(cfg.mem_lengths)}")  # fmt: skip
    kernel.TUNE_CONFIGS = cfg.tune_configs or None
    t0 = time.perf_counter()
    speed = _gpu_speed(cfg, log) if gpu else []
    memory = _memory(cfg, device, log)
    elapsed = time.perf_counter() - t0

    out_dir = results_dir() / "flash-attention" / "bench"
    stem = "gpu" if gpu else "cpu"
    failed = [r for r in speed if r.get("ok") is False]
    result = {
        "benchmark": "flash-attention",
        "device": device,
        "device_name": device_name(device),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "versions": library_versions(),
        "preset": preset,
        "config": dataclasses.asdict(cfg),
        "plan": the_plan,
        "elapsed_s": elapsed,
        "flops": "fwd = 4·B·H·N²·D (×0.5 causal; varlen: summed over the real sequences); "
        "fwd_bwd = 3.5 × fwd",
        "timing": "triton.testing.do_bench, median" if gpu else None,
        "speed": speed,
        "failed_rows": len(failed),
        "memory": memory,
        "memory_method": (
            "torch.cuda.max_memory_allocated, fwd + bwd, after a warm-up call (autotuning)"
            if gpu
            else "tracked tensor allocations of the tiled reference, fwd + bwd"
        ),
    }
    if gpu:
        result["summary"] = _summary(speed)
    atomic_write_text(
        out_dir / f"{stem}.json", json.dumps(jsonable(result), indent=2, ensure_ascii=False) + "\n"
    )
    title = (
        f"FlashAttention bench, {device_name(device)}, {cfg.dtype}"
        if gpu
        else f"FlashAttention memory, {device_name(device)}\nfp32, tiled reference vs naive"
    )
    _plot(speed, memory, out_dir / f"{stem}.png", title)
    log(f"wrote {out_dir / (stem + '.json')} and {stem}.png in {elapsed:.0f} s "
        f"(estimated {the_plan['total_s'] - the_plan['estimate_s']['startup']:.0f} s)")  # fmt: skip
    if failed:
        log(f"{len(failed)} row(s) FAILED the agreement check with SDPA: see 'diff_vs_sdpa'")
        return 1
    return 0


def _summary(speed: list[dict]) -> dict:
    """The issue's targets, as ratios: ours / SDPA-flash (fwd, fwd+bwd; D = 128, N ≥ 2k) and
    ours / naive (fwd+bwd, N = 4k) on the mha rows; ours / SDPA-flash on the gqa rows; and
    ours on the packed batch / SDPA-flash on the padded one for the varlen rows."""

    def tf(provider, mode, variant="mha", **match):
        return {
            (r["d"], r["causal"], r["n"]): r["tflops"]
            for r in speed
            if r.get("variant", "mha") == variant
            and r["provider"] == provider
            and r["mode"] == mode
            and r["tflops"]
            and all(r[k] == v for k, v in match.items())
        }

    def min_ratio(a, b, keep=lambda key: True):
        ratios = [a[key] / b[key] for key in a if key in b and keep(key)]
        return min(ratios) if ratios else None

    out = {}
    for mode in MODES:
        out[f"min_ours_over_sdpa_flash_{mode}_d128_n2k+"] = min_ratio(
            tf("ours", mode, d=128), tf("sdpa-flash", mode, d=128), lambda key: key[2] >= 2048
        )
    out["min_ours_over_naive_fwd_bwd_n4k"] = min_ratio(
        tf("ours", "fwd_bwd", n=4096), tf("naive", "fwd_bwd", n=4096)
    )
    for mode in MODES:
        out[f"min_ours_over_sdpa_flash_gqa_{mode}"] = min_ratio(
            tf("ours", mode, "gqa"), tf("sdpa-flash", mode, "gqa")
        )
        out[f"min_varlen_over_sdpa_flash_padded_{mode}"] = min_ratio(
            tf("ours-varlen", mode, "varlen"), tf("sdpa-flash-padded", mode, "varlen")
        )
    best = [r["tflops"] for r in speed if r["provider"] == "ours" and r["tflops"]]
    out["max_ours_tflops"] = max(best) if best else None
    out = {k: (None if v is not None and math.isnan(v) else v) for k, v in out.items()}
    return out
