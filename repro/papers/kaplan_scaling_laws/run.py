"""A ladder of small LMs on the Brown corpus; L(N) fitted as a power law, and the held-out
loss curves of the same runs for sample efficiency. See __init__.py."""

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
    d, sep, layers = shape.partition("x")
    if not sep or not d.isdigit() or not layers.isdigit() or int(d) < 1 or int(layers) < 1:
        raise ValueError(f"shape {shape!r}: write <d_model>x<n_layer>, e.g. '64x2'")
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


def peak_lr(shape: str, cfg) -> float:
    """The ladder's learning rate for one size: ``lrs`` holds one peak rate per shape."""
    if len(cfg.lrs) != len(cfg.shapes):
        raise ValueError(
            f"lrs: {len(cfg.lrs)} rates for {len(cfg.shapes)} shapes; give one rate per shape"
        )
    return cfg.lrs[list(cfg.shapes).index(shape)]


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
        # N_c = k^(1/α) overflows a float when α is tiny: then None (log10 N_c is still given)
        "n_c": math.exp(icpt / alpha) if alpha > 0 and icpt / alpha < 700 else None,
        "log10_n_c": icpt / alpha / math.log(10) if alpha > 0 else None,
        "log_k": float(icpt),
    }


def tokens_to_reach(curve: list[tuple[int, float]], target: float) -> float | None:
    """The first token count at which a held-out loss curve [(tokens, loss), ...] reaches
    ``target``, linearly interpolated between evaluations; None if it never does."""
    prev_t, prev_l = 0, math.inf
    for t, loss in curve:
        if loss <= target:
            if not math.isfinite(prev_l):
                return float(t)
            return prev_t + (t - prev_t) * (prev_l - target) / (prev_l - loss)
        prev_t, prev_l = t, loss
    return None


def sample_efficiency(curves: dict[str, list[tuple[int, float]]]) -> dict:
    """Fig. 2's comparison on one seed's ladder (sizes in ladder order): the target is the
    highest final held-out loss of the ladder (normally the smallest model's), which every
    size reaches by construction; returns the tokens each size needs to reach it and the
    ratio largest / smallest."""
    if len(curves) < 2:
        raise ValueError("sample efficiency compares at least two model sizes")
    target = max(c[-1][1] for c in curves.values())
    need = {shape: tokens_to_reach(c, target) for shape, c in curves.items()}
    first, last = list(curves)[0], list(curves)[-1]
    return {"target": target, "tokens": need, "ratio": need[last] / need[first]}


def train_size(shape: str, cfg, train_ids, val_ids, seed: int, lr: float) -> dict:
    """One model: seed sets its initialisation and its data order (the same for every size
    and every rate on that seed). Returns the final held-out loss and the loss curve."""
    torch.manual_seed(seed)
    model = make_model(shape, cfg)
    steps = cfg.steps
    opt = torch.optim.AdamW(
        model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.0, foreach=True
    )
    batches = random_windows(
        train_ids, cfg.batch_size, cfg.seq_len, torch.Generator().manual_seed(seed + 1)
    )
    tokens_per_step = cfg.batch_size * cfg.seq_len
    curve: list[tuple[int, float]] = []

    def on_step(step: int, _loss: float) -> None:
        if (step + 1) % cfg.eval_every == 0 or step + 1 == steps:
            loss = evaluate(
                model, val_ids, cfg.seq_len, batch_size=16, max_batches=cfg.curve_batches
            )
            curve.append(((step + 1) * tokens_per_step, loss))

    warm = max(1, steps // 20)
    losses = train(
        model,
        batches,
        steps,
        optimizer=opt,
        lr_at=lambda step: cosine_lr(step, steps, lr, warm),
        clip=1.0,
        on_step=on_step,
    )
    val = evaluate(model, val_ids, cfg.seq_len, batch_size=16, max_batches=cfg.eval_batches)
    if not math.isfinite(losses[-1]):
        val = math.nan
    return {
        "seed": seed,
        "shape": shape,
        "lr": lr,
        "non_embedding_params": model.non_embedding_params(),
        "total_params": sum(p.numel() for p in model.parameters()),
        "steps": steps,
        "tokens": steps * tokens_per_step,
        "val_loss": val,
        "curve": curve,
    }


def lr_check(shape: str, cfg, train_ids, val_ids, seed: int, at_lr: dict) -> dict:
    """Train ``shape`` at the ladder's rate divided and multiplied by ``lr_check_factor``
    (``at_lr`` already holds the run at the ladder's rate). Returns the three held-out losses,
    the best rate, and ``excess``: the ladder rate's loss above the best of the three (0 when
    the ladder's rate is the best), which the rate gate bounds."""
    lr = peak_lr(shape, cfg)
    losses = {lr: at_lr["val_loss"]}
    for other in (lr / cfg.lr_check_factor, lr * cfg.lr_check_factor):
        losses[other] = train_size(shape, cfg, train_ids, val_ids, seed, other)["val_loss"]
    finite = {k: v for k, v in losses.items() if math.isfinite(v)}
    best = min(finite, key=finite.get) if finite else None
    ok = best is not None and lr in finite
    return {
        "losses": {f"{k:.3g}": v for k, v in sorted(losses.items())},
        "best": best,
        # None (the gate then fails) when the ladder's rate diverged
        "excess": losses[lr] - finite[best] if ok else None,
    }


def plot(rows: list[dict], fit: dict, fit_total: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, key, f, title in (
        (axes[0], "non_embedding_params", fit, "non-embedding parameters"),
        (axes[1], "total_params", fit_total, "all parameters"),
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
        ax.set_ylabel("validation loss (nats/token)")
        ax.set_title(f"loss vs {title}")
        ax.legend(fontsize=8)
    ax = axes[2]
    for r in rows:
        t, loss = zip(*r["curve"])
        ax.semilogx(t, loss, label=f"{r['shape']} ({r['non_embedding_params']:,})")
    ax.axhline(max(r["curve"][-1][1] for r in rows), color="k", ls=":", lw=1, label="target")
    ax.set_xlabel("tokens processed")
    ax.set_ylabel("held-out loss (nats/token)")
    ax.set_title("sample efficiency (one seed)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(cfg, ctx: RunContext) -> None:
    """The whole ladder once per seed (seed s: the same initialisation seed and data order for
    every size), one power-law fit per seed; the findings' metrics are the per-seed fits.
    On the first seed, the smallest and largest sizes (every size with ``lr_check_all``) are
    also trained at their rate ÷ and × lr_check_factor (the learning-rate check)."""
    if len(cfg.shapes) < 3:
        raise ValueError(f"shapes: {cfg.shapes!r}; a power-law fit needs at least 3 sizes")
    if cfg.lr_check_factor <= 1:
        raise ValueError(f"lr_check_factor: {cfg.lr_check_factor}; must be above 1")
    for shape in cfg.shapes:
        peak_lr(shape, cfg)  # one rate per shape, checked before any training
    train_ids, val_ids, _ = lm_token_streams(vocab_size=cfg.vocab_size)
    unigram = unigram_entropy(train_ids, cfg.vocab_size, val_ids)
    m = ctx.metrics
    m.update(unigram_val_loss=unigram, tokens_per_model=cfg.steps * cfg.batch_size * cfg.seq_len)
    rows: list[dict] = []
    per_seed: dict[str, list] = {}
    fit = fit_total = None
    for i, seed in enumerate(seeds_for(ctx.seed, cfg.seeds)):
        ladder = []
        for shape in ctx.progress(cfg.shapes, desc=f"model sizes (seed {seed})"):
            ladder.append(train_size(shape, cfg, train_ids, val_ids, seed, peak_lr(shape, cfg)))
            rows.append(ladder[-1])
            m["runs"] = rows
        if i == 0:  # the learning-rate check on the first seed: both ends, or every size
            n = len(cfg.shapes)
            checked = range(n) if cfg.lr_check_all else (0, n - 1)
            checks = {
                cfg.shapes[k]: lr_check(cfg.shapes[k], cfg, train_ids, val_ids, seed, ladder[k])
                for k in checked
            }
            m["lr_check"] = checks
            # the rate gate's metric: one excess per checked size, each must be small
            m["lr_excess_loss"] = [c["excess"] for c in checks.values()]
        losses = [r["val_loss"] for r in ladder]
        ns = [r["non_embedding_params"] for r in ladder]
        fit = fit_power_law(ns, losses)
        fit_total = fit_power_law([r["total_params"] for r in ladder], losses)
        eff = sample_efficiency({r["shape"]: r["curve"] for r in ladder})
        got = {
            "alpha_n": fit["alpha"],
            "alpha_n_se": fit["alpha_se"],
            "alpha_n_ci95": fit["alpha_ci95"],
            "n_c": fit["n_c"],
            "log10_n_c": fit["log10_n_c"],
            "r2_nonembedding": fit["r2"],
            "r2_total": fit_total["r2"],
            "alpha_total": fit_total["alpha"],
            "r2_gain_excluding_embeddings": fit["r2"] - fit_total["r2"],
            "sample_efficiency_target": eff["target"],
            "tokens_to_target": eff["tokens"],
            "tokens_ratio_largest_smallest": eff["ratio"],
            # the learned gate: the worst size's margin below the unigram floor, this seed
            "ladder_below_unigram": float(np.min([unigram - x for x in losses])),
            "below_unigram_by_size": [unigram - x for x in losses],
        }
        for k, v in got.items():
            per_seed.setdefault(k, []).append(v)
        m.update(per_seed)
        m["fit_range_non_embedding"] = [min(ns), max(ns)]
    plot(rows[-len(cfg.shapes) :], fit, fit_total, ctx.figure_path("loss_vs_params.png"))
