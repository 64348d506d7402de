"""Pre-LN against simplified (SAS) and naive skipless blocks. See __init__.py."""

from __future__ import annotations

import math
import time

import torch

from repro.common.data import lm_token_streams, random_windows
from repro.common.stats import below_unigram, paired_differences, seeds_for, unigram_entropy
from repro.common.tinylm import LMConfig, cosine_lr, evaluate, train
from repro.context import RunContext

from .model import KINDS, SmallLM


def make(cfg, kind: str, seed: int) -> SmallLM:
    torch.manual_seed(seed)
    return SmallLM(
        LMConfig.like(
            cfg,
            bias=False,
        ),
        kind,
    )


def train_kind(cfg, kind: str, train_ids, val_ids, seed: int) -> dict:
    model = make(cfg, kind, seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed + 1)  # the same batches for every kind
    t0 = time.process_time()
    losses = train(
        model,
        random_windows(train_ids, cfg.batch_size, cfg.seq_len, gen),
        cfg.steps,
        optimizer=opt,
        lr_at=lambda s: cosine_lr(s, cfg.steps, cfg.lr, max(1, cfg.steps // 20)),
    )
    cpu_s = time.process_time() - t0
    val = math.inf
    if math.isfinite(losses[-1]):
        val = evaluate(model, val_ids, cfg.seq_len, cfg.batch_size, cfg.eval_batches)
    return {
        "val": val,
        "curve": losses,
        "params": model.non_embedding_params(),
        "cpu_s_per_step": cpu_s / max(1, len(losses)),
    }


@torch.no_grad()
def initial_attention_identity_error(cfg, seed: int, val_ids) -> float:
    """max |A − I| over heads and layers of the SAS model at initialisation, on real text."""
    model = make(cfg, "sas", seed)
    x = val_ids[: cfg.seq_len][None]
    h = model.tok(x) + model.pos(torch.arange(cfg.seq_len))
    worst = 0.0
    for block in model.blocks:
        z = block.ln1(h)
        out = block.attn(z)  # values are z itself, so A = I means the output equals z
        worst = max(worst, (out - z).abs().max().item())
        h = block(h)
    return worst


def smooth(xs: list[float], k: int = 20) -> list[float]:
    return [sum(xs[max(0, i - k + 1) : i + 1]) / min(k, i + 1) for i in range(len(xs))]


def plot(results: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for kind in KINDS:
        r = results[kind]
        ax.plot(smooth(r["curve"]), label=f"{kind} ({r['params']:,} params)")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (20-step mean)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(cfg, ctx: RunContext) -> None:
    train_ids, val_ids, tok = lm_token_streams(vocab_size=cfg.vocab_size, max_docs=cfg.max_docs)
    # The unigram floor on exactly the held-out targets that ``evaluate`` scores.
    n_eval = cfg.eval_batches * cfg.batch_size * cfg.seq_len
    unigram = unigram_entropy(train_ids, tok.get_vocab_size(), val_ids[1 : n_eval + 1])
    seeds = seeds_for(ctx.seed, cfg.seeds)
    ctx.metrics.update(unigram_entropy=unigram, seeds=seeds)
    ctx.metrics["sas_init_identity_error"] = initial_attention_identity_error(
        cfg, ctx.seed, val_ids
    )
    vals: dict[str, list[float]] = {k: [] for k in KINDS}
    first = {}
    for seed in seeds:
        for kind in ctx.progress(KINDS, desc=f"blocks, seed {seed}"):
            r = train_kind(cfg, kind, train_ids, val_ids, seed)
            if seed == seeds[0]:
                first[kind] = r
            vals[kind].append(r["val"])
            ctx.log(f"  seed {seed} {kind}: val {r['val']:.4f}, params {r['params']}")
            ctx.metrics[f"{kind}_below_unigram"] = below_unigram(vals[kind], unigram)
        ctx.metrics["val_loss"] = vals
        # paired by seed: one seed gives every kind the same initial draws and batches
        ctx.metrics.update(
            sas_minus_pre_ln=paired_differences(vals["sas"], vals["pre_ln"]),
            naive_minus_sas=paired_differences(vals["naive_skipless"], vals["sas"]),
        )
    pre, sas = first["pre_ln"], first["sas"]
    ctx.metrics.update(
        non_embedding_params={k: r["params"] for k, r in first.items()},
        param_reduction=1 - sas["params"] / pre["params"],
        # CPU time per step on this machine, as a ratio in the same run; a small model on a
        # CPU is dominated by per-operation overhead, so this is no test of the GPU claim
        cpu_step_time_ratio_sas_over_pre_ln=sas["cpu_s_per_step"] / pre["cpu_s_per_step"],
    )
    plot(first, ctx.figure_path("loss_per_step.png"))
