"""A family of small Transformers trained on multi-digit addition, scored with sharp and
smooth metrics on the same outputs. See __init__.py for the claims."""

from __future__ import annotations

import math
import statistics

import torch

from repro.common.stats import below_unigram, seeds_for, unigram_entropy
from repro.common.tinylm import LMConfig, TinyLM, cosine_lr
from repro.context import RunContext

from .addition import (
    VOCAB,
    answer_len,
    answer_loss,
    sample,
    score,
    sharpness,
)

METRICS = ("per_token_acc", "exact_match", "edit_distance", "log_lik")


def train_model(cfg, width: int, seed: int, test: torch.Tensor) -> dict:
    """One model of the family. Its own loop: the loss is on the answer tokens only
    (``answer_loss``), which ``repro.common.tinylm.train`` does not do."""
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


def main(cfg, ctx: RunContext) -> None:
    """The whole family once per seed (seed s: the same initialisation seed and problem stream
    for every width); each sharpness is measured on one seed's curve, so the findings'
    metrics are per-seed lists."""
    test = sample(
        cfg.test_size,
        cfg.n_digits,
        torch.Generator().manual_seed(10_000),
        test=True,
        reverse=cfg.reverse,
    )
    L = answer_len(cfg.n_digits)
    # The learned gate's floor: a unigram model of answer digits from training problems,
    # scored on the held-out answers (what a model that ignores the prompt can do).
    train_answers = sample(
        20_000, cfg.n_digits, torch.Generator().manual_seed(20_000), test=False, reverse=cfg.reverse
    )[:, -L:]
    unigram = unigram_entropy(train_answers, VOCAB, test[:, -L:])
    widths = sorted(cfg.widths)
    seeds = seeds_for(ctx.seed, cfg.seeds)
    runs: dict[str, list[dict]] = {}
    jobs = [(s, w) for s in seeds for w in widths]
    per_seed: dict[str, list] = {}
    for seed, width in ctx.progress(jobs, desc="models"):
        r = train_model(cfg, width, seed, test)
        runs.setdefault(str(width), []).append(r)
        ctx.log(
            f"  d={width} seed={seed}: acc {r['per_token_acc']:.3f} EM {r['exact_match']:.3f}"
            f" edit {r['edit_distance']:.3f} ll {r['log_lik']:.3f}"
        )
        if width != widths[-1]:
            continue
        # this seed's family is complete: its curves and their sharpness
        fam = [runs[str(w)][-1] for w in widths]
        for m in METRICS:
            per_seed.setdefault(f"sharpness_{m}", []).append(sharpness([f[m] for f in fam]))
        # EM if the answer's tokens were right independently: the product of position accuracies
        predicted = [math.prod(f["position_acc"]) for f in fam]
        per_seed.setdefault("em_from_position_acc", []).append(predicted)
        per_seed.setdefault("em_independence_max_error", []).append(
            max(abs(a - f["exact_match"]) for a, f in zip(predicted, fam))
        )
        # the smooth-vs-sharp contrast, paired within the seed's family: how much more of its
        # change exact match puts into one step than each continuous metric does
        sharp = {m: per_seed[f"sharpness_{m}"][-1] for m in METRICS}
        for m in ("edit_distance", "per_token_acc"):
            per_seed.setdefault(f"contrast_exact_match_minus_{m}", []).append(
                sharp["exact_match"] - sharp[m]
            )
        # each model's teacher-forced answer loss against the unigram floor: the largest
        # model's margin, and the smallest margin over the upper half of the family (the
        # learned gates: the family must span models that learned the task)
        below = below_unigram([-f["log_lik"] for f in fam], unigram)
        per_seed.setdefault("below_unigram_by_width", []).append(below)
        per_seed.setdefault("largest_below_unigram", []).append(below[-1])
        per_seed.setdefault("upper_half_below_unigram", []).append(min(below[len(below) // 2 :]))
        ctx.metrics.update(per_seed, unigram_answer_loss=unigram, answer_tokens=L)

    params = [runs[str(w)][0]["params"] for w in widths]
    curves = {}
    for m in METRICS:
        by_seed = [[runs[str(w)][i][m] for w in widths] for i in range(len(seeds))]
        mean = [statistics.fmean(runs[str(w)][i][m] for i in range(len(seeds))) for w in widths]
        # the sharpness of the seed-averaged curve: reported, not judged
        curves[m] = {"mean": mean, "by_seed": by_seed, "sharpness": sharpness(mean)}
    ctx.metrics.update(
        params=params,
        curves=curves,
        position_acc={w: [r["position_acc"] for r in runs[w]] for w in runs},
    )
    plot(params, curves, ctx.figure_path("emergence_mirage.png"))
