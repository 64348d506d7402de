"""Measurements for the Attention Is All You Need pilot. See __init__.py for the claims."""

from __future__ import annotations

import math

import torch

from repro.context import RunContext


def sinusoidal_encoding(positions: int, d_model: int) -> torch.Tensor:
    """PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(pos / 10000^(2i/d))  (§3.5)."""
    pos = torch.arange(positions, dtype=torch.float64)[:, None]             # (P, 1)
    inv_freq = torch.pow(10000.0, -torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
    angles = pos * inv_freq                                                  # (P, d/2)
    pe = torch.empty(positions, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angles)
    pe[:, 1::2] = torch.cos(angles)
    return pe


def dot_product_stats(d_k: int, samples: int, seq_len: int, rows: int, gen: torch.Generator):
    """Variance of q·k and of q·k/√d_k; mean largest softmax probability with and without scaling."""
    q = torch.randn(samples, d_k, generator=gen, dtype=torch.float64)
    k = torch.randn(samples, d_k, generator=gen, dtype=torch.float64)
    dots = (q * k).sum(-1)
    var, var_scaled = dots.var().item(), (dots / math.sqrt(d_k)).var().item()
    qs = torch.randn(rows, 1, d_k, generator=gen)
    ks = torch.randn(rows, seq_len, d_k, generator=gen)
    logits = (qs * ks).sum(-1)                                               # (rows, seq_len)
    p_max_raw = logits.softmax(-1).amax(-1).mean().item()
    p_max_scaled = (logits / math.sqrt(d_k)).softmax(-1).amax(-1).mean().item()
    return var, var_scaled, p_max_raw, p_max_scaled


def relative_position_residual(pe: torch.Tensor, offset: int) -> float:
    """Fit PE(pos+k) ≈ PE(pos) @ M over all positions by least squares; return
    ‖residual‖ / ‖target‖. A residual at rounding level means one matrix M_k maps every
    position to the one k steps on.

    The SVD-based solver (gelsd) matters: the lowest frequencies are nearly constant over a
    few thousand positions, so columns are close to collinear and a QR-based solver with rank
    detection (torch's CPU default, gelsy) returned fits with 37% residual for some k. For
    the same reason M_k is not identifiable from a short window: fitted on half the positions
    it extrapolates badly to the rest, although an exact M_k (a rotation per frequency) exists.
    """
    x, y = pe[:-offset], pe[offset:]
    m = torch.linalg.lstsq(x, y, driver="gelsd").solution                 # (d, d)
    return (torch.linalg.norm(x @ m - y) / torch.linalg.norm(y)).item()


def plot(dims, var, var_scaled, pmax_raw, pmax_scaled, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    a.loglog(dims, var, "o-", label="Var(q·k)")
    a.loglog(dims, var_scaled, "s-", label="Var(q·k/√d_k)")
    a.loglog(dims, dims, "k:", lw=1, label="d_k")
    a.set_xlabel("d_k")
    a.set_title("dot-product variance")
    a.legend()
    b.semilogx(dims, pmax_raw, "o-", label="unscaled")
    b.semilogx(dims, pmax_scaled, "s-", label="scaled by 1/√d_k")
    b.set_xlabel("d_k")
    b.set_ylabel("mean largest softmax probability")
    b.set_ylim(0, 1.05)
    b.set_title("softmax saturation")
    b.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(cfg, ctx: RunContext) -> dict:
    gen = torch.Generator().manual_seed(ctx.seed)
    var, var_s, p_raw, p_scaled = [], [], [], []
    for d in ctx.progress(cfg.dims, desc="d_k"):
        v, vs, pr, ps = dot_product_stats(d, cfg.samples, cfg.seq_len, cfg.softmax_rows, gen)
        var.append(v)
        var_s.append(vs)
        p_raw.append(pr)
        p_scaled.append(ps)
    ctx.metrics.update(
        dims=list(cfg.dims),
        var=var,
        var_scaled=var_s,
        max_rel_err_var=max(abs(v / d - 1) for v, d in zip(var, cfg.dims)),
        max_abs_err_scaled_var=max(abs(v - 1) for v in var_s),
        # the spread the unscaled logits reach at the largest d_k, in standard deviations
        logit_std_unscaled_at_max_dk=var[-1] ** 0.5,
        softmax_max_prob_unscaled=p_raw,
        softmax_max_prob_scaled=p_scaled,
        saturation_gap_at_max_dk=p_raw[-1] - p_scaled[-1],
    )
    plot(cfg.dims, var, var_s, p_raw, p_scaled, ctx.figure_path("scaled_dot_product.png"))

    pe = sinusoidal_encoding(cfg.positions, cfg.d_model)
    residuals = {str(k): relative_position_residual(pe, k) for k in cfg.offsets}
    ctx.metrics.update(relative_residuals=residuals, max_relative_residual=max(residuals.values()))
    return {}
