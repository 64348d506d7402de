"""Ternary and binary small LMs against their full-precision twin, and the addition-only
ternary layer. See __init__.py for the claims."""

from __future__ import annotations

import math

import torch

from repro.common.data import lm_token_streams, random_windows, sequential_windows
from repro.common.stats import below_unigram, paired_differences, seeds_for, unigram_entropy
from repro.common.tinylm import LMConfig, TinyLM, cosine_lr, evaluate, train
from repro.context import RunContext

from .bitlinear import (
    BitLinear,
    absmax_int8,
    addonly_forward,
    addonly_ternary_int,
    to_bit_layers,
)

KINDS = ("fp", "ternary", "binary")


def make_model(cfg, width: int, kind: str, seed: int) -> TinyLM:
    """LLaMA-style parts as in BitNet b1.58 (RMSNorm, SwiGLU, no biases). Every kind starts
    from the same initial weights for a given width."""
    torch.manual_seed(seed)
    model = TinyLM(
        LMConfig.like(
            cfg,
            d_model=width,
            n_head=max(1, width // 16),
            norm="rmsnorm",
            ffn="swiglu",
            bias=False,
        )
    )
    return model if kind == "fp" else to_bit_layers(model, kind)


def train_one(cfg, width, kind, lr, train_ids, val_ids, seed) -> tuple[TinyLM, float, list]:
    model = make_model(cfg, width, kind, seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed + 1)  # same batches in the same order for every run
    warm = max(1, cfg.steps // 20)
    losses = train(
        model,
        random_windows(train_ids, cfg.batch_size, cfg.seq_len, gen),
        cfg.steps,
        optimizer=opt,
        lr_at=lambda s: cosine_lr(s, cfg.steps, lr, warm),
    )
    if not math.isfinite(losses[-1]):
        return model, math.inf, losses
    val = evaluate(model, val_ids, cfg.seq_len, cfg.batch_size, cfg.eval_batches)
    return model, val, losses


@torch.no_grad()
def addonly_check(model: TinyLM, val_ids, cfg) -> dict:
    """Feed one validation batch through the trained ternary model, capture the real input of
    every BitLinear, and recompute each layer with additions and subtractions only."""
    captured: dict[str, torch.Tensor] = {}
    hooks = [
        m.register_forward_hook(lambda mod, inp, out, n=name: captured.__setitem__(n, inp[0]))
        for name, m in model.named_modules()
        if isinstance(m, BitLinear)
    ]
    x, _ = next(sequential_windows(val_ids, cfg.batch_size, cfg.seq_len, max_batches=1))
    model.eval()
    model(x)
    for h in hooks:
        h.remove()
    layers = dict(model.named_modules())
    int_exact, rel_errs, n_adds, n_weights, n_zero = True, [], 0, 0, 0
    for name, inp in captured.items():
        layer = layers[name]
        inp = inp.reshape(-1, inp.shape[-1])[: cfg.addonly_tokens]  # (tokens, d_in)
        w_int, _ = layer.quantised_weight()
        x_int, _ = absmax_int8(inp)
        by_adds = addonly_ternary_int(x_int, w_int)
        # float64 products of integers below 2^53 are exact: this is the integer matmul
        by_matmul = (x_int.double() @ w_int.double().T).to(torch.int64)
        int_exact &= bool(torch.equal(by_adds, by_matmul))
        y_model = layer(inp)  # what the network computes in training (float32 fake quantisation)
        y_adds = addonly_forward(layer, inp)
        rel_errs.append(((y_adds - y_model).abs().max() / y_model.abs().max()).item())
        nz = int((w_int != 0).sum())
        n_adds += nz * inp.shape[0]
        n_weights += w_int.numel()
        n_zero += w_int.numel() - nz
    return {
        "addonly_int_exact": int_exact,
        "addonly_max_rel_err": max(rel_errs),
        "addonly_layers_checked": len(captured),
        "ternary_zero_fraction": n_zero / n_weights,
        "addonly_adds_per_token": n_adds / min(cfg.addonly_tokens, x.numel()),
    }


def gap_slope(widths: list[int], gaps: list[float]) -> float:
    """Least-squares slope of the gap against log2(width): nats per doubling of the width
    (negative when the gap narrows as the model grows)."""
    xs = [math.log2(w) for w in widths]
    mx, my = sum(xs) / len(xs), sum(gaps) / len(gaps)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (g - my) for x, g in zip(xs, gaps)) / sxx


def width_roles(widths: list[int]) -> dict[str, int]:
    """The widths the per-width findings name: the widest ("" prefix, as before), the
    narrowest and, with three or more widths, the middle one."""
    roles = {"": widths[-1]}
    if len(widths) >= 2:
        roles["narrowest_"] = widths[0]
    if len(widths) >= 3:
        roles["middle_"] = widths[len(widths) // 2]
    return roles


def width_metrics(widths: list[int], table: dict, unigram: float) -> dict:
    """Per-seed metrics for every finding from table[width][kind] (one loss per seed)."""
    out: dict = {}
    gaps = {
        str(w): paired_differences(table[str(w)]["ternary"], table[str(w)]["fp"]) for w in widths
    }
    out["ternary_gap_by_width"] = gaps
    out["binary_gap_by_width"] = {
        str(w): paired_differences(table[str(w)]["binary"], table[str(w)]["fp"]) for w in widths
    }
    out["ternary_minus_binary_by_width"] = {
        str(w): paired_differences(table[str(w)]["ternary"], table[str(w)]["binary"])
        for w in widths
    }
    out["ternary_gap"] = gaps[str(widths[-1])]
    for prefix, w in width_roles(widths).items():
        out[f"{prefix}ternary_minus_binary"] = out["ternary_minus_binary_by_width"][str(w)]
        for k in KINDS:  # learned gates of the arms each per-width finding compares
            out[f"{prefix}{k}_below_unigram"] = below_unigram(table[str(w)][k], unigram)
    n = len(table[str(widths[0])]["fp"])
    for k in KINDS:  # the worst width per seed: the gate of the finding that spans all widths
        out[f"all_widths_{k}_below_unigram"] = [
            min(unigram - table[str(w)][k][i] for w in widths) for i in range(n)
        ]
    if len(widths) >= 2:
        out["gap_slope_per_doubling"] = [
            gap_slope(widths, [gaps[str(w)][i] for w in widths]) for i in range(n)
        ]
    return out


def plot(widths, params, table, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    for kind, marker in zip(KINDS, "os^"):
        a.plot(params, [table[str(w)][kind] for w in widths], marker + "-", label=kind)
    a.set_xscale("log")
    a.set_xlabel("non-embedding parameters")
    a.set_ylabel("validation loss (nats/token)")
    a.set_title("best of the learning-rate grid")
    a.legend()
    for kind, marker in (("ternary", "s"), ("binary", "^")):
        b.plot(
            params,
            [table[str(w)][kind] - table[str(w)]["fp"] for w in widths],
            marker + "-",
            label=f"{kind} − fp",
        )
    b.axhline(0, color="k", lw=0.8)
    b.set_xscale("log")
    b.set_xlabel("non-embedding parameters")
    b.set_ylabel("loss gap (nats/token)")
    b.set_title("gap to the full-precision twin")
    b.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(cfg, ctx: RunContext) -> None:
    train_ids, val_ids, _ = lm_token_streams(vocab_size=cfg.vocab_size, max_docs=cfg.max_docs)
    # The learned gate's floor: the unigram cross-entropy on the tokens evaluate() scores.
    span = val_ids[: cfg.eval_batches * cfg.batch_size * cfg.seq_len + 1]
    unigram = unigram_entropy(train_ids, cfg.vocab_size, span[1:])
    ctx.metrics["unigram_nats"] = unigram
    widths = sorted(cfg.widths)
    if len(widths) < 2:
        ctx.skip("gap-narrows-with-size", "one model width in this preset; the full preset has 3")
        ctx.skip("ternary-beats-binary-narrowest", "one model width in this preset")
    if len(widths) < 3:
        ctx.skip("ternary-beats-binary-middle", "fewer than three model widths in this preset")
    ctx.skip("parity-at-3b", "needs ≥ 3B-parameter models and 100B tokens; ours have < 1M")
    # table[width][kind]: per seed, the best validation loss over the learning-rate grid.
    # Seed s gives fp, ternary and binary the same initial weights and batches (paired).
    table: dict[str, dict[str, list[float]]] = {str(w): {k: [] for k in KINDS} for w in widths}
    by_lr: dict[str, dict[str, dict[str, list[float]]]] = {}
    params, last_ternary = [], None
    for i, seed in enumerate(seeds_for(ctx.seed, cfg.seeds)):
        for width in widths:
            for kind in KINDS:
                best = math.inf
                for lr in cfg.lrs:
                    model, val, _ = train_one(cfg, width, kind, lr, train_ids, val_ids, seed)
                    by_lr.setdefault(str(width), {}).setdefault(kind, {}).setdefault(
                        f"{lr:g}", []
                    ).append(val)
                    if i == 0 and kind == "fp" and lr == cfg.lrs[0]:
                        params.append(model.non_embedding_params())
                    if val < best:
                        best = val
                        if i == 0 and kind == "ternary":
                            last_ternary = model  # first seed's best ternary model, widest
                    ctx.log(f"  seed {seed} d={width} {kind} lr={lr:g}: val {val:.4f}")
                table[str(width)][kind].append(best)
        ctx.metrics.update(
            widths=widths,
            non_embedding_params=params,
            val_loss=table,
            val_loss_by_lr=by_lr,
            **width_metrics(widths, table, unigram),
        )
    # a check of our layer: on the first seed's best ternary model of the widest width
    ctx.metrics.update(addonly_check(last_ternary, val_ids, cfg))
    mean_table = {w: {k: sum(v) / len(v) for k, v in t.items()} for w, t in table.items()}
    plot(widths, params, mean_table, ctx.figure_path("ternary_vs_fp.png"))
