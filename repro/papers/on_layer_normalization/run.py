"""Post-LN vs Pre-LN: gradients at initialisation and training without warm-up.
Claims: see __init__.py."""

from __future__ import annotations

import math

import torch

from repro.common.data import lm_token_streams, random_windows, sequential_windows
from repro.common.plots import block_means
from repro.context import RunContext

from .model import LM, layer_grad_norms


def loglog_slope(xs, ys) -> float:
    lx = torch.tensor([math.log(x) for x in xs], dtype=torch.float64)
    ly = torch.tensor([math.log(y) for y in ys], dtype=torch.float64)
    return (((lx - lx.mean()) * (ly - ly.mean())).sum() / ((lx - lx.mean()) ** 2).sum()).item()


def gradient_profiles(cfg, train_ids, vocab: int, ctx: RunContext) -> dict:
    """Per-layer ‖∂L/∂W²‖ (and W¹, W^{QKV}) at initialisation, averaged over seeds and batches.

    Every model sees the same batches; seed s gives the s-th initialisation of each shape."""
    gen = torch.Generator().manual_seed(ctx.seed + 100)
    batches = [
        next(random_windows(train_ids, cfg.grad_batch, cfg.seq_len, gen))
        for _ in range(cfg.grad_batches)
    ]
    out: dict = {}
    cases = [(L, norm) for L in cfg.depths for norm in ("post", "pre")]
    for L, norm in ctx.progress(cases, desc="gradients at init"):
        acc = None
        for s in range(cfg.grad_seeds):
            torch.manual_seed(ctx.seed + 1000 * s + L)
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
    cfg, norm: str, warmup: int, train_ids, val_ids, vocab: int, ctx: RunContext
) -> tuple[float, list[float], bool]:
    """Adam (β2 = 0.98 as in the paper) at a constant rate after an optional linear warm-up;
    no gradient clipping, which would hide the very instability being measured.
    Returns (validation loss, training losses, diverged)."""
    torch.manual_seed(ctx.seed + 7)  # same initialisation scheme and draw for both norms
    gen = torch.Generator().manual_seed(ctx.seed + 8)  # same batches for every run
    model = LM(vocab, cfg.train_width, cfg.train_layers, cfg.train_heads, cfg.seq_len, norm)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.98), eps=1e-8)
    batches = random_windows(train_ids, cfg.train_batch, cfg.seq_len, gen)
    losses = []
    desc = f"train {norm}-LN" + (f", warm-up {warmup}" if warmup else ", no warm-up")
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


def main(cfg, ctx: RunContext) -> dict:
    train_ids, val_ids, tok = lm_token_streams(
        vocab_size=cfg.vocab_size, max_docs=None if cfg.use_all_docs else cfg.max_docs
    )
    vocab = tok.get_vocab_size()
    ctx.metrics["train_tokens"] = len(train_ids)

    prof = gradient_profiles(cfg, train_ids, vocab, ctx)
    ratios = {
        norm: {L: prof[norm][L]["w2"][-1] / prof[norm][L]["w2"][0] for L in prof[norm]}
        for norm in prof
    }
    last = {norm: [prof[norm][str(L)]["w2"][-1] for L in cfg.depths] for norm in prof}
    ctx.metrics.update(
        grad_w2=prof,
        last_over_first=ratios,
        post_ln_min_growth=min(ratios["post"].values()),
        pre_ln_extreme_ratio=max(ratios["pre"].values(), key=lambda r: abs(math.log(r))),
        pre_ln_last_layer_slope=loglog_slope(cfg.depths, last["pre"]),
        post_ln_last_layer_slope=loglog_slope(cfg.depths, last["post"]),
    )

    runs = {}
    runs["Post-LN, no warm-up"] = train_run(cfg, "post", 0, train_ids, val_ids, vocab, ctx)
    runs["Pre-LN, no warm-up"] = train_run(cfg, "pre", 0, train_ids, val_ids, vocab, ctx)
    (v_post, _, d_post), (v_pre, _, d_pre) = runs["Post-LN, no warm-up"], runs["Pre-LN, no warm-up"]
    # A diverged run counts as the loss of a uniform prediction, ln |V|.
    ctx.metrics.update(
        val_post_no_warmup=v_post,
        val_pre_no_warmup=v_pre,
        post_diverged=d_post,
        pre_diverged=d_pre,
        no_warmup_gap=v_post - v_pre,
    )
    if cfg.warmup_control:
        runs["Post-LN, warm-up"] = train_run(
            cfg, "post", cfg.warmup_steps, train_ids, val_ids, vocab, ctx
        )
        v_warm = runs["Post-LN, warm-up"][0]
        ctx.metrics.update(val_post_warmup=v_warm, warmup_gain_post_ln=v_post - v_warm)
    else:
        ctx.skip(
            "warmup-rescues-post-ln",
            "quick preset: too few steps for a warm-up stage to mean anything (full only)",
        )
    plot(cfg, prof, runs, ctx.figure_path("post_vs_pre_ln.png"))
    return {}
