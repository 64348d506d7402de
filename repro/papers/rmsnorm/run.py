"""RMSNorm against LayerNorm: agreement with the library, invariances, training loss, speed.
See __init__.py for the claims."""

from __future__ import annotations

import math
import statistics
import time

import torch

from repro.common.data import lm_token_streams, random_windows
from repro.common.stats import below_unigram, paired_differences, seeds_for, unigram_entropy
from repro.common.tinylm import LMConfig, TinyLM, cosine_lr, evaluate, train
from repro.context import RunContext

from .norms import LayerNorm, RMSNorm, make, swap_norms
from .timing import norm_callables, race


# --------------------------------------------------------------------------- correctness
def peer_error(dtype: torch.dtype, seed: int) -> float:
    """Largest relative difference between ours and ``torch.nn.RMSNorm`` (same gain) in the
    output and in the gradients of the input and the gain, over a few shapes."""
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    for shape in ((3, 7), (2, 5, 64), (4, 33, 512)):
        d = shape[-1]
        x = (3 * torch.randn(*shape, generator=gen, dtype=dtype)).requires_grad_(True)
        ours, peer = RMSNorm(d).to(dtype), torch.nn.RMSNorm(d, eps=1e-6).to(dtype)
        with torch.no_grad():
            ours.weight.copy_(torch.randn(d, generator=gen, dtype=dtype))
            peer.weight.copy_(ours.weight)
        g = torch.randn(*shape, generator=gen, dtype=dtype)
        outs = []
        for m in (ours, peer):
            y = m(x)
            gx, gw = torch.autograd.grad(y, (x, m.weight), g)
            outs.append((y, gx, gw))
        for a, b in zip(*outs):
            worst = max(worst, ((a - b).abs().max() / b.abs().max()).item())
    return worst


def invariances(seed: int) -> dict:
    """Table 1 of the paper: under a re-scaling x → λx both norms return the same output;
    under a re-centring x → x + c·1 only LayerNorm does. Deviations are relative to ‖y‖.
    The table's analysis leaves out ε, which breaks re-scaling invariance by about ε/mean(x²);
    a negligible ε here keeps the check about the norms' form."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 256, generator=gen, dtype=torch.float64)
    rms, ln = RMSNorm(256, eps=1e-14).double(), LayerNorm(256, eps=1e-14).double()

    def dev(m, x2):
        with torch.no_grad():
            y = m(x)
            return ((m(x2) - y).norm() / y.norm()).item()

    return {
        "rms_rescale_dev": dev(rms, 7.3 * x),
        "ln_rescale_dev": dev(ln, 7.3 * x),
        "rms_recentre_dev": dev(rms, x + 2.0),
        "ln_recentre_dev": dev(ln, x + 2.0),
    }


# --------------------------------------------------------------------------- training
def lm_config(cfg) -> LMConfig:
    return LMConfig.like(
        cfg,
    )


def train_lm(kind: str, cfg, train_ids, val_ids, seed: int) -> dict:
    """One pre-norm GPT with ``kind`` in every norm slot. The seed fixes the initial weights
    of everything but the norms (which start at gain 1, bias 0 either way) and the batches,
    so the LayerNorm and RMSNorm runs of one seed differ only in the norm."""
    torch.manual_seed(seed)
    model = swap_norms(TinyLM(lm_config(cfg)), kind)
    opt = torch.optim.AdamW(
        model.parameters(),
        lr=cfg.lr,
        betas=(0.9, 0.95),
        weight_decay=cfg.weight_decay,
        foreach=True,
    )
    batches = random_windows(
        train_ids, cfg.batch_size, cfg.seq_len, torch.Generator().manual_seed(seed + 1)
    )
    warm = max(1, int(0.05 * cfg.steps))
    every = max(1, cfg.steps // cfg.evals)
    curve = []

    def record(step: int, loss: float) -> None:
        if math.isfinite(loss) and ((step + 1) % every == 0 or step + 1 == cfg.steps):
            val = evaluate(model, val_ids, cfg.seq_len, batch_size=16, max_batches=cfg.eval_batches)
            curve.append([step + 1, val])

    losses = train(
        model,
        batches,
        cfg.steps,
        optimizer=opt,
        lr_at=lambda step: cosine_lr(step, cfg.steps, cfg.lr, warm),
        clip=1.0,
        on_step=record,
    )
    if len(losses) < cfg.steps or not math.isfinite(losses[-1]):
        return {"final": math.inf, "curve": curve}
    return {"final": curve[-1][1], "curve": curve}


# --------------------------------------------------------------------------- speed
def layer_speed(widths, rows: int, rounds: int, pair: tuple[str, str]) -> dict:
    """time(LayerNorm)/time(RMSNorm) per width, forward and forward+backward (float32):
    the median over rounds (``fwd``, ``fwd_bwd``) and every round's ratio (``*_rounds``)."""
    out: dict[str, dict[str, float]] = {"fwd": {}, "fwd_bwd": {}, "fwd_rounds": {}}
    out["fwd_bwd_rounds"] = {}
    gen = torch.Generator().manual_seed(0)
    for d in widths:
        x = torch.randn(rows, d, generator=gen)
        ln, rms = make(pair[0], d), make(pair[1], d)
        for mode, bwd in (("fwd", False), ("fwd_bwd", True)):
            r = race(
                norm_callables(ln, x, bwd),
                norm_callables(rms, x, bwd),
                rounds=rounds,
                clock=time.process_time,
            )
            out[mode][str(d)] = r["ratio"]
            out[f"{mode}_rounds"][str(d)] = r["ratios"]
    return out


def per_round_median(by_width: dict[str, list[float]]) -> list[float]:
    """Round k's median over widths of the ratio: the sample a layer-speed claim is judged on
    (interleaved rounds are the replicates of a timing; a seed changes nothing there)."""
    return [statistics.median(col) for col in zip(*by_width.values())]


def model_speed(cfg, rounds: int) -> list[float]:
    """time(LayerNorm model)/time(RMSNorm model) for one forward+backward training step of the
    LM we train, same weights otherwise, same batch; one ratio per interleaved round."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, cfg.vocab_size, (cfg.batch_size, cfg.seq_len), generator=gen)
    models = {}
    for kind in ("layernorm", "rmsnorm"):
        torch.manual_seed(0)
        models[kind] = swap_norms(TinyLM(lm_config(cfg)), kind)

    def step(m):
        def go():
            _, loss = m(x, x)
            loss.backward()
            m.zero_grad(set_to_none=True)

        return go

    # a whole step differs by a few percent at most, so it needs more rounds than one layer
    return race(
        step(models["layernorm"]),
        step(models["rmsnorm"]),
        rounds=3 * rounds,
        clock=time.process_time,
    )["ratios"]


# --------------------------------------------------------------------------- figures
def plot(metrics: dict, path_curves, path_speed) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.6))
    for kind, color in (("layernorm", "tab:blue"), ("rmsnorm", "tab:red")):
        for i, curve in enumerate(metrics[f"{kind}_curves"]):
            steps, vals = zip(*curve)
            ax.plot(steps, vals, color=color, alpha=0.8, lw=1, label=kind if i == 0 else None)
    ax.set_xlabel("step")
    ax.set_ylabel("validation loss (nats/token)")
    ax.set_title("small GPT on Brown: LayerNorm vs RMSNorm")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path_curves)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 3.6))
    for key, style, label in (("ours", "-", "ours (same ops)"), ("torch", "--", "torch modules")):
        for mode, marker in (("fwd", "o"), ("fwd_bwd", "s")):
            row = metrics[f"layer_speedup_{key}"][mode]
            ax.semilogx(
                [int(k) for k in row],
                list(row.values()),
                style,
                marker=marker,
                label=f"{label}, {mode.replace('_', '+')}",
            )
    ax.set_yscale("log")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.axhspan(1.07, 1.64, color="green", alpha=0.1, label="paper: 7–64% faster")
    ax.set_xlabel("width d")
    ax.set_ylabel("time(LayerNorm) / time(RMSNorm)")
    ax.set_title("RMSNorm speed-up, one CPU thread")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path_speed)
    plt.close(fig)


def main(cfg, ctx: RunContext) -> None:
    ctx.metrics.update(
        peer_max_rel_err_fp32=peer_error(torch.float32, ctx.seed),
        peer_max_rel_err_fp64=peer_error(torch.float64, ctx.seed),
    )
    inv = invariances(ctx.seed)
    ctx.metrics.update(inv)
    # "invariant": a change at float64 rounding level; "not invariant": a visible change
    ctx.metrics["invariances_as_in_table1"] = bool(
        inv["rms_rescale_dev"] < 1e-12
        and inv["ln_rescale_dev"] < 1e-12
        and inv["ln_recentre_dev"] < 1e-12
        and inv["rms_recentre_dev"] > 0.1
    )

    train_ids, val_ids, tok = lm_token_streams(vocab_size=cfg.vocab_size, max_docs=cfg.max_docs)
    # The unigram floor on exactly the held-out targets that ``evaluate`` scores.
    n_eval = cfg.eval_batches * 16 * cfg.seq_len
    unigram = unigram_entropy(train_ids, tok.get_vocab_size(), val_ids[1 : n_eval + 1])
    seeds = seeds_for(ctx.seed, cfg.seeds)
    ctx.metrics.update(unigram_entropy=unigram, seeds=seeds)
    finals: dict[str, list[float]] = {"layernorm": [], "rmsnorm": []}
    curves: dict[str, list] = {"layernorm": [], "rmsnorm": []}
    jobs = [(s, kind) for s in seeds for kind in ("layernorm", "rmsnorm")]
    for s, kind in ctx.progress(jobs, desc="training runs"):
        r = train_lm(kind, cfg, train_ids, val_ids, s)
        finals[kind].append(r["final"])
        curves[kind].append(r["curve"])
        ctx.metrics[f"{kind}_final_losses"] = finals[kind]
        ctx.metrics[f"{kind}_below_unigram"] = below_unigram(finals[kind], unigram)
    ctx.metrics.update(layernorm_curves=curves["layernorm"], rmsnorm_curves=curves["rmsnorm"])
    # paired by seed: the two runs of one seed share initial weights and batches
    ctx.metrics["loss_gap_rms_minus_ln"] = paired_differences(
        finals["rmsnorm"], finals["layernorm"]
    )

    ours = layer_speed(cfg.widths, cfg.rows, cfg.timing_rounds, ("layernorm", "rmsnorm"))
    lib = layer_speed(cfg.widths, cfg.rows, cfg.timing_rounds, ("torch-layernorm", "torch-rmsnorm"))
    ctx.metrics.update(
        layer_speedup_ours=ours,
        layer_speedup_torch=lib,
        layer_speedup_fwd_median=per_round_median(ours["fwd_rounds"]),
        layer_speedup_fwd_bwd_median=per_round_median(ours["fwd_bwd_rounds"]),
        model_step_speedup=model_speed(cfg, cfg.timing_rounds),
    )
    plot(ctx.metrics, ctx.figure_path("loss_curves.png"), ctx.figure_path("speedup.png"))
