"""Chinchilla: the optimum of the parametric fit, the parabola and power-law fits, and the
FLOP accounting of one IsoFLOP run."""

import dataclasses
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from repro.papers.chinchilla import REPRO, Config
from repro.papers.chinchilla.scaling import (
    PUBLISHED_FIT,
    fit_parabola,
    fit_power_law,
    optimal_allocation,
    optimal_allocation_numeric,
    parametric_loss,
    rounding_range,
)


@settings(max_examples=30, deadline=None)
@given(
    log_c=st.floats(18, 26),
    alpha=st.floats(0.2, 0.5),
    beta=st.floats(0.2, 0.5),
    A=st.floats(50, 1000),
    B=st.floats(50, 1000),
)
def test_closed_form_optimum_matches_brute_force(log_c, alpha, beta, A, B):
    c = 10.0**log_c
    fit = {"E": 1.7, "A": A, "B": B, "alpha": alpha, "beta": beta}
    n, d, a, b = optimal_allocation(c, **fit)
    assert a + b == pytest.approx(1.0)
    assert 6 * n * d == pytest.approx(c, rel=1e-9)  # the optimum lies on the budget line
    n_num, _ = optimal_allocation_numeric(c, **fit)
    # grid spacing in log N bounds the brute-force error
    assert math.log(n_num / n) == pytest.approx(0.0, abs=2e-3)


def test_optimum_is_a_minimum_along_the_budget_line():
    c = 5.76e23
    n, d, _, _ = optimal_allocation(c, **PUBLISHED_FIT)
    best = parametric_loss(n, d, **PUBLISHED_FIT)
    for f in (0.5, 0.9, 1.1, 2.0):
        assert parametric_loss(n * f, d / f, **PUBLISHED_FIT) > best


def test_exponent_doubles_compute_consistently():
    """N_opt ∝ C^a exactly: doubling C multiplies N_opt by 2^a."""
    n1, _, a, _ = optimal_allocation(1e22, **PUBLISHED_FIT)
    n2, _, _, _ = optimal_allocation(2e22, **PUBLISHED_FIT)
    assert n2 / n1 == pytest.approx(2**a)


def test_rounding_range_brackets_the_published_value():
    box = rounding_range(5.76e23)
    n, d, a, _ = optimal_allocation(5.76e23, **PUBLISHED_FIT)
    assert box["n_opt"][0] < n < box["n_opt"][1]
    assert box["d_opt"][0] < d < box["d_opt"][1]
    assert box["a"][0] < a < box["a"][1]


def test_parabola_finds_a_planted_valley_and_rejects_an_edge_minimum():
    n = np.geomspace(1e3, 1e5, 7)
    x = np.log(n)
    par = fit_parabola(list(n), list(3.0 + 0.05 * (x - math.log(8e3)) ** 2))
    assert par.interior
    assert math.exp(par.vertex) == pytest.approx(8e3, rel=1e-6)
    # loss still falling at the largest size: the vertex is outside, no valley
    falling = fit_parabola(list(n), list(3.0 + 0.05 * (x - math.log(5e5)) ** 2))
    assert not falling.interior


def test_power_law_recovers_planted_exponent_and_its_interval():
    rng = np.random.default_rng(0)
    c = np.geomspace(1e10, 1e13, 8)
    n = 0.3 * c**0.5 * np.exp(rng.normal(0, 0.05, size=c.size))
    law = fit_power_law(list(c), list(n))
    lo, hi = law.ci95()
    assert lo < 0.5 < hi
    assert law.a == pytest.approx(0.5, abs=0.05)
    assert law.r2 > 0.95
    exact = fit_power_law([1.0, 10.0, 100.0], [2.0, 20.0, 200.0])
    assert exact.a == pytest.approx(1.0) and exact.r2 == pytest.approx(1.0)


def test_one_isoflop_run_spends_its_budget():
    from repro.papers.chinchilla.run import count_params, model_for, train_one

    cfg = dataclasses.replace(Config(), min_steps=2, max_steps=50, eval_batches=1)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, cfg.vocab_size, (5000,), generator=gen)
    n = count_params(model_for(8, cfg))
    budget = 6.0 * n * cfg.batch_size * cfg.seq_len * 5  # five steps' worth
    r = train_one(8, budget, cfg, ids, ids, seed=0)
    assert r["steps"] == 5 and r["params"] == n
    assert r["flops"] == pytest.approx(budget)
    assert math.isfinite(r["val_loss"])
    # a budget too small for min_steps is left out rather than trained for zero steps
    assert train_one(8, budget / 10, cfg, ids, ids, seed=0) is None


def test_declaration_is_consistent():
    assert REPRO.problems() == []
    assert {c.metric for c in REPRO.claims} <= {
        "fit_a",
        "gopher_budget_n_opt",
        "gopher_budget_d_opt",
        "fit_loss_gap_gopher_minus_chinchilla",
        "isoflop_interior_fraction",
        "isoflop_a",
    }
    kinds = {c.id: c.kind for c in REPRO.claims}
    assert [k for k, v in kinds.items() if v == "finding"] == [
        "isoflop-valleys",
        "isoflop-exponent",
        "isoflop-ci-excludes-kaplan",
    ]
    for c in REPRO.claims:
        assert [g.metric for g in c.gates] == (["isoflop_below_unigram"] if c.is_finding else [])
    assert REPRO.make_config("quick", {}).seeds == 3
    assert REPRO.make_config("full", {}).seeds == 5


def test_one_seed_sweep_gives_a_profile_per_budget():
    from repro.papers.chinchilla.run import isoflop_profiles

    cfg = dataclasses.replace(
        Config(), widths=(4, 8), budgets=(2e8,), min_steps=2, max_steps=60, eval_batches=1
    )
    ids = torch.randint(0, cfg.vocab_size, (5000,), generator=torch.Generator().manual_seed(0))
    res = isoflop_profiles(cfg, 0, ids, ids)
    assert set(res["profiles"]) == {"2e+08"}
    assert all(r["seed"] == 0 for r in res["runs"]) and len(res["runs"]) == 2
    assert res["interior_fraction"] == 0.0  # two sizes cannot make a valley
