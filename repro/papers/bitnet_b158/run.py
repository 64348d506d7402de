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
        gaps = {w: paired_differences(t["ternary"], t["fp"]) for w, t in table.items()}
        wide, narrow = table[str(widths[-1])], table[str(widths[0])]
        ctx.metrics.update(
            widths=widths,
            non_embedding_params=params,
            val_loss=table,
            val_loss_by_lr=by_lr,
            ternary_gap_by_width=gaps,
            binary_gap_by_width={
                w: paired_differences(t["binary"], t["fp"]) for w, t in table.items()
            },
            ternary_gap=gaps[str(widths[-1])],
            ternary_minus_binary=paired_differences(wide["ternary"], wide["binary"]),
            # learned gates: every kind at the widest and at the narrowest width
            **{f"{k}_below_unigram": below_unigram(wide[k], unigram) for k in KINDS},
            **{f"narrowest_{k}_below_unigram": below_unigram(narrow[k], unigram) for k in KINDS},
        )
        if len(widths) >= 2:
            # gap at the widest model minus gap at the narrowest: negative when the gap narrows
            ctx.metrics["gap_change_with_size"] = paired_differences(
                gaps[str(widths[-1])], gaps[str(widths[0])]
            )
    # a check of our layer: on the first seed's best ternary model of the widest width
    ctx.metrics.update(addonly_check(last_ternary, val_ids, cfg))
    mean_table = {w: {k: sum(v) / len(v) for k, v in t.items()} for w, t in table.items()}
    plot(widths, params, mean_table, ctx.figure_path("ternary_vs_fp.png"))
