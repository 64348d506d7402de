"""A family of small Transformers trained on multi-digit addition, scored with sharp and
smooth metrics on the same outputs. See __init__.py for the claims."""

from __future__ import annotations

import math
import statistics

import torch

from repro.common.tinylm import LMConfig, TinyLM, cosine_lr
from repro.context import RunContext
from repro.papers.emergence_mirage.addition import (
    VOCAB,
    answer_len,
    answer_loss,
    sample,
    score,
    sharpness,
)

METRICS = ("per_token_acc", "exact_match", "edit_distance", "log_lik")


def train_model(cfg, width: int, seed: int, test: torch.Tensor) -> dict:
    torch.manual_seed(seed)
    model = TinyLM(
        LMConfig(
            vocab_size=VOCAB,
            seq_len=3 * cfg.n_digits + 2,  # the prompt plus all answer tokens but the last
            d_model=width,
            n_layer=cfg.n_layer,
            n_head=max(1, width // 8),
        )
    )
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed + 1)
    warm = max(1, cfg.steps // 20)
    for step in range(cfg.steps):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, cfg.steps, cfg.lr, warm)
        batch = sample(cfg.batch_size, cfg.n_digits, gen, test=False, reverse=cfg.reverse)
        loss = answer_loss(model, batch, cfg.n_digits)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    out = score(model, test, cfg.n_digits)
    out["params"] = sum(p.numel() for p in model.parameters())
    return out


def plot(params, curves, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = {
        "exact_match": "exact match (sharp metric)",
        "per_token_acc": "per-token accuracy",
        "edit_distance": "token edit distance (lower is better)",
        "log_lik": "per-token log-likelihood",
    }
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.2))
    for ax, m in zip(axes, ("exact_match", "per_token_acc", "edit_distance", "log_lik")):
        ax.plot(params, curves[m]["mean"], "o-")
        for s in curves[m]["by_seed"]:
            ax.plot(params, s, ".", color="gray", alpha=0.5)
        ax.set_xscale("log")
        ax.set_xlabel("parameters")
        ax.set_title(f"{titles[m]}\nsharpness {curves[m]['sharpness']:.2f}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(cfg, ctx: RunContext) -> dict:
    test = sample(
        cfg.test_size,
        cfg.n_digits,
        torch.Generator().manual_seed(10_000),
        test=True,
        reverse=cfg.reverse,
    )
    widths = sorted(cfg.widths)
    runs: dict[str, list[dict]] = {}
    jobs = [(w, s) for w in widths for s in cfg.seeds]
    for width, seed in ctx.progress(jobs, desc="models"):
        r = train_model(cfg, width, ctx.seed + seed, test)
        runs.setdefault(str(width), []).append(r)
        ctx.log(
            f"  d={width} seed={seed}: acc {r['per_token_acc']:.3f} EM {r['exact_match']:.3f}"
            f" edit {r['edit_distance']:.3f} ll {r['log_lik']:.3f}"
        )
    params = [runs[str(w)][0]["params"] for w in widths]
    curves = {}
    for m in METRICS:
        by_seed = [[runs[str(w)][i][m] for w in widths] for i in range(len(cfg.seeds))]
        mean = [statistics.fmean(runs[str(w)][i][m] for i in range(len(cfg.seeds))) for w in widths]
        curves[m] = {"mean": mean, "by_seed": by_seed, "sharpness": sharpness(mean)}
    L = answer_len(cfg.n_digits)
    # EM if the answer's tokens were right independently: the product of position accuracies
    predicted = [
        statistics.fmean(math.prod(r["position_acc"]) for r in runs[str(w)]) for w in widths
    ]
    ctx.metrics.update(
        params=params,
        answer_tokens=L,
        curves=curves,
        position_acc={w: [r["position_acc"] for r in runs[w]] for w in runs},
        sharpness_exact_match=curves["exact_match"]["sharpness"],
        sharpness_per_token_acc=curves["per_token_acc"]["sharpness"],
        sharpness_edit_distance=curves["edit_distance"]["sharpness"],
        sharpness_log_lik=curves["log_lik"]["sharpness"],
        em_from_position_acc=predicted,
        em_independence_max_error=max(
            abs(a - b) for a, b in zip(predicted, curves["exact_match"]["mean"])
        ),
    )
    plot(params, curves, ctx.figure_path("emergence_mirage.png"))
    return {}
