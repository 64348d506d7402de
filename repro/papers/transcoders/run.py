"""Transcoders against SAEs on one MLP layer of a small LM. See __init__.py for the claims."""

from __future__ import annotations

import copy
import math
import time

import torch

from repro.common.data import lm_token_streams, random_windows, sequential_windows
from repro.common.stats import seeds_for, unigram_entropy
from repro.common.tinylm import LMConfig, TinyLM, cosine_lr, evaluate, train
from repro.context import RunContext

from .dictionary import (
    SparseDictionary,
    TrainSettings,
    constant_hook,
    direct_attribution,
    fvu,
    input_invariant_weights,
    l0,
    layernorm_sigma,
    splice_hook,
    train_dictionary,
)

KINDS = ("transcoder", "sae")


def train_lm(cfg, train_ids, seed: int, ctx: RunContext) -> tuple[TinyLM, list[float]]:
    torch.manual_seed(seed)
    model = TinyLM(
        LMConfig.like(
            cfg,
            ffn="gelu",  # GPT-2's MLP, the paper's main model
        )
    )
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lm_lr, betas=(0.9, 0.95), weight_decay=0.1)
    gen = torch.Generator().manual_seed(seed)
    warm = max(1, cfg.lm_steps // 20)
    losses = train(
        model,
        random_windows(train_ids, cfg.lm_batch, cfg.seq_len, gen),
        cfg.lm_steps,
        optimizer=opt,
        lr_at=lambda s: cosine_lr(s, cfg.lm_steps, cfg.lm_lr, warm),
        progress=ctx.progress,
    )
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, losses


@torch.no_grad()
def collect(model: TinyLM, windows, layers: tuple[int, ...]) -> dict[int, dict[str, torch.Tensor]]:
    """(MLP input after the pre-norm, MLP output, residual stream entering the pre-norm) of
    each layer in ``layers``, one row per token, over all windows."""
    store: dict[int, dict[str, list]] = {k: {"x": [], "y": [], "resid": []} for k in layers}
    handles = []
    for k in layers:
        block = model.blocks[k]

        def mlp_hook(module, inputs, output, k=k):
            store[k]["x"].append(inputs[0].reshape(-1, inputs[0].shape[-1]))  # (B·T, C)
            store[k]["y"].append(output.reshape(-1, output.shape[-1]))

        def ln_hook(module, inputs, output, k=k):
            store[k]["resid"].append(inputs[0].reshape(-1, inputs[0].shape[-1]))

        handles += [block.mlp.register_forward_hook(mlp_hook)]
        handles += [block.ln2.register_forward_hook(ln_hook)]
    try:
        for x, _ in windows:
            model(x)
    finally:
        for h in handles:
            h.remove()
    return {k: {n: torch.cat(v) for n, v in d.items()} for k, d in store.items()}


def spliced_loss(model: TinyLM, layer: int, hook, val_ids, cfg) -> float:
    handle = model.blocks[layer].mlp.register_forward_hook(hook)
    try:
        return evaluate(model, val_ids, cfg.seq_len, cfg.lm_batch, cfg.eval_batches)
    finally:
        handle.remove()


def live(points: list[dict]) -> list[dict]:
    """Sweep points with some active feature: a dictionary whose every feature died (L0 = 0)
    has no place on a log-L0 axis."""
    return [p for p in points if p["l0"] > 0]


def interp_log_l0(points: list[dict], at: float) -> float:
    """ΔCE at L0 = ``at``, linear in log L0 between the two sweep points around it."""
    pts = sorted(live(points), key=lambda p: p["l0"])
    xs = [math.log(p["l0"]) for p in pts]
    ys = [p["ce_increase"] for p in pts]
    x = math.log(at)
    if x <= xs[0]:
        return ys[0]
    for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0) if x1 > x0 else min(y0, y1)
    return ys[-1]


def ce_at_budget(points: list[dict], budget: float) -> float | None:
    """ΔCE read at L0 = budget. If every point is sparser than the budget, the densest one
    (a conservative reading); if every point is denser, the budget was not reached: None
    (not measured on this seed)."""
    points = live(points)
    l0s = [p["l0"] for p in points]
    if not l0s or min(l0s) > budget:
        return None
    if max(l0s) < budget:
        return min(points, key=lambda p: -p["l0"])["ce_increase"]
    return interp_log_l0(points, budget)


def matched_ratio(tc: list[dict], sae: list[dict], n: int = 9) -> tuple[float | None, list]:
    """Geometric mean over n log-spaced L0 values in the range both sweeps cover of
    ΔCE_transcoder(L0) / ΔCE_SAE(L0); None when the ranges do not overlap."""
    tc, sae = live(tc), live(sae)
    if not tc or not sae:
        return None, []
    lo = max(min(p["l0"] for p in tc), min(p["l0"] for p in sae))
    hi = min(max(p["l0"] for p in tc), max(p["l0"] for p in sae))
    if lo >= hi:
        return None, []
    grid = [math.exp(math.log(lo) + (math.log(hi) - math.log(lo)) * t / (n - 1)) for t in range(n)]
    rows = [(g, interp_log_l0(tc, g), interp_log_l0(sae, g)) for g in grid]
    if any(s <= 0 for _, _, s in rows):
        return None, rows
    ratio = math.exp(sum(math.log(max(t, 1e-9) / s) for _, t, s in rows) / n)
    return ratio, rows


def circuit_check(
    early: SparseDictionary,
    late: SparseDictionary,
    ln: torch.nn.LayerNorm,
    x_early: torch.Tensor,
    resid_late: torch.Tensor,
    pairs: int,
    gen: torch.Generator,
) -> dict:
    """Measured direct-path attribution against z_i(x)/σ(x) · w_ij, in float64."""
    early, late = copy.deepcopy(early).double(), copy.deepcopy(late).double()
    ln = copy.deepcopy(ln).double()
    with torch.no_grad():
        x_early, resid = x_early.double(), resid_late.double()
        z = early.encode(x_early)  # (N, n_early)
        sigma = layernorm_sigma(ln, resid)  # (N, 1)
        w = input_invariant_weights(early, late, ln)  # (n_late, n_early)
        alive = (z > 0).sum(0).nonzero().flatten()
        worst, ratios_spread, real_err = 0.0, 0.0, []
        for _ in range(pairs):
            i = int(alive[torch.randint(len(alive), (1,), generator=gen)])
            j = int(torch.randint(late.W_enc.shape[0], (1,), generator=gen))
            measured = direct_attribution(early, late, ln, resid, z, i, j)
            predicted = z[:, i] * w[j, i] / sigma[:, 0]
            scale = measured.abs().max().clamp_min(1e-300)
            worst = max(worst, ((measured - predicted).abs().max() / scale).item())
            on = z[:, i] > 0
            # measured / (z_i/σ) on active tokens: the recovered weight, one per token
            rec = measured[on] / (z[on, i] / sigma[on, 0])
            if w[j, i].abs() > 0:
                ratios_spread = max(
                    ratios_spread, ((rec - w[j, i]).abs().max() / w[j, i].abs()).item()
                )
            # the same ablation under the real LayerNorm (σ recomputed): how good is freezing σ
            piece = z[:, i : i + 1] * early.feature_output(i)
            pre_real = torch.nn.functional.linear(ln(resid) / late.in_scale, late.W_enc)
            pre_abl = torch.nn.functional.linear(ln(resid - piece) / late.in_scale, late.W_enc)
            real = (pre_real - pre_abl)[on, j]
            if real.numel():
                real_err.append(
                    ((real - predicted[on]).norm() / real.norm().clamp_min(1e-300)).item()
                )
    real_err.sort()
    return {
        "attribution_max_rel_err": worst,
        "recovered_weight_max_rel_spread": ratios_spread,
        "frozen_sigma_vs_real_ln_median_rel_err": real_err[len(real_err) // 2]
        if real_err
        else None,
        "attribution_tokens_checked": int(x_early.shape[0]),
    }


def plot(runs: dict, ablation: float, budget: float, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    style = {
        "transcoder": ("tab:blue", "o", "transcoder (MLP in → MLP out)"),
        "sae": ("tab:orange", "s", "SAE (MLP out → MLP out)"),
    }
    for kind, pts in runs.items():
        pts = sorted(pts, key=lambda p: p["l0"])
        color, marker, label = style[kind]
        a.plot(
            [p["l0"] for p in pts],
            [p["ce_increase"] for p in pts],
            marker=marker,
            color=color,
            label=label,
        )
        for p in pts:
            a.annotate(
                f"λ={p['l1']:g}",
                (p["l0"], p["ce_increase"]),
                fontsize=6,
                textcoords="offset points",
                xytext=(3, 3),
            )
        b.plot(
            [p["l0"] for p in pts], [p["fvu"] for p in pts], marker=marker, color=color, label=label
        )
    a.axhline(ablation, color="gray", ls=":", lw=1, label="MLP mean-ablated")
    a.axvline(budget, color="k", ls="--", lw=0.8, label="L0 = d_model/4")
    a.set_xscale("log")
    a.set_yscale("log")
    a.set_xlabel("L0 (active features per token)")
    a.set_ylabel("CE increase when spliced in (nats/token)")
    a.set_title("sparsity vs faithfulness")
    a.legend(fontsize=7)
    b.set_xscale("log")
    b.set_yscale("log")
    b.set_xlabel("L0 (active features per token)")
    b.set_ylabel("fraction of variance unexplained")
    b.set_title("MLP-output reconstruction")
    b.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def one_seed(cfg, seed: int, train_ids, val_ids, ctx: RunContext, figure: bool) -> dict:
    """Everything for one seed: the LM (initialisation and data order from ``seed``), the λ
    sweep of both kinds on its activations, the frontier readings and the circuit check."""
    out: dict = {}
    model, lm_losses = train_lm(cfg, train_ids, seed, ctx)
    base = evaluate(model, val_ids, cfg.seq_len, cfg.lm_batch, cfg.eval_batches)
    out.update(lm_final_train_loss=lm_losses[-1], lm_val_ce=base)
    ctx.log(f"  seed {seed}, LM: val CE {base:.3f} nats/token after {cfg.lm_steps} steps")

    gen = torch.Generator().manual_seed(seed + 1)
    layers = (cfg.layer, cfg.later_layer)
    train_acts = collect(
        model,
        (next(random_windows(train_ids, cfg.collect_windows, cfg.seq_len, gen)),),
        layers,
    )
    # the held-out tokens evaluate() scores, so L0/FVU and the loss describe the same text
    val_acts = collect(
        model,
        sequential_windows(val_ids, cfg.lm_batch, cfg.seq_len, max_batches=cfg.eval_batches),
        layers,
    )
    tr, va = train_acts[cfg.layer], val_acts[cfg.layer]
    ablation = spliced_loss(model, cfg.layer, constant_hook(tr["y"].mean(0)), val_ids, cfg) - base
    out.update(mean_ablation_ce_increase=ablation, train_tokens=int(tr["x"].shape[0]))
    ctx.log(f"  mean-ablating MLP {cfg.layer}: CE +{ablation:.4f}")

    n_features = cfg.expansion * cfg.d_model
    runs: dict[str, list[dict]] = {k: [] for k in KINDS}
    sweep = [(k, lam) for lam in cfg.l1_coeffs for k in KINDS]
    early = {}
    for kind, lam in ctx.progress(sweep, desc="dictionaries"):
        s = TrainSettings(n_features, lam, cfg.dict_steps, cfg.dict_batch, cfg.dict_lr)
        x_in = tr["x"] if kind == "transcoder" else tr["y"]
        dic, losses = train_dictionary(kind, x_in, tr["y"], s, gen)
        with torch.no_grad():
            z = dic.encode(va["x"] if kind == "transcoder" else va["y"])
            pred = dic.decode(z)
        point = {
            "l1": lam,
            "l0": l0(z),
            "fvu": fvu(pred, va["y"]),
            "dead_fraction": ((z > 0).sum(0) == 0).float().mean().item(),
            "final_train_loss": losses[-1],
            "ce_increase": spliced_loss(model, cfg.layer, splice_hook(dic), val_ids, cfg) - base,
        }
        runs[kind].append(point)
        early[(kind, lam)] = dic
        ctx.log(
            f"  {kind:10s} λ={lam:<6g} L0 {point['l0']:6.2f}  FVU {point['fvu']:.3f}  "
            f"CE +{point['ce_increase']:.4f}"
        )

    budget = cfg.ref_l0_fraction * cfg.d_model
    tc_at = ce_at_budget(runs["transcoder"], budget)
    sae_at = ce_at_budget(runs["sae"], budget)
    ratio, rows = matched_ratio(runs["transcoder"], runs["sae"])
    out.update(
        sweep=runs,
        ref_l0=budget,
        tc_ce_increase_at_ref_l0=tc_at,
        sae_ce_increase_at_ref_l0=sae_at,
        tc_gap_fraction_at_ref_l0=tc_at / ablation if tc_at is not None and ablation > 0 else None,
        sae_gap_fraction_at_ref_l0=sae_at / ablation
        if sae_at is not None and ablation > 0
        else None,
        tc_over_sae_ce_increase=ratio,
        tc_over_sae_log_ratio=math.log(ratio) if ratio else None,
        tc_over_sae_max_ratio=max((t / s for _, t, s in rows if s > 0), default=None),
        matched_l0_grid=[{"l0": g, "transcoder": t, "sae": s} for g, t, s in rows],
    )
    if figure:
        plot(runs, ablation, budget, ctx.figure_path("frontier.png"))

    # circuit check: the transcoder closest to the L0 budget, and one on the later layer
    tc_pts = runs["transcoder"]
    lam_early = min(
        live(tc_pts) or tc_pts, key=lambda p: abs(math.log(max(p["l0"], 1e-9) / budget))
    )["l1"]
    tr2 = train_acts[cfg.later_layer]
    late, _ = train_dictionary(
        "transcoder",
        tr2["x"],
        tr2["y"],
        TrainSettings(n_features, cfg.later_l1, cfg.dict_steps, cfg.dict_batch, cfg.dict_lr),
        gen,
    )
    tc_early = early[("transcoder", lam_early)]
    # the residual stream of the model with the early transcoder in place of its MLP
    handle = model.blocks[cfg.layer].mlp.register_forward_hook(splice_hook(tc_early))
    try:
        n_win = max(1, math.ceil(cfg.attribution_tokens / cfg.seq_len))
        spliced = collect(
            model, sequential_windows(val_ids, n_win, cfg.seq_len, max_batches=1), layers
        )
    finally:
        handle.remove()
    circuit = circuit_check(
        tc_early,
        late,
        model.blocks[cfg.later_layer].ln2,
        spliced[cfg.layer]["x"],
        spliced[cfg.later_layer]["resid"],
        cfg.attribution_pairs,
        gen,
    )
    out.update(circuit, circuit_early_l1=lam_early)
    return out


def main(cfg, ctx: RunContext) -> None:
    """``one_seed`` for each seed (ctx.seed + i); every measurement becomes a per-seed list.
    The transcoder and the SAE of one seed share that seed's LM and activations (paired)."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if not (0 <= cfg.layer < cfg.later_layer < cfg.n_layer):
        raise ValueError("need 0 ≤ layer < later_layer < n_layer")
    train_ids, val_ids, _ = lm_token_streams(vocab_size=cfg.vocab_size)
    # the learned gate's floor: the unigram model of the training text on the held-out text
    unigram = unigram_entropy(train_ids, cfg.vocab_size, val_ids)
    ctx.metrics["unigram_val_loss"] = unigram
    seeds = seeds_for(ctx.seed, cfg.seeds)
    for i, seed in enumerate(seeds):
        got = one_seed(cfg, seed, train_ids, val_ids, ctx, figure=i == len(seeds) - 1)
        for k, v in got.items():
            ctx.metrics.setdefault(k, []).append(v)
        ctx.metrics.setdefault("lm_below_unigram", []).append(unigram - got["lm_val_ce"])
    if any(r is None for r in ctx.metrics["tc_over_sae_log_ratio"]):
        ctx.skip(
            "on-par-with-sae",
            "on some seed no matched-L0 ratio could be formed (the λ sweeps share no L0 range, "
            "or an SAE's loss increase is ≤ 0, i.e. at noise level)",
        )
    ctx.metrics.update(
        cpu_time_s=time.process_time() - cpu0, wall_time_s=time.perf_counter() - wall0
    )
