"""Next-token loss of n-token-prediction models at two sizes, over paired seeds. See __init__.py."""

from __future__ import annotations

import math

import torch

from repro.common.data import lm_token_streams, random_windows
from repro.common.stats import below_unigram, paired_differences, seeds_for, unigram_entropy
from repro.common.tinylm import LMConfig, cosine_lr, evaluate
from repro.context import RunContext

from .model import MultiTokenLM
from .speculative import tokens_per_pass


def train_one(cfg, width: int, n_future: int, train_ids, val_ids, seed: int) -> dict:
    torch.manual_seed(seed)
    model = MultiTokenLM(
        LMConfig.like(
            cfg,
            d_model=width,
            n_head=max(1, width // 16),
            bias=False,
            tie_embeddings=cfg.tie_embeddings,
        ),
        n_future,
    )
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=0.0)
    # every n sees the same windows: T + max(n) tokens, of which model n uses the first T + n
    gen = torch.Generator().manual_seed(seed + 1)
    longest = max(cfg.n_futures)
    batches = random_windows(train_ids, cfg.batch_size, cfg.seq_len + longest, gen)
    warm = max(1, cfg.steps // 20)
    model.train()
    head_losses = []
    for step in range(cfg.steps):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, cfg.steps, cfg.lr, warm)
        x, _ = next(batches)  # (B, T + longest): inputs and all heads' targets
        loss, per_head = model.multi_token_loss(x[:, : cfg.seq_len + n_future])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        head_losses.append(per_head)
        if not math.isfinite(loss.item()):
            return {"val": math.inf, "model": None}
    val = evaluate(model, val_ids, cfg.seq_len, cfg.batch_size, cfg.eval_batches)
    tail = head_losses[-max(1, cfg.steps // 10) :]  # last tenth of training, per head
    return {
        "model": model,
        "val": val,
        "train_head_loss": [sum(h[i] for h in tail) / len(tail) for i in range(n_future)],
        "next_token_params": model.next_token_params(),
        "training_params": sum(p.numel() for p in model.parameters()),
    }


def plot(widths, params, val, n_futures, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    for n in n_futures:
        a.plot(params, [val[str(w)][str(n)] for w in widths], "o-", label=f"n = {n}")
    a.set_xscale("log")
    a.set_xlabel("next-token model parameters")
    a.set_ylabel("next-token validation loss")
    a.legend()
    for n in n_futures:
        if n == 1:
            continue
        b.plot(
            params,
            [val[str(w)][str(n)] - val[str(w)]["1"] for w in widths],
            "o-",
            label=f"n = {n} − n = 1",
        )
    b.axhline(0, color="k", lw=0.8)
    b.set_xscale("log")
    b.set_xlabel("next-token model parameters")
    b.set_ylabel("loss difference (nats/token)")
    b.set_title("below 0: multi-token training helps")
    b.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(cfg, ctx: RunContext) -> None:
    if 1 not in cfg.n_futures or 4 not in cfg.n_futures:
        raise ValueError("n_futures must include 1 (the baseline) and 4 (the paper's main n)")
    train_ids, val_ids, _ = lm_token_streams(vocab_size=cfg.vocab_size, max_docs=cfg.max_docs)
    # The learned gate's floor: the unigram cross-entropy on the tokens evaluate() scores.
    span = val_ids[: cfg.eval_batches * cfg.batch_size * cfg.seq_len + 1]
    unigram = unigram_entropy(train_ids, cfg.vocab_size, span[1:])
    ctx.metrics["unigram_nats"] = unigram
    widths = sorted(cfg.widths)
    # val[width][n]: one next-token validation loss per seed; seed s gives every (width, n)
    # the same batches and, per width, the same initial next-token model (paired by seed)
    val: dict[str, dict[str, list[float]]] = {
        str(w): {str(n): [] for n in cfg.n_futures} for w in widths
    }
    heads: dict[str, dict[str, list[float]]] = {}
    params = []
    # Self-speculative decoding: prompts from the held-out text after the evaluation span,
    # each continued greedily to the model's full window (no cropping, so the output must equal
    # plain greedy decoding exactly).
    start = cfg.eval_batches * cfg.batch_size * cfg.seq_len + 1
    prompts = [
        val_ids[start + i * cfg.seq_len : start + i * cfg.seq_len + cfg.prompt_len].tolist()
        for i in range(cfg.spec_prompts)
    ]
    prompts = [p for p in prompts if len(p) == cfg.prompt_len]
    if not prompts:
        raise ValueError("held-out text too short for any speculative-decoding prompt")
    n_new = cfg.seq_len - cfg.prompt_len
    k_spec = max(cfg.n_futures)
    spec_tpp: list[float] = []
    spec_same: list[float] = []
    for seed in ctx.progress(seeds_for(ctx.seed, cfg.seeds), desc="seeds"):
        for width in widths:
            for n in cfg.n_futures:
                r = train_one(cfg, width, n, train_ids, val_ids, seed)
                val[str(width)][str(n)].append(r["val"])
                if width == widths[-1] and n == k_spec:
                    if r["model"] is None:  # diverged: nothing to decode with
                        spec_tpp.append(None)
                        spec_same.append(None)
                    else:
                        tpp, same = tokens_per_pass(r["model"], prompts, n_new, k_spec)
                        spec_tpp.append(tpp)
                        spec_same.append(same)
                        ctx.log(f"  seed {seed} d={width} n={n}: {tpp:.3f} tokens per pass")
                    ctx.metrics.update(
                        spec_tokens_per_pass=spec_tpp,
                        spec_output_equals_greedy=spec_same,
                        spec_heads=k_spec,
                        spec_prompts=len(prompts),
                        spec_new_tokens=n_new,
                    )
                if seed == ctx.seed:
                    heads.setdefault(str(width), {})[str(n)] = r.get("train_head_loss", [])
                    if n == 1:
                        params.append(r["next_token_params"])
                ctx.log(f"  seed {seed} d={width} n={n}: next-token val {r['val']:.4f}")
        effect = {w: paired_differences(val[w]["4"], val[w]["1"]) for w in val}
        ctx.metrics.update(
            val_loss=val,
            widths=widths,
            next_token_params=params,
            train_head_losses=heads,
            n4_minus_n1=effect,
            n4_minus_n1_smallest=effect[str(widths[0])],
        )
        # learned-gate metrics for the arms the claims compare: n = 1 and 4 at the smallest
        # and the largest width
        for role, w in (("smallest", widths[0]), ("largest", widths[-1])):
            for n in (1, 4):
                ctx.metrics[f"{role}_n{n}_below_unigram"] = below_unigram(
                    val[str(w)][str(n)], unigram
                )
        if len(widths) >= 2:
            ctx.metrics["effect_change_with_size"] = paired_differences(
                effect[str(widths[-1])], effect[str(widths[0])]
            )
    if len(widths) < 2:
        ctx.skip("benefit-grows-with-size", "one model size in this run")
    mean_val = {w: {n: sum(v) / len(v) for n, v in d.items()} for w, d in val.items()}
    plot(widths, params, mean_val, cfg.n_futures, ctx.figure_path("multi_token_prediction.png"))
