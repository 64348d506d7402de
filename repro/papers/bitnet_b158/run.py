"""Ternary and binary small LMs against their full-precision twin, and the addition-only
ternary layer. See __init__.py for the claims."""

from __future__ import annotations

import math

import torch

from repro.common.data import lm_token_streams, random_windows, sequential_windows
from repro.common.tinylm import LMConfig, TinyLM, cosine_lr, evaluate, train
from repro.context import RunContext
from repro.papers.bitnet_b158.bitlinear import (
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


def main(cfg, ctx: RunContext) -> dict:
    train_ids, val_ids, _ = lm_token_streams(vocab_size=cfg.vocab_size, max_docs=cfg.max_docs)
    widths = sorted(cfg.widths)
    table: dict[str, dict[str, float]] = {}
    by_lr: dict[str, dict[str, dict[str, float]]] = {}
    params, last_ternary = [], None
    jobs = [(w, k, lr) for w in widths for k in KINDS for lr in cfg.lrs]
    for width, kind, lr in ctx.progress(jobs, desc="runs"):
        model, val, _ = train_one(cfg, width, kind, lr, train_ids, val_ids, ctx.seed)
        by_lr.setdefault(str(width), {}).setdefault(kind, {})[f"{lr:g}"] = val
        row = table.setdefault(str(width), {})
        row[kind] = min(val, row.get(kind, math.inf))
        if kind == "fp" and lr == cfg.lrs[0]:
            params.append(model.non_embedding_params())
        if kind == "ternary" and val == row[kind]:
            last_ternary = model  # the best ternary model of the widest width so far
        ctx.log(f"  d={width} {kind} lr={lr:g}: val {val:.4f}")
    gaps = {w: table[w]["ternary"] - table[w]["fp"] for w in table}
    ctx.metrics.update(
        widths=widths,
        non_embedding_params=params,
        val_loss=table,
        val_loss_by_lr=by_lr,
        ternary_gap_by_width=gaps,
        binary_gap_by_width={w: table[w]["binary"] - table[w]["fp"] for w in table},
        ternary_gap=gaps[str(widths[-1])],
        ternary_minus_binary=table[str(widths[-1])]["ternary"] - table[str(widths[-1])]["binary"],
    )
    if len(widths) >= 2:
        # gap at the widest model minus gap at the narrowest: negative when the gap narrows
        ctx.metrics["gap_change_with_size"] = gaps[str(widths[-1])] - gaps[str(widths[0])]
    else:
        ctx.skip("gap-narrows-with-size", "one model width in this preset; the full preset has 3")
    ctx.skip("parity-at-3b", "needs ≥ 3B-parameter models and 100B tokens; ours have < 1M")
    ctx.metrics.update(addonly_check(last_ternary, val_ids, cfg))
    plot(widths, params, table, ctx.figure_path("ternary_vs_fp.png"))
    return {}
