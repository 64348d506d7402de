"""Measurements for the Gemma reproduction. See __init__.py for the claims."""

from __future__ import annotations

import math

import torch

from repro.common.data import lm_token_streams, random_windows
from repro.common.stats import below_unigram, seeds_for, unigram_entropy
from repro.common.tinylm import cosine_lr, evaluate, train
from repro.context import RunContext

from . import PAPER_COUNTS
from .model import GEMMA_2B, GEMMA_7B, Gemma, GemmaConfig, count_instance, param_counts


def tiny_config(cfg) -> GemmaConfig:
    """The tiny instance of Gemma's structure that the run trains."""
    return GemmaConfig(
        vocab_size=cfg.vocab_size,
        d_model=cfg.d_model,
        n_layer=cfg.n_layer,
        n_head=cfg.n_head,
        n_kv_head=cfg.n_kv_head,
        head_dim=cfg.head_dim,
        ffn_hidden=cfg.ffn_ratio * cfg.d_model,
    )


def train_tiny(tiny: GemmaConfig, cfg, train_ids, val_ids, seed: int, ctx: RunContext):
    """One tiny Gemma trained from ``seed`` (initialisation and data order); returns the
    model, its training losses and its held-out loss (nats/token)."""
    torch.manual_seed(seed)
    model = Gemma(tiny).to(ctx.device)
    gen = torch.Generator().manual_seed(seed)
    batches = random_windows(train_ids, cfg.batch_size, cfg.seq_len, generator=gen)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=0.1)
    losses = train(
        model,
        batches,
        cfg.steps,
        optimizer=opt,
        lr_at=lambda s: cosine_lr(s, cfg.steps, cfg.lr, cfg.warmup),
        device=ctx.device,
        progress=ctx.progress,
    )
    model = model.cpu()
    val = evaluate(model, val_ids, cfg.seq_len, cfg.batch_size, cfg.eval_batches)
    return model, losses, val


def plot(losses, val_loss, unigram, counts, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    a.plot(losses, lw=0.8, label="train loss (last seed)")
    a.axhline(unigram, color="k", ls=":", label=f"unigram baseline {unigram:.2f}")
    a.axhline(val_loss, color="C3", ls="--", label=f"final validation {val_loss:.2f}")
    a.set_xlabel("step")
    a.set_ylabel("nats / token")
    a.set_title("tiny Gemma on Brown")
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

    # 2. A tiny instance of the same structure, trained on Brown over several seeds (finding).
    train_ids, val_ids, _ = lm_token_streams(vocab_size=cfg.vocab_size, kind="bpe")
    tiny = tiny_config(cfg)
    numel = sum(p.numel() for p in Gemma(tiny).parameters())
    f_emb, f_non = param_counts(tiny)
    agree &= numel == f_emb + f_non
    ctx.metrics.update(
        tiny_params=numel, tiny_params_formula=f_emb + f_non, formula_equals_instance=agree
    )

    # The floor: the add-one unigram model of the training stream, scored on held-out text.
    unigram = unigram_entropy(train_ids, cfg.vocab_size, val_ids)
    ctx.metrics.update(
        unigram_val_loss=unigram,
        unigram_perplexity=math.exp(unigram),
        initial_loss_expected=math.log(cfg.vocab_size),
    )
    vals, first, last10, losses = [], [], [], []
    for seed in seeds_for(ctx.seed, cfg.seeds):
        _, losses, val = train_tiny(tiny, cfg, train_ids, val_ids, seed, ctx)
        vals.append(val)
        first.append(losses[0])
        last10.append(sum(losses[-10:]) / len(losses[-10:]))
        ctx.metrics.update(
            val_loss=vals,
            train_loss_first=first,
            train_loss_last10=last10,
            val_perplexity=[math.exp(v) for v in vals],
            gemma_below_unigram=below_unigram(vals, unigram),
        )
    plot(losses, vals[-1], unigram, counts, ctx.figure_path("gemma.png"))
