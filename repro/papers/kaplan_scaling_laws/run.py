"""A ladder of small LMs on the Brown corpus; L(N) fitted as a power law. See __init__.py."""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import stats

from repro.common.data import lm_token_streams, random_windows
from repro.common.stats import seeds_for, unigram_entropy
from repro.common.tinylm import LMConfig, TinyLM, cosine_lr, evaluate, train
from repro.context import RunContext


def parse_shape(shape: str) -> tuple[int, int]:
    """'64x2' → (d_model=64, n_layer=2)."""
    d, _, layers = shape.partition("x")
    return int(d), int(layers)


def make_model(shape: str, cfg) -> TinyLM:
    d, layers = parse_shape(shape)
    return TinyLM(
        LMConfig(
            vocab_size=cfg.vocab_size,
            seq_len=cfg.seq_len,
            d_model=d,
            n_layer=layers,
            n_head=max(1, d // 16),  # head size 16
        )
    )


def fit_power_law(n: list[float], loss: list[float]) -> dict:
    """log L = log k − α·log N by least squares: L = k·N^(−α), which is eq. (1.1)'s
    (N_c/N)^α_N with N_c = k^(1/α). Returns α, its standard error and 95% interval, R²."""
    x, y = np.log(np.asarray(n, float)), np.log(np.asarray(loss, float))
    slope, icpt = np.polyfit(x, y, 1)
    resid = y - (slope * x + icpt)
    ss_res, ss_tot = float(resid @ resid), float(((y - y.mean()) ** 2).sum())
    dof = len(x) - 2
    se = math.sqrt(ss_res / dof / float(((x - x.mean()) ** 2).sum())) if dof > 0 else math.nan
    t = float(stats.t.ppf(0.975, dof)) if dof > 0 else math.nan
    alpha = -float(slope)
    return {
        "alpha": alpha,
        "alpha_se": se,
        "alpha_ci95": [alpha - t * se, alpha + t * se],
        "r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else math.nan,
        "n_c": math.exp(icpt / alpha) if alpha > 0 else math.nan,
        "log_k": float(icpt),
    }


def train_size(shape: str, cfg, train_ids, val_ids, seed: int) -> dict:
    torch.manual_seed(seed)
    model = make_model(shape, cfg)
    steps = max(1, cfg.tokens // (cfg.batch_size * cfg.seq_len))
    opt = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=0.0, foreach=True
    )
    batches = random_windows(
        train_ids, cfg.batch_size, cfg.seq_len, torch.Generator().manual_seed(seed + 1)
    )
    warm = max(1, steps // 20)
    train(
        model,
        batches,
        steps,
        optimizer=opt,
        lr_at=lambda step: cosine_lr(step, steps, cfg.lr, warm),
        clip=1.0,
    )
    val = evaluate(model, val_ids, cfg.seq_len, batch_size=16, max_batches=cfg.eval_batches)
    return {
        "seed": seed,
        "shape": shape,
        "non_embedding_params": model.non_embedding_params(),
        "total_params": sum(p.numel() for p in model.parameters()),
        "steps": steps,
        "val_loss": val,
    }


def plot(rows: list[dict], fit: dict, fit_total: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    for ax, key, f, title in (
        (a, "non_embedding_params", fit, "non-embedding parameters"),
        (b, "total_params", fit_total, "all parameters"),
    ):
        n = np.array([r[key] for r in rows], float)
        loss = np.array([r["val_loss"] for r in rows])
        ax.loglog(n, loss, "ko")
        grid = np.geomspace(n.min(), n.max(), 50)
        ax.loglog(
            grid,
            np.exp(f["log_k"]) * grid ** (-f["alpha"]),
            "r-",
            lw=1,
            label=f"α = {f['alpha']:.3f}, R² = {f['r2']:.3f}",
        )
        ax.set_xlabel(title)
        ax.set_title(f"loss vs {title}")
        ax.legend(fontsize=8)
    a.set_ylabel("validation loss (nats/token)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(cfg, ctx: RunContext) -> None:
    """The whole ladder once per seed (seed s: the same initialisation seed and data order for
    every size), one power-law fit per seed; the findings' metrics are the per-seed fits."""
    train_ids, val_ids, _ = lm_token_streams(vocab_size=cfg.vocab_size)
    unigram = unigram_entropy(train_ids, cfg.vocab_size, val_ids)
    ctx.metrics.update(unigram_val_loss=unigram, tokens_per_model=cfg.tokens)
    rows: list[dict] = []
    per_seed: dict[str, list] = {}
    fit = fit_total = None
    for seed in seeds_for(ctx.seed, cfg.seeds):
        ladder = []
        for shape in ctx.progress(cfg.shapes, desc=f"model sizes (seed {seed})"):
            ladder.append(train_size(shape, cfg, train_ids, val_ids, seed))
            rows.append(ladder[-1])
            ctx.metrics["runs"] = rows
        losses = [r["val_loss"] for r in ladder]
        ns = [r["non_embedding_params"] for r in ladder]
        fit = fit_power_law(ns, losses)
        fit_total = fit_power_law([r["total_params"] for r in ladder], losses)
        got = {
            "alpha_n": fit["alpha"],
            "alpha_n_se": fit["alpha_se"],
            "alpha_n_ci95": fit["alpha_ci95"],
            "n_c": fit["n_c"],
            "r2_nonembedding": fit["r2"],
            "r2_total": fit_total["r2"],
            "alpha_total": fit_total["alpha"],
            "r2_gain_excluding_embeddings": fit["r2"] - fit_total["r2"],
            # the learned gate: the worst size's margin below the unigram floor, this seed
            "ladder_below_unigram": min(unigram - x for x in losses),
        }
        for k, v in got.items():
            per_seed.setdefault(k, []).append(v)
        ctx.metrics.update(per_seed)
        ctx.metrics["fit_range_non_embedding"] = [min(ns), max(ns)]
    plot(rows[-len(cfg.shapes) :], fit, fit_total, ctx.figure_path("loss_vs_params.png"))
