"""Sophia-G and Sophia-H against AdamW on a small GPT. See __init__.py for the claims."""

from __future__ import annotations

import math

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from repro.common.data import lm_token_streams, random_windows
from repro.common.stats import below_unigram, inside_grid, seeds_for, unigram_entropy
from repro.common.tinylm import LMConfig, TinyLM, evaluate
from repro.context import RunContext

from .optim import Sophia, gnb_diag, hutchinson_diag


def make_lm(cfg, seed: int) -> TinyLM:
    torch.manual_seed(seed)  # every run starts from the same initial weights
    return TinyLM(LMConfig.like(cfg))


def lr_at(step: int, cfg, peak: float) -> float:
    """The paper's schedule (§3.1): linear warm-up, then cosine down to 0.05 × peak."""
    warm = max(1, int(cfg.warmup_frac * cfg.steps))
    if step < warm:
        return peak * (step + 1) / warm
    s = min(1.0, (step - warm) / max(1, cfg.steps - warm))
    floor = cfg.final_lr_frac
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * s)))


def train_run(method: str, lr: float, cfg, train_ids, val_ids, seed: int) -> dict:
    """One run; returns its validation curve, evaluated every ``cfg.eval_every`` steps."""
    model = make_lm(cfg, seed)
    params = [p for p in model.parameters() if p.requires_grad]
    if method == "adamw":
        opt = torch.optim.AdamW(
            params, lr=lr, betas=cfg.adamw_betas, weight_decay=cfg.adamw_weight_decay
        )
    else:
        opt = Sophia(
            params,
            lr=lr,
            betas=cfg.sophia_betas,
            gamma=cfg.gamma_gnb if method == "sophia-g" else cfg.gamma_hutchinson,
            eps=1e-12,
            weight_decay=cfg.sophia_weight_decay,
        )
    gen = torch.Generator().manual_seed(seed + 1)  # same batches, same order, for every run
    batches = random_windows(train_ids, cfg.batch_size, cfg.seq_len, gen)
    est_gen = torch.Generator().manual_seed(seed + 2)  # Gaussian probes / sampled labels
    steps, losses, clip_fracs = (
        [0],
        [evaluate(model, val_ids, cfg.seq_len, cfg.batch_size, cfg.eval_batches)],
        [],
    )
    model.train()
    for step in range(cfg.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg, lr)
        x, y = next(batches)
        opt.zero_grad(set_to_none=True)
        if method != "adamw" and step % cfg.hessian_every == 0:
            # h_t is refreshed on this step's batch, every k steps (Algorithm 3, line 6)
            if method == "sophia-g":
                logits, loss = model(x, y)
                h_hat = gnb_diag(logits, params, est_gen)
            else:
                with sdpa_kernel(SDPBackend.MATH):  # the fused CPU kernel has no double backward
                    _, loss = model(x, y)
                    h_hat = hutchinson_diag(loss, params, est_gen)
            opt.update_hessian(h_hat)
        else:
            _, loss = model(x, y)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        if method != "adamw":
            clip_fracs.append(opt.clip_fraction)
        if not math.isfinite(loss.item()):
            steps.append(step + 1)
            losses.append(math.inf)
            break
        if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps:
            steps.append(step + 1)
            losses.append(evaluate(model, val_ids, cfg.seq_len, cfg.batch_size, cfg.eval_batches))
    out = {"steps": steps, "val_loss": losses, "final": losses[-1]}
    if clip_fracs:
        out["clip_fraction_mean"] = sum(clip_fracs) / len(clip_fracs)
    return out


def first_step_below(steps: list[int], losses: list[float], target: float) -> float | None:
    """First step at which the validation curve reaches ``target``, interpolating linearly
    between evaluations; None if it never does."""
    for i in range(1, len(steps)):
        if losses[i] <= target:
            l0, l1 = losses[i - 1], losses[i]
            frac = 1.0 if l0 == l1 else (l0 - target) / (l0 - l1)
            return steps[i - 1] + frac * (steps[i] - steps[i - 1])
    return None


def step_ratio(ref: dict, other: dict) -> float:
    """How many times fewer steps ``other`` needs to reach ``ref``'s final validation loss.

    > 1: other reaches it after T / ratio steps. < 1: other never gets there within T; then
    the ratio is (steps ref needed to reach other's final loss) / T, the same quantity seen
    from the other side.
    """
    T = ref["steps"][-1]
    t = first_step_below(other["steps"], other["val_loss"], ref["final"])
    if t is not None:
        return T / t
    t_ref = first_step_below(ref["steps"], ref["val_loss"], other["final"])
    return (t_ref or 0.0) / T


def plot(runs: dict, best: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"adamw": "tab:blue", "sophia-g": "tab:red", "sophia-h": "tab:green"}
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    for method, lr in best.items():
        r = runs[method][lr]
        a.plot(r["steps"], r["val_loss"], color=colours[method], label=f"{method} (lr {lr:g})")
    if "adamw" in best:
        a.axhline(
            runs["adamw"][best["adamw"]]["final"], color="k", ls=":", lw=1, label="AdamW final"
        )
    a.set_xlabel("step")
    a.set_ylabel("validation loss (nats/token)")
    a.set_title("best run of each optimiser (first seed)")
    lo = min(r["final"] for m in best for r in [runs[m][best[m]]])
    a.set_ylim(lo - 0.1, lo + 1.2)
    a.legend(fontsize=8)
    for method in runs:
        lrs = sorted(runs[method])
        b.plot(
            lrs,
            [runs[method][lr]["final"] for lr in lrs],
            "o-",
            color=colours[method],
            label=method,
        )
    b.set_xscale("log")
    b.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    b.set_xlabel("peak learning rate")
    b.set_ylabel("final validation loss")
    b.set_title("learning-rate grids (same size for each)")
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def make_grids(cfg) -> dict[str, tuple[float, ...]]:
    grids = {"adamw": cfg.adamw_lrs, "sophia-g": cfg.sophia_g_lrs, "sophia-h": cfg.sophia_h_lrs}
    grids = {m: tuple(grids[m]) for m in ("adamw", *cfg.sophia_variants)}
    sizes = {m: len(g) for m, g in grids.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(
            f"every optimiser gets a grid of the same size (equal tuning effort); got {sizes}"
        )
    return grids


def seed_metrics(rs: dict, best: dict, grids: dict, unigram: float) -> dict:
    """One seed's paired numbers, each optimiser at its tuned rate."""
    out: dict = {}
    adamw = rs["adamw"][best["adamw"]]
    for m in grids:
        key = m.replace("-", "_")
        r = rs[m][best[m]]
        out[f"{key}_best_lr"] = best[m]
        out[f"{key}_final"] = r["final"]
        out[f"{key}_below_unigram"] = below_unigram([r["final"]], unigram)[0]
        out[f"{key}_lr_inside_grid"] = inside_grid(grids[m], best[m])
        if m != "adamw":
            out[f"{key}_step_ratio"] = step_ratio(adamw, r)
            out[f"{key}_final_minus_adamw"] = r["final"] - adamw["final"]
            out[f"{key}_clip_fraction_mean"] = r.get("clip_fraction_mean")
    return out


def main(cfg, ctx: RunContext) -> None:
    grids = make_grids(cfg)
    if cfg.seeds < 1:
        raise ValueError(f"seeds must be at least 1, got {cfg.seeds}")
    train_ids, val_ids, tok = lm_token_streams(vocab_size=cfg.vocab_size, max_docs=cfg.max_docs)
    seeds = seeds_for(ctx.seed, cfg.seeds)
    # The unigram floor on exactly the held-out targets that ``evaluate`` scores.
    n_eval = cfg.eval_batches * cfg.batch_size * cfg.seq_len
    unigram = unigram_entropy(train_ids, tok.get_vocab_size(), val_ids[1 : n_eval + 1])
    ctx.metrics.update(seeds=seeds, heldout_unigram_loss=unigram, tuning_seed=seeds[0])
    for variant, claim in (
        ("sophia-g", "sophia-g-fewer-steps"),
        ("sophia-h", "sophia-h-fewer-steps"),
    ):
        if variant not in cfg.sophia_variants:
            ctx.skip(claim, f"{variant} is not in this run's sophia_variants")
    # The first seed tunes: every optimiser over its own grid (same number of rates, same
    # factor-2 spacing: equal effort), the best rate by final validation loss. The other seeds
    # re-run each optimiser at its tuned rate only. All runs of one seed share the initial
    # weights and the batch order (paired arms).
    first = seeds[0]
    rs: dict[str, dict[float, dict]] = {m: {} for m in grids}
    jobs = [(m, lr) for m, lrs in grids.items() for lr in lrs]
    for method, lr in ctx.progress(jobs, desc=f"grids (seed {first})"):
        rs[method][lr] = train_run(method, lr, cfg, train_ids, val_ids, first)
        r = rs[method][lr]
        ctx.log(
            f"  seed {first} {method} lr={lr:g}: final {r['final']:.4f}"
            + (f", clipped {r['clip_fraction_mean']:.0%}" if "clip_fraction_mean" in r else "")
        )
    best = {m: min(rs[m], key=lambda lr, m=m: rs[m][lr]["final"]) for m in grids}
    ctx.metrics["tuned_lrs"] = best
    ctx.metrics["grid_finals"] = {
        m: {f"{lr:g}": r["final"] for lr, r in x.items()} for m, x in rs.items()
    }
    ctx.metrics["grid_clip_fractions"] = {
        m: {f"{lr:g}": r["clip_fraction_mean"] for lr, r in x.items()}
        for m, x in rs.items()
        if m != "adamw"
    }
    ctx.metrics["curves"] = {
        m: {f"{lr:g}": {"steps": r["steps"], "val_loss": r["val_loss"]} for lr, r in x.items()}
        for m, x in rs.items()
    }
    plot(rs, best, ctx.figure_path("sophia_vs_adamw.png"))
    per_seed: dict[str, list] = {}
    for k, v in seed_metrics(rs, best, grids, unigram).items():
        per_seed.setdefault(k, []).append(v)
    ctx.metrics.update(per_seed)
    jobs = [(seed, m) for seed in seeds[1:] for m in grids]
    runs: dict[int, dict[str, dict[float, dict]]] = {s: {m: {} for m in grids} for s in seeds[1:]}
    for seed, method in ctx.progress(jobs, desc="seeds at the tuned rates"):
        lr = best[method]
        runs[seed][method][lr] = r = train_run(method, lr, cfg, train_ids, val_ids, seed)
        ctx.log(f"  seed {seed} {method} lr={lr:g}: final {r['final']:.4f}")
        if all(runs[seed][m] for m in grids):
            for k, v in seed_metrics(runs[seed], best, grids, unigram).items():
                per_seed.setdefault(k, []).append(v)
            ctx.metrics.update(per_seed)
