"""One small LM trained four times: float32, bf16 inputs, FP8 with per-tensor scaling, FP8
without scaling. See __init__.py for the claims."""

from __future__ import annotations

import math

import torch

from repro.common.data import lm_token_streams, random_windows
from repro.common.tinylm import LMConfig, TinyLM, cosine_lr, evaluate, train
from repro.context import RunContext
from repro.papers.fp8_lm.fp8 import MODES, CastStats, to_low_precision


def train_mode(cfg, mode: str, train_ids, val_ids, seed: int):
    torch.manual_seed(seed)  # the same initial weights for every precision
    model = TinyLM(
        LMConfig.like(
            cfg,
            bias=False,
        )
    )
    stats = CastStats()
    to_low_precision(model, mode, cfg.margin, stats)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed + 1)  # the same batches for every precision
    losses = train(
        model,
        random_windows(train_ids, cfg.batch_size, cfg.seq_len, gen),
        cfg.steps,
        optimizer=opt,
        lr_at=lambda s: cosine_lr(s, cfg.steps, cfg.lr, max(1, cfg.steps // 20)),
    )
    val = math.inf
    if math.isfinite(losses[-1]):
        val = evaluate(model, val_ids, cfg.seq_len, cfg.batch_size, cfg.eval_batches)
    return val, losses, stats.fractions()


def smooth(xs: list[float], k: int = 20) -> list[float]:
    return [
        sum(xs[max(0, i - k + 1) : i + 1]) / len(xs[max(0, i - k + 1) : i + 1])
        for i in range(len(xs))
    ]


def plot(curves: dict[str, list[float]], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for mode, style in zip(MODES, ("-", "--", "-", ":")):
        ax.plot(smooth(curves[mode]), style, label=mode, lw=1.2)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (20-step mean)")
    ax.set_title("matmul inputs in each precision")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(cfg, ctx: RunContext) -> dict:
    train_ids, val_ids, _ = lm_token_streams(vocab_size=cfg.vocab_size, max_docs=cfg.max_docs)
    val, curves, casts = {}, {}, {}
    for mode in ctx.progress(MODES, desc="precisions"):
        val[mode], curves[mode], casts[mode] = train_mode(cfg, mode, train_ids, val_ids, ctx.seed)
        ctx.log(f"  {mode}: val {val[mode]:.4f}")
        ctx.metrics["val_loss"] = val
    ctx.metrics.update(
        cast_fractions={m: casts[m] for m in ("fp8", "fp8_unscaled")},
        fp8_minus_bf16=val["fp8"] - val["bf16"],
        bf16_minus_fp32=val["bf16"] - val["fp32"],
        unscaled_minus_bf16=val["fp8_unscaled"] - val["bf16"],
        unscaled_gradient_underflow=casts["fp8_unscaled"]["gradient"]["underflow"],
        scaled_gradient_underflow=casts["fp8"]["gradient"]["underflow"],
        unscaled_weight_underflow=casts["fp8_unscaled"]["weight"]["underflow"],
    )
    plot(curves, ctx.figure_path("fp8_loss_curves.png"))
    return {}
