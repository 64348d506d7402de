"""Measurements for the RWKV reproduction. See __init__.py for the claims."""

from __future__ import annotations

import math
import statistics
import time

import torch

from repro.common.plots import lm_loss_panel
from repro.context import RunContext

from .model import (
    GPT,
    RWKV,
    RWKVConfig,
    kv_bytes,
    matched_ffn_hidden,
    non_embedding_params,
    state_bytes,
)
from .wkv import wkv_parallel, wkv_parallel_naive, wkv_recurrent, wkv_recurrent_naive


# --------------------------------------------------------------------------- WKV forms
def wkv_forms(cfg, gen: torch.Generator) -> dict:
    """Parallel vs recurrent in float64, and the stable vs naive recurrence in float32, over
    keys drawn with growing spread (k = s·N(0, 1))."""
    B, T, C = 2, cfg.wkv_len, cfg.wkv_channels
    w = torch.exp(torch.empty(C, dtype=torch.float64).uniform_(-5, 1, generator=gen))
    u = torch.randn(C, generator=gen, dtype=torch.float64)
    out = {
        "scales": list(cfg.key_scales),
        "f64_parallel_vs_recurrent": [],
        "f32_stable_err": [],
        "f32_stable_nonfinite": [],
        "f32_naive_nonfinite": [],
        "f32_naive_parallel_nonfinite": [],
    }
    for s in cfg.key_scales:
        k = s * torch.randn(B, T, C, generator=gen, dtype=torch.float64)
        v = torch.randn(B, T, C, generator=gen, dtype=torch.float64)
        ref = wkv_parallel(w, u, k, v)
        rec, _ = wkv_recurrent(w, u, k, v)
        out["f64_parallel_vs_recurrent"].append((ref - rec).abs().max().item())
        # float32: compare with a float64 reference on the same (rounded) inputs, so the
        # error measured is the arithmetic's, not the rounding of k itself.
        w32, u32, k32, v32 = (t.float() for t in (w, u, k, v))
        ref32 = wkv_parallel(*(t.double() for t in (w32, u32, k32, v32)))
        stable, _ = wkv_recurrent(w32, u32, k32, v32)
        naive = wkv_recurrent_naive(w32, u32, k32, v32)
        naive_par = wkv_parallel_naive(w32, u32, k32, v32)
        finite = torch.isfinite(stable)
        out["f32_stable_nonfinite"].append(1 - finite.float().mean().item())
        out["f32_stable_err"].append(
            (stable.double() - ref32)[finite].abs().max().item() if finite.all() else float("inf")
        )
        out["f32_naive_nonfinite"].append(1 - torch.isfinite(naive).float().mean().item())
        out["f32_naive_parallel_nonfinite"].append(
            1 - torch.isfinite(naive_par).float().mean().item()
        )
    return out


# --------------------------------------------------------------------------- language model
ARMS = ("rwkv", "transformer")


def make_lm(cfg, arm: str) -> torch.nn.Module:
    """One arm's LM at the preset's width and depth: RWKV-4, or the GPT peer whose feed-forward
    width gives it RWKV's non-embedding parameter count."""
    if arm == "rwkv":
        return RWKV(RWKVConfig(vocab_size=cfg.vocab_size, d_model=cfg.d_model, n_layer=cfg.n_layer))
    if arm == "transformer":
        hidden = matched_ffn_hidden(cfg.d_model, cfg.n_layer)
        return GPT(cfg.vocab_size, cfg.d_model, cfg.n_layer, cfg.n_head, cfg.seq_len, hidden)
    raise ValueError(f"arm {arm!r}: use one of {ARMS}")


def train_arm(cfg, arm: str, lr: float, train_ids, seed: int, ctx: RunContext):
    """One arm trained from ``seed``: the seed sets the initialisation and the order of the
    random training windows, so both arms of one seed see the same batches. AdamW
    β = (0.9, 0.95), no weight decay, cosine schedule with 5% linear warm-up.
    Returns the model and its training losses."""
    from repro.common.data import random_windows
    from repro.common.tinylm import cosine_lr, train

    torch.manual_seed(seed)
    model = make_lm(cfg, arm)
    opt = torch.optim.AdamW(
        model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=cfg.weight_decay
    )
    batches = random_windows(
        train_ids,
        cfg.batch_size,
        cfg.seq_len,
        generator=torch.Generator().manual_seed(seed + 1),
    )
    warmup = max(1, cfg.steps // 20)
    t0 = time.process_time()
    losses = train(
        model,
        batches,
        cfg.steps,
        optimizer=opt,
        lr_at=lambda s: cosine_lr(s, cfg.steps, lr, warmup),
        progress=lambda it, desc=f"{arm} lr {lr:g} seed {seed}": ctx.progress(it, desc=desc),
    )
    ctx.log(
        f"  {arm} lr {lr:g} seed {seed}: {cfg.steps} steps, {time.process_time() - t0:.1f} CPU-s"
    )
    return model, losses


@torch.no_grad()
def recurrent_vs_parallel_logits(model: RWKV, ids: torch.Tensor, T: int) -> dict:
    """The trained LM on held-out text three ways: T×T parallel WKV, prefill by scan, and
    one token at a time from the state. Returns max |Δlogit| / max |logit|."""
    idx = ids[: 2 * T].view(2, T)
    impl = [b.att.impl for b in model.blocks]
    for b in model.blocks:
        b.att.impl = "parallel"
    par = model(idx)
    for b, i in zip(model.blocks, impl):
        b.att.impl = i
    scan, _ = model.prefill(idx)
    state = model.init_state(2)
    steps = []
    for t in range(T):
        lg, state = model.step(idx[:, t], state)
        steps.append(lg)
    step = torch.stack(steps, 1)
    scale = par.abs().max().item()
    return {
        "scan": (scan - par).abs().max().item() / scale,
        "step": (step - par).abs().max().item() / scale,
    }


# --------------------------------------------------------------------------- decoding cost
@torch.no_grad()
def decode_cost(cfg, ids: torch.Tensor, ctx: RunContext) -> dict:
    """Per-token decoding time and carried-state bytes at growing context lengths.

    RWKV reads the real prompt through its recurrence, segment by segment, so its state at
    each length is the true one. The Transformer's key/value cache is filled with random
    entries of the right shape: attention over t cached entries costs the same whatever
    they hold, and computing a real 8k-token prefill would cost O(t²) for nothing.
    """
    torch.manual_seed(ctx.seed)
    lengths = list(cfg.decode_lengths)
    max_len = lengths[-1] + cfg.decode_tokens * cfg.decode_repeats + 1
    rwkv = RWKV(
        RWKVConfig(vocab_size=cfg.vocab_size, d_model=cfg.decode_d, n_layer=cfg.decode_layers)
    ).eval()
    gpt = GPT(cfg.vocab_size, cfg.decode_d, cfg.decode_layers, cfg.decode_heads, max_len).eval()
    cache = gpt.empty_cache(1)
    prompt = ids[: lengths[-1]].view(1, -1)
    state, done = None, 0
    rows = {
        "lengths": lengths,
        "rwkv_ms": [],
        "gpt_ms": [],
        "rwkv_state_bytes": [],
        "gpt_cache_bytes": [],
    }
    tok = prompt[:, 0]

    def per_token_ms(step_fn) -> float:
        # CPU time of this process, not wall time: on a machine shared with other jobs the
        # wall clock mostly measures how long we waited for a core.
        times = []
        for _ in range(cfg.decode_repeats):
            t0 = time.process_time()
            for _ in range(cfg.decode_tokens):
                step_fn()
            times.append((time.process_time() - t0) / cfg.decode_tokens * 1e3)
        return statistics.median(times)

    for n in ctx.progress(lengths, desc="decode lengths"):
        _, state = rwkv.prefill(prompt[:, done:n], state)
        for K, V in cache:
            K[:, :, done:n].normal_()
            V[:, :, done:n].normal_()
        done = n
        # step() returns a new state and leaves this one alone: every repeat starts at length n
        rows["rwkv_ms"].append(per_token_ms(lambda s=state: rwkv.step(tok, s)))
        rows["gpt_ms"].append(per_token_ms(lambda n=n: gpt.step(tok, cache, n)))
        _, after = rwkv.step(tok, state)
        rows["rwkv_state_bytes"].append(state_bytes(after))
        rows["gpt_cache_bytes"].append(kv_bytes(cache, n + 1))
    return rows


def loglog_slope(x, y) -> float:
    lx = torch.tensor([math.log(v) for v in x], dtype=torch.float64)
    ly = torch.tensor([math.log(v) for v in y], dtype=torch.float64)
    lx = lx - lx.mean()
    return ((lx * (ly - ly.mean())).sum() / (lx * lx).sum()).item()


# --------------------------------------------------------------------------- figures
def plot(forms, dec, curves, unigram, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b, c) = plt.subplots(1, 3, figsize=(14, 3.8))
    s = forms["scales"]
    a.semilogx(s, forms["f32_naive_nonfinite"], "o-", label="naive recurrence: non-finite")
    a.semilogx(s, forms["f32_naive_parallel_nonfinite"], "^-", label="naive parallel: non-finite")
    a.semilogx(s, forms["f32_stable_nonfinite"], "s-", label="stable recurrence: non-finite")
    a.set_xlabel("key spread s  (k = s·N(0,1))")
    a.set_ylabel("fraction of outputs (float32)")
    a.set_title("WKV overflow")
    a.legend(fontsize=8)
    b.loglog(dec["lengths"], dec["gpt_ms"], "o-", label="Transformer + KV cache")
    b.loglog(dec["lengths"], dec["rwkv_ms"], "s-", label="RWKV (recurrent)")
    b.set_xlabel("context length t")
    b.set_ylabel("ms per generated token (median)")
    b.set_title("decoding time per token")
    b2 = b.twinx()
    b2.loglog(dec["lengths"], dec["gpt_cache_bytes"], "o:", color="C0", alpha=0.5)
    b2.loglog(dec["lengths"], dec["rwkv_state_bytes"], "s:", color="C1", alpha=0.5)
    b2.set_ylabel("bytes carried between tokens (dotted)")
    b.legend(fontsize=8, loc="upper left")
    lm_loss_panel(c, curves, unigram, "Brown corpus LM")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(cfg, ctx: RunContext) -> None:
    from repro.common.data import lm_token_streams
    from repro.common.stats import (
        below_unigram,
        inside_grid,
        paired_differences,
        seeds_for,
        unigram_entropy,
    )
    from repro.common.tinylm import evaluate

    if len(cfg.lrs) < 3:
        raise ValueError(f"lrs: {cfg.lrs!r}; each arm picks its lr from a grid of ≥ 3 values")

    gen = torch.Generator().manual_seed(ctx.seed)
    forms = wkv_forms(cfg, gen)
    big = [i for i, f in enumerate(forms["f32_naive_nonfinite"]) if f > 0]
    ctx.metrics.update(
        wkv=forms,
        wkv_parallel_vs_recurrent_f64=max(forms["f64_parallel_vs_recurrent"]),
        wkv_stable_f32_max_err=max(forms["f32_stable_err"]),
        # the naive form breaks at some spread where the stable one is finite everywhere
        naive_overflows_where_stable_finite=bool(big)
        and all(forms["f32_stable_nonfinite"][i] == 0 for i in big),
        naive_first_failing_scale=forms["scales"][big[0]] if big else None,
    )

    # Both LMs, paired by seed. The held-out text is split in two: each arm's learning rate is
    # picked on the "dev" half, every reported loss is measured on the "test" half.
    train_ids, val_ids, _ = lm_token_streams(
        vocab_size=cfg.vocab_size, kind="bpe", max_docs=cfg.max_docs
    )
    half = len(val_ids) // 2
    test_ids, dev_ids = val_ids[:half], val_ids[half:]
    span = test_ids[: cfg.eval_batches * cfg.batch_size * cfg.seq_len + 1]
    # the floor: the add-one unigram model of the training stream, on the tokens scored
    unigram = unigram_entropy(train_ids, cfg.vocab_size, span[1:])
    seeds = seeds_for(ctx.seed, cfg.seeds)
    counts = {arm: non_embedding_params(make_lm(cfg, arm)) for arm in ARMS}
    ctx.metrics.update(
        unigram_val_ce=unigram,
        seeds=seeds,
        rwkv_params_non_embedding=counts["rwkv"],
        transformer_params_non_embedding=counts["transformer"],
        transformer_ffn_hidden=matched_ffn_hidden(cfg.d_model, cfg.n_layer),
        arms_equal_params=counts["rwkv"] == counts["transformer"],
    )

    def held_out(model, ids) -> float:
        return evaluate(model, ids, cfg.seq_len, cfg.batch_size, cfg.eval_batches)

    test: dict[str, list[float]] = {arm: [] for arm in ARMS}
    curves, first_rwkv = {}, None
    for arm in ARMS:
        # the grid, on the first seed: each arm tries every rate of the one grid
        dev, test_at, models = {}, {}, {}
        for lr in cfg.lrs:
            model, losses = train_arm(cfg, arm, lr, train_ids, seeds[0], ctx)
            dev[lr], test_at[lr] = held_out(model, dev_ids), held_out(model, test_ids)
            models[lr] = (model, losses)
        best = min(cfg.lrs, key=lambda lr: dev[lr])
        if arm == "rwkv":
            first_rwkv = models[best][0]
        curves[arm] = models[best][1]
        del models
        ctx.metrics[f"{arm}_dev_loss_by_lr"] = {f"{lr:g}": v for lr, v in dev.items()}
        ctx.metrics[f"{arm}_lr"] = best
        ctx.metrics[f"{arm}_lr_inside_grid"] = inside_grid(cfg.lrs, best)
        test[arm].append(test_at[best])
        for seed in seeds[1:]:
            model, _ = train_arm(cfg, arm, best, train_ids, seed, ctx)
            test[arm].append(held_out(model, test_ids))
        ctx.metrics[f"{arm}_val_loss"] = list(test[arm])
        ctx.metrics[f"{arm}_below_unigram"] = below_unigram(test[arm], unigram)
        ctx.log(f"  {arm}: lr {best:g}, held-out loss per seed {[round(v, 3) for v in test[arm]]}")
    ctx.metrics["rwkv_vs_transformer_rel_diff"] = [
        d / g
        for d, g in zip(paired_differences(test["rwkv"], test["transformer"]), test["transformer"])
    ]

    diffs = recurrent_vs_parallel_logits(first_rwkv.eval(), test_ids, cfg.seq_len)
    ctx.metrics.update(
        lm_scan_vs_parallel_rel=diffs["scan"],
        lm_step_vs_parallel_rel=diffs["step"],
        lm_forms_max_rel_diff=max(diffs.values()),
    )

    dec = decode_cost(cfg, val_ids if len(val_ids) > cfg.decode_lengths[-1] else train_ids, ctx)
    ctx.metrics.update(
        decode=dec,
        rwkv_state_growth=dec["rwkv_state_bytes"][-1] / dec["rwkv_state_bytes"][0],
        kv_cache_bytes_slope=loglog_slope(dec["lengths"], dec["gpt_cache_bytes"]),
        rwkv_time_slope=loglog_slope(dec["lengths"], dec["rwkv_ms"]),
        transformer_time_slope=loglog_slope(dec["lengths"], dec["gpt_ms"]),
        transformer_time_growth=dec["gpt_ms"][-1] / dec["gpt_ms"][0],
        rwkv_time_growth=dec["rwkv_ms"][-1] / dec["rwkv_ms"][0],
    )
    plot(
        forms,
        dec,
        {"RWKV": curves["rwkv"], "Transformer": curves["transformer"]},
        unigram,
        ctx.figure_path("rwkv.png"),
    )
