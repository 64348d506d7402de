"""Post-LN vs Pre-LN: gradients at initialisation and training without warm-up.
Claims: see __init__.py."""

from __future__ import annotations

import math

import torch

from repro.common.data import lm_token_streams, random_windows, sequential_windows
from repro.common.plots import block_means
from repro.common.stats import below_unigram, paired_differences, seeds_for, unigram_entropy
from repro.context import RunContext

from .model import LM, layer_grad_norms


def loglog_slope(xs, ys) -> float:
    lx = torch.tensor([math.log(x) for x in xs], dtype=torch.float64)
    ly = torch.tensor([math.log(y) for y in ys], dtype=torch.float64)
    return (((lx - lx.mean()) * (ly - ly.mean())).sum() / ((lx - lx.mean()) ** 2).sum()).item()


def gradient_profiles(cfg, train_ids, vocab: int, ctx: RunContext, seed: int) -> dict:
    """Per-layer ‖∂L/∂W²‖ (and W¹, W^{QKV}) at initialisation, averaged over ``grad_seeds``
    initialisations and ``grad_batches`` batches drawn from ``seed``.

    Every model of one seed sees the same batches; s gives the s-th initialisation of each shape."""
    gen = torch.Generator().manual_seed(seed + 100)
    batches = [
        next(random_windows(train_ids, cfg.grad_batch, cfg.seq_len, gen))
        for _ in range(cfg.grad_batches)
    ]
    out: dict = {}
    cases = [(L, norm) for L in cfg.depths for norm in ("post", "pre")]
    for L, norm in ctx.progress(cases, desc=f"gradients at init, seed {seed}"):
        acc = None
        for s in range(cfg.grad_seeds):
            torch.manual_seed(seed + 1000 * s + L)
            model = LM(vocab, cfg.grad_width, L, cfg.grad_heads, cfg.seq_len, norm)
            g = layer_grad_norms(model, batches)
            acc = g if acc is None else {k: [a + b for a, b in zip(acc[k], g[k])] for k in g}
        out.setdefault(norm, {})[str(L)] = {
            k: [v / cfg.grad_seeds for v in vals] for k, vals in acc.items()
        }
    return out


def evaluate(model, val_ids, cfg) -> float:
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for x, y in sequential_windows(
            val_ids, cfg.train_batch, cfg.seq_len, max_batches=cfg.eval_batches
        ):
            total += model(x, y).item()
            n += 1
    model.train()
    return total / n


def train_run(
    cfg, norm: str, warmup: int, train_ids, val_ids, vocab: int, ctx: RunContext, seed: int
) -> tuple[float, list[float], bool]:
    """Adam (β2 = 0.98 as in the paper) at a constant rate after an optional linear warm-up;
    no gradient clipping, which would hide the very instability being measured (so this loop,
    not ``repro.common.tinylm.train``, whose default clips).
    Returns (validation loss, training losses, diverged)."""
    torch.manual_seed(seed + 7)  # same initialisation scheme and draw for both norms
    gen = torch.Generator().manual_seed(seed + 8)  # same batches for every run of this seed
    model = LM(vocab, cfg.train_width, cfg.train_layers, cfg.train_heads, cfg.seq_len, norm)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.98), eps=1e-8)
    batches = random_windows(train_ids, cfg.train_batch, cfg.seq_len, gen)
    losses = []
    desc = f"seed {seed}: {norm}-LN" + (f", warm-up {warmup}" if warmup else ", no warm-up")
    for step in ctx.progress(range(cfg.steps), desc=desc):
        for g in opt.param_groups:
            g["lr"] = cfg.lr * min(1.0, (step + 1) / warmup) if warmup else cfg.lr
        x, y = next(batches)
        loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if not math.isfinite(losses[-1]):
            return math.log(vocab), losses[:-1], True
    val = evaluate(model, val_ids, cfg)
    if not math.isfinite(val):
        return math.log(vocab), losses, True
    return val, losses, False


def plot(cfg, prof, runs, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(cfg.depths)
    fig, axes = plt.subplots(1, n + 1, figsize=(3.6 * (n + 1), 3.6))
    for ax, L in zip(axes, cfg.depths):
        layers = range(1, L + 1)
        ax.plot(layers, prof["post"][str(L)]["w2"], "o-", ms=3, label="Post-LN")
        ax.plot(layers, prof["pre"][str(L)]["w2"], "s-", ms=3, label="Pre-LN")
        ax.set_xlabel("layer")
        ax.set_title(f"L = {L}")
        ax.set_ylim(bottom=0)
    axes[0].set_ylabel("‖∂loss/∂W²‖ at initialisation")
    axes[0].legend()
    ax = axes[-1]
    for name, (val, losses, diverged) in runs.items():
        tag = " (diverged)" if diverged else f", val {val:.2f}"
        ax.plot(*block_means(losses), label=name + tag)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (nats/token)")
    ax.set_title(f"{cfg.train_layers} layers, lr {cfg.lr:g}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(cfg, ctx: RunContext) -> None:
    train_ids, val_ids, tok = lm_token_streams(vocab_size=cfg.vocab_size, max_docs=cfg.max_docs)
    vocab = tok.get_vocab_size()
    seeds = seeds_for(ctx.seed, cfg.seeds)
    # The unigram floor on exactly the held-out targets that ``evaluate`` scores.
    n_eval = cfg.eval_batches * cfg.train_batch * cfg.seq_len
    unigram = unigram_entropy(train_ids, vocab, val_ids[1 : n_eval + 1])
    ctx.metrics.update(train_tokens=len(train_ids), unigram_entropy=unigram, seeds=seeds)

    # Gradients at initialisation: one profile (averaged over grad_seeds inits) per seed.
    per_seed = {k: [] for k in ("growth", "extreme", "pre_slope", "post_slope")}
    profiles = []
    for seed in seeds:
        prof = gradient_profiles(cfg, train_ids, vocab, ctx, seed)
        profiles.append(prof)
        ratios = {
            norm: {L: prof[norm][L]["w2"][-1] / prof[norm][L]["w2"][0] for L in prof[norm]}
            for norm in prof
        }
        last = {norm: [prof[norm][str(L)]["w2"][-1] for L in cfg.depths] for norm in prof}
        per_seed["growth"].append(min(ratios["post"].values()))
        per_seed["extreme"].append(max(ratios["pre"].values(), key=lambda r: abs(math.log(r))))
        per_seed["pre_slope"].append(loglog_slope(cfg.depths, last["pre"]))
        per_seed["post_slope"].append(loglog_slope(cfg.depths, last["post"]))
        ctx.metrics.setdefault("last_over_first", []).append(ratios)
        ctx.metrics.update(
            grad_w2=profiles[0],  # the first seed's profile, for the figure
            post_ln_min_growth=per_seed["growth"],
            pre_ln_extreme_ratio=per_seed["extreme"],
            pre_ln_last_layer_slope=per_seed["pre_slope"],
            post_ln_last_layer_slope=per_seed["post_slope"],
        )

    # Training without warm-up, paired by seed (same init draw and batches for both norms).
    # A diverged run counts as the loss of a uniform prediction, ln |V|.
    val = {"post": [], "pre": [], "post_warmup": []}
    diverged = {"post": [], "pre": []}
    runs = {}
    for seed in seeds:
        for norm in ("post", "pre"):
            v, losses, d = train_run(cfg, norm, 0, train_ids, val_ids, vocab, ctx, seed)
            val[norm].append(v)
            diverged[norm].append(d)
            if seed == seeds[0]:
                runs[f"{norm.capitalize()}-LN, no warm-up"] = (v, losses, d)
        if cfg.warmup_control:
            v, losses, d = train_run(
                cfg, "post", cfg.warmup_steps, train_ids, val_ids, vocab, ctx, seed
            )
            val["post_warmup"].append(v)
            if seed == seeds[0]:
                runs["Post-LN, warm-up"] = (v, losses, d)
        ctx.metrics.update(
            val_post_no_warmup=val["post"],
            val_pre_no_warmup=val["pre"],
            post_diverged=diverged["post"],
            pre_diverged=diverged["pre"],
            no_warmup_gap=paired_differences(val["post"], val["pre"]),
            post_ln_below_unigram=below_unigram(val["post"], unigram),
            pre_ln_below_unigram=below_unigram(val["pre"], unigram),
        )
        if cfg.warmup_control:
            ctx.metrics.update(
                val_post_warmup=val["post_warmup"],
                warmup_gain_post_ln=paired_differences(val["post"], val["post_warmup"]),
                post_ln_warmup_below_unigram=below_unigram(val["post_warmup"], unigram),
            )
    if not cfg.warmup_control:
        ctx.skip(
            "warmup-rescues-post-ln",
            "warmup_control is off in this configuration",
        )
    plot(cfg, profiles[0], runs, ctx.figure_path("post_vs_pre_ln.png"))
