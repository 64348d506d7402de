"""Transcoders against SAEs on one MLP layer of a small LM. See __init__.py for the claims."""

from __future__ import annotations

import copy
import math

import torch

from repro.common.data import lm_token_streams, random_windows, sequential_windows
from repro.common.stats import seeds_for, unigram_entropy
from repro.common.tinylm import LMConfig, TinyLM, cosine_lr, train
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


@torch.no_grad()
def batch_losses(model: TinyLM, val_ids, cfg, layer: int | None = None, hook=None) -> torch.Tensor:
    """Mean next-token cross-entropy of each held-out batch (the windows ``evaluate`` reads),
    with ``hook`` replacing the output of MLP ``layer`` when given: (eval_batches,)."""
    handle = model.blocks[layer].mlp.register_forward_hook(hook) if hook is not None else None
    try:
        out = [
            model(x, y)[1]
            for x, y in sequential_windows(
                val_ids, cfg.lm_batch, cfg.seq_len, max_batches=cfg.eval_batches
            )
        ]
    finally:
        if handle is not None:
            handle.remove()
    return torch.stack(out)


def ce_increase(spliced: torch.Tensor, base: torch.Tensor) -> tuple[float, float]:
    """(mean, standard error) of the per-batch loss increase over the unspliced model: the
    same text for both, so the error is that of the paired difference."""
    diff = (spliced - base).double()
    se = diff.std().item() / math.sqrt(len(diff)) if len(diff) > 1 else math.nan
    return diff.mean().item(), se


def live(points: list[dict]) -> list[dict]:
    """Sweep points with some active feature: a dictionary whose every feature died (L0 = 0)
    has no place on a log-L0 axis."""
    return [p for p in points if p["l0"] > 0]


def interp_log_l0(points: list[dict], at: float, key: str = "ce_increase") -> float:
    """``key`` (ΔCE by default) at L0 = ``at``, linear in log L0 between the two sweep points
    around it (the end value outside the swept range)."""
    pts = sorted(live(points), key=lambda p: p["l0"])
    xs = [math.log(p["l0"]) for p in pts]
    ys = [p[key] for p in pts]
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


def level_readings(tc: list[dict], sae: list[dict], levels) -> list[dict]:
    """The frontier read at fixed L0 levels: at each level both sweeps cover (never
    extrapolated), each kind's ΔCE and its standard error interpolated in log L0, their ratio's
    log (None where either ΔCE is ≤ 0), and the smaller of the two ΔCE/SE."""
    rows = []
    for level in levels:
        row: dict = {"l0": level}
        for name, pts in (("transcoder", tc), ("sae", sae)):
            l0s = [p["l0"] for p in live(pts)]
            covered = bool(l0s) and min(l0s) <= level <= max(l0s)
            row[name] = interp_log_l0(pts, level) if covered else None
            row[f"{name}_se"] = interp_log_l0(pts, level, "ce_increase_se") if covered else None
        t, s = row["transcoder"], row["sae"]
        ok = t is not None and s is not None and t > 0 and s > 0
        row["log_ratio"] = math.log(t / s) if ok else None
        row["min_z"] = min(_z(t, row["transcoder_se"]), _z(s, row["sae_se"])) if ok else 0.0
        rows.append(row)
    return rows


def _z(value: float, se: float | None) -> float:
    """value / its standard error; 0 (not resolved) when the error is not a positive number."""
    return value / se if se is not None and math.isfinite(se) and se > 0 else 0.0


def frontier_log_ratio(rows: list[dict]) -> float | None:
    """The finding's per-seed value: the mean over the levels of log(ΔCE_TC / ΔCE_SAE); None
    when some level has no ratio (not covered by both sweeps, or a ΔCE ≤ 0)."""
    logs = [r["log_ratio"] for r in rows]
    if not logs or any(x is None for x in logs):
        return None
    return sum(logs) / len(logs)


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


def plot(runs: dict, ablation: float, levels: list[float], path) -> None:
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
    for k, level in enumerate(levels):
        a.axvline(level, color="k", ls="--", lw=0.6, label="matched-L0 levels" if k == 0 else None)
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


def prepare(cfg, train_ids, val_ids, ctx: RunContext) -> dict:
    """The one LM of the run (seed ctx.seed: initialisation and data order), its activations
    at both layers on training windows and on the held-out windows, its per-batch held-out
    losses, and the loss increase from mean-ablating the studied MLP."""
    model, lm_losses = train_lm(cfg, train_ids, ctx.seed, ctx)
    base = batch_losses(model, val_ids, cfg)
    lm_ce = base.mean().item()
    ctx.log(f"  LM: held-out CE {lm_ce:.3f} nats/token after {cfg.lm_steps} steps")
    gen = torch.Generator().manual_seed(ctx.seed + 1)
    layers = (cfg.layer, cfg.later_layer)
    train_acts = collect(
        model,
        (next(random_windows(train_ids, cfg.collect_windows, cfg.seq_len, gen)),),
        layers,
    )
    # the held-out tokens batch_losses() scores, so L0/FVU and the loss describe the same text
    val_acts = collect(
        model,
        sequential_windows(val_ids, cfg.lm_batch, cfg.seq_len, max_batches=cfg.eval_batches),
        layers,
    )
    mean_out = train_acts[cfg.layer]["y"].mean(0)
    ablated = batch_losses(model, val_ids, cfg, cfg.layer, constant_hook(mean_out))
    ablation, ablation_se = ce_increase(ablated, base)
    ctx.log(f"  mean-ablating MLP {cfg.layer}: CE +{ablation:.4f} ± {ablation_se:.4f}")
    return {
        "model": model,
        "base": base,
        "train_acts": train_acts,
        "val_acts": val_acts,
        "metrics": {
            "lm_final_train_loss": lm_losses[-1],
            "lm_val_ce": lm_ce,
            "mean_ablation_ce_increase": ablation,
            "mean_ablation_ce_increase_se": ablation_se,
            "train_tokens": int(train_acts[cfg.layer]["x"].shape[0]),
        },
    }


def dictionary_seed(cfg, lm: dict, seed: int, val_ids, ctx: RunContext) -> tuple[dict, dict]:
    """One dictionary seed (initialisation and batch order of every dictionary): both kinds
    at every λ of the sweep on the run's LM, the frontier read at the L0 levels, the faithful
    reading at L0 = d_model/4 and the circuit check. Returns (per-seed metrics, the sweep)."""
    model, base = lm["model"], lm["base"]
    tr, va = lm["train_acts"][cfg.layer], lm["val_acts"][cfg.layer]
    ablation = lm["metrics"]["mean_ablation_ce_increase"]
    n_features = cfg.expansion * cfg.d_model
    runs: dict[str, list[dict]] = {k: [] for k in KINDS}
    early = {}
    for k, lam in enumerate(cfg.l1_coeffs):
        for kind in KINDS:
            # the transcoder and the SAE at one λ start from the same draws (initialisation
            # of same-shaped matrices, then the same batch indices): paired
            draws = torch.Generator().manual_seed(10_000 * (seed + 1) + k)
            s = TrainSettings(n_features, lam, cfg.dict_steps, cfg.dict_batch, cfg.dict_lr)
            x_in = tr["x"] if kind == "transcoder" else tr["y"]
            dic, losses = train_dictionary(kind, x_in, tr["y"], s, draws)
            with torch.no_grad():
                z = dic.encode(va["x"] if kind == "transcoder" else va["y"])
                pred = dic.decode(z)
            spliced = batch_losses(model, val_ids, cfg, cfg.layer, splice_hook(dic))
            rise, se = ce_increase(spliced, base)
            point = {
                "l1": lam,
                "l0": l0(z),
                "fvu": fvu(pred, va["y"]),
                "dead_fraction": ((z > 0).sum(0) == 0).float().mean().item(),
                "final_train_loss": losses[-1],
                "ce_increase": rise,
                "ce_increase_se": se,
            }
            runs[kind].append(point)
            early[(kind, lam)] = dic
            ctx.log(
                f"  seed {seed} {kind:10s} λ={lam:<6g} L0 {point['l0']:6.2f}  "
                f"FVU {point['fvu']:.3f}  CE +{rise:.4f} ± {se:.4f}"
            )

    budget = cfg.ref_l0_fraction * cfg.d_model
    tc_at = ce_at_budget(runs["transcoder"], budget)
    sae_at = ce_at_budget(runs["sae"], budget)
    levels = [f * cfg.d_model for f in cfg.l0_levels]
    rows = level_readings(runs["transcoder"], runs["sae"], levels)
    out = {
        "tc_ce_increase_at_ref_l0": tc_at,
        "sae_ce_increase_at_ref_l0": sae_at,
        "tc_gap_fraction_at_ref_l0": tc_at / ablation
        if tc_at is not None and ablation > 0
        else None,
        "sae_gap_fraction_at_ref_l0": sae_at / ablation
        if sae_at is not None and ablation > 0
        else None,
        "tc_over_sae_log_ratio": frontier_log_ratio(rows),
        "min_z_at_levels": min(r["min_z"] for r in rows),
        "levels": rows,
    }

    # circuit check: the transcoder closest to the L0 budget, and one on the later layer
    tc_pts = runs["transcoder"]
    lam_early = min(
        live(tc_pts) or tc_pts, key=lambda p: abs(math.log(max(p["l0"], 1e-9) / budget))
    )["l1"]
    gen = torch.Generator().manual_seed(10_000 * (seed + 1) + 999)
    tr2 = lm["train_acts"][cfg.later_layer]
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
            model,
            sequential_windows(val_ids, n_win, cfg.seq_len, max_batches=1),
            (cfg.layer, cfg.later_layer),
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
    return out, runs


def main(cfg, ctx: RunContext) -> None:
    """One LM (seed ctx.seed), then ``dictionary_seed`` for each seed ctx.seed + i: every
    dictionary measurement becomes a per-seed list. A seed's transcoders and SAEs share its
    initialisation draws and batch order, and all of them the LM and its activations, so the
    comparison is paired by seed."""
    if not (0 <= cfg.layer < cfg.later_layer < cfg.n_layer):
        raise ValueError("need 0 ≤ layer < later_layer < n_layer")
    if not cfg.l0_levels or any(not 0 < f for f in cfg.l0_levels):
        raise ValueError(f"l0_levels {cfg.l0_levels!r}: give positive fractions of d_model")
    train_ids, val_ids, _ = lm_token_streams(vocab_size=cfg.vocab_size)
    # the learned gate's floor: the unigram model of the training text on the held-out text
    unigram = unigram_entropy(train_ids, cfg.vocab_size, val_ids)
    m = ctx.metrics
    m["unigram_val_loss"] = unigram
    lm = prepare(cfg, train_ids, val_ids, ctx)
    m.update(lm["metrics"])
    m["lm_below_unigram"] = unigram - lm["metrics"]["lm_val_ce"]
    m["l0_levels"] = [f * cfg.d_model for f in cfg.l0_levels]
    seeds = seeds_for(ctx.seed, cfg.seeds)
    for i, seed in enumerate(ctx.progress(seeds, desc="dictionary seeds")):
        got, runs = dictionary_seed(cfg, lm, seed, val_ids, ctx)
        for k, v in got.items():
            m.setdefault(k, []).append(v)
        m.setdefault("sweep", []).append(runs)
        if i == len(seeds) - 1:
            plot(runs, m["mean_ablation_ce_increase"], m["l0_levels"],
                 ctx.figure_path("frontier.png"))  # fmt: skip
    # the per-level log ratios, one list over seeds per level (reported, not judged)
    m["tc_over_sae_log_ratio_by_level"] = {
        f"L0 {level:g}": [rows[k]["log_ratio"] for rows in m["levels"]]
        for k, level in enumerate(m["l0_levels"])
    }
    if any(r is None for r in m["tc_over_sae_log_ratio"]):
        ctx.log(
            "  on some seed a level had no matched-L0 ratio (not covered by both sweeps, or a "
            "loss increase ≤ 0): that seed is left out of the on-par interval"
        )
