"""Mamba-2 against a Transformer at equal parameters, as language models on Brown.

Each arm picks its peak learning rate from the same grid on the first seed (on a "dev" half of
the held-out text); every reported loss is on the other ("test") half. Seed s fixes both arms'
data order, so the per-seed differences are paired.
"""

from __future__ import annotations

import math

import torch

from repro.common.data import lm_token_streams, random_windows
from repro.common.stats import below_unigram, inside_grid, paired_differences, unigram_entropy
from repro.common.tinylm import LMConfig, TinyLM, cosine_lr, evaluate, train
from repro.context import RunContext

from .lm import Mamba2Config, Mamba2LM

ARMS = ("mamba2", "transformer")


def mamba_config(cfg) -> Mamba2Config:
    return Mamba2Config(
        vocab_size=cfg.vocab_size,
        d_model=cfg.d_model,
        n_layer=cfg.mamba_layers,
        d_state=cfg.d_state,
        head_dim=cfg.ssm_head_dim,
    )


def transformer_config(cfg, d_ff: int) -> LMConfig:
    """Transformer++ as far as our TinyLM goes: RMSNorm, SwiGLU, no biases (learned absolute
    positions stand in for rotary ones)."""
    return LMConfig(
        vocab_size=cfg.vocab_size,
        seq_len=cfg.seq_len,
        d_model=cfg.d_model,
        n_layer=cfg.transformer_layers,
        n_head=cfg.n_head,
        d_ff=d_ff,
        norm="rmsnorm",
        ffn="swiglu",
        bias=False,
    )


def matched_d_ff(cfg, target: int) -> int:
    """The SwiGLU width whose Transformer has the non-embedding parameter count nearest to
    ``target`` (the Mamba-2 arm's): the two arms differ in architecture, not in size."""

    def count(d_ff: int) -> int:
        return TinyLM(transformer_config(cfg, d_ff)).non_embedding_params()

    lo, hi = 8, 16 * cfg.d_model
    return min(range(lo, hi + 1, 2), key=lambda f: abs(count(f) - target))


def build(arm: str, cfg, d_ff: int) -> torch.nn.Module:
    if arm == "mamba2":
        return Mamba2LM(mamba_config(cfg))
    if arm == "transformer":
        return TinyLM(transformer_config(cfg, d_ff))
    raise ValueError(f"arm {arm!r}: use one of {ARMS}")


def train_arm(arm: str, cfg, d_ff: int, lr: float, train_ids, seed: int, ctx: RunContext):
    torch.manual_seed(seed)
    model = build(arm, cfg, d_ff).to(ctx.device)
    gen = torch.Generator().manual_seed(seed)  # the same windows, in the same order, per seed
    batches = random_windows(train_ids, cfg.batch_size, cfg.seq_len, generator=gen)
    opt = torch.optim.AdamW(
        model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.0, foreach=True
    )
    warmup = max(1, cfg.lm_steps // 20)
    losses = train(
        model,
        batches,
        cfg.lm_steps,
        optimizer=opt,
        lr_at=lambda s: cosine_lr(s, cfg.lm_steps, lr, warmup),
        device=ctx.device,
        progress=ctx.progress,
    )
    return model.cpu(), losses


def compare(cfg, ctx: RunContext, seeds: list[int]) -> dict:
    """Train both arms; returns the metrics (per-seed lists where per seed)."""
    if len(cfg.lrs) < 3:
        raise ValueError(f"lrs: {cfg.lrs!r}; each arm picks its lr from a grid of ≥ 3 values")
    n_mamba = Mamba2LM(mamba_config(cfg)).non_embedding_params()
    d_ff = matched_d_ff(cfg, n_mamba)
    n_tf = TinyLM(transformer_config(cfg, d_ff)).non_embedding_params()
    out: dict = {
        "mamba2_params": n_mamba,
        "transformer_params": n_tf,
        "transformer_d_ff": d_ff,
        "param_ratio": n_mamba / n_tf,
    }
    train_ids, val_ids, _ = lm_token_streams(vocab_size=cfg.vocab_size, kind="bpe")
    half = len(val_ids) // 2
    test_ids, dev_ids = val_ids[:half], val_ids[half:]
    span = test_ids[: cfg.eval_batches * cfg.batch_size * cfg.seq_len + 1]
    unigram = unigram_entropy(train_ids, cfg.vocab_size, span[1:])
    out.update(unigram_test_loss=unigram, initial_loss_expected=math.log(cfg.vocab_size))

    def held_out(model, ids) -> float:
        return evaluate(model, ids, cfg.seq_len, cfg.batch_size, cfg.eval_batches)

    test: dict[str, list[float]] = {}
    curves: dict[str, list[float]] = {}
    for arm in ARMS:
        dev, test_at = {}, {}
        for lr in cfg.lrs:
            model, losses = train_arm(arm, cfg, d_ff, lr, train_ids, seeds[0], ctx)
            dev[lr], test_at[lr] = held_out(model, dev_ids), held_out(model, test_ids)
            if not math.isfinite(dev[lr]):
                dev[lr] = math.inf  # a diverged rate is never the best one
        best = min(cfg.lrs, key=lambda lr: dev[lr])
        out[f"{arm}_dev_loss_by_lr"] = {f"{lr:g}": v for lr, v in dev.items()}
        out[f"{arm}_lr"] = best
        out[f"{arm}_lr_inside_grid"] = inside_grid(cfg.lrs, best)
        test[arm] = [test_at[best]]
        for seed in seeds[1:]:
            model, losses = train_arm(arm, cfg, d_ff, best, train_ids, seed, ctx)
            test[arm].append(held_out(model, test_ids))
        curves[arm] = losses
        out[f"{arm}_test_loss"] = test[arm]
        out[f"{arm}_below_unigram"] = below_unigram(test[arm], unigram)
        ctx.log(f"  {arm}: lr {best:g}, test loss per seed {[round(v, 3) for v in test[arm]]}")
    out["mamba2_minus_transformer"] = paired_differences(test["mamba2"], test["transformer"])
    out["curves"] = curves
    return out


def plot(curves, unigram, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for arm, losses in curves.items():
        ax.plot(losses, lw=0.8, label=f"{arm} (last seed)")
    ax.axhline(unigram, color="k", ls=":", label=f"unigram {unigram:.2f}")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss, nats / token")
    ax.set_title("Brown LM: Mamba-2 vs Transformer, equal parameters")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
