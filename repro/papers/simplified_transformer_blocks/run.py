"""Pre-LN against simplified (SAS) and naive skipless blocks. See __init__.py."""

from __future__ import annotations

import math
import time

import torch

from repro.common.data import lm_token_streams, random_windows
from repro.common.tinylm import LMConfig, cosine_lr, evaluate, train
from repro.context import RunContext
from repro.papers.simplified_transformer_blocks.model import KINDS, SmallLM


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


def main(cfg, ctx: RunContext) -> dict:
    train_ids, val_ids, _ = lm_token_streams(vocab_size=cfg.vocab_size, max_docs=cfg.max_docs)
    ctx.metrics["sas_init_identity_error"] = initial_attention_identity_error(
        cfg, ctx.seed, val_ids
    )
    results = {}
    for kind in ctx.progress(KINDS, desc="blocks"):
        results[kind] = train_kind(cfg, kind, train_ids, val_ids, ctx.seed)
        ctx.log(f"  {kind}: val {results[kind]['val']:.4f}, params {results[kind]['params']}")
        ctx.metrics["val_loss"] = {k: r["val"] for k, r in results.items()}
    pre, sas, naive = (results[k] for k in KINDS)
    ctx.metrics.update(
        non_embedding_params={k: r["params"] for k, r in results.items()},
        param_reduction=1 - sas["params"] / pre["params"],
        sas_minus_pre_ln=sas["val"] - pre["val"],
        naive_minus_sas=naive["val"] - sas["val"],
        # CPU time per step on this machine, as a ratio in the same run; a small model on a
        # CPU is dominated by per-operation overhead, so this is no test of the GPU claim
        cpu_step_time_ratio_sas_over_pre_ln=sas["cpu_s_per_step"] / pre["cpu_s_per_step"],
    )
    plot(results, ctx.figure_path("loss_per_step.png"))
    return {}
