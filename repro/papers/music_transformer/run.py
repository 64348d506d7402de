"""Measurements for the Music Transformer reproduction. See __init__.py for the claims."""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import sys

import torch

from repro.common.memory import peak_bytes as common_peak_bytes
from repro.context import RunContext

from .relative import rel_logits_naive, rel_logits_skew, relative_attention

PAPER_L, PAPER_D = 2048, 64  # the paper's example: L = 2048, D = 512 over 8 heads


def agreement(cfg, gen: torch.Generator) -> dict[str, float]:
    """Largest ‖a − b‖∞ / ‖b‖∞ of the attention outputs over the check grid, for the skewed
    forms (pad-reshape-slice and strided view) against the naive form in float64 and in
    float32, and for each float32 form against the float64 result of the same inputs."""
    worst = dict.fromkeys(("fp64", "fp32", "fp32_naive_vs_fp64", "fp32_skew_vs_fp64"), 0.0)

    def rel(a, b):
        return ((a.double() - b.double()).abs().max() / b.abs().max().clamp_min(1e-30)).item()

    for L, D, scale in itertools.product(cfg.check_lengths, cfg.check_dims, cfg.check_scales):
        q, k, v = (
            scale * torch.randn(cfg.batch, cfg.heads, L, D, generator=gen, dtype=torch.float64)
            for _ in range(3)
        )
        e_rel = scale * torch.randn(cfg.heads, L, D, generator=gen, dtype=torch.float64)
        ref = relative_attention(q, k, v, e_rel, "naive")
        q32, k32, v32, e32 = (t.float() for t in (q, k, v, e_rel))
        ref32 = relative_attention(q32, k32, v32, e32, "naive")
        worst["fp32_naive_vs_fp64"] = max(worst["fp32_naive_vs_fp64"], rel(ref32, ref))
        for method in ("skew", "view"):
            worst["fp64"] = max(worst["fp64"], rel(relative_attention(q, k, v, e_rel, method), ref))
            out32 = relative_attention(q32, k32, v32, e32, method)
            worst["fp32"] = max(worst["fp32"], rel(out32, ref32))
            worst["fp32_skew_vs_fp64"] = max(worst["fp32_skew_vs_fp64"], rel(out32, ref))
    return worst


@contextlib.contextmanager
def _quiet_stderr():
    """Kineto writes two log lines to file descriptor 2 on every profiler start and stop, and
    no environment variable silences them in torch 2.13; park fd 2 on /dev/null meanwhile."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def peak_bytes(fn, *args, **kwargs) -> int:
    """Peak bytes allocated above the starting level while ``fn(*args, **kwargs)`` runs (its
    output included, tensors that existed before excluded): ``repro.common.memory.peak_bytes``
    with the profiler's log lines kept off stderr."""
    with _quiet_stderr():
        return common_peak_bytes(functools.partial(fn, **kwargs), *args)


def fit_exponents(rows: list[dict], key: str) -> tuple[float, float]:
    """Least squares log(bytes) = a + b·log L + c·log D over the grid; returns (b, c)."""
    X = torch.tensor([[1.0, r["L"], r["D"]] for r in rows], dtype=torch.float64)
    X[:, 1:] = X[:, 1:].log()
    y = torch.tensor([float(r[key]) for r in rows], dtype=torch.float64).log()[:, None]
    coef = torch.linalg.lstsq(X, y).solution[:, 0]
    return coef[1].item(), coef[2].item()


def plot(rows, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    dims = sorted({r["D"] for r in rows})
    for ci, D in enumerate(dims):
        sub = [r for r in rows if r["D"] == D]
        Ls = [r["L"] for r in sub]
        ax.loglog(Ls, [r["naive"] for r in sub], "o-", color=f"C{ci}", label=f"naive, D={D}")
        ax.loglog(Ls, [r["skew"] for r in sub], "s--", color=f"C{ci}", label=f"skew, D={D}")
    Ls = sorted({r["L"] for r in rows})
    ax.loglog(Ls, [4 * L * L for L in Ls], "k:", lw=1, label="one L×L float32 matrix")
    ax.set_xlabel("sequence length L")
    ax.set_ylabel("peak bytes while computing S_rel")
    ax.set_title("relative attention logits: naive vs skewed (one head)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(cfg, ctx: RunContext) -> None:
    gen = torch.Generator().manual_seed(ctx.seed)
    agree = agreement(cfg, gen)
    ctx.metrics.update(
        max_rel_err_fp64=agree["fp64"],
        max_rel_err_fp32=agree["fp32"],
        # how far each float32 form is from the float64 answer: rounding, not the method
        fp32_naive_err_vs_fp64=agree["fp32_naive_vs_fp64"],
        fp32_skew_err_vs_fp64=agree["fp32_skew_vs_fp64"],
    )

    rows = []
    grid = list(itertools.product(cfg.mem_lengths, cfg.mem_dims))
    for L, D in ctx.progress(grid, desc="memory grid"):
        q = torch.randn(1, 1, L, D, generator=gen)  # (B, H, L, D)
        e_rel = torch.randn(1, L, D, generator=gen)  # (H, L, D)
        row = {"L": L, "D": D, "logit_matrix_bytes": 4 * L * L}
        row["naive"] = peak_bytes(rel_logits_naive, q, e_rel)
        row["skew"] = peak_bytes(rel_logits_skew, q, e_rel)
        row["view"] = peak_bytes(rel_logits_skew, q, e_rel, view=True)
        row["e_rel_bytes"] = e_rel.numel() * e_rel.element_size()
        rows.append(row)
        del q, e_rel
    ctx.metrics["memory_grid"] = rows
    nl, nd = fit_exponents(rows, "naive")
    sl, sd = fit_exponents(rows, "skew")
    ctx.metrics.update(
        naive_exponent_l=nl,
        naive_exponent_d=nd,
        skew_exponent_l=sl,
        skew_exponent_d=sd,
        # how many L×L float32 matrices each form holds at its peak
        naive_logit_matrices_max=max(r["naive"] / r["logit_matrix_bytes"] for r in rows),
        skew_logit_matrices_max=max(r["skew"] / r["logit_matrix_bytes"] for r in rows),
        view_logit_matrices_max=max(r["view"] / r["logit_matrix_bytes"] for r in rows),
    )
    largest = max(rows, key=lambda r: (r["L"], r["D"]))
    ctx.metrics["naive_over_skew_at_largest"] = largest["naive"] / largest["skew"]
    paper = [r for r in rows if (r["L"], r["D"]) == (PAPER_L, PAPER_D)]
    if paper:
        ctx.metrics["naive_bytes_at_paper_example"] = paper[0]["naive"]
        ctx.metrics["skew_bytes_at_paper_example"] = paper[0]["skew"]
    else:
        ctx.skip(
            "naive-memory-paper-example",
            f"the memory grid does not reach L={PAPER_L}, D={PAPER_D} (full preset does)",
        )
    plot(rows, ctx.figure_path("memory.png"))
