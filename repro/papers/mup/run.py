"""µP coordinate check and learning-rate transfer. See __init__.py for the claims."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from repro.common.data import lm_token_streams
from repro.common.stats import seeds_for, unigram_entropy
from repro.context import RunContext

from .model import MLPLM

PARAMS = ("sp", "mup")  # the coordinate check compares these two


def context_batch(ids: torch.Tensor, positions: torch.Tensor, context: int):
    """(previous ``context`` tokens, next token) at each position."""
    idx = positions[:, None] + torch.arange(-context, 0)  # (B, context)
    return ids[idx], ids[positions]


def make_model(cfg, width: int, param: str, seed: int) -> MLPLM:
    torch.manual_seed(seed)
    return MLPLM(cfg.vocab_size, cfg.context, cfg.emb_dim, width, param, cfg.base_width)


def slope(xs, ys) -> float:
    """Least-squares slope of log y against log x: the exponent of a power law y ∝ x^s."""
    lx = [math.log(x) for x in xs]
    ly = [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


# --------------------------------------------------------------------------- coordinate check
def coordinate_check(cfg, train_ids, seed: int) -> dict:
    """Mean |coordinate| of h1, h2 and the logits after each of the first Adam steps, for each
    width and parameterisation, averaged over ``coord_seeds`` initialisations drawn from
    ``seed`` (TP5's coordinate check)."""
    out: dict = {}
    for param in PARAMS:
        out[param] = {}
        for width in cfg.coord_widths:
            sums: dict[str, list[float]] = {}
            for s in range(cfg.coord_seeds):
                model = make_model(cfg, width, param, seed + 100 * s)
                opt = torch.optim.Adam(model.param_groups(cfg.coord_lr))
                gen = torch.Generator().manual_seed(seed + 100 * s + 1)
                for step in range(cfg.coord_steps + 1):
                    pos = torch.randint(
                        cfg.context, len(train_ids), (cfg.batch_size,), generator=gen
                    )
                    x, y = context_batch(train_ids, pos, cfg.context)
                    rec: dict = {}
                    loss = F.cross_entropy(model(x, rec), y)
                    for k, v in rec.items():
                        sums.setdefault(k, [0.0] * (cfg.coord_steps + 1))[step] += (
                            v / cfg.coord_seeds
                        )
                    if step == cfg.coord_steps:
                        break
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
            out[param][width] = sums
    slopes = {
        p: {
            k: slope(cfg.coord_widths, [out[p][w][k][-1] for w in cfg.coord_widths])
            for k in ("h1", "h2", "logits")
        }
        for p in PARAMS
    }
    return {"sizes": out, "slopes": slopes}


# --------------------------------------------------------------------------- LR sweep
def train_once(cfg, width: int, param: str, lr: float, train_ids, val, seed: int) -> float:
    model = make_model(cfg, width, param, seed)
    groups = model.param_groups(lr)
    opt = torch.optim.Adam(groups)
    gen = torch.Generator().manual_seed(seed + 1)  # the same batches for every run
    warm = max(1, int(cfg.warmup_frac * cfg.steps))
    for step in range(cfg.steps):
        for g in opt.param_groups:
            g["lr"] = lr * g["lr_mult"] * min(1.0, (step + 1) / warm)
        pos = torch.randint(cfg.context, len(train_ids), (cfg.batch_size,), generator=gen)
        x, y = context_batch(train_ids, pos, cfg.context)
        loss = F.cross_entropy(model(x), y)
        if not math.isfinite(loss.item()):
            return math.inf
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        vx, vy = val
        return F.cross_entropy(model(vx), vy).item()


def best_log2_lr(log2_lrs, losses) -> tuple[float, bool]:
    """The loss minimum in log2(lr), refined by a parabola through the best grid point and its
    neighbours; also whether the best point sits on the grid's edge (then it is a bound)."""
    finite = [(a, b) for a, b in zip(log2_lrs, losses) if math.isfinite(b)]
    xs, ys = zip(*finite)
    i = min(range(len(ys)), key=ys.__getitem__)
    if i == 0 or i == len(ys) - 1:
        return xs[i], True
    (x0, y0), (x1, y1), (x2, y2) = (xs[i - 1], ys[i - 1]), (xs[i], ys[i]), (xs[i + 1], ys[i + 1])
    denom = (x0 - x1) * (x0 - x2) * (x1 - x2)
    a = (x2 * (y1 - y0) + x1 * (y0 - y2) + x0 * (y2 - y1)) / denom
    b = (x2 * x2 * (y0 - y1) + x1 * x1 * (y2 - y0) + x0 * x0 * (y1 - y2)) / denom
    if a <= 0:
        return x1, False
    return min(max(-b / (2 * a), x0), x2), False


def sweep_jobs(cfg) -> list[tuple[str, int, float]]:
    """The (parameterisation, width, log2 lr) runs one seed's sweep trains. At the base width
    every parameterisation is the same model (same initial draws, same per-layer rates:
    model.py, checked in the tests), so those runs are trained once, under the first
    parameterisation, and shared."""
    first = cfg.swept[0]
    return [
        (p, w, k)
        for p in cfg.swept
        for w in cfg.widths
        for k in cfg.log2_lrs
        if w != cfg.base_width or p == first
    ]


def lr_sweep(cfg, train_ids, val, seed: int, progress) -> dict:
    losses: dict = {p: {w: {} for w in cfg.widths} for p in cfg.swept}
    for param, width, k in progress(sweep_jobs(cfg), desc=f"lr sweep, seed {seed}"):
        losses[param][width][k] = train_once(cfg, width, param, 2.0**k, train_ids, val, seed)
    if cfg.base_width in cfg.widths:
        for p in cfg.swept[1:]:
            losses[p][cfg.base_width] = dict(losses[cfg.swept[0]][cfg.base_width])
    best = {
        p: {
            w: best_log2_lr(cfg.log2_lrs, [losses[p][w][k] for k in cfg.log2_lrs])
            for w in cfg.widths
        }
        for p in cfg.swept
    }
    return {"losses": losses, "best": best}


# --------------------------------------------------------------------------- figures
NAMES = {"sp": "SP", "mup": "µP", "sp-perlayer": "SP + per-layer rates"}


def plot(coord: dict, sweep: dict, cfg, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(14, 7.5))
    for col, param in enumerate(PARAMS):
        ax = axes[0, col]
        for layer, marker in (("h1", "o"), ("h2", "s"), ("logits", "^")):
            ys = [coord["sizes"][param][w][layer][-1] for w in cfg.coord_widths]
            ax.loglog(
                cfg.coord_widths,
                ys,
                marker + "-",
                label=f"{layer} (slope {coord['slopes'][param][layer]:+.2f})",
            )
        ax.set_xlabel("width")
        ax.set_ylabel(f"mean |coordinate| after {cfg.coord_steps} Adam steps")
        ax.set_title(f"coordinate check, {NAMES[param]}")
        ax.legend(fontsize=8)
    ax = axes[0, 2]
    for param in cfg.swept:
        ax.semilogx(
            cfg.widths, [sweep["best"][param][w][0] for w in cfg.widths], "o-", label=NAMES[param]
        )
    ax.set_xticks(cfg.widths, [str(w) for w in cfg.widths])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("width")
    ax.set_ylabel("best log2 learning rate")
    ax.set_title("where the optimum sits")
    ax.legend(fontsize=8)
    cmap = plt.get_cmap("viridis")
    for col, param in enumerate(cfg.swept[:3]):
        ax = axes[1, col]
        for i, w in enumerate(cfg.widths):
            colour = cmap(i / max(1, len(cfg.widths) - 1))
            ks = cfg.log2_lrs
            ax.plot(
                ks,
                [sweep["losses"][param][w][k] for k in ks],
                "o-",
                ms=3,
                color=colour,
                label=f"width {w}",
            )
            ax.axvline(sweep["best"][param][w][0], color=colour, lw=0.8, ls=":")
        finite = [
            v for w in cfg.widths for v in sweep["losses"][param][w].values() if math.isfinite(v)
        ]
        ax.set_ylim(min(finite) - 0.05, min(finite) + 1.5)
        ax.set_xlabel("log2 learning rate")
        ax.set_ylabel(f"validation loss after {cfg.steps} steps")
        ax.set_title(f"learning-rate sweep, {NAMES[param]}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def arm(param: str) -> str:
    """The metric-name stem of a parameterisation ("sp-perlayer" -> "sp_perlayer")."""
    return param.replace("-", "_")


def sweep_summary(cfg, sweep: dict, unigram: float) -> dict:
    """One seed's numbers for the claims, from one learning-rate sweep."""
    best, losses = sweep["best"], sweep["losses"]
    widths = sorted(cfg.widths)
    out: dict = {}
    for p in cfg.swept:
        out[f"{arm(p)}_shift"] = best[p][widths[-1]][0] - best[p][widths[0]][0]
        # the learned gate: every width's best run is below the unigram floor (the worst one
        # decides); the grid gate: no width's optimum sits on the grid's edge
        worst_best = max(min(losses[p][w].values()) for w in widths)
        out[f"{arm(p)}_below_unigram"] = unigram - worst_best
        out[f"{arm(p)}_lr_inside_grid"] = not any(best[p][w][1] for w in widths)
        # the learning rate tuned on the narrowest model, used unchanged at every width
        tuned = min(cfg.log2_lrs, key=lambda k, p=p: losses[p][widths[0]][k])
        at_small = [losses[p][w][tuned] for w in widths]
        out[f"{arm(p)}_at_narrowest_lr"] = at_small
        out[f"{arm(p)}_wider_is_better"] = all(b < a for a, b in zip(at_small, at_small[1:]))
    return out


def main(cfg, ctx: RunContext) -> None:
    train_ids, val_ids, tok = lm_token_streams(vocab_size=cfg.vocab_size, max_docs=cfg.max_docs)
    seeds = seeds_for(ctx.seed, cfg.seeds)
    g = torch.Generator().manual_seed(ctx.seed + 7)
    vpos = torch.randint(cfg.context, len(val_ids), (cfg.val_tokens,), generator=g)
    val = context_batch(val_ids, vpos, cfg.context)
    # The unigram floor on exactly the held-out next tokens the sweep scores.
    unigram = unigram_entropy(train_ids, tok.get_vocab_size(), val[1])
    ctx.metrics.update(unigram_entropy=unigram, seeds=seeds)

    # 1. coordinate check, one slope per seed and layer
    coords = []
    for seed in seeds:
        coords.append(coordinate_check(cfg, train_ids, seed))
        sl = [c["slopes"] for c in coords]
        ctx.metrics.update(
            coord_slopes=sl,
            coord_mup_max_abs_slope=[max(abs(v) for v in x["mup"].values()) for x in sl],
            coord_sp_logits_slope=[x["sp"]["logits"] for x in sl],
        )

    # 2. learning-rate sweep, once per seed (the same init draws and batches at every rate)
    sweeps, per_seed = [], []
    for seed in seeds:
        sweeps.append(lr_sweep(cfg, train_ids, val, seed, ctx.progress))
        per_seed.append(sweep_summary(cfg, sweeps[-1], unigram))
        # every key of the summary as a per-seed list
        ctx.metrics.update({k: [d[k] for d in per_seed] for k in per_seed[0]})
        ctx.metrics["best_log2_lr"] = [
            {p: {str(w): sw["best"][p][w][0] for w in sorted(cfg.widths)} for p in cfg.swept}
            for sw in sweeps
        ]
    first = sweeps[0]
    ctx.metrics["losses"] = {  # the first seed's sweep, for the figure and the card
        p: {str(w): {f"{k:g}": v for k, v in d.items()} for w, d in ws.items()}
        for p, ws in first["losses"].items()
    }
    plot(coords[0], first, cfg, ctx.figure_path("mup_coord_check_and_lr_transfer.png"))
