"""Schedule-free against tuned cosine schedules. See __init__.py for the claims."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from repro.common.data import lm_token_streams, random_windows, sequential_windows
from repro.common.stats import inside_grid, seeds_for, unigram_entropy
from repro.common.tinylm import LMConfig, TinyLM, evaluate
from repro.context import RunContext

from .optim import ScheduleFreeAdamW, ScheduleFreeSGD, cosine_with_warmup


# --------------------------------------------------------------------------- models
def make_lm(cfg, seed: int) -> TinyLM:
    torch.manual_seed(seed)  # every run of one seed starts from the same initial weights
    return TinyLM(LMConfig.like(cfg))


class Bigram(torch.nn.Module):
    """p(next | prev) = softmax(W[prev]): multinomial logistic regression on the previous token.
    Its loss is convex in W, the setting of the paper's theory."""

    def __init__(self, vocab: int):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(vocab, vocab))

    def forward(self, x: torch.Tensor, y: torch.Tensor):
        logits = self.w[x]  # (B, T, V)
        return logits, F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))


@torch.no_grad()
def eval_loss(model, val_ids, cfg) -> float:
    if isinstance(model, TinyLM):
        return evaluate(model, val_ids, cfg.seq_len, cfg.batch_size, cfg.eval_batches)
    total, n = 0.0, 0
    for x, y in sequential_windows(val_ids, cfg.batch_size, cfg.seq_len, cfg.eval_batches):
        total += model(x, y)[1].item() * x.numel()
        n += x.numel()
    return total / n


# --------------------------------------------------------------------------- training
def train_run(
    model,
    opt,
    train_ids,
    val_ids,
    cfg,
    steps: int,
    seed: int,
    *,
    lr_at=None,
    eval_at=(),
    schedule_free=False,
) -> dict[int, float]:
    """Train ``steps`` steps; return {step: validation loss} at each step in ``eval_at``.
    For schedule-free runs the loss is that of x (``opt.eval()``), the averaged iterate."""
    gen = torch.Generator().manual_seed(seed + 1)  # same batches, same order, for every run
    batches = random_windows(train_ids, cfg.batch_size, cfg.seq_len, gen)
    out: dict[int, float] = {}
    model.train()
    if schedule_free:
        opt.train()
    for step in range(steps):
        if lr_at is not None:
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
        x, y = next(batches)
        loss = model(x, y)[1]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        # the convex task follows the theory, which has no clipping
        if cfg.grad_clip and isinstance(model, TinyLM):
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        if not math.isfinite(loss.item()):
            return {s: math.inf for s in eval_at if s > step}
        if step + 1 in eval_at:
            if schedule_free:
                opt.eval()
            out[step + 1] = eval_loss(model, val_ids, cfg)
            if schedule_free:
                opt.train()
    return out


def horizons_of(task: str, cfg) -> list[int]:
    """The step counts a task is judged at (sorted): the GPT's, or the bigram model's."""
    return sorted(cfg.horizons if task == "lm" else cfg.bigram_horizons)


def grids(task: str, cfg) -> dict[str, tuple[float, ...]]:
    if task == "lm":
        return {"cosine": tuple(cfg.adamw_lrs), "sf": tuple(cfg.sf_adamw_lrs)}
    return {"cosine": tuple(cfg.sgd_lrs), "sf": tuple(cfg.sf_sgd_lrs)}


def run_cosine(task: str, cfg, lr: float, steps: int, train_ids, val_ids, seed: int) -> float:
    """One cosine run told its length ``steps``; its final validation loss."""
    model = make_lm(cfg, seed) if task == "lm" else Bigram(cfg.vocab_size)
    warm = max(1, int(cfg.warmup_frac * horizons_of(task, cfg)[-1]))  # same for every run
    if task == "lm":
        opt = torch.optim.AdamW(
            model.parameters(), lr=lr, betas=cfg.betas, weight_decay=cfg.weight_decay
        )
    else:
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=cfg.betas[0])
    res = train_run(
        model,
        opt,
        train_ids,
        val_ids,
        cfg,
        steps,
        seed,
        eval_at=(steps,),
        lr_at=lambda s: cosine_with_warmup(s, steps, lr, warm),
    )
    return res[steps]


def run_sf(task: str, cfg, lr: float, train_ids, val_ids, seed: int) -> dict[int, float]:
    """One schedule-free run to the longest horizon, read off at every horizon (it never
    knows any of them)."""
    horizons = horizons_of(task, cfg)
    model = make_lm(cfg, seed) if task == "lm" else Bigram(cfg.vocab_size)
    warm = max(1, int(cfg.warmup_frac * horizons[-1]))
    if task == "lm":
        opt = ScheduleFreeAdamW(
            model.parameters(),
            lr=lr,
            betas=cfg.betas,
            weight_decay=cfg.weight_decay,
            warmup_steps=warm,
        )
    else:
        opt = ScheduleFreeSGD(model.parameters(), lr=lr, momentum=cfg.betas[0], warmup_steps=warm)
    return train_run(
        model,
        opt,
        train_ids,
        val_ids,
        cfg,
        horizons[-1],
        seed,
        eval_at=tuple(horizons),
        schedule_free=True,
    )


def tune(task: str, cfg, train_ids, val_ids, seed: int, progress) -> dict:
    """Both methods over their grids (same number of rates, same spacing) on the tuning seed.

    Cosine: one run per rate and horizon, and the best rate is chosen per horizon (each cosine
    run is told its length). Schedule-free: one run per rate, read off at every horizon; its
    rate is chosen once, at the longest horizon, and the same run is judged at every horizon
    (it never knew T). Returns the tables and the chosen rates."""
    horizons = horizons_of(task, cfg)
    g = grids(task, cfg)
    cosine: dict[int, dict[float, float]] = {h: {} for h in horizons}
    sf: dict[int, dict[float, float]] = {h: {} for h in horizons}
    jobs = [("cosine", lr, h) for h in horizons for lr in g["cosine"]]
    jobs += [("sf", lr, horizons[-1]) for lr in g["sf"]]
    for kind, lr, steps in progress(jobs, desc=f"{task} grid (seed {seed})"):
        if kind == "cosine":
            cosine[steps][lr] = run_cosine(task, cfg, lr, steps, train_ids, val_ids, seed)
        else:
            res = run_sf(task, cfg, lr, train_ids, val_ids, seed)
            for h in horizons:
                sf[h][lr] = res.get(h, math.inf)
    best_cos = {h: min(cosine[h], key=cosine[h].get) for h in horizons}
    last = horizons[-1]
    best_sf = min(sf[last], key=sf[last].get)
    return {
        "cosine": cosine,
        "sf": sf,
        "best_cosine_lr": best_cos,
        "best_sf_lr": best_sf,
        "cosine_lr_inside_grid": {h: inside_grid(g["cosine"], best_cos[h]) for h in horizons},
        "sf_lr_inside_grid": inside_grid(g["sf"], best_sf),
    }


def losses_at_tuned(task: str, cfg, tuned: dict, train_ids, val_ids, seed: int) -> dict:
    """One seed's losses at the tuned rates: {"cosine": {h: loss}, "sf": {h: loss}}."""
    horizons = horizons_of(task, cfg)
    cos = {
        h: run_cosine(task, cfg, tuned["best_cosine_lr"][h], h, train_ids, val_ids, seed)
        for h in horizons
    }
    sf = run_sf(task, cfg, tuned["best_sf_lr"], train_ids, val_ids, seed)
    return {"cosine": cos, "sf": {h: sf.get(h, math.inf) for h in horizons}}


def seed_summary(losses: dict, horizons, unigram: float) -> dict:
    """One seed's numbers: the gap (schedule-free − cosine) and each arm's margin below the
    unigram loss, per horizon."""
    return {
        str(h): {
            "cosine": losses["cosine"][h],
            "sf": losses["sf"][h],
            "gap": losses["sf"][h] - losses["cosine"][h],
            "cosine_below_unigram": unigram - losses["cosine"][h],
            "sf_below_unigram": unigram - losses["sf"][h],
        }
        for h in horizons
    }


def task_metrics(task: str, per_seed: list[dict], tuned: dict, horizons) -> dict:
    """The per-seed lists the claims and gates read, for one task."""
    hs = [str(h) for h in horizons]
    last = hs[-1]
    gaps = {h: [s[h]["gap"] for s in per_seed] for h in hs}
    # the anytime claim is judged at the horizon where the two methods differ most on average
    # (either sign): every horizon must be inside the margin for the claim to hold there
    widest = max(hs, key=lambda h: abs(sum(gaps[h]) / len(gaps[h])))
    n = len(per_seed)
    cos_inside = all(tuned["cosine_lr_inside_grid"].values())
    return {
        f"{task}_gap_final": gaps[last],
        f"{task}_gap_per_horizon": gaps,
        f"{task}_gap_widest_horizon": gaps[widest],
        f"{task}_widest_horizon": int(widest),
        f"{task}_cosine_final": [s[last]["cosine"] for s in per_seed],
        f"{task}_sf_final": [s[last]["sf"] for s in per_seed],
        f"{task}_cosine_below_unigram": [s[last]["cosine_below_unigram"] for s in per_seed],
        f"{task}_sf_below_unigram": [s[last]["sf_below_unigram"] for s in per_seed],
        f"{task}_cosine_below_unigram_every_horizon": [
            min(s[h]["cosine_below_unigram"] for h in hs) for s in per_seed
        ],
        f"{task}_sf_below_unigram_every_horizon": [
            min(s[h]["sf_below_unigram"] for h in hs) for s in per_seed
        ],
        # the rates were tuned once (first seed) and used on every seed: one verdict per seed
        f"{task}_cosine_lr_inside_grid": [tuned["cosine_lr_inside_grid"][horizons[-1]]] * n,
        f"{task}_sf_lr_inside_grid": [tuned["sf_lr_inside_grid"]] * n,
        f"{task}_cosine_lr_inside_grid_every_horizon": [cos_inside] * n,
        f"{task}_sf_lr_inside_grid_every_horizon": [tuned["sf_lr_inside_grid"]] * n,
        f"{task}_tuned_lrs": {
            "cosine": {str(h): lr for h, lr in tuned["best_cosine_lr"].items()},
            "sf": tuned["best_sf_lr"],
        },
        f"{task}_grid_tables": {
            m: {str(h): {f"{lr:g}": v for lr, v in tuned[m][h].items()} for h in horizons}
            for m in ("cosine", "sf")
        },
        f"{task}_per_seed": per_seed,
    }


def plot(tables: dict, horizons: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t in ("lm", "bigram") if t in tables]
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.6 * len(tasks), 3.6), squeeze=False)
    titles = {"lm": "small GPT, AdamW", "bigram": "bigram softmax regression, SGD"}
    for ax, task in zip(axes[0], tasks):
        tab, hs = tables[task], horizons[task]
        for h in hs:
            row = tab["cosine"][str(h)]
            ax.plot(
                [float(k) for k in row],
                list(row.values()),
                "o--",
                color="tab:red",
                alpha=0.4 + 0.6 * h / max(hs),
                label=f"cosine, T={h}",
            )
        for h in hs:
            row = tab["sf"][str(h)]
            ax.plot(
                [float(k) for k in row],
                list(row.values()),
                "s-",
                color="black",
                alpha=0.4 + 0.6 * h / max(hs),
                label=f"schedule-free at step {h}",
            )
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("peak learning rate")
        ax.set_ylabel("validation loss (nats/token)")
        ax.set_title(titles[task] + " (tuning seed)")
        finite = [v for m in ("cosine", "sf") for r in tab[m].values() for v in r.values()]
        finite = [v for v in finite if math.isfinite(v)]
        if finite:
            ax.set_ylim(min(finite) - 0.05, min(max(finite), min(finite) + 1.0) + 0.05)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(cfg, ctx: RunContext) -> None:
    if cfg.seeds < 1:
        raise ValueError(f"seeds must be at least 1, got {cfg.seeds}")
    for name in ("adamw_lrs", "sf_adamw_lrs", "sgd_lrs", "sf_sgd_lrs"):
        if len(getattr(cfg, name)) != len(cfg.adamw_lrs):
            raise ValueError(
                f"{name}: every grid has the same number of rates (equal tuning effort); "
                f"adamw_lrs has {len(cfg.adamw_lrs)}, {name} has {len(getattr(cfg, name))}"
            )
    train_ids, val_ids, tok = lm_token_streams(vocab_size=cfg.vocab_size, max_docs=cfg.max_docs)
    seeds = seeds_for(ctx.seed, cfg.seeds)
    # The unigram floor on exactly the held-out targets both evaluations score (the same
    # windows, in order, for the GPT and the bigram model).
    n_eval = cfg.eval_batches * cfg.batch_size * cfg.seq_len
    unigram = unigram_entropy(train_ids, tok.get_vocab_size(), val_ids[1 : n_eval + 1])
    ctx.metrics.update(seeds=seeds, heldout_unigram_loss=unigram, tuning_seed=seeds[0])
    if "lm" not in cfg.tasks:
        for claim in ("adamw-matches-cosine", "anytime"):
            ctx.skip(claim, "the lm task is not in this run's tasks")
    if "bigram" not in cfg.tasks:
        ctx.skip("sgd-convex-matches-cosine", "the bigram task is not in this run's tasks")
    tables: dict = {}
    all_horizons: dict = {}
    for task in cfg.tasks:
        horizons = all_horizons[task] = horizons_of(task, cfg)
        # The grids run on the first seed; its losses at the best rates are that seed's values.
        # The other seeds re-run both methods at those rates only (same initial weights and
        # batch order for both methods within a seed: paired).
        tuned = tune(task, cfg, train_ids, val_ids, seeds[0], ctx.progress)
        first = {
            "cosine": {h: tuned["cosine"][h][tuned["best_cosine_lr"][h]] for h in horizons},
            "sf": {h: tuned["sf"][h][tuned["best_sf_lr"]] for h in horizons},
        }
        per_seed = [seed_summary(first, horizons, unigram)]
        for seed in ctx.progress(seeds[1:], desc=f"{task} seeds"):
            losses = losses_at_tuned(task, cfg, tuned, train_ids, val_ids, seed)
            per_seed.append(seed_summary(losses, horizons, unigram))
        for seed, s in zip(seeds, per_seed):
            ctx.log(
                f"  seed {seed} {task}: "
                + ", ".join(
                    f"T={h}: cosine {s[str(h)]['cosine']:.4f} sf {s[str(h)]['sf']:.4f}"
                    for h in horizons
                )
            )
        ctx.metrics.update(task_metrics(task, per_seed, tuned, horizons))
        tables[task] = ctx.metrics[f"{task}_grid_tables"]
    plot(tables, all_horizons, ctx.figure_path("schedule_free_vs_cosine.png"))
