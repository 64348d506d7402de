"""Measurements for the xLSTM reproduction. See __init__.py for the claims."""

from __future__ import annotations

import time

import torch

from repro.common.plots import lm_loss_panel
from repro.context import RunContext

from .cells import mlstm_parallel, mlstm_parallel_naive, mlstm_recurrent, slstm_recurrent
from .model import XLSTM, XLSTMConfig


def cell_inputs(cfg, scale: float, gen, dtype=torch.float64):
    """Random cell inputs whose input-gate pre-activations ĩ have spread ``scale``."""
    B, H, T, d = 2, cfg.cell_heads, cfg.cell_len, cfg.cell_dim
    q, k, v = (torch.randn(B, H, T, d, generator=gen, dtype=dtype) for _ in range(3))
    i_pre = scale * torch.randn(B, H, T, generator=gen, dtype=dtype)
    f_pre = torch.randn(B, H, T, generator=gen, dtype=dtype) + 2.0
    x_proj = torch.randn(B, T, 4, H, d, generator=gen, dtype=dtype)
    x_proj[:, :, 1] *= scale  # the sLSTM input gate
    R = torch.randn(4, H, d, d, generator=gen, dtype=dtype) / d**0.5
    return (q, k, v, i_pre, f_pre), (x_proj, R)


def rel_err(a: torch.Tensor, ref: torch.Tensor) -> float:
    if not torch.isfinite(a).all():
        return float("inf")
    return ((a.double() - ref).abs().max() / ref.abs().max()).item()


def nonfinite(a: torch.Tensor) -> float:
    return 1 - torch.isfinite(a).float().mean().item()


def cell_forms(cfg, gen) -> dict:
    rows = {
        k: []
        for k in (
            "f64_parallel_vs_recurrent",
            "f32_stable_err",
            "f32_naive_nonfinite",
            "f32_stable_nonfinite",
        )
    }
    rows["scales"] = list(cfg.gate_scales)
    for s in cfg.gate_scales:
        m_args, s_args = cell_inputs(cfg, s, gen)
        ref_m = mlstm_parallel(*m_args)
        rows["f64_parallel_vs_recurrent"].append(rel_err(mlstm_recurrent(*m_args), ref_m))
        # float32, against a float64 reference on the same rounded inputs
        m32 = [t.float() for t in m_args]
        s32 = [t.float() for t in s_args]
        ref_m32 = mlstm_parallel(*(t.double() for t in m32))
        ref_s32 = slstm_recurrent(*(t.double() for t in s32))
        stable = {
            "mlstm_parallel": mlstm_parallel(*m32),
            "mlstm_recurrent": mlstm_recurrent(*m32),
            "slstm": slstm_recurrent(*s32),
        }
        naive = {
            "mlstm_parallel": mlstm_parallel_naive(*m32),
            "mlstm_recurrent": mlstm_recurrent(*m32, stabilise=False),
            "slstm": slstm_recurrent(*s32, stabilise=False),
        }
        refs = {"mlstm_parallel": ref_m32, "mlstm_recurrent": ref_m32, "slstm": ref_s32}
        rows["f32_stable_err"].append({k: rel_err(v, refs[k]) for k, v in stable.items()})
        rows["f32_stable_nonfinite"].append({k: nonfinite(v) for k, v in stable.items()})
        rows["f32_naive_nonfinite"].append({k: nonfinite(v) for k, v in naive.items()})
    return rows


def train_lm(model, train_ids, cfg, ctx, desc, seed: int):
    """AdamW with a cosine schedule on random windows drawn from ``seed``: both arms of one
    seed see the same batches in the same order."""
    from repro.common.data import random_windows
    from repro.common.tinylm import cosine_lr, train

    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.99), weight_decay=0.0)
    batches = random_windows(
        train_ids,
        cfg.batch_size,
        cfg.seq_len,
        generator=torch.Generator().manual_seed(seed + 1),
    )
    t0 = time.perf_counter()
    losses = train(
        model,
        batches,
        cfg.steps,
        optimizer=opt,
        lr_at=lambda s: cosine_lr(s, cfg.steps, cfg.lr, max(1, cfg.steps // 10)),
        progress=lambda it, desc=desc: ctx.progress(it, desc=desc),
    )
    ctx.log(f"  {desc}: {cfg.steps} steps in {time.perf_counter() - t0:.1f} s")
    return losses


def plot(forms, curves, unigram, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    s = forms["scales"]
    for key, mark in (("mlstm_recurrent", "o"), ("mlstm_parallel", "^"), ("slstm", "s")):
        a.semilogx(
            s,
            [r[key] for r in forms["f32_naive_nonfinite"]],
            mark + "-",
            label=f"{key}, no stabiliser",
        )
        a.semilogx(
            s,
            [r[key] for r in forms["f32_stable_nonfinite"]],
            mark + ":",
            label=f"{key}, stabilised",
        )
    a.set_xlabel("spread of input-gate pre-activation ĩ")
    a.set_ylabel("fraction of non-finite outputs (float32)")
    a.set_title("exponential gating: overflow")
    a.legend(fontsize=7)
    lm_loss_panel(b, curves, unigram, "Brown corpus LM")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(cfg, ctx: RunContext) -> None:
    from repro.common.data import lm_token_streams
    from repro.common.stats import below_unigram, paired_differences, seeds_for, unigram_entropy
    from repro.common.tinylm import LMConfig, TinyLM, evaluate

    gen = torch.Generator().manual_seed(ctx.seed)
    forms = cell_forms(cfg, gen)
    failing = [
        i for i, r in enumerate(forms["f32_naive_nonfinite"]) if all(v > 0 for v in r.values())
    ]
    ctx.metrics.update(
        cells=forms,
        mlstm_parallel_vs_recurrent_f64=max(forms["f64_parallel_vs_recurrent"]),
        stable_f32_max_rel_err=max(max(r.values()) for r in forms["f32_stable_err"]),
        # every unstabilised form breaks at some spread where every stabilised one is finite
        unstabilised_overflows_where_stable_finite=bool(failing)
        and all(max(forms["f32_stable_nonfinite"][i].values()) == 0 for i in failing),
        unstabilised_first_failing_scale=forms["scales"][failing[0]] if failing else None,
    )

    train_ids, val_ids, _ = lm_token_streams(vocab_size=cfg.vocab_size, max_docs=cfg.max_docs)
    unigram = unigram_entropy(train_ids, cfg.vocab_size, val_ids)
    seeds = seeds_for(ctx.seed, cfg.seeds)
    ctx.metrics.update(unigram_val_ce=unigram, seeds=seeds)
    xl_val, peer_val, curves = [], [], None
    for seed in seeds:
        torch.manual_seed(seed)
        xl = XLSTM(
            XLSTMConfig(
                vocab_size=cfg.vocab_size, d_model=cfg.d_model, blocks=cfg.blocks, heads=cfg.heads
            )
        )
        xl_losses = train_lm(xl, train_ids, cfg, ctx, f"xLSTM seed {seed}", seed)
        xl_val.append(evaluate(xl, val_ids, cfg.seq_len, cfg.batch_size, cfg.eval_batches))
        torch.manual_seed(seed)
        peer = TinyLM(
            LMConfig(
                vocab_size=cfg.vocab_size,
                seq_len=cfg.seq_len,
                d_model=cfg.d_model,
                n_layer=len(cfg.blocks),
                n_head=cfg.heads,
            )
        )
        peer_losses = train_lm(peer, train_ids, cfg, ctx, f"Transformer seed {seed}", seed)
        peer_val.append(evaluate(peer, val_ids, cfg.seq_len, cfg.batch_size, cfg.eval_batches))
        curves = curves or {f"xLSTM[{cfg.blocks}]": xl_losses, "Transformer": peer_losses}
        # written after every seed, so an interrupted run keeps the seeds it finished
        ctx.metrics.update(
            xlstm_val_loss=list(xl_val),
            transformer_val_loss=list(peer_val),
            xlstm_below_unigram=below_unigram(xl_val, unigram),
            transformer_below_unigram=below_unigram(peer_val, unigram),
            xlstm_vs_transformer_rel_diff=[
                d / p for d, p in zip(paired_differences(xl_val, peer_val), peer_val)
            ],
            xlstm_params=sum(p.numel() for p in xl.parameters()),
            transformer_params=sum(p.numel() for p in peer.parameters()),
        )
    plot(forms, curves, unigram, ctx.figure_path("xlstm.png"))
