"""Measurements for the Gemma reproduction. See __init__.py for the claims."""

from __future__ import annotations

import math

import torch

from repro.common.data import lm_token_streams, random_windows, sequential_windows
from repro.common.tinylm import cosine_lr, train
from repro.context import RunContext

from . import PAPER_COUNTS
from .model import GEMMA_2B, GEMMA_7B, Gemma, GemmaConfig, count_instance, param_counts


def unigram_cross_entropy(train_ids: torch.Tensor, targets: torch.Tensor, vocab: int) -> float:
    """Cross-entropy (nats/token) of ``targets`` under add-one-smoothed training frequencies:
    the best a model can do without looking at context."""
    counts = torch.bincount(train_ids, minlength=vocab).double() + 1.0
    logp = (counts / counts.sum()).log()
    return -logp[targets.reshape(-1)].mean().item()


@torch.no_grad()
def evaluate(model: Gemma, val_ids: torch.Tensor, cfg) -> tuple[float, torch.Tensor]:
    """Mean validation loss over the first ``eval_batches`` windows, and the targets used."""
    model.eval()
    total, count, ys = 0.0, 0, []
    for x, y in sequential_windows(val_ids, cfg.batch_size, cfg.seq_len, cfg.eval_batches):
        _, loss = model(x, y)
        total += loss.item() * y.numel()
        count += y.numel()
        ys.append(y.reshape(-1))
    model.train()
    return total / count, torch.cat(ys)


def plot(losses, val_loss, unigram, counts, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    a.plot(losses, lw=0.8, label="train loss")
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


def main(cfg, ctx: RunContext) -> dict:
    # 1. Parameter counts of the published sizes, built for real on the meta device.
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

    # 2. A tiny instance of the same structure, trained on Brown.
    train_ids, val_ids, _ = lm_token_streams(vocab_size=cfg.vocab_size, kind="bpe")
    tiny = GemmaConfig(
        vocab_size=cfg.vocab_size,
        d_model=cfg.d_model,
        n_layer=cfg.n_layer,
        n_head=cfg.n_head,
        n_kv_head=cfg.n_kv_head,
        head_dim=cfg.head_dim,
        ffn_hidden=cfg.ffn_ratio * cfg.d_model,
    )
    model = Gemma(tiny).to(ctx.device)
    numel = sum(p.numel() for p in model.parameters())
    f_emb, f_non = param_counts(tiny)
    agree &= numel == f_emb + f_non
    ctx.metrics.update(
        tiny_params=numel, tiny_params_formula=f_emb + f_non, formula_equals_instance=agree
    )

    gen = torch.Generator().manual_seed(ctx.seed)
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
    val_loss, targets = evaluate(model.cpu(), val_ids, cfg)
    unigram = unigram_cross_entropy(train_ids, targets, cfg.vocab_size)
    ctx.metrics.update(
        train_loss_first=losses[0],
        train_loss_last10=sum(losses[-10:]) / 10,
        initial_loss_expected=math.log(cfg.vocab_size),
        val_loss=val_loss,
        unigram_val_loss=unigram,
        unigram_minus_val_loss=unigram - val_loss,
        val_perplexity=math.exp(val_loss),
        unigram_perplexity=math.exp(unigram),
    )
    plot(losses, val_loss, unigram, counts, ctx.figure_path("gemma.png"))
    return {}
