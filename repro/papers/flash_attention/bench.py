"""``repro bench flash-attention``: speed on a GPU, memory everywhere.

On a CUDA device: TFLOP/s of our Triton kernel, of ``scaled_dot_product_attention`` with each
backend PyTorch offers here (flash, cuDNN, memory-efficient) and of naive attention, forward and
forward + backward, in FlashAttention-2's benchmark setting: bf16, D ∈ {64, 128}, causal off and
on, N = 512 … 16k with B·N = 16k tokens and H = 2048 / D. Times are medians of
``triton.testing.do_bench``; FLOPs are counted as fwd = 4·B·H·N²·D (halved when causal) and
fwd + bwd = 3.5 × fwd, so every provider is credited with the same work. A peak-memory table
(forward + backward, our kernel vs naive attention) comes with it.

On a CPU only the memory table runs (the kernel would run in Triton's interpreter, whose speed
means nothing): the tiled reference vs naive attention, measured as in ``run.py``.

Results go to ``results/flash-attention/bench/{gpu,cpu}.json`` and a PNG next to it, with the
device, library versions and every shape. Options: ``--lengths=512,1024 --head_dims=128`` etc.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import time
from dataclasses import dataclass

import torch

from . import reference as ref

PROVIDERS = ("ours", "sdpa-flash", "sdpa-cudnn", "sdpa-efficient", "naive")


@dataclass(frozen=True)
class BenchConfig:
    lengths: tuple[int, ...] = (512, 1024, 2048, 4096, 8192, 16384)
    head_dims: tuple[int, ...] = (64, 128)
    causal: tuple[bool, ...] = (False, True)
    tokens: int = 16384  # B·N: batch shrinks as N grows, so every point does similar work
    model_dim: int = 2048  # H = model_dim / D
    dtype: str = "bf16"
    providers: tuple[str, ...] = PROVIDERS
    warmup_ms: int = 25
    rep_ms: int = 100
    # memory table: forward + backward, batch 1, one head of mem_head_dim
    mem_lengths: tuple[int, ...] = (1024, 2048, 4096, 8192, 16384)
    mem_head_dim: int = 64
    mem_block: int = 128  # tile of the CPU reference


def attention_flops(batch: int, heads: int, n: int, d: int, causal: bool, mode: str) -> float:
    """fwd: two N×N×D matmuls of 2 FLOPs per multiply-add = 4·B·H·N²·D; causal does half;
    the backward does 2.5× the forward's matmul work (five matmuls, one of them recomputed)."""
    f = 4.0 * batch * heads * n * n * d * (0.5 if causal else 1.0)
    return f * (3.5 if mode == "fwd_bwd" else 1.0)


def _provider_fn(name: str):
    """(attention function, context manager factory) for a provider, or raise if unknown."""
    import contextlib

    import torch.nn.functional as F

    if name == "ours":
        from .kernel import flash_attention

        return flash_attention, contextlib.nullcontext
    if name == "naive":
        return ref.naive_attention, contextlib.nullcontext
    if name.startswith("sdpa-"):
        from torch.nn.attention import SDPBackend, sdpa_kernel

        backend = {
            "flash": SDPBackend.FLASH_ATTENTION,
            "cudnn": SDPBackend.CUDNN_ATTENTION,
            "efficient": SDPBackend.EFFICIENT_ATTENTION,
        }[name[5:]]

        def sdpa(q, k, v, causal=False):
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal)

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


def _inputs(batch, heads, n, d, dtype, seed=0):
    gen = torch.Generator(device="cuda").manual_seed(seed)
    return [
        torch.randn(batch, heads, n, d, device="cuda", dtype=dtype, generator=gen) for _ in range(4)
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


def _gpu_speed(cfg: BenchConfig, log) -> list[dict]:
    from .run import DTYPES

    dtype = DTYPES[cfg.dtype]
    rows = []
    for d in cfg.head_dims:
        heads = cfg.model_dim // d
        for causal in cfg.causal:
            for n in cfg.lengths:
                batch = max(1, cfg.tokens // n)
                q, k, v, do = _inputs(batch, heads, n, d, dtype)
                base = {"d": d, "causal": causal, "n": n, "batch": batch, "heads": heads}
                # Agreement check first: a fast wrong kernel is no result.
                with torch.no_grad():
                    from .kernel import flash_attention

                    diff = (
                        (
                            flash_attention(q, k, v, causal=causal).float()
                            - torch.nn.functional.scaled_dot_product_attention(
                                q, k, v, is_causal=causal
                            ).float()
                        )
                        .abs()
                        .max()
                        .item()
                    )
                for provider in cfg.providers:
                    fn, context = _provider_fn(provider)
                    for mode in ("fwd", "fwd_bwd"):
                        row = {
                            **base,
                            "provider": provider,
                            "mode": mode,
                            "ms": None,
                            "tflops": None,
                        }
                        if provider == "ours":
                            row["max_abs_diff_vs_sdpa"] = diff
                        try:
                            with context():
                                ms = time_ms(
                                    fn, q, k, v, do, causal, mode, cfg.warmup_ms, cfg.rep_ms
                                )
                            row["ms"] = ms
                            row["tflops"] = (
                                attention_flops(batch, heads, n, d, causal, mode)
                                / (ms * 1e-3)
                                / 1e12
                            )
                        except (RuntimeError, torch.OutOfMemoryError) as e:
                            row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
                        torch.cuda.empty_cache()
                        rows.append(row)
                        tf = f"{row['tflops']:7.1f}" if row["tflops"] else "    n/a"
                        log(
                            f"D={d:3d} causal={causal!s:5} N={n:6d} {provider:15s} {mode:7s} "
                            f"{tf} TFLOP/s"
                        )
                del q, k, v, do
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

    panels = sorted({(r["d"], r["causal"]) for r in speed})
    ncols = len(panels) + 1
    fig, axes = plt.subplots(
        2 if speed else 1, ncols, figsize=(4 * ncols, 6.5 if speed else 4.0), squeeze=False
    )
    for col, (d, causal) in enumerate(panels):
        for row_i, mode in enumerate(("fwd", "fwd_bwd")):
            ax = axes[row_i][col]
            for provider in dict.fromkeys(r["provider"] for r in speed):
                pts = [
                    (r["n"], r["tflops"])
                    for r in speed
                    if r["d"] == d
                    and r["causal"] == causal
                    and r["mode"] == mode
                    and r["provider"] == provider
                    and r["tflops"]
                ]
                if pts:
                    ax.plot(*zip(*pts), "o-", label=provider, ms=3)
            ax.set_xscale("log", base=2)
            ax.set_title(f"{mode}, D={d}, {'causal' if causal else 'full'}", fontsize=9)
            ax.set_xlabel("N")
            ax.set_ylabel("TFLOP/s")
            if col == 0 and row_i == 0:
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


def main(overrides: dict, device: str = "auto") -> int:
    import sys

    from repro.common import device_name, pick_device
    from repro.config import build_config
    from repro.paths import results_dir
    from repro.results import atomic_write_text, jsonable
    from repro.runner import library_versions

    cfg = build_config(BenchConfig, {}, overrides)
    device = pick_device(device)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    gpu = device.startswith("cuda")
    from . import kernel  # noqa: F401  (imports triton; its version goes into the results)

    log(f"flash-attention bench on {device_name(device)}")
    # The plan first, so a long run is never a silent one.
    if gpu:
        n_timings = len(cfg.head_dims) * len(cfg.causal) * len(cfg.lengths) * len(cfg.providers) * 2
        log(
            f"plan: speed at head dims {list(cfg.head_dims)}, causal {list(cfg.causal)}, "
            f"N = {list(cfg.lengths)}, providers {list(cfg.providers)}, fwd and fwd+bwd "
            f"({n_timings} timings), then peak memory at N = {sorted(cfg.mem_lengths)}"
        )
    else:
        log(
            f"plan: no GPU, so memory only: naive vs tiled attention (forward + backward) at "
            f"N = {sorted(cfg.mem_lengths)}; time grows as N², an estimate follows each size"
        )
    speed = _gpu_speed(cfg, log) if gpu else []
    if not gpu:
        log("no GPU: memory table only (speed needs the compiled kernel)")
    memory = _memory(cfg, device, log)

    out_dir = results_dir() / "flash-attention" / "bench"
    stem = "gpu" if gpu else "cpu"
    result = {
        "benchmark": "flash-attention",
        "device": device,
        "device_name": device_name(device),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "versions": library_versions(),
        "config": dataclasses.asdict(cfg),
        "flops": "fwd = 4·B·H·N²·D (×0.5 causal); fwd_bwd = 3.5 × fwd",
        "timing": "triton.testing.do_bench, median" if gpu else None,
        "speed": speed,
        "memory": memory,
        "memory_method": (
            "torch.cuda.max_memory_allocated, fwd + bwd"
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
    log(f"wrote {out_dir / (stem + '.json')} and {stem}.png")
    return 0


def _summary(speed: list[dict]) -> dict:
    """The issue's targets, as ratios: ours / SDPA-flash (fwd, fwd+bwd; D = 128, N ≥ 2k) and
    ours / naive (fwd+bwd, N = 4k)."""

    def tf(provider, mode, **match):
        return {
            (r["d"], r["causal"], r["n"]): r["tflops"]
            for r in speed
            if r["provider"] == provider
            and r["mode"] == mode
            and r["tflops"]
            and all(r[k] == v for k, v in match.items())
        }

    out = {}
    for mode in ("fwd", "fwd_bwd"):
        ours, flash = tf("ours", mode, d=128), tf("sdpa-flash", mode, d=128)
        ratios = [ours[key] / flash[key] for key in ours if key in flash and key[2] >= 2048]
        out[f"min_ours_over_sdpa_flash_{mode}_d128_n2k+"] = min(ratios) if ratios else None
    ours, naive = tf("ours", "fwd_bwd", n=4096), tf("naive", "fwd_bwd", n=4096)
    ratios = [ours[key] / naive[key] for key in ours if key in naive]
    out["min_ours_over_naive_fwd_bwd_n4k"] = min(ratios) if ratios else None
    best = [r["tflops"] for r in speed if r["provider"] == "ours" and r["tflops"]]
    out["max_ours_tflops"] = max(best) if best else None
    out = {k: (None if v is not None and math.isnan(v) else v) for k, v in out.items()}
    return out
