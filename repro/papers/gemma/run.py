"""Measurements for the Gemma reproduction. See __init__.py for the claims."""

from __future__ import annotations

import math

import torch

from repro.common.data import lm_token_streams, random_windows
from repro.common.stats import (
    below_unigram,
    inside_grid,
    paired_differences,
    seeds_for,
    unigram_entropy,
)
from repro.common.tinylm import cosine_lr, evaluate, train
from repro.context import RunContext

from . import PAPER_COUNTS
from .model import GEMMA_2B, GEMMA_7B, Gemma, GemmaConfig, count_instance, param_counts

ARMS = ("mqa", "mha")  # Gemma 2B's multi-query attention; multi-head attention (Gemma 7B's)


def arm_config(cfg, arm: str) -> GemmaConfig:
    """The tiny model of one arm, at equal parameters.

    "mha": n_head key/value heads and the feed-forward width of the preset (ffn_ratio · d).
    "mqa": one key/value head, and the feed-forward made wider by exactly the parameters the
    shared key/value head saves (Shazeer 2019 compares the two the same way): per layer the
    k and v projections shrink by 2·d·(n_head − 1)·head_dim, and each unit of GeGLU's half-width
    costs 3·d (gate, up, down)."""
    ffn = cfg.ffn_ratio * cfg.d_model
    if arm == "mha":
        return GemmaConfig(
            cfg.vocab_size, cfg.d_model, cfg.n_layer, cfg.n_head, cfg.n_head, cfg.head_dim, ffn
        )
    if arm != "mqa":
        raise ValueError(f"arm {arm!r}: use one of {ARMS}")
    saved = 2 * cfg.d_model * (cfg.n_head - 1) * cfg.head_dim
    if saved % (3 * cfg.d_model):
        raise ValueError(
            f"n_head={cfg.n_head}, head_dim={cfg.head_dim}: the {saved} key/value parameters "
            "multi-query attention saves per layer are not a whole number of GeGLU units "
            "(3·d each); pick 2·(n_head − 1)·head_dim divisible by 3"
        )
    extra = saved // (3 * cfg.d_model)  # added to each of gate and up
    return GemmaConfig(
        cfg.vocab_size, cfg.d_model, cfg.n_layer, cfg.n_head, 1, cfg.head_dim, ffn + 2 * extra
    )


def train_tiny(gc: GemmaConfig, cfg, lr: float, train_ids, seed: int, ctx: RunContext):
    """One tiny Gemma trained from ``seed`` (initialisation and data order, the same for both
    arms); returns the model and its training losses."""
    torch.manual_seed(seed)
    model = Gemma(gc).to(ctx.device)
    gen = torch.Generator().manual_seed(seed)
    batches = random_windows(train_ids, cfg.batch_size, cfg.seq_len, generator=gen)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.1)
    warmup = max(1, cfg.steps // 20)
    losses = train(
        model,
        batches,
        cfg.steps,
        optimizer=opt,
        lr_at=lambda s: cosine_lr(s, cfg.steps, lr, warmup),
        device=ctx.device,
        progress=ctx.progress,
    )
    return model.cpu(), losses


def plot(curves, unigram, counts, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    for arm, losses in curves.items():
        a.plot(losses, lw=0.8, label=f"{arm} train loss (last seed)")
    a.axhline(unigram, color="k", ls=":", label=f"unigram baseline {unigram:.2f}")
    a.set_xlabel("step")
    a.set_ylabel("nats / token")
    a.set_title("tiny Gemma on Brown: MQA vs MHA")
    a.legend()
    labels = ["2B emb", "2B non-emb", "7B emb", "7B non-emb"]
    ours = [counts[k] / 1e9 for k in ("2b_e", "2b_n", "7b_e", "7b_n")]
    paper = [v / 1e9 for size in ("2b", "7b") for v in PAPER_COUNTS[size]]
    xs = range(len(labels))
    b.bar([x - 0.2 for x in xs], paper, width=0.4, label="paper (Table 2)")
    b.bar([x + 0.2 for x in xs], ours, width=0.4, label="ours (built on meta device)")
    b.set_xticks(list(xs), labels)
    b.set_ylabel("billions of parameters")
    b.set_title("parameter counts")
    b.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(cfg, ctx: RunContext) -> None:
    if len(cfg.lrs) < 3:
        raise ValueError(f"lrs: {cfg.lrs!r}; each arm picks its lr from a grid of ≥ 3 values")
    # 1. Parameter counts of the published sizes, built for real on the meta device (checks).
    counts = {}
    agree = True
    for name, gc in (("2b", GEMMA_2B), ("7b", GEMMA_7B)):
        emb, non_emb = count_instance(gc)
        f_emb, f_non = param_counts(gc)
        agree &= (emb, non_emb) == (f_emb, f_non)
        counts[f"{name}_e"], counts[f"{name}_n"] = emb, non_emb
        ctx.metrics[f"params_{name}_embedding"] = emb
        ctx.metrics[f"params_{name}_non_embedding"] = non_emb
        ctx.metrics[f"formula_{name}"] = [f_emb, f_non]

    # 2. The two tiny arms: the same parameter count (a check), the formula on both.
    arms = {arm: arm_config(cfg, arm) for arm in ARMS}
    for arm, gc in arms.items():
        numel = sum(p.numel() for p in Gemma(gc).parameters())
        f_emb, f_non = param_counts(gc)
        agree &= numel == f_emb + f_non
        ctx.metrics[f"{arm}_params"] = numel
        ctx.metrics[f"{arm}_ffn_hidden"] = gc.ffn_hidden
    ctx.metrics["formula_equals_instance"] = agree
    ctx.metrics["arms_equal_params"] = ctx.metrics["mqa_params"] == ctx.metrics["mha_params"]

    # 3. Train both arms, paired by seed. Held-out text is split in two: the learning rate is
    # picked on the "dev" half, every reported loss is measured on the "test" half.
    train_ids, val_ids, _ = lm_token_streams(vocab_size=cfg.vocab_size, kind="bpe")
    half = len(val_ids) // 2
    test_ids, dev_ids = val_ids[:half], val_ids[half:]
    span = test_ids[: cfg.eval_batches * cfg.batch_size * cfg.seq_len + 1]
    # The floor: the add-one unigram model of the training stream, on the tokens scored.
    unigram = unigram_entropy(train_ids, cfg.vocab_size, span[1:])
    ctx.metrics.update(unigram_val_loss=unigram, initial_loss_expected=math.log(cfg.vocab_size))

    def held_out(model, ids) -> float:
        return evaluate(model, ids, cfg.seq_len, cfg.batch_size, cfg.eval_batches)

    seeds = seeds_for(ctx.seed, cfg.seeds)
    test: dict[str, list[float]] = {arm: [] for arm in ARMS}
    curves = {}
    for arm, gc in arms.items():
        # the grid, on the first seed: each arm gets every rate of the one grid
        dev, test_at = {}, {}
        for lr in cfg.lrs:
            model, losses = train_tiny(gc, cfg, lr, train_ids, seeds[0], ctx)
            dev[lr], test_at[lr] = held_out(model, dev_ids), held_out(model, test_ids)
            curves.setdefault(arm, losses)
        best = min(cfg.lrs, key=lambda lr: dev[lr])
        ctx.metrics[f"{arm}_dev_loss_by_lr"] = {f"{lr:g}": v for lr, v in dev.items()}
        ctx.metrics[f"{arm}_lr"] = best
        ctx.metrics[f"{arm}_lr_inside_grid"] = inside_grid(cfg.lrs, best)
        test[arm].append(test_at[best])
        for seed in seeds[1:]:
            model, losses = train_tiny(gc, cfg, best, train_ids, seed, ctx)
            test[arm].append(held_out(model, test_ids))
        curves[arm] = losses
        ctx.metrics[f"{arm}_val_loss"] = test[arm]
        ctx.metrics[f"{arm}_below_unigram"] = below_unigram(test[arm], unigram)
        ctx.log(f"  {arm}: lr {best:g}, held-out loss per seed {[round(v, 3) for v in test[arm]]}")
    ctx.metrics["mqa_minus_mha"] = paired_differences(test["mqa"], test["mha"])
    plot(curves, unigram, counts, ctx.figure_path("gemma.png"))
