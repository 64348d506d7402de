"""A shot-noise-limited optical matrix–vector multiplier, simulated, and the search for the
smallest photon budget a model tolerates.

The optical machine (our model of the paper's §4–5 simulation):

* Light intensities and transmissions cannot be negative, so every operand is split into its
  positive and negative parts, x = x⁺ − x⁻ and W = W⁺ − W⁻ (all four ≥ 0). Two detectors per
  output collect

      y⁺_i = Σ_j W⁺_ij x⁺_j + W⁻_ij x⁻_j,      y⁻_i = Σ_j W⁺_ij x⁻_j + W⁻_ij x⁺_j,

  and the electronics subtract: y_i = y⁺_i − y⁻_i = Σ_j W_ij x_j.
* Each input vector is scaled by its largest |x_j| (the modulator's full scale) and the
  weight matrix by its largest |W_ij|, so every transmission and intensity lies in [0, 1].
* A detector that receives mean photon number λ counts n ~ Poisson(λ) photons (shot noise),
  so its relative error is 1/√λ. The photon scale s (photons per unit of normalised
  intensity) is set per input vector so that the detected photons, averaged over the
  d_in · d_out multiply–accumulates (MACs) of that product, equal the budget p:

      s · Σ_i (y⁺_i + y⁻_i) = p · d_in · d_out,        ŷ_i = (n⁺_i − n⁻_i) / s.

  ŷ is unbiased, and with a fixed p the photons reaching one output grow as p · d_in: the
  width-d sum is what lets optics spend less energy per MAC as d grows.
* Optionally the normalised operands are rounded to ``bits``-bit signed levels, the
  precision of the modulators and of the weight encoding.

Energy is counted as *detected* photons; the light lost in the weight mask (and the source's
and detectors' efficiencies) is a hardware constant that does not change the scaling.
"""

from __future__ import annotations

import math

import torch


def quantize(v: torch.Tensor, bits: int) -> torch.Tensor:
    """Round values in [−1, 1] to the 2^(bits−1) − 1 symmetric levels of a signed code."""
    levels = 2 ** (bits - 1) - 1
    return torch.round(v * levels) / levels


def optical_matmul(
    x: torch.Tensor,
    w: torch.Tensor,
    photons_per_mac: float,
    *,
    bits: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """x @ wᵀ computed by the simulated optical machine.

    x: (..., k) input vectors; w: (n, k) a weight matrix, or (..., n, k) one matrix per
    leading index (the attention products). ``photons_per_mac = inf`` and ``bits = None``
    give the exact product.
    """
    exact = math.isinf(photons_per_mac)
    if exact and bits is None:
        return x @ w.transpose(-1, -2)
    k, n = x.shape[-1], w.shape[-2]
    x_scale = x.abs().amax(-1, keepdim=True).clamp_min(1e-30)  # (..., 1) per vector
    w_scale = w.abs().amax(dim=(-2, -1), keepdim=True).clamp_min(1e-30)  # (1, 1) or (..., 1, 1)
    xh, wh = x / x_scale, w / w_scale
    if bits is not None:
        xh, wh = quantize(xh, bits), quantize(wh, bits)
    if exact:
        return (xh @ wh.transpose(-1, -2)) * x_scale * w_scale
    xp, xn = xh.clamp_min(0), (-xh).clamp_min(0)
    wpt, wnt = wh.clamp_min(0).transpose(-1, -2), (-wh).clamp_min(0).transpose(-1, -2)
    y_pos = xp @ wpt + xn @ wnt  # (..., n) light on the "+" detectors
    y_neg = xp @ wnt + xn @ wpt  # (..., n) light on the "−" detectors
    light = (y_pos + y_neg).sum(-1, keepdim=True)  # (..., 1)
    # s: photons per unit of normalised intensity, so that the mean photons per MAC equal p
    s = photons_per_mac * k * n / light.clamp_min(1e-30)
    n_pos = torch.poisson(s * y_pos, generator=generator)
    n_neg = torch.poisson(s * y_neg, generator=generator)
    y = torch.where(light > 0, (n_pos - n_neg) / s, torch.zeros_like(y_pos))
    return y * x_scale * w_scale


def log_grid(lo: float, hi: float, step: float) -> list[float]:
    """Photon budgets 10^lo, 10^(lo+step), ..., 10^hi (exponents in decades), ascending."""
    if not (step > 0 and hi > lo):
        raise ValueError(
            f"photon grid needs grid_lo < grid_hi and grid_step > 0; got {lo}, {hi}, {step}"
        )
    n = round((hi - lo) / step)
    return [10.0 ** (lo + i * step) for i in range(n + 1)]


def threshold_crossing(ps, gaps, tol: float) -> tuple[float, bool]:
    """The budget above which the loss gap stays within ``tol``: the crossing between the
    largest budget whose gap exceeds ``tol`` and the next budget up, interpolated in log p.

    ``ps`` ascending, ``gaps`` the matching loss gaps (nats). Between the two bracketing
    budgets log(gap) is interpolated linearly in log p (exact for the power law gap ∝ p^−a
    that shot noise gives); when the upper gap is not positive (evaluation noise), gap itself
    is. Returns (p*, inside): ``inside`` is False when no budget on the grid exceeds ``tol``
    (the crossing lies below the grid; p* = ps[0]) or the largest one does (above it;
    p* = ps[-1]); those p* are censored values, not measurements.
    """
    if len(ps) != len(gaps) or len(ps) < 2:
        raise ValueError(f"need ≥ 2 budgets with one gap each; got {len(ps)} and {len(gaps)}")
    if any(b <= a for a, b in zip(ps, ps[1:])):
        raise ValueError("budgets must be strictly ascending")
    above = [i for i, g in enumerate(gaps) if g > tol]
    if not above:
        return ps[0], False
    i = above[-1]
    if i == len(ps) - 1:
        return ps[-1], False
    lp0, lp1 = math.log(ps[i]), math.log(ps[i + 1])
    g0, g1 = gaps[i], gaps[i + 1]
    if g1 > 0:
        f = (math.log(tol) - math.log(g0)) / (math.log(g1) - math.log(g0)) if g1 != g0 else 1.0
    else:
        f = (tol - g0) / (g1 - g0)
    return math.exp(lp0 + f * (lp1 - lp0)), True


def fit_power_law(xs, ys) -> tuple[float, float]:
    """Least-squares slope and intercept of log y on log x: y ≈ e^b · x^a."""
    lx = torch.tensor([math.log(v) for v in xs], dtype=torch.float64)
    ly = torch.tensor([math.log(v) for v in ys], dtype=torch.float64)
    a = ((lx - lx.mean()) * (ly - ly.mean())).sum() / ((lx - lx.mean()) ** 2).sum()
    return a.item(), (ly.mean() - a * lx.mean()).item()
