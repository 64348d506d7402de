"""Measurements for the xLSTM reproduction. See __init__.py for the claims."""

from __future__ import annotations

import torch

from repro.context import RunContext

from .cells import mlstm_parallel, mlstm_parallel_naive, mlstm_recurrent, slstm_recurrent


def cell_inputs(cfg, scale: float, gen, dtype=torch.float64):
    """Random cell inputs whose input-gate pre-activations ĩ have spread ``scale``."""
    B, H, T, d = 2, cfg.cell_heads, cfg.cell_len, cfg.cell_dim
    q, k, v = (torch.randn(B, H, T, d, generator=gen, dtype=dtype) for _ in range(3))
    i_pre = scale * torch.randn(B, H, T, generator=gen, dtype=dtype)
    f_pre = torch.randn(B, H, T, generator=gen, dtype=dtype) + 2.0
    x_proj = torch.randn(B, T, 4, H, d, generator=gen, dtype=dtype)
    x_proj[:, :, 1] *= scale  # the sLSTM input gate
    R = torch.randn(4, H, d, d, generator=gen, dtype=dtype) / d**0.5
    return (q, k, v, i_pre, f_pre), (x_proj, R)


def rel_err(a: torch.Tensor, ref: torch.Tensor) -> float:
    if not torch.isfinite(a).all():
        return float("inf")
    return ((a.double() - ref).abs().max() / ref.abs().max()).item()


def nonfinite(a: torch.Tensor) -> float:
    return 1 - torch.isfinite(a).float().mean().item()


def cell_forms(cfg, gen) -> dict:
    rows = {
        k: []
        for k in (
            "f64_parallel_vs_recurrent",
            "f32_stable_err",
            "f32_naive_nonfinite",
            "f32_stable_nonfinite",
        )
    }
    rows["scales"] = list(cfg.gate_scales)
    for s in cfg.gate_scales:
        m_args, s_args = cell_inputs(cfg, s, gen)
        ref_m = mlstm_parallel(*m_args)
        rows["f64_parallel_vs_recurrent"].append(rel_err(mlstm_recurrent(*m_args), ref_m))
        # float32, against a float64 reference on the same rounded inputs
        m32 = [t.float() for t in m_args]
        s32 = [t.float() for t in s_args]
        ref_m32 = mlstm_parallel(*(t.double() for t in m32))
        ref_s32 = slstm_recurrent(*(t.double() for t in s32))
        stable = {
            "mlstm_parallel": mlstm_parallel(*m32),
            "mlstm_recurrent": mlstm_recurrent(*m32),
            "slstm": slstm_recurrent(*s32),
        }
        naive = {
            "mlstm_parallel": mlstm_parallel_naive(*m32),
            "mlstm_recurrent": mlstm_recurrent(*m32, stabilise=False),
            "slstm": slstm_recurrent(*s32, stabilise=False),
        }
        refs = {"mlstm_parallel": ref_m32, "mlstm_recurrent": ref_m32, "slstm": ref_s32}
        rows["f32_stable_err"].append({k: rel_err(v, refs[k]) for k, v in stable.items()})
        rows["f32_stable_nonfinite"].append({k: nonfinite(v) for k, v in stable.items()})
        rows["f32_naive_nonfinite"].append({k: nonfinite(v) for k, v in naive.items()})
    return rows


def parity_experiment(cfg, ctx: RunContext) -> dict:
    """sLSTM vs Transformer on running parity, paired by seed. Each arm's learning rate is the
    one of ``parity_lrs`` with the highest dev accuracy (fresh training-length strings, never
    the longer test strings) on the first seed, the smallest such rate on a tie; the later
    seeds reuse it, and the first seed's result at that rate is kept."""
    from repro.common.stats import inside_grid, paired_differences, seeds_for

    from .parity import ARMS, train_parity

    common = dict(
        d_model=cfg.parity_d_model,
        heads=cfg.parity_heads,
        train_len=cfg.train_len,
        test_len=cfg.test_len,
        steps=cfg.parity_steps,
        batch=cfg.parity_batch,
        eval_sequences=cfg.parity_eval_sequences,
    )
    layers = {"slstm": cfg.slstm_layers, "transformer": cfg.transformer_layers}
    seeds = seeds_for(ctx.seed, cfg.seeds)
    grid: dict[str, dict[str, dict]] = {}
    jobs = [(arm, lr) for arm in ARMS for lr in cfg.parity_lrs]
    for arm, lr in ctx.progress(jobs, desc=f"parity lr grid, seed {seeds[0]}"):
        out = train_parity(arm, seeds[0], lr=lr, layers=layers[arm], **common)
        grid.setdefault(arm, {})[repr(lr)] = out
    # The highest dev accuracy; on a tie the smallest rate. Among rates that all solve the
    # task, dev loss only keeps falling as the rate grows (the sLSTM's did up to 1e-1 in the
    # pilot), which would pin the choice to the grid's top edge without any gain in accuracy;
    # the smallest solving rate is also the least favourable choice for an arm that solves it.
    best = {
        arm: min(cfg.parity_lrs, key=lambda lr, arm=arm: (-grid[arm][repr(lr)]["dev"], lr))
        for arm in ARMS
    }
    runs = {arm: [grid[arm][repr(best[arm])]] for arm in ARMS}
    later = [(seed, arm) for seed in seeds[1:] for arm in ARMS]
    for seed, arm in ctx.progress(later, desc="parity seeds"):
        runs[arm].append(train_parity(arm, seed, lr=best[arm], layers=layers[arm], **common))

    def col(arm, key):
        return [r[key] for r in runs[arm]]

    out = {
        "parity_seeds": seeds,
        "parity_grid_dev": {arm: {lr: r["dev"] for lr, r in g.items()} for arm, g in grid.items()},
        "parity_grid_dev_loss": {
            arm: {lr: r["dev_loss"] for lr, r in g.items()} for arm, g in grid.items()
        },
        "parity_grid_extrap": {
            arm: {lr: r["extrap"] for lr, r in g.items()} for arm, g in grid.items()
        },
        "parity_slstm_minus_transformer_extrap": paired_differences(
            col("slstm", "extrap"), col("transformer", "extrap")
        ),
    }
    for arm in ARMS:
        out[f"{arm}_parity_lr"] = best[arm]
        out[f"{arm}_lr_inside_grid"] = inside_grid(cfg.parity_lrs, best[arm])
        out[f"{arm}_parity_in_dist"] = col(arm, "in_dist")
        out[f"{arm}_parity_extrap"] = col(arm, "extrap")
        out[f"{arm}_parity_dev"] = col(arm, "dev")
        out[f"{arm}_parity_train_loss"] = col(arm, "train_loss")
    return out


def plot(forms, parity, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    s = forms["scales"]
    for key, mark in (("mlstm_recurrent", "o"), ("mlstm_parallel", "^"), ("slstm", "s")):
        a.semilogx(
            s,
            [r[key] for r in forms["f32_naive_nonfinite"]],
            mark + "-",
            label=f"{key}, no stabiliser",
        )
        a.semilogx(
            s,
            [r[key] for r in forms["f32_stable_nonfinite"]],
            mark + ":",
            label=f"{key}, stabilised",
        )
    a.set_xlabel("spread of input-gate pre-activation ĩ")
    a.set_ylabel("fraction of non-finite outputs (float32)")
    a.set_title("exponential gating: overflow")
    a.legend(fontsize=7)
    for i, arm in enumerate(("slstm", "transformer")):
        ins, ext = parity[f"{arm}_parity_in_dist"], parity[f"{arm}_parity_extrap"]
        b.scatter(
            [i - 0.1] * len(ins), ins, marker="o", color=f"C{i}", label=f"{arm}: trained lengths"
        )
        b.scatter(
            [i + 0.1] * len(ext), ext, marker="x", color=f"C{i}", label=f"{arm}: longer strings"
        )
    b.axhline(0.0, color="gray", lw=0.8, ls="--")
    b.set_xticks([0, 1], ["sLSTM", "Transformer (Llama-style)"])
    b.set_ylabel("scaled accuracy (chance 0, perfect 1)")
    b.set_title("running parity, one point per seed")
    b.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(cfg, ctx: RunContext) -> None:
    gen = torch.Generator().manual_seed(ctx.seed)
    forms = cell_forms(cfg, gen)
    failing = [
        i for i, r in enumerate(forms["f32_naive_nonfinite"]) if all(v > 0 for v in r.values())
    ]
    ctx.metrics.update(
        cells=forms,
        mlstm_parallel_vs_recurrent_f64=max(forms["f64_parallel_vs_recurrent"]),
        stable_f32_max_rel_err=max(max(r.values()) for r in forms["f32_stable_err"]),
        # every unstabilised form breaks at some spread where every stabilised one is finite
        unstabilised_overflows_where_stable_finite=bool(failing)
        and all(max(forms["f32_stable_nonfinite"][i].values()) == 0 for i in failing),
        unstabilised_first_failing_scale=forms["scales"][failing[0]] if failing else None,
    )

    parity = parity_experiment(cfg, ctx)
    ctx.metrics.update(parity)
    plot(forms, parity, ctx.figure_path("xlstm.png"))
