"""Measurements for the fast-weight / linear-attention equivalence and the trained
associative-retrieval experiment. Claims: see __init__.py."""

from __future__ import annotations

import math

import torch

from repro.common.stats import paired_differences, seeds_for
from repro.context import RunContext

from .fast_weights import (
    FastWeightDecoder,
    SoftmaxKVDecoder,
    decode,
    fast_weight_recurrent,
    feature_map,
    linear_attention_parallel,
)


def draw(shape, scale: float, heavy: bool, dtype, gen: torch.Generator) -> torch.Tensor:
    """Gaussian inputs, or Student-t with 3 degrees of freedom (rare huge entries)."""
    x = torch.randn(shape, generator=gen, dtype=torch.float64)
    if heavy:
        chi2 = sum(torch.randn(shape, generator=gen, dtype=torch.float64) ** 2 for _ in range(3))
        x = x / torch.sqrt(chi2 / 3)
    return (scale * x).to(dtype)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return (torch.linalg.norm((a - b).double()) / torch.linalg.norm(b.double())).item()


def equivalence_sweep(cfg, ctx: RunContext, dtype) -> dict[str, dict[str, float]]:
    """Largest relative error between the two forms, per feature map and length, over every
    input scale, tail and (for ELU+1) with and without the normaliser."""
    gen = torch.Generator().manual_seed(ctx.seed)
    worst: dict[str, dict[str, float]] = {}
    cases = [(name, T) for name in cfg.feature_maps for T in cfg.lengths]
    for name, T in ctx.progress(cases, desc=f"equivalence {str(dtype)[6:]}"):
        phi = feature_map(name)
        # DPFP can be exactly zero, so only the positive ELU+1 map has a safe denominator.
        norms = (False, True) if name == "elu1" else (False,)
        tails = (False, True) if cfg.heavy_tails else (False,)
        err = 0.0
        for scale in cfg.input_scales:
            for heavy in tails:
                q, k = (
                    draw((cfg.batch, cfg.heads, T, cfg.d_key), scale, heavy, dtype, gen)
                    for _ in range(2)
                )
                v = draw((cfg.batch, cfg.heads, T, cfg.d_value), scale, heavy, dtype, gen)
                for normalize in norms:
                    y_rec = fast_weight_recurrent(q, k, v, phi, normalize)
                    y_par = linear_attention_parallel(q, k, v, phi, normalize)
                    err = max(err, rel_err(y_rec, y_par))
        worst.setdefault(name, {})[str(T)] = err
    return worst


def state_growth(cfg, ctx: RunContext) -> dict:
    """Decode one long sequence token by token with each decoder; read their state sizes."""
    gen = torch.Generator().manual_seed(ctx.seed + 1)
    T = max(cfg.decode_lengths)
    xs = torch.randn(1, T, cfg.d_model, generator=gen)
    fw = FastWeightDecoder(cfg.d_model, cfg.heads, "elu1")
    kv = SoftmaxKVDecoder(cfg.d_model, cfg.heads)
    kv.qkv.weight.data.copy_(fw.qkv.weight.data)  # same projections: only the memory differs
    read_at = set(cfg.decode_lengths)
    y_fw, fw_bytes = decode(fw, xs, read_at)
    y_kv, kv_bytes = decode(kv, xs, read_at)

    # Both token-by-token decoders must compute what their parallel forms compute.
    with torch.no_grad():
        q, k, v = (
            t.view(1, T, cfg.heads, -1).transpose(1, 2)  # (B, H, T, hs)
            for t in fw.qkv(xs).chunk(3, dim=-1)
        )
        par_fw = linear_attention_parallel(q, k, v, feature_map("elu1"), normalize=True)
        par_kv = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    par_fw, par_kv = (y.transpose(1, 2).reshape(1, T, -1) for y in (par_fw, par_kv))
    lengths = sorted(read_at)
    fwb = [fw_bytes[t] for t in lengths]
    kvb = [kv_bytes[t] for t in lengths]
    lx = torch.tensor([math.log(t) for t in lengths], dtype=torch.float64)
    ly = torch.tensor([math.log(b) for b in kvb], dtype=torch.float64)
    slope = (((lx - lx.mean()) * (ly - ly.mean())).sum() / ((lx - lx.mean()) ** 2).sum()).item()
    crossover = next((t for t, a, b in zip(lengths, fwb, kvb) if b > a), None)
    return {
        "decode_lengths": lengths,
        "fast_weight_state_bytes": fwb,
        "kv_state_bytes": kvb,
        "fast_weight_state_growth": max(fwb) / min(fwb),
        "kv_state_growth": max(kvb) / min(kvb),
        "kv_state_loglog_slope": slope,
        "first_length_where_kv_exceeds_fast_weights": crossover,
        "fast_weight_decode_rel_err": rel_err(y_fw, par_fw),
        "kv_decode_rel_err": rel_err(y_kv, par_kv),
    }


def retrieval_experiment(cfg, ctx: RunContext) -> dict:
    """Train the slow net of a fast-weight memory on associative retrieval, per seed: the sum
    rule at every N of ``retrieval_keys`` (the capacity curve), the delta rule at the
    smallest and largest N, and both rules on the overwrite task. Arms share the seed, hence
    the initial slow net and every training batch."""
    from .retrieval import train_retriever

    common = dict(
        n_values=cfg.n_values,
        d_model=cfg.retrieval_d_model,
        d_key=cfg.retrieval_d_key,
        d_value=cfg.retrieval_d_value,
        steps=cfg.retrieval_steps,
        batch=cfg.retrieval_batch,
        lr=cfg.retrieval_lr,
        eval_sequences=cfg.eval_sequences,
    )
    chance = math.log(cfg.n_values)
    small, large = min(cfg.retrieval_keys), max(cfg.retrieval_keys)
    seeds = seeds_for(ctx.seed, cfg.seeds)
    runs = [("sum", n, 1) for n in cfg.retrieval_keys]
    runs += [("delta", n, 1) for n in (small, large)]
    runs += [(rule, cfg.overwrite_keys, 2) for rule in ("sum", "delta")]
    res: dict[str, list[dict]] = {}
    jobs = [(s, r) for s in seeds for r in runs]
    for seed, (rule, n, rep) in ctx.progress(jobs, desc="retrieval"):
        out = train_retriever(rule, n, seed, repeats=rep, **common)
        res.setdefault(f"{rule}_N{n}_x{rep}", []).append(out)

    def loss(key):
        return [r["loss"] for r in res[key]]

    curve = {
        rule: {
            str(n): loss(f"{rule}_N{n}_x1") for n in cfg.retrieval_keys if f"{rule}_N{n}_x1" in res
        }
        for rule in ("sum", "delta")
    }
    accuracy = {k: [r["accuracy"] for r in v] for k, v in res.items()}
    ow = cfg.overwrite_keys
    return {
        "retrieval_seeds": seeds,
        "chance_loss": chance,
        "retrieval_loss": curve,
        "retrieval_accuracy": accuracy,
        # capacity (setting 1): the sum rule's loss past d_key minus its loss below d_key
        "sum_loss_rise": paired_differences(loss(f"sum_N{large}_x1"), loss(f"sum_N{small}_x1")),
        # measured, no claim: sum minus delta past capacity (positive: delta retrieves better)
        "capacity_sum_minus_delta": paired_differences(
            loss(f"sum_N{large}_x1"), loss(f"delta_N{large}_x1")
        ),
        # overwrite (setting 2): sum minus delta (positive: the delta rule overwrites)
        "overwrite_sum_minus_delta": paired_differences(
            loss(f"sum_N{ow}_x2"), loss(f"delta_N{ow}_x2")
        ),
        # learned gates: nats below chance, per seed
        "sum_below_chance_small_n": [chance - x for x in loss(f"sum_N{small}_x1")],
        "delta_below_chance_small_n": [chance - x for x in loss(f"delta_N{small}_x1")],
        "sum_below_chance_overwrite": [chance - x for x in loss(f"sum_N{ow}_x2")],
        "delta_below_chance_overwrite": [chance - x for x in loss(f"delta_N{ow}_x2")],
    }


def plot_retrieval(cfg, m, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for rule, marker in (("sum", "o-"), ("delta", "s--")):
        ns = [int(n) for n in m["retrieval_loss"][rule]]
        losses = list(m["retrieval_loss"][rule].values())
        for i in range(len(m["retrieval_seeds"])):
            ax.plot(
                ns,
                [x[i] for x in losses],
                marker,
                color="C0" if rule == "sum" else "C1",
                alpha=0.6,
                label=f"{rule} rule" if i == 0 else None,
            )
    ax.axvline(cfg.retrieval_d_key, color="k", lw=0.8, ls=":", label="d_key")
    ax.axhline(m["chance_loss"], color="gray", lw=0.8, ls="--", label="chance (ln n_values)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("stored pairs N")
    ax.set_ylabel("held-out retrieval loss (nats)")
    ax.set_title("trained fast-weight memory, one line per seed")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot(cfg, err64, err32, growth, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, marker in zip(cfg.feature_maps, "osd^v"):
        Ts = [int(t) for t in err64[name]]
        a.loglog(
            Ts,
            [max(e, 1e-18) for e in err64[name].values()],
            marker + "-",
            label=f"{name}, float64",
        )
        a.loglog(
            Ts,
            [max(e, 1e-18) for e in err32[name].values()],
            marker + "--",
            label=f"{name}, float32",
        )
    a.axhline(1e-10, color="k", lw=0.8, ls=":")
    a.axhline(1e-4, color="k", lw=0.8, ls=":")
    a.set_xlabel("sequence length T")
    a.set_ylabel("max relative difference")
    a.set_title("recurrent fast weights vs parallel linear attention")
    a.legend(fontsize=7, ncol=2)
    L = growth["decode_lengths"]
    b.loglog(L, growth["kv_state_bytes"], "o-", label="softmax attention: K, V cache")
    b.loglog(L, growth["fast_weight_state_bytes"], "s-", label="fast weights: W, z")
    b.set_xlabel("tokens decoded")
    b.set_ylabel("state held between steps (bytes)")
    b.set_title(f"decoder state, d_model={cfg.d_model}, {cfg.heads} heads")
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(cfg, ctx: RunContext) -> None:
    err64 = equivalence_sweep(cfg, ctx, torch.float64)
    ctx.metrics.update(
        rel_err_fp64=err64, max_rel_err_fp64=max(e for d in err64.values() for e in d.values())
    )
    err32 = equivalence_sweep(cfg, ctx, torch.float32)
    ctx.metrics.update(
        rel_err_fp32=err32, max_rel_err_fp32=max(e for d in err32.values() for e in d.values())
    )

    # A control that must fail: dropping the causal mask is not the recurrence.
    gen = torch.Generator().manual_seed(ctx.seed + 2)
    q, k, v = (
        torch.randn(1, 1, 32, cfg.d_key, generator=gen, dtype=torch.float64) for _ in range(3)
    )
    phi = feature_map("elu1")
    ctx.metrics["unmasked_control_rel_err"] = rel_err(
        fast_weight_recurrent(q, k, v, phi), linear_attention_parallel(q, k, v, phi, causal=False)
    )

    growth = state_growth(cfg, ctx)
    ctx.metrics.update(growth)
    plot(cfg, err64, err32, growth, ctx.figure_path("fast_weights.png"))

    retrieval = retrieval_experiment(cfg, ctx)
    ctx.metrics.update(retrieval)
    plot_retrieval(cfg, retrieval, ctx.figure_path("retrieval_capacity.png"))
