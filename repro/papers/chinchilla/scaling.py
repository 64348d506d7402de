"""The arithmetic of compute-optimal scaling: the parametric fit's optimum (Approach 3), the
IsoFLOP parabola minima (Approach 2) and the power-law fit N_opt ∝ C^a with its uncertainty.

Plain Python and NumPy, no torch: these functions are checked directly in the tests.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

# §3.3, eq. (10) of the paper, as printed.
PUBLISHED_FIT = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
# Half a unit in the last printed digit of each constant: any value in this box prints the same.
PRINTED_HALF_ULP = {"E": 0.005, "A": 0.05, "B": 0.05, "alpha": 0.005, "beta": 0.005}


def parametric_loss(n: float, d: float, E: float, A: float, B: float, alpha: float, beta: float):
    """L̂(N, D) = E + A / N^α + B / D^β   (eq. 2 and §3.3)."""
    return E + A / n**alpha + B / d**beta


def optimal_allocation(c: float, E: float, A: float, B: float, alpha: float, beta: float):
    """Minimise L̂(N, D) subject to FLOPs(N, D) = 6·N·D = C  (eq. 4):

        N_opt(C) = G · (C/6)^a,   D_opt(C) = G⁻¹ · (C/6)^b,
        G = (αA / (βB))^(1/(α+β)),   a = β/(α+β),   b = α/(α+β).

    Setting dL̂/dN = 0 along D = C/(6N) gives αA·N^(−α) = βB·D^(−β), whence the above.
    Returns (N_opt, D_opt, a, b).
    """
    g = (alpha * A / (beta * B)) ** (1.0 / (alpha + beta))
    a, b = beta / (alpha + beta), alpha / (alpha + beta)
    return g * (c / 6.0) ** a, (c / 6.0) ** b / g, a, b


def optimal_allocation_numeric(c: float, points: int = 20001, **fit) -> tuple[float, float]:
    """The same optimum found by brute force along the isoFLOP line (a check on the algebra)."""
    log_n = np.linspace(math.log(1e3), math.log(c / 6.0 / 1e3), points)
    n = np.exp(log_n)
    loss = parametric_loss(n, c / (6.0 * n), **fit)
    i = int(np.argmin(loss))
    return float(n[i]), float(c / (6.0 * n[i]))


def rounding_range(c: float) -> dict[str, tuple[float, float]]:
    """Range of N_opt, D_opt and a over every corner of the box of constants that print as the
    published ones. The optimum is a steep function of α and β, so two printed digits leave a
    wide band; the corners bound it because each quantity is monotone in each constant."""
    keys = list(PUBLISHED_FIT)
    vals: dict[str, list[float]] = {"n_opt": [], "d_opt": [], "a": []}
    for signs in itertools.product((-1, 1), repeat=len(keys)):
        fit = {k: PUBLISHED_FIT[k] + s * PRINTED_HALF_ULP[k] for k, s in zip(keys, signs)}
        n, d, a, _ = optimal_allocation(c, **fit)
        vals["n_opt"].append(n)
        vals["d_opt"].append(d)
        vals["a"].append(a)
    return {k: (min(v), max(v)) for k, v in vals.items()}


# --------------------------------------------------------------------------- IsoFLOP fits
@dataclass(frozen=True)
class Parabola:
    """loss ≈ c0 + c1·x + c2·x² with x = log N: the paper fits a parabola to each IsoFLOP
    profile (§3.2) and reads the minimum off its vertex."""

    c0: float
    c1: float
    c2: float
    x_min: float  # smallest log N sampled
    x_max: float  # largest log N sampled

    @property
    def vertex(self) -> float:
        return -self.c1 / (2.0 * self.c2)

    @property
    def interior(self) -> bool:
        """A valley (positive curvature) whose bottom lies inside the sampled sizes; otherwise
        the minimum is an extrapolation and says nothing about N_opt."""
        return self.c2 > 0 and self.x_min < self.vertex < self.x_max

    def __call__(self, x):
        return self.c0 + self.c1 * x + self.c2 * x * x


def fit_parabola(n: list[float], loss: list[float]) -> Parabola:
    x = np.log(np.asarray(n, dtype=float))
    c2, c1, c0 = np.polyfit(x, np.asarray(loss, dtype=float), 2)
    return Parabola(float(c0), float(c1), float(c2), float(x.min()), float(x.max()))


def valley(n: list[float], loss: list[float], half_width: int = 2) -> tuple[Parabola, bool]:
    """Parabola through the lowest point of an IsoFLOP profile and up to ``half_width``
    neighbours on each side, and whether it marks a valley: the lowest point is not at an end
    of the sampled sizes and the parabola's vertex lies inside the points it was fitted on.

    The fit is local because our profiles are lopsided: models given too few steps (a few
    hundred) fall off a cliff in loss, and one parabola through that cliff and the valley
    puts the vertex in the wrong place. The paper's profiles, from runs of thousands of steps
    or more, do not have the cliff.
    """
    i = min(range(len(loss)), key=loss.__getitem__)
    lo, hi = max(0, i - half_width), min(len(loss), i + half_width + 1)
    if hi - lo < 3:
        lo, hi = max(0, hi - 3), min(len(loss), lo + 3)
    par = fit_parabola(n[lo:hi], loss[lo:hi])
    return par, bool(0 < i < len(loss) - 1 and par.interior)


@dataclass(frozen=True)
class PowerLaw:
    """y = k · x^a, fitted as a straight line in log-log space by least squares."""

    a: float  # exponent
    log_k: float
    se_a: float  # standard error of a (nan with fewer than three points)
    r2: float  # R² of the log-log fit
    n_points: int

    def ci95(self) -> tuple[float, float]:
        """Two-sided 95% interval for a from Student's t with n−2 degrees of freedom."""
        if self.n_points < 3 or not math.isfinite(self.se_a):
            return (-math.inf, math.inf)
        t = _t975(self.n_points - 2)
        return (self.a - t * self.se_a, self.a + t * self.se_a)

    def __call__(self, x):
        return np.exp(self.log_k) * np.asarray(x, dtype=float) ** self.a


def fit_power_law(x: list[float], y: list[float]) -> PowerLaw:
    lx, ly = np.log(np.asarray(x, dtype=float)), np.log(np.asarray(y, dtype=float))
    n = len(lx)
    a, log_k = np.polyfit(lx, ly, 1)
    resid = ly - (a * lx + log_k)
    ss_res = float(resid @ resid)
    ss_tot = float(((ly - ly.mean()) ** 2).sum())
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")
    if n >= 3:
        sxx = float(((lx - lx.mean()) ** 2).sum())
        se = math.sqrt(ss_res / (n - 2) / sxx)
    else:
        se = float("nan")
    return PowerLaw(float(a), float(log_k), se, r2, n)


def _t975(dof: int) -> float:
    """97.5% quantile of Student's t with ``dof`` degrees of freedom (scipy.stats)."""
    from scipy import stats

    return float(stats.t.ppf(0.975, dof))
