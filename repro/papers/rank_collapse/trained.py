"""Rank collapse in trained models: small causal attention stacks trained on the Brown corpus
with and without skip connections and MLPs, and the distance of their last layer's token
representations from rank 1 on held-out text. See __init__.py for the claims."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from repro.common.data import lm_token_streams, random_windows, sequential_windows
from repro.common.stats import seeds_for, unigram_entropy
from repro.common.tinylm import (
    CausalSelfAttention,
    FeedForward,
    LMConfig,
    TinyLM,
    cosine_lr,
    evaluate,
    train,
)

# arm name → (skip connections, MLP blocks); every arm keeps the pre-LayerNorm before each
# sub-block (§3.3 of the paper: LayerNorm plays no role against the collapse)
ARMS = {
    "transformer": (True, True),
    "attn_skip": (True, False),
    "pure_attn": (False, False),
}


class ArmBlock(nn.Module):
    """One layer: x → x + SA(LN(x)) [→ x + MLP(LN(x))] with skips; without skips the
    sub-block's output replaces x (pure attention: x → SA(LN(x)))."""

    def __init__(self, cfg: LMConfig, skip: bool, mlp: bool):
        super().__init__()
        self.skip = skip
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model) if mlp else None
        self.mlp = FeedForward(cfg) if mlp else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.attn(self.ln1(x))
        x = x + h if self.skip else h
        if self.mlp is not None:
            h = self.mlp(self.ln2(x))
            x = x + h if self.skip else h
        return x


def make_arm(arm: str, cfg) -> TinyLM:
    """TinyLM (embeddings, final LayerNorm, tied head, GPT-2 initialisation) with its blocks
    replaced by the arm's. Call after torch.manual_seed: the embeddings are drawn before the
    blocks, so every arm of a seed starts from the same embedding table."""
    if arm not in ARMS:
        raise ValueError(f"arm {arm!r}: choose one of {', '.join(ARMS)}")
    skip, mlp = ARMS[arm]
    lm = LMConfig(
        vocab_size=cfg.lm_vocab_size,
        seq_len=cfg.lm_seq_len,
        d_model=cfg.lm_width,
        n_layer=cfg.lm_depth,
        n_head=cfg.lm_heads,
    )
    model = TinyLM(lm)
    model.blocks = nn.ModuleList(ArmBlock(lm, skip, mlp) for _ in range(lm.n_layer))
    model.blocks.apply(TinyLM._init)
    for name, p in model.blocks.named_parameters():  # as TinyLM: residual projections by depth
        if name.endswith(("proj.weight", "w_out.weight")):
            nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * lm.n_layer))
    return model


def rel_residual_batch(x: torch.Tensor) -> torch.Tensor:
    """‖res(X)‖_F / ‖X‖_F per sequence of a (batch, tokens, d) tensor, res(X) = X − 1xᵀ with
    x the mean over tokens (the paper's residual, Frobenius norm)."""
    res = x - x.mean(dim=1, keepdim=True)
    return res.flatten(1).norm(dim=1) / x.flatten(1).norm(dim=1)


@torch.no_grad()
def residual_by_layer(model: TinyLM, val_ids, cfg) -> list[float]:
    """Mean over held-out windows of the relative residual of the input (embeddings) and of
    each layer's output, before the final LayerNorm."""
    was = model.training
    model.eval()
    sums = torch.zeros(cfg.lm_depth + 1, dtype=torch.float64)
    count = 0
    for x, _ in sequential_windows(
        val_ids, 16, cfg.lm_seq_len, max_batches=cfg.lm_residual_batches
    ):
        h = model.tok(x) + model.pos(torch.arange(x.shape[1]))
        rows = [rel_residual_batch(h)]
        for block in model.blocks:
            h = block(h)
            rows.append(rel_residual_batch(h))
        sums += torch.stack(rows).double().sum(dim=1)
        count += x.shape[0]
    model.train(was)
    return (sums / count).tolist()


def train_arm(arm: str, cfg, train_ids, val_ids, seed: int, lr: float | None = None) -> dict:
    """One arm on one seed: seed sets the initialisation (embeddings shared across arms) and
    the data order (the same batches for every arm). ``lr`` defaults to ``cfg.lm_lr``."""
    torch.manual_seed(seed)
    model = make_arm(arm, cfg)
    at_init = residual_by_layer(model, val_ids, cfg)
    steps, lr = cfg.lm_steps, cfg.lm_lr if lr is None else lr
    opt = torch.optim.AdamW(
        model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.0, foreach=True
    )
    batches = random_windows(
        train_ids, cfg.lm_batch_size, cfg.lm_seq_len, torch.Generator().manual_seed(seed + 1)
    )
    warm = max(1, steps // 20)
    losses = train(
        model,
        batches,
        steps,
        optimizer=opt,
        lr_at=lambda step: cosine_lr(step, steps, lr, warm),
        clip=1.0,
    )
    val = evaluate(model, val_ids, cfg.lm_seq_len, batch_size=16, max_batches=cfg.lm_eval_batches)
    trained = residual_by_layer(model, val_ids, cfg)
    ok = math.isfinite(losses[-1]) and math.isfinite(val)
    return {
        "arm": arm,
        "seed": seed,
        "val_loss": val if ok else None,
        "residual_init": at_init,
        "residual_trained": trained if ok else None,
    }


def trained_arms(cfg, ctx) -> dict:
    """Every arm on every seed; per-seed lists of each arm's last-layer residual and margin
    below the unigram, and the paired log10 ratios the findings judge."""
    train_ids, val_ids, _ = lm_token_streams(vocab_size=cfg.lm_vocab_size)
    unigram = unigram_entropy(train_ids, cfg.lm_vocab_size, val_ids)
    runs: list[dict] = []
    for seed in ctx.progress(seeds_for(ctx.seed, cfg.lm_seeds), desc="trained arms (seeds)"):
        for arm in ARMS:
            runs.append(train_arm(arm, cfg, train_ids, val_ids, seed))
    out: dict = {"lm_unigram_val_loss": unigram, "lm_runs": runs}
    if cfg.lm_lr_check:  # reported, not a gate: the skip arms at lm_lr ÷3 and ×3, first seed
        seed = ctx.seed
        check = {}
        for arm in ("transformer", "attn_skip"):
            own = next(r for r in runs if r["arm"] == arm and r["seed"] == seed)
            losses = {f"{cfg.lm_lr:.3g}": own["val_loss"]}
            for lr in (cfg.lm_lr / 3, cfg.lm_lr * 3):
                losses[f"{lr:.3g}"] = train_arm(arm, cfg, train_ids, val_ids, seed, lr)["val_loss"]
            check[arm] = losses
        out["lm_lr_check"] = check
    by_arm = {arm: [r for r in runs if r["arm"] == arm] for arm in ARMS}
    for arm, rs in by_arm.items():
        out[f"{arm}_val_loss"] = [r["val_loss"] for r in rs]
        out[f"{arm}_below_unigram"] = [
            None if r["val_loss"] is None else unigram - r["val_loss"] for r in rs
        ]
        out[f"{arm}_residual_last"] = [
            None if r["residual_trained"] is None else r["residual_trained"][-1] for r in rs
        ]
        out[f"{arm}_residual_last_init"] = [r["residual_init"][-1] for r in rs]

    def log_ratio(a: str, b: str) -> list[float | None]:
        pairs = zip(out[f"{a}_residual_last"], out[f"{b}_residual_last"])
        return [
            None if x is None or y is None or x <= 0 or y <= 0 else math.log10(x / y)
            for x, y in pairs
        ]

    # paired by seed: the same data order and embedding initialisation in both arms
    out["log10_residual_pure_over_attn_skip"] = log_ratio("pure_attn", "attn_skip")
    out["log10_residual_pure_over_transformer"] = log_ratio("pure_attn", "transformer")
    return out


def plot_trained(runs: list[dict], path) -> None:
    """Relative residual against depth, before and after training, one line per arm (the
    mean over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    colors = {"transformer": "C0", "attn_skip": "C1", "pure_attn": "C3"}
    for arm, col in colors.items():
        rs = [r for r in runs if r["arm"] == arm]
        init = np.mean([r["residual_init"] for r in rs], axis=0)
        done = [r["residual_trained"] for r in rs if r["residual_trained"] is not None]
        ax.semilogy(init, ls=":", color=col, label=f"{arm}, at init")
        if done:
            ax.semilogy(np.mean(done, axis=0), "o-", ms=3, color=col, label=f"{arm}, trained")
    ax.set_xlabel("layer (0 = embeddings)")
    ax.set_ylabel("‖res(X)‖ / ‖X‖ (held-out, mean)")
    ax.set_title("trained on Brown: distance from rank 1")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
