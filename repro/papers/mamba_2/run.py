"""Measurements for the Mamba-2 / SSD reproduction. See __init__.py for the claims."""

from __future__ import annotations

import math
import statistics
import time

import torch

from repro.common.stats import seeds_for
from repro.context import RunContext

from .compare import compare
from .compare import plot as plot_lm
from .ssd import max_lower_rank, ssd_chunked, ssd_mask, ssd_matrix, ssd_quadratic, ssd_scan


def random_inputs(B, T, H, P, N, gen, dtype=torch.float64):
    """Inputs shaped like a Mamba-2 layer's: a_t = exp(Δ_t·A) with Δ_t = softplus(·) > 0
    and A < 0 per head, so every a_t lies in (0, 1)."""
    x = torch.randn(B, T, H, P, generator=gen, dtype=dtype)
    dt = torch.nn.functional.softplus(torch.randn(B, T, H, generator=gen, dtype=dtype) - 1)
    A = -torch.exp(torch.empty(H, dtype=dtype).uniform_(math.log(0.5), math.log(8), generator=gen))
    b = torch.randn(B, T, H, N, generator=gen, dtype=dtype) / math.sqrt(N)
    c = torch.randn(B, T, H, N, generator=gen, dtype=dtype) / math.sqrt(N)
    return x, dt * A, b, c


def agreement(cfg, gen) -> dict:
    """The three forms on the same inputs, float64 and float32; errors relative to max |y|."""
    out = {}
    for dtype, name in ((torch.float64, "f64"), (torch.float32, "f32")):
        x, la, b, c = random_inputs(
            cfg.batch, cfg.check_len, cfg.heads, cfg.head_dim, cfg.state, gen, dtype
        )
        ref = ssd_scan(x, la, b, c)
        scale = ref.abs().max().item()
        quad = ssd_quadratic(x, la, b, c)
        chunk_errs = {}
        for q in cfg.check_chunks:
            y, _ = ssd_chunked(x, la, b, c, q)
            chunk_errs[str(q)] = (y - ref).abs().max().item() / scale
        out[name] = {
            "quadratic_vs_scan": (quad - ref).abs().max().item() / scale,
            "chunked_vs_scan": chunk_errs,
        }
    return out


def semiseparable_ranks(cfg, gen) -> dict:
    x, la, b, c = random_inputs(1, cfg.rank_len, 1, 1, cfg.state, gen)
    # contrast: causal softmax attention with the same queries (C) and keys (B)
    scores = (c[0, :, 0] @ b[0, :, 0].T) * math.sqrt(cfg.state)
    causal = torch.tril(torch.ones_like(scores, dtype=torch.bool))
    softmax = torch.softmax(scores.masked_fill(~causal, float("-inf")), dim=-1)
    return {
        "mask_rank": max_lower_rank(ssd_mask(la)[0, 0]),
        "matrix_rank": max_lower_rank(ssd_matrix(la, b, c)[0, 0]),
        "softmax_rank": max_lower_rank(softmax),
        "state": cfg.state,
    }


def cpu_seconds(fn, args, repeats: int) -> float:
    """Median CPU time of ``repeats`` calls of fn(*args) (CPU, not wall: other jobs share
    this machine, and the wall clock would mostly measure waiting for a core)."""
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        fn(*args)
        times.append(time.process_time() - t0)
    return statistics.median(times)


@torch.no_grad()
def timings(cfg, gen, ctx: RunContext) -> dict:
    rows = {"lengths": list(cfg.time_lengths), "quadratic": [], "scan": [], "chunked": []}

    def chunked(x, la, b, c):
        return ssd_chunked(x, la, b, c, cfg.chunk)

    # one untimed call of each first: the first call pays for one-off setup
    warm = random_inputs(1, cfg.chunk, cfg.heads, cfg.head_dim, cfg.state, gen, torch.float32)
    for fn in (ssd_scan, chunked, ssd_quadratic):
        fn(*warm)
    for T in ctx.progress(cfg.time_lengths, desc="lengths"):
        args = random_inputs(1, T, cfg.heads, cfg.head_dim, cfg.state, gen, torch.float32)
        rows["scan"].append(cpu_seconds(ssd_scan, args, cfg.repeats))
        rows["chunked"].append(cpu_seconds(chunked, args, cfg.repeats))
        quad_ok = T <= cfg.quadratic_max_len
        rows["quadratic"].append(cpu_seconds(ssd_quadratic, args, cfg.repeats) if quad_ok else None)
    return rows


def loglog_slope(x, y) -> float:
    pts = [(math.log(a), math.log(b)) for a, b in zip(x, y) if b is not None]
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    return sum((px - mx) * (py - my) for px, py in pts) / sum((px - mx) ** 2 for px, _ in pts)


def plot(rows, fit_from, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for key, label, mark in (
        ("quadratic", "quadratic (masked attention form)", "o-"),
        ("scan", "recurrent scan", "s-"),
        ("chunked", "chunked SSD algorithm", "^-"),
    ):
        pts = [(t, v) for t, v in zip(rows["lengths"], rows[key]) if v is not None]
        ax.loglog(*zip(*pts), mark, label=label)
    ax.set_xscale("log", base=2)
    ax.axvline(fit_from, color="k", ls=":", lw=1)
    ax.set_xlabel("sequence length T")
    ax.set_ylabel("CPU seconds per call (median)")
    ax.set_title("SSD: cost against length")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(cfg, ctx: RunContext) -> None:
    gen = torch.Generator().manual_seed(ctx.seed)
    agree = agreement(cfg, gen)
    ctx.metrics.update(
        agreement=agree,
        quadratic_vs_scan_f64=agree["f64"]["quadratic_vs_scan"],
        chunked_vs_scan_f64=max(agree["f64"]["chunked_vs_scan"].values()),
        max_form_diff_f32=max(
            agree["f32"]["quadratic_vs_scan"], *agree["f32"]["chunked_vs_scan"].values()
        ),
    )
    ranks = semiseparable_ranks(cfg, gen)
    ctx.metrics.update(
        mask_max_rank=ranks["mask_rank"],
        matrix_max_rank_over_state=ranks["matrix_rank"] / ranks["state"],
        softmax_attention_max_rank_over_state=ranks["softmax_rank"] / ranks["state"],
    )
    rows = timings(cfg, gen, ctx)
    fit = [i for i, t in enumerate(rows["lengths"]) if t >= cfg.fit_from]

    def slope(key):
        return loglog_slope([rows["lengths"][i] for i in fit], [rows[key][i] for i in fit])

    last_q = max(i for i, v in enumerate(rows["quadratic"]) if v is not None)
    ctx.metrics.update(
        timings=rows,
        quadratic_slope=slope("quadratic"),
        scan_slope=slope("scan"),
        chunked_slope=slope("chunked"),
        chunked_speedup_over_quadratic=rows["quadratic"][last_q] / rows["chunked"][last_q],
        chunked_speedup_over_scan_at_max=rows["scan"][-1] / rows["chunked"][-1],
    )
    plot(rows, cfg.fit_from, ctx.figure_path("ssd_scaling.png"))

    # The finding: Mamba-2 and a Transformer of the same size as Brown language models.
    lm = compare(cfg, ctx, seeds_for(ctx.seed, cfg.seeds))
    curves = lm.pop("curves")
    ctx.metrics.update(lm)
    plot_lm(curves, lm["unigram_test_loss"], ctx.figure_path("lm_comparison.png"))
