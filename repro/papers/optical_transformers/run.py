"""Measurements for Optical Transformers. See __init__.py for the claims."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from repro.context import RunContext

from .optical import fit_power_law, log_grid, optical_matmul, threshold_crossing


# --------------------------------------------------------------------------- the simulator alone
def snr_stats(x: torch.Tensor, w: torch.Tensor, p: float, trials: int, gen: torch.Generator):
    """Mean output SNR, E[y]/std(ŷ), over the entries of x @ wᵀ, and the z-score of the mean
    relative error (ŷ − y)/|y| pooled over entries and trials (|z| ≲ 3 when unbiased)."""
    y = x @ w.T  # (rows, n)
    ys = torch.stack([optical_matmul(x, w, p, generator=gen) for _ in range(trials)])
    snr = (y.abs() / ys.std(0).clamp_min(1e-30)).mean().item()
    rel = ((ys - y) / y.abs()).flatten()
    z = (rel.mean() / (rel.std() / math.sqrt(rel.numel()))).item()
    return snr, z


def simulator_checks(cfg, gen: torch.Generator) -> dict:
    """SNR against photons per MAC and against the summed width, on planted operands."""
    k, n, rows = cfg.planted_width, cfg.planted_outputs, cfg.planted_rows
    x = torch.rand(rows, k, generator=gen, dtype=torch.float64)
    w = torch.rand(n, k, generator=gen, dtype=torch.float64)
    budgets = [10.0**e for e in torch.linspace(-2, 2, 9).tolist()]
    snr_p, zs = [], []
    for p in budgets:
        s, z = snr_stats(x, w, p, cfg.planted_trials, gen)
        snr_p.append(s)
        zs.append(z)
    # width scan at a fixed budget: non-negative operands (a coherent sum) and signed ones
    snr_k, snr_k_signed = [], []
    for kk in cfg.planted_widths:
        xk = torch.rand(rows, kk, generator=gen, dtype=torch.float64)
        wk = torch.rand(n, kk, generator=gen, dtype=torch.float64)
        snr_k.append(snr_stats(xk, wk, 1.0, cfg.planted_trials, gen)[0])
        snr_k_signed.append(snr_stats(2 * xk - 1, 2 * wk - 1, 1.0, cfg.planted_trials, gen)[0])
    return {
        "planted_budgets": budgets,
        "planted_snr": snr_p,
        "planted_bias_z": zs,
        "snr_photon_slope": fit_power_law(budgets, snr_p)[0],
        "max_abs_bias_z": max(abs(z) for z in zs),
        "planted_widths": list(cfg.planted_widths),
        "planted_snr_vs_width": snr_k,
        "planted_snr_vs_width_signed": snr_k_signed,
        "snr_width_slope": fit_power_law(cfg.planted_widths, snr_k)[0],
        "snr_width_slope_signed": fit_power_law(cfg.planted_widths, snr_k_signed)[0],
    }


# --------------------------------------------------------------------------- the LM, optically
def optical_forward(model, idx: torch.Tensor, linear, attn_mm=None) -> torch.Tensor:
    """Logits of a pre-norm ``TinyLM`` with every weight product done by ``linear(x, W)``
    (≈ x @ Wᵀ) and, when given, the two attention products by ``attn_mm(a, b)`` (≈ a @ bᵀ,
    batched). Norms, softmax, GELU and bias additions stay digital, as in the paper."""
    B, T = idx.shape

    def dense(m, h):
        out = linear(h, m.weight)
        return out if m.bias is None else out + m.bias

    x = model.tok(idx) + model.pos(torch.arange(T, device=idx.device))  # (B, T, C)
    C = x.shape[-1]
    causal = torch.ones(T, T, dtype=torch.bool, device=idx.device).triu(1)
    for blk in model.blocks:
        att = blk.attn
        nh = att.n_head
        q, k, v = dense(att.qkv, blk.ln1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, nh, C // nh).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        if attn_mm is None:
            scores = q @ k.transpose(-1, -2)
        else:
            scores = attn_mm(q, k)  # keys play the weight matrix, one per (batch, head)
        probs = (scores / math.sqrt(C // nh)).masked_fill(causal, float("-inf")).softmax(-1)
        if attn_mm is None:
            y = probs @ v
        else:
            y = attn_mm(probs, v.transpose(-1, -2))  # (B, nh, T, hs); a sum over T keys
        x = x + dense(att.proj, y.transpose(1, 2).reshape(B, T, C))
        mlp = blk.mlp
        x = x + dense(mlp.w_out, mlp.act(dense(mlp.w_in, blk.ln2(x))))
    return linear(model.ln_f(x), model.head.weight)  # (B, T, V)


def train_lm(cfg, d: int, lr: float, train_ids, ctx: RunContext, gen: torch.Generator):
    from repro.common.data import random_windows
    from repro.common.tinylm import LMConfig, TinyLM, cosine_lr, train

    model = TinyLM(
        LMConfig.like(
            cfg,
            d_model=d,
            ffn="gelu",
        )
    )
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    batches = random_windows(train_ids, cfg.batch_size, cfg.seq_len, generator=gen)
    warm = max(1, cfg.steps // 20)
    losses = train(
        model,
        batches,
        cfg.steps,
        optimizer=opt,
        lr_at=lambda s: cosine_lr(s, cfg.steps, lr, warm),
        progress=lambda it, desc: ctx.progress(it, desc=f"train d={d}"),
    )
    model.eval()
    return model, losses


@torch.no_grad()
def make_loss_fn(cfg, model, x: torch.Tensor, y: torch.Tensor, noise_seed: int):
    """loss(p) -> validation cross-entropy with the optical machine at p photons per MAC,
    averaged over ``cfg.noise_repeats`` independent photon-noise draws. Draw r uses the
    generator seed ``noise_seed + r`` at every p (common random numbers: the loss is then a
    smooth function of p for the threshold search); ``noise_seed`` differs between training
    seeds, so each seed's model sees its own draws."""
    bits = cfg.bits or None

    def loss(p: float) -> float:
        total = 0.0
        repeats = 1 if math.isinf(p) else cfg.noise_repeats
        for r in range(repeats):
            gen = torch.Generator().manual_seed(noise_seed + r)

            def linear(h, w, gen=gen):
                return optical_matmul(h, w, p, bits=bits, generator=gen)

            attn = linear if cfg.optical_attention else None
            logits = optical_forward(model, x, linear, attn)
            total += F.cross_entropy(logits.flatten(0, 1), y.flatten()).item()
        return total / repeats

    return loss


def required_photons(loss, clean: float, tol: float, grid: list[float]):
    """Scan the (ascending) photon grid from its top down until the loss gap over ``clean``
    exceeds ``tol``; the needed budget is the crossing between that budget and the one above,
    interpolated in log p (``threshold_crossing``). The budgets below the first exceedance
    are not evaluated: a larger gap there would not change the crossing.

    Returns every (p, gap) evaluated, ascending, the needed p*, and whether the crossing lies
    inside the grid (False when already the top budget exceeds ``tol`` or none does)."""
    seen: list[tuple[float, float]] = []
    for p in reversed(grid):
        seen.append((p, loss(p) - clean))
        if seen[-1][1] > tol:
            break
    seen.reverse()
    ps, gaps = [p for p, _ in seen], [g for _, g in seen]
    if len(seen) == 1:  # the top budget already exceeds tol: the crossing is above the grid
        return seen, grid[-1], False
    p_star, inside = threshold_crossing(ps, gaps, tol)
    return seen, p_star, inside


# --------------------------------------------------------------------------- figures
def plot(res: dict, cfg, path_curves, path_scaling) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    for d in cfg.widths:
        r = res[str(d)]
        ps = [p for p, _ in r["gap_curve"]]
        gaps = [g for _, g in r["gap_curve"]]
        ax.semilogx(ps, gaps, "o-", ms=3, label=f"d = {d}")
        if r["inside_grid"]:
            ax.axvline(r["photons_per_mac"], ls=":", lw=0.8, color=ax.lines[-1].get_color())
    ax.axhline(cfg.tolerance, color="k", lw=0.8, ls="--", label=f"tolerance {cfg.tolerance:g}")
    ax.set_yscale("symlog", linthresh=cfg.tolerance / 2)
    ax.set_ylim(bottom=-cfg.tolerance / 2)  # below 0 is evaluation noise only
    ax.set_xlabel("detected photons per MAC")
    ax.set_ylabel("loss − float loss (nats/token)")
    ax.set_title("Brown validation loss on the simulated optical machine", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path_curves, dpi=120)
    plt.close(fig)

    ds = [d for d in cfg.widths if res[str(d)]["inside_grid"]]
    fig, ax = plt.subplots(figsize=(4.8, 3.6))
    if ds:
        ps = [res[str(d)]["photons_per_mac"] for d in ds]
        ax.loglog(ds, ps, "o", label="measured")
        if len(ds) >= 2:
            a, b = fit_power_law(ds, ps)
            ax.loglog(ds, [math.exp(b) * d**a for d in ds], "-", label=f"fit: d^{a:.2f}")
        ax.loglog(ds, [ps[0] * ds[0] / d for d in ds], "k:", label="paper: ∝ 1/d")
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no crossing inside the grid", ha="center", transform=ax.transAxes)
    ax.set_xlabel("model width d")
    ax.set_ylabel("photons per MAC needed")
    ax.set_title(f"energy for ≤ {cfg.tolerance:g} nats loss penalty", fontsize=10)
    fig.tight_layout()
    fig.savefig(path_scaling, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------- main
def main(cfg, ctx: RunContext) -> None:
    from repro.common.data import lm_token_streams
    from repro.common.stats import seeds_for, unigram_entropy

    if len(cfg.widths) < 2 or len(set(cfg.widths)) != len(cfg.widths):
        raise ValueError(f"widths must be ≥ 2 distinct model widths; got {cfg.widths}")
    if len(cfg.lrs) != len(cfg.widths):
        raise ValueError(f"lrs needs one learning rate per width; got {cfg.lrs} for {cfg.widths}")
    # the control: the widths trained at the widest width's learning rate, where the exponent
    # cannot come from a difference in learning rate
    one_lr = [d for d, lr in zip(cfg.widths, cfg.lrs) if lr == cfg.lrs[-1]]
    if len(one_lr) < 2:
        raise ValueError(
            f"lrs must give at least two widths the widest width's rate {cfg.lrs[-1]:g} (the "
            f"one-rate control); got {cfg.lrs} for {cfg.widths}"
        )
    grid = log_grid(cfg.grid_lo, cfg.grid_hi, cfg.grid_step)
    gen = torch.Generator().manual_seed(ctx.seed)
    ctx.metrics.update(simulator_checks(cfg, gen))  # checks of the simulator, once

    train_ids, val_ids, _ = lm_token_streams(vocab_size=cfg.vocab_size, max_docs=cfg.max_docs)
    windows = max(cfg.eval_windows, cfg.gate_windows)
    chunk = val_ids[: windows * cfg.seq_len + 1]
    x_all = chunk[:-1].view(windows, cfg.seq_len)  # (windows, T)
    y_all = chunk[1:].view(windows, cfg.seq_len)
    # the noise study scores the first eval_windows; the learned gate all gate_windows
    x_val, y_val = x_all[: cfg.eval_windows], y_all[: cfg.eval_windows]
    x_gate, y_gate = x_all[: cfg.gate_windows], y_all[: cfg.gate_windows]
    # the learned gate's floor: the unigram cross-entropy on the gate's validation tokens
    unigram = unigram_entropy(train_ids, cfg.vocab_size, y_gate)
    m = ctx.metrics
    m["unigram_nats"] = unigram
    m["photon_grid"] = grid
    first: dict = {}
    for i, seed in enumerate(seeds_for(ctx.seed, cfg.seeds)):
        # one model per width and seed, trained once with no noise (the paper's study is of
        # inference only) and then evaluated at every photon budget; the seed sets its initial
        # weights, its batches and its photon-noise draws
        res: dict = {}
        for d, lr in zip(cfg.widths, cfg.lrs):
            gen = torch.Generator().manual_seed(seed)
            torch.manual_seed(seed)
            model, losses = train_lm(cfg, d, lr, train_ids, ctx, gen)
            with torch.no_grad():
                gate_loss = F.cross_entropy(model(x_gate).flatten(0, 1), y_gate.flatten()).item()
                float_loss = F.cross_entropy(model(x_val).flatten(0, 1), y_val.flatten()).item()
            loss = make_loss_fn(cfg, model, x_val, y_val, noise_seed=10_000 * (seed + 1))
            quantized = loss(math.inf)  # 8-bit (if bits) but noise-free
            curve, p_star, inside = required_photons(loss, float_loss, cfg.tolerance, grid)
            res[str(d)] = {
                "float_loss": float_loss,
                "below_unigram": unigram - gate_loss,
                "quantization_gap": quantized - float_loss,
                "gap_curve": curve,
                "photons_per_mac": p_star,
                "inside_grid": inside,
            }
            for key, value in (
                ("final_train_loss", losses[-1]),
                ("val_loss", gate_loss),
                ("below_unigram", unigram - gate_loss),
                ("quantization_gap", quantized - float_loss),
                ("photons_per_mac", p_star),
                ("crossing_inside_grid", inside),
                # the same energy seen from one output: p · (d_in of the d-wide products)
                ("photons_per_output", p_star * d),
            ):
                m.setdefault(key, {}).setdefault(str(d), []).append(value)
            ctx.log(
                f"seed {seed} d={d}: loss {gate_loss:.3f} ({unigram - gate_loss:.3f} below "
                f"unigram), {cfg.bits}-bit gap {quantized - float_loss:+.4f}, photons/MAC "
                f"needed {p_star:.4g}{'' if inside else ' (crossing outside the grid)'}"
            )
        # per seed: the width whose 8-bit gap is largest in size (signed), the narrowest
        # margin below the unigram floor over widths (the learned gate), whether every
        # width's crossing lies inside the photon grid, and the fitted exponent (an edge
        # crossing enters the fit at the grid's edge value; the grid gate then holds the
        # finding back)
        gaps = [res[str(d)]["quantization_gap"] for d in cfg.widths]
        m.setdefault("max_quantization_gap", []).append(max(gaps, key=abs))
        m.setdefault("every_width_below_unigram", []).append(
            min(res[str(d)]["below_unigram"] for d in cfg.widths)
        )
        m.setdefault("every_crossing_inside_grid", []).append(
            all(res[str(d)]["inside_grid"] for d in cfg.widths)
        )
        slope, _ = fit_power_law(cfg.widths, [res[str(d)]["photons_per_mac"] for d in cfg.widths])
        m.setdefault("energy_exponent", []).append(slope)
        slope, _ = fit_power_law(one_lr, [res[str(d)]["photons_per_mac"] for d in one_lr])
        m.setdefault("energy_exponent_one_lr", []).append(slope)
        if i == 0:
            first = res
    plot(first, cfg, ctx.figure_path("loss_vs_photons.png"), ctx.figure_path("energy_vs_width.png"))
    # (photons per MAC, loss gap) pairs per width of the first seed, as evaluated by the scan
    m["one_lr_widths"] = one_lr
    m["gap_curves"] = {str(d): first[str(d)]["gap_curve"] for d in cfg.widths}
