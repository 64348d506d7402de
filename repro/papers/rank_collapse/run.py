"""Measurements for the rank-collapse reproduction. See __init__.py for the claims."""

from __future__ import annotations

import math
import statistics

import torch
import torch.nn.functional as F

from repro.context import RunContext

VARIANTS = ("san", "san+mlp", "san+ln", "san+skip", "san+skip+mlp")


def residual(x: torch.Tensor) -> torch.Tensor:
    """res(X) = X - 1 xᵀ with x the column mean: the closest rank-1 matrix of that form in
    Frobenius norm (the least-squares choice of x)."""
    return x - x.mean(dim=-2, keepdim=True)


def rel_residual(x: torch.Tensor) -> float:
    """‖res(X)‖_F / ‖X‖_F: 0 when every token carries the same vector."""
    return (residual(x).norm() / x.norm()).item()


def rel_residual_l1inf(x: torch.Tensor) -> float:
    """The paper's composite norm ‖A‖_{1,∞} = sqrt(‖A‖_1 ‖A‖_∞) (max column sum times max
    row sum), relative, with the same x."""

    def norm(a):
        return math.sqrt(a.abs().sum(0).max().item() * a.abs().sum(1).max().item())

    return norm(residual(x)) / norm(x)


class Layer:
    """One layer with random weights drawn at the usual initialisation scale:
    multi-head self-attention SA(X) = concat_h softmax(X W_Q^h (X W_K^h)ᵀ / √d_h) X W_V^h · W_O,
    optionally followed by a ReLU MLP (He init) and/or LayerNorm, with or without skips."""

    def __init__(self, d: int, heads: int, gen: torch.Generator):
        def w(i, o, gain=1.0):
            return torch.randn(i, o, generator=gen, dtype=torch.float64) * gain / math.sqrt(i)

        self.heads = heads
        self.wq, self.wk, self.wv, self.wo = w(d, d), w(d, d), w(d, d), w(d, d)
        self.w1, self.w2 = w(d, 4 * d, math.sqrt(2)), w(4 * d, d)

    def attention(self, x):
        n, d = x.shape
        dh = d // self.heads

        def split(t):
            return t.view(n, self.heads, dh).transpose(0, 1)  # (H, n, dh)

        q, k, v = split(x @ self.wq), split(x @ self.wk), split(x @ self.wv)
        a = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(dh), dim=-1)  # (H, n, n), rows sum to 1
        return (a @ v).transpose(0, 1).reshape(n, d) @ self.wo

    def mlp(self, x, gain: float = 1.0):
        """ReLU MLP; without biases it is positively homogeneous, so ``gain`` scales its
        Lipschitz constant (the λ of §3.2) without changing anything else."""
        return gain * (torch.relu(x @ self.w1) @ self.w2)

    def __call__(self, x, variant: str, mlp_gain: float = 1.0):
        skip = "skip" in variant
        y = self.attention(x) + (x if skip else 0)
        if "mlp" in variant:
            y = self.mlp(y, mlp_gain) + (y if skip else 0)
        if "ln" in variant:
            y = F.layer_norm(y, y.shape[-1:])
        return y


def trajectory(cfg, variant: str, seed: int, mlp_gain: float = 1.0) -> dict:
    """Relative residual of the input and after each layer, for one draw of X and weights.
    Every variant sees the same X and the same weights for a given seed."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(cfg.tokens, cfg.d_model, generator=gen, dtype=torch.float64)
    layers = [Layer(cfg.d_model, cfg.heads, gen) for _ in range(cfg.depth)]
    fro, l1inf = [rel_residual(x)], [rel_residual_l1inf(x)]
    for layer in layers:
        x = layer(x, variant, mlp_gain)
        fro.append(rel_residual(x))
        l1inf.append(rel_residual_l1inf(x))
    return {"fro": fro, "l1inf": l1inf}


def convergence_order(r: list[float], floor: float, top: float) -> list[float]:
    """Per-layer order q_l = log r_{l+1} / log r_l over the stretch where r is below ``top``
    and the next value still above the rounding ``floor``. A sequence shrinking like
    r_{l+1} = c·r_l^q has q_l → q: exponential decay gives q = 1, the paper's cubic bound q = 3."""
    out = []
    for a, b in zip(r, r[1:]):
        if a < top and b > floor:
            out.append(math.log(b) / math.log(a))
    return out


def layers_to(r: list[float], level: float) -> int | None:
    return next((i for i, v in enumerate(r) if v < level), None)


def plot(med, q1, q3, gain_depths, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [3, 2]})
    gains = [float(g) for g in gain_depths]
    bx.semilogx(gains, list(gain_depths.values()), "o-", base=2)
    bx.set_xlabel("MLP gain (scales its Lipschitz constant)")
    bx.set_ylabel("layers until ‖res‖/‖X‖ < 1e-6 (median)")
    bx.set_title("attention + MLP, no skips")
    for v in VARIANTS:
        xs = range(len(med[v]))
        ax.semilogy(xs, med[v], "o-", ms=3, label=v.replace("san", "attention"))
        ax.fill_between(xs, q1[v], q3[v], alpha=0.15)
    ax.set_xlabel("depth (layers)")
    ax.set_ylabel("‖res(X)‖ / ‖X‖  (median over draws)")
    ax.set_title("distance from rank 1 against depth")
    ax.set_ylim(1e-17, 2)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(cfg, ctx: RunContext) -> None:
    runs = {v: [] for v in VARIANTS}
    for seed in ctx.progress(range(ctx.seed, ctx.seed + cfg.draws), desc="draws"):
        for v in VARIANTS:
            runs[v].append(trajectory(cfg, v, seed))

    def per_layer(v, q, key="fro"):
        return [
            statistics.quantiles([r[key][i] for r in runs[v]], n=4)[q]
            if len(runs[v]) > 1
            else runs[v][0][key][i]
            for i in range(cfg.depth + 1)
        ]

    med = {
        v: [statistics.median(r["fro"][i] for r in runs[v]) for i in range(cfg.depth + 1)]
        for v in VARIANTS
    }
    q1 = {v: per_layer(v, 0) for v in VARIANTS}
    q3 = {v: per_layer(v, 2) for v in VARIANTS}
    med_l1inf = {
        v: [statistics.median(r["l1inf"][i] for r in runs[v]) for i in range(cfg.depth + 1)]
        for v in VARIANTS
    }

    # Per draw (a draw = one seed: its input X and its weights, shared by every variant), the
    # findings' samples; the medians over draws are kept for the figure and the card.
    def per_draw_order(v):
        out = []
        for r in runs[v]:
            qs = convergence_order(r["fro"], cfg.order_floor, cfg.order_top)
            out.append(statistics.median(qs) if qs else float("nan"))
        return out

    def depths(v, gain_runs=None):
        ds = [layers_to(r["fro"], cfg.collapse_level) for r in (gain_runs or runs[v])]
        return [d if d is not None else cfg.depth + 1 for d in ds]  # never: beyond the stack

    orders = per_draw_order("san")
    skip_orders = [q for q in per_draw_order("san+skip") if math.isfinite(q)]
    finals = {v: [r["fro"][-1] for r in runs[v]] for v in VARIANTS}
    m = ctx.metrics
    m.update(
        draws=cfg.draws,
        median_rel_residual=med,
        median_rel_residual_l1inf=med_l1inf,
        san_final=finals["san"],
        # draws whose residual never sat inside the (floor, top) window give no order
        san_convergence_order=[q for q in orders if math.isfinite(q)],
        san_order_samples=sum(math.isfinite(q) for q in orders),
        skip_convergence_order_median=statistics.median(skip_orders) if skip_orders else None,
        skip_final=finals["san+skip"],
        skip_mlp_final=finals["san+skip+mlp"],
        ln_final=finals["san+ln"],
        median_final={v: statistics.median(finals[v]) for v in VARIANTS},
        layers_to_collapse={v: statistics.median(depths(v)) for v in VARIANTS},
        # paired by draw: the same X and weights with and without the MLP
        mlp_extra_layers_to_collapse=[a - b for a, b in zip(depths("san+mlp"), depths("san"))],
    )

    # §3.2's mechanism: the MLP's Lipschitz constant λ enters the bound, so scale it
    gain_depths, per_gain = {}, {}
    for g in cfg.mlp_gains:
        gain_runs = [
            trajectory(cfg, "san+mlp", seed, g) for seed in range(ctx.seed, ctx.seed + cfg.draws)
        ]
        per_gain[g] = depths("san+mlp", gain_runs)
        gain_depths[f"{g:g}"] = statistics.median(per_gain[g])  # "1", "2": dotted-path keys
    lo, hi = cfg.mlp_gains[0], cfg.mlp_gains[-1]
    m.update(
        layers_to_collapse_by_mlp_gain=gain_depths,
        # paired by draw: the same X and weights at the smallest and largest MLP gain
        lipschitz_extra_layers=[a - b for a, b in zip(per_gain[hi], per_gain[lo])],
    )
    plot(med, q1, q3, gain_depths, ctx.figure_path("rank_collapse.png"))
