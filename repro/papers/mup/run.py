"""µP coordinate check and learning-rate transfer. See __init__.py for the claims."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from repro.common.data import lm_token_streams
from repro.context import RunContext
from repro.papers.mup.model import MLPLM

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
    width and parameterisation, averaged over seeds (TP5's coordinate check)."""
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


def lr_sweep(cfg, train_ids, val, seed: int, progress) -> dict:
    jobs = [(p, w, k) for p in cfg.swept for w in cfg.widths for k in cfg.log2_lrs]
    losses: dict = {p: {w: {} for w in cfg.widths} for p in cfg.swept}
    for param, width, k in progress(jobs, desc="lr sweep"):
        losses[param][width][k] = train_once(cfg, width, param, 2.0**k, train_ids, val, seed)
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


def main(cfg, ctx: RunContext) -> dict:
    train_ids, val_ids, _ = lm_token_streams(vocab_size=cfg.vocab_size, max_docs=cfg.max_docs)
    coord = coordinate_check(cfg, train_ids, ctx.seed)
    sl = coord["slopes"]
    ctx.metrics.update(
        coord_slopes=sl,
        coord_mup_max_abs_slope=max(abs(v) for v in sl["mup"].values()),
        coord_sp_logits_slope=sl["sp"]["logits"],
    )
    g = torch.Generator().manual_seed(ctx.seed + 7)
    vpos = torch.randint(cfg.context, len(val_ids), (cfg.val_tokens,), generator=g)
    val = context_batch(val_ids, vpos, cfg.context)
    sweep = lr_sweep(cfg, train_ids, val, ctx.seed, ctx.progress)
    best, losses = sweep["best"], sweep["losses"]
    widths = sorted(cfg.widths)
    shift = {p: best[p][widths[-1]][0] - best[p][widths[0]][0] for p in cfg.swept}
    # the learning rate tuned on the narrowest model, used unchanged at every width
    tuned_small = {
        p: min(cfg.log2_lrs, key=lambda k, p=p: losses[p][widths[0]][k]) for p in cfg.swept
    }
    at_small = {p: [losses[p][w][tuned_small[p]] for w in widths] for p in cfg.swept}
    ctx.metrics.update(
        best_log2_lr={p: {str(w): best[p][w][0] for w in widths} for p in cfg.swept},
        best_at_grid_edge={p: {str(w): best[p][w][1] for w in widths} for p in cfg.swept},
        best_lr_shift_octaves=shift,
        loss_at_lr_tuned_on_narrowest={
            p: dict(zip(map(str, widths), at_small[p])) for p in cfg.swept
        },
        losses={
            p: {str(w): {f"{k:g}": v for k, v in d.items()} for w, d in ws.items()}
            for p, ws in losses.items()
        },
    )
    if "mup" in cfg.swept:
        ctx.metrics["mup_best_lr_abs_shift"] = abs(shift["mup"])
        ctx.metrics["mup_wider_is_better_at_transferred_lr"] = all(
            b < a for a, b in zip(at_small["mup"], at_small["mup"][1:])
        )
    if "sp" in cfg.swept:
        ctx.metrics["sp_best_lr_shift"] = shift["sp"]
    if "sp-perlayer" in cfg.swept:
        ctx.metrics["sp_perlayer_best_lr_abs_shift"] = abs(shift["sp-perlayer"])
    plot(coord, sweep, cfg, ctx.figure_path("mup_coord_check_and_lr_transfer.png"))
    return {}
