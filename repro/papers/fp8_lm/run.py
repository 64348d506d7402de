"""One small LM trained three times per seed: bf16 matmul inputs (float32 AdamW), the FP8-LM
recipe (FP8 matmul inputs, FP8 weight gradients, FP8/FP16 optimiser moments and FP16 master
weights, all with per-tensor scaling) and FP8 matmul inputs without scaling; same seed -> same
initial weights and batches for all three (paired). See __init__.py for the claims."""

from __future__ import annotations

import math

import torch

from repro.common.data import lm_token_streams, random_windows
from repro.common.stats import below_unigram, paired_differences, seeds_for, unigram_entropy
from repro.common.tinylm import LMConfig, TinyLM, cosine_lr, evaluate, train
from repro.context import RunContext

from .fp8 import CastStats, FP8AdamW, LowPrecisionLinear, to_low_precision, training_state_bytes

# bf16: the paper's baseline (bf16 matmuls, float32 master weights, gradients and AdamW state);
# fp8: FP8-LM's recipe; fp8_unscaled: FP8 matmul inputs cast without scaling (float32 optimiser)
ARMS = ("bf16", "fp8", "fp8_unscaled")


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
    if mode == "fp8":  # FP8 gradients and optimiser state for the weights of the FP8 matmuls
        low = [m.weight for m in model.modules() if isinstance(m, LowPrecisionLinear)]
        opt = FP8AdamW(
            model.parameters(),
            low,
            lr=cfg.lr,
            betas=(0.9, 0.95),
            weight_decay=0.0,
            margin=cfg.margin,
        )
    else:
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
    fractions = stats.fractions()
    if isinstance(opt, FP8AdamW):
        fractions.update(opt.grad_stats.fractions())
    # training-state bytes of the block linears' weights (the parameters FP8-LM stores in low
    # precision), from the tensors the optimiser and the model hold after the last step
    block = [m.weight for m in model.modules() if isinstance(m, LowPrecisionLinear)]
    fractions["bytes_per_param"] = training_state_bytes(block, opt) / sum(p.numel() for p in block)
    return val, losses, fractions


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
    for mode, style in zip(ARMS, ("--", "-", ":")):
        ax.plot(smooth(curves[mode]), style, label=mode, lw=1.2)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (20-step mean)")
    ax.set_title("matmul inputs in each precision")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(cfg, ctx: RunContext) -> None:
    train_ids, val_ids, _ = lm_token_streams(vocab_size=cfg.vocab_size, max_docs=cfg.max_docs)
    # The learned gate's floor: the unigram cross-entropy on the very tokens evaluate() scores.
    span = val_ids[: cfg.eval_batches * cfg.batch_size * cfg.seq_len + 1]
    unigram = unigram_entropy(train_ids, cfg.vocab_size, span[1:])
    ctx.metrics["unigram_nats"] = unigram
    val: dict[str, list[float]] = {m: [] for m in ARMS}
    underflow: dict[str, list[float]] = {"fp8": [], "fp8_unscaled": []}
    wgrad_underflow, state_bytes = [], {}
    curves = {}
    for seed in ctx.progress(seeds_for(ctx.seed, cfg.seeds), desc="seeds"):
        for mode in ARMS:  # paired: every precision gets this seed's init and batches
            v, losses, casts = train_mode(cfg, mode, train_ids, val_ids, seed)
            val[mode].append(v)
            if mode in underflow:
                underflow[mode].append(casts["gradient"]["underflow"])
            if mode == "fp8":
                wgrad_underflow.append(casts["weight_gradient"]["underflow"])
            state_bytes[mode] = casts["bytes_per_param"]
            if seed == ctx.seed:
                curves[mode] = losses
            ctx.log(f"  seed {seed} {mode}: val {v:.4f}")
        ctx.metrics.update(
            val_loss=val,
            fp8_minus_bf16=paired_differences(val["fp8"], val["bf16"]),
            unscaled_minus_bf16=paired_differences(val["fp8_unscaled"], val["bf16"]),
            unscaled_gradient_underflow=list(underflow["fp8_unscaled"]),
            scaled_gradient_underflow=list(underflow["fp8"]),
            scaled_weight_gradient_underflow=wgrad_underflow,
            # bytes of weight + gradient + optimiser state per block-linear parameter, summed
            # over the tensors each arm holds (bf16's baseline keeps all four in float32)
            fp8_state_bytes_per_param=state_bytes["fp8"],
            bf16_state_bytes_per_param=state_bytes["bf16"],
            state_memory_saving=1 - state_bytes["fp8"] / state_bytes["bf16"],
            **{f"{m}_below_unigram": below_unigram(val[m], unigram) for m in ARMS},
        )
    plot(curves, ctx.figure_path("fp8_loss_curves.png"))
