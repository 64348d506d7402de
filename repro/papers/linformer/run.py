"""Measurements for the Linformer reproduction. See __init__.py for the claims."""

from __future__ import annotations

import math
import statistics
import time

import torch

from repro.common.memory import peak_bytes
from repro.common.stats import seeds_for, unigram_entropy
from repro.context import RunContext

from .model import Encoder, EncoderConfig, full_attention, linformer_attention, mask_tokens


# --------------------------------------------------------------------------- training
def train_mlm(model, train_ids, mask_id, cfg, ctx, desc, seed: int) -> list[float]:
    """Masked-LM training with ``repro.common.tinylm.train`` (AdamW, warm-up + cosine, clip 1)."""
    from repro.common.data import random_windows
    from repro.common.tinylm import cosine_lr, train

    gen = torch.Generator().manual_seed(seed + 1)  # same windows and masks for paired arms

    def masked_batches():
        for x, _ in random_windows(train_ids, cfg.batch_size, cfg.seq_len, generator=gen):
            yield mask_tokens(x, mask_id, cfg.vocab_size, 0.15, gen)

    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.98), weight_decay=0.01)
    label = desc
    t0 = time.perf_counter()
    losses = train(
        model,
        masked_batches(),
        cfg.steps,
        optimizer=opt,
        lr_at=lambda step: cosine_lr(step, cfg.steps, cfg.lr, max(1, cfg.steps // 10)),
        clip=1.0,
        progress=lambda it, desc="": ctx.progress(it, desc=label),
    )
    ctx.log(f"  {desc}: {len(losses)} steps in {time.perf_counter() - t0:.1f} s")
    return losses


def val_windows(val_ids, cfg) -> torch.Tensor:
    n = cfg.seq_len
    count = min(cfg.eval_windows, len(val_ids) // n)
    return val_ids[: count * n].view(count, n)


@torch.no_grad()
def mlm_loss(model, windows, mask_id, cfg, seed) -> float:
    model.eval()
    inp, tgt = mask_tokens(
        windows, mask_id, cfg.vocab_size, 0.15, torch.Generator().manual_seed(seed)
    )
    return model(inp, tgt)[1].item()


def masked_unigram(train_ids, windows, cfg, seed) -> float:
    """Unigram cross-entropy (nats) of the tokens ``mlm_loss`` scores (same mask draw): the
    floor an MLM must beat to have learned more than token frequencies."""
    _, tgt = mask_tokens(windows, 0, cfg.vocab_size, 0.15, torch.Generator().manual_seed(seed))
    return unigram_entropy(train_ids, cfg.vocab_size, tgt[tgt != -100])


@torch.no_grad()
def attention_maps(model, windows):
    """Per layer: P (W, H, n, n) and V (W, H, n, d_h) on the given windows."""
    model.eval()
    for b in model.blocks:
        b.attn.keep = True
    model(windows)
    out = [(b.attn.saved["p"], b.attn.saved["v"]) for b in model.blocks]
    for b in model.blocks:
        b.attn.keep, b.attn.saved = False, None
    return out


# --------------------------------------------------------------------------- spectrum, JL
def cumulative_spectrum(p: torch.Tensor) -> torch.Tensor:
    """Normalised cumulative singular values of each n×n map: (…, n), the last entry 1."""
    s = torch.linalg.svdvals(p.double())
    return torch.cumsum(s, -1) / s.sum(-1, keepdim=True)


def shuffle_rows(p: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Permute the entries of every row at random: each row keeps its distribution (so its
    entropy and sharpness) but the alignment between rows, the structure, is gone."""
    idx = torch.argsort(torch.rand(p.shape, generator=gen), dim=-1)
    return torch.gather(p, -1, idx)


def mean_entropy(p: torch.Tensor) -> float:
    """Mean row entropy of attention maps as a fraction of log n (1 = uniform)."""
    return (-(p * p.clamp_min(1e-30).log()).sum(-1) / math.log(p.shape[-1])).mean().item()


def jl_errors(p, v, ks, draws, gen) -> dict:
    """‖P Rᵀ R V − P V‖ / ‖P V‖ for Gaussian R ∈ R^{k×n} with entries N(0, 1/k): the
    low-rank P̃ = P Rᵀ R of Theorem 1. Also the best rank-k truncation of P (SVD) as the floor
    no rank-k map can beat."""
    p, v = p.double(), v.double()
    n = p.shape[-1]
    pv = p @ v
    base = pv.flatten(-2).norm(dim=-1)  # per map
    out = {"random": {}, "svd": {}}
    u, s, vh = torch.linalg.svd(p)
    for k in ks:
        errs = []
        for _ in range(draws):
            r = torch.randn(k, n, generator=gen, dtype=torch.float64) / math.sqrt(k)
            approx = (p @ r.T) @ (r @ v)
            errs.append(((approx - pv).flatten(-2).norm(dim=-1) / base).median().item())
        out["random"][str(k)] = statistics.median(errs)
        pk = (u[..., :k] * s[..., None, :k]) @ vh[..., :k, :]
        out["svd"][str(k)] = ((pk @ v - pv).flatten(-2).norm(dim=-1) / base).median().item()
    return out


def loglog_slope(x, y) -> float:
    lx = [math.log(a) for a in x]
    ly = [math.log(b) for b in y]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


# --------------------------------------------------------------------------- memory, time
def cost_vs_length(cfg, gen, ctx) -> dict:
    """Peak memory (profiler) and median CPU time of one head's attention, full vs Linformer
    with fixed k, as n grows."""
    rows = {
        "lengths": list(cfg.cost_lengths),
        "full_bytes": [],
        "lin_bytes": [],
        "full_s": [],
        "lin_s": [],
    }
    d, k = cfg.cost_head_dim, cfg.cost_k

    def cpu_time(fn, args):
        ts = []
        for _ in range(cfg.repeats):
            t0 = time.process_time()
            with torch.no_grad():
                fn(*args)
            ts.append(time.process_time() - t0)
        return statistics.median(ts)

    for n in ctx.progress(cfg.cost_lengths, desc="lengths"):
        q, kk, v = (torch.randn(1, 1, n, d, generator=gen) for _ in range(3))
        e = torch.randn(k, n, generator=gen) / math.sqrt(k)
        rows["full_bytes"].append(peak_bytes(full_attention, q, kk, v))
        rows["lin_bytes"].append(peak_bytes(linformer_attention, q, kk, v, e, e))
        rows["full_s"].append(cpu_time(full_attention, (q, kk, v)))
        rows["lin_s"].append(cpu_time(linformer_attention, (q, kk, v, e, e)))
    return rows


def plot(curves, n, jl, ks, cost, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b, c) = plt.subplots(1, 3, figsize=(14, 3.8))
    xs = torch.arange(1, n + 1)
    for name, curve in curves.items():
        a.plot(xs, curve, label=name)
    a.axvline(n // 4, color="k", ls=":", lw=1)
    a.set_xlabel("singular value index")
    a.set_ylabel("normalised cumulative singular value")
    a.set_title(f"spectrum of P (n = {n})")
    a.legend(fontsize=8)
    b.loglog(ks, [jl["random"][str(k)] for k in ks], "o-", label="P Rᵀ R V, random R")
    b.loglog(ks, [jl["svd"][str(k)] for k in ks], "s-", label="best rank-k P (SVD)")
    b.set_xscale("log", base=2)
    b.set_xlabel("k")
    b.set_ylabel("‖P̃V − PV‖ / ‖PV‖ (median)")
    b.set_title("low-rank approximation error")
    b.legend(fontsize=8)
    c.loglog(cost["lengths"], cost["full_bytes"], "o-", label="full attention")
    c.loglog(cost["lengths"], cost["lin_bytes"], "s-", label="Linformer, fixed k")
    c.set_xscale("log", base=2)
    c.set_xlabel("sequence length n")
    c.set_ylabel("peak bytes allocated (one head)")
    c.set_title("memory")
    c.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def spectrum_of(model, windows, quarter, gen) -> dict:
    """Mass at n/4 of the trained maps (median over maps), of the same maps with each row
    shuffled, and per-layer values, plus the maps themselves."""
    maps = attention_maps(model, windows)
    per_layer = [cumulative_spectrum(p).flatten(0, -2) for p, _ in maps]  # (W·H, n) each
    curve = torch.cat(per_layer)
    shuffled = torch.cat(
        [cumulative_spectrum(shuffle_rows(p, gen)).flatten(0, -2) for p, _ in maps]
    )
    return {
        "maps": maps,
        "curve": curve,
        "shuffled": shuffled,
        "mass": curve[:, quarter - 1].median().item(),
        "mass_shuffled": shuffled[:, quarter - 1].median().item(),
        "mass_by_layer": [c[:, quarter - 1].median().item() for c in per_layer],
        "entropy_by_layer": [mean_entropy(p) for p, _ in maps],
    }


def main(cfg, ctx: RunContext) -> None:
    from repro.common.data import lm_token_streams

    gen = torch.Generator().manual_seed(ctx.seed)
    train_ids, val_ids, tok = lm_token_streams(vocab_size=cfg.vocab_size, max_docs=cfg.max_docs)
    mask_id = tok.token_to_id("[MASK]")
    enc_cfg = EncoderConfig(
        vocab_size=cfg.vocab_size,
        seq_len=cfg.seq_len,
        d_model=cfg.d_model,
        n_layer=cfg.n_layer,
        n_head=cfg.n_head,
    )
    windows = val_windows(val_ids, cfg)
    n, quarter = cfg.seq_len, cfg.seq_len // 4
    m = ctx.metrics

    # Findings, per seed: seed s initialises the encoder (the untrained control is that same
    # network before training) and draws its training windows and masks.
    per: dict[str, list] = {}
    first = None
    for seed in seeds_for(ctx.seed, cfg.seeds):
        unigram = masked_unigram(train_ids, windows, cfg, seed + 7)
        torch.manual_seed(seed)
        model = Encoder(enc_cfg)
        init = spectrum_of(model, windows, quarter, gen)
        losses = train_mlm(model, train_ids, mask_id, cfg, ctx, f"seed {seed}: MLM, full", seed)
        full_val = mlm_loss(model, windows, mask_id, cfg, seed + 7)
        sp = spectrum_of(model, windows, quarter, gen)
        row = {
            "mlm_val_loss": full_val,
            "mlm_train_loss_first": losses[0],
            "mlm_unigram": unigram,
            # learned gate: the masked tokens' unigram floor minus the held-out MLM loss
            "full_below_unigram": unigram - full_val,
            "spectrum_mass_at_quarter": sp["mass"],
            "spectrum_mass_at_quarter_untrained": init["mass"],
            "spectrum_mass_at_quarter_shuffled": sp["mass_shuffled"],
            "spectrum_mass_gain_over_shuffled": sp["mass"] - sp["mass_shuffled"],
            "spectrum_mass_gain_over_shuffled_untrained": init["mass"] - init["mass_shuffled"],
            "spectrum_mass_at_quarter_by_layer": sp["mass_by_layer"],
            "attention_entropy_by_layer": sp["entropy_by_layer"],
        }
        if cfg.train_linformer:
            torch.manual_seed(seed)
            lin = Encoder(EncoderConfig(**{**enc_cfg.__dict__, "proj_k": quarter}))
            train_mlm(lin, train_ids, mask_id, cfg, ctx, f"seed {seed}: MLM, k={quarter}", seed)
            lin_val = mlm_loss(lin, windows, mask_id, cfg, seed + 7)
            row.update(
                linformer_mlm_val_loss=lin_val,
                linformer_below_unigram=unigram - lin_val,
                # paired by seed: same initial seed, windows and masks for both encoders
                linformer_over_full_loss=lin_val / full_val,
            )
        for k, v in row.items():
            per.setdefault(k, []).append(v)
        m.update({k: list(v) for k, v in per.items()})  # kept as the seeds finish
        if first is None:
            first = (sp, init)
    if not cfg.train_linformer:
        ctx.skip(
            "linformer-trains-like-full", "training a second encoder is left to the full preset"
        )

    # Checks of our implementation, on the first seed's trained maps.
    sp, init = first
    ks = [k for k in cfg.proj_ks if k <= n]
    jl = {"random": {}, "svd": {}}
    for p, v in sp["maps"]:  # pool the layers: median of the per-layer medians
        r = jl_errors(p, v, ks, cfg.jl_draws, gen)
        for kind in jl:
            for k, e in r[kind].items():
                jl[kind].setdefault(k, []).append(e)
    jl = {kind: {k: statistics.median(v) for k, v in d.items()} for kind, d in jl.items()}
    m.update(
        jl_error=jl,
        jl_error_slope=loglog_slope(ks, [jl["random"][str(k)] for k in ks]),
        jl_error_decreasing=all(
            jl["random"][str(a)] > jl["random"][str(b)] for a, b in zip(ks, ks[1:])
        ),
    )

    cost = cost_vs_length(cfg, gen, ctx)
    m.update(
        cost=cost,
        full_memory_slope=loglog_slope(cost["lengths"], cost["full_bytes"]),
        linformer_memory_slope=loglog_slope(cost["lengths"], cost["lin_bytes"]),
        full_time_slope=loglog_slope(cost["lengths"], cost["full_s"]),
        linformer_time_slope=loglog_slope(cost["lengths"], cost["lin_s"]),
        memory_ratio_at_max=cost["full_bytes"][-1] / cost["lin_bytes"][-1],
    )

    plot(
        {
            "trained": sp["curve"].mean(0),
            "trained, rows shuffled": sp["shuffled"].mean(0),
            "untrained": init["curve"].mean(0),
        },
        n,
        jl,
        ks,
        cost,
        ctx.figure_path("linformer.png"),
    )
