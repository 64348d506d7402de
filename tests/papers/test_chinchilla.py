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
    from repro.papers.chinchilla.run import count_params, model_for, peak_lr, train_one

    cfg = dataclasses.replace(Config(), eval_batches=1)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, cfg.vocab_size, (5000,), generator=gen)
    n = count_params(model_for(8, cfg))
    budget = 6.0 * n * cfg.batch_size * cfg.seq_len * 5  # five steps' worth
    r = train_one(8, budget, cfg, ids, ids, seed=0)
    assert r["steps"] == 5 and r["params"] == n
    assert r["flops"] == pytest.approx(budget)
    assert r["lr"] == pytest.approx(peak_lr(8, cfg)) == pytest.approx(cfg.lr_scale / 8)
    assert math.isfinite(r["val_loss"])
    # a budget that buys no step is an error, not a run of zero steps
    with pytest.raises(ValueError, match="no training step"):
        train_one(8, budget / 100, cfg, ids, ids, seed=0)


def test_design_errors_are_one_line_and_clear():
    from repro.papers.chinchilla.run import check_design

    with pytest.raises(ValueError, match="one each"):
        check_design(dataclasses.replace(Config(), budgets=(1e11,), grids=("8 12 16",) * 2))
    with pytest.raises(ValueError, match="3\\+ distinct"):
        check_design(dataclasses.replace(Config(), budgets=(1e11,), grids=("8 16",)))
    with pytest.raises(ValueError, match="min_steps"):
        check_design(dataclasses.replace(Config(), budgets=(1e8,), grids=("8 12 16",)))
    with pytest.raises(ValueError, match="positive widths"):
        check_design(dataclasses.replace(Config(), budgets=(1e11,), grids=("8, 12, 16",)))
    for preset in ("quick", "full"):
        check_design(REPRO.make_config(preset, {}))  # the declared designs are valid


def test_declaration_is_consistent():
    assert REPRO.problems() == []
    kinds = {c.id: c.kind for c in REPRO.claims}
    assert [k for k, v in kinds.items() if v == "finding"] == [
        "isoflop-exponent",
        "isoflop-ci-excludes-kaplan",
    ]
    assert [k for k, v in kinds.items() if v == "check"] == [
        "fit-exponent",
        "gopher-budget-model-size",
        "gopher-budget-tokens",
        "fit-prefers-chinchilla",
        "d-opt-exponent-derived",
    ]
    for c in REPRO.claims:
        assert [g.metric for g in c.gates] == (
            ["isoflop_below_unigram", "isoflop_all_valleys_inside", "lr_excess_loss"]
            if c.is_finding
            else []
        )
    quick, full = REPRO.make_config("quick", {}), REPRO.make_config("full", {})
    assert quick.seeds == 3 and full.seeds == 5
    assert len(full.budgets) >= 3 and len(quick.budgets) >= 2


def test_one_seed_sweep_reads_the_exponent_from_the_valleys(monkeypatch):
    """The sweep's bookkeeping on planted losses: valleys at N_opt ∝ C^0.5 give a = 0.5,
    b = 1 − a, and the gates' metrics; a minimum at a grid edge fails the valley gate."""
    from repro.papers.chinchilla import run

    def planted(width, budget, cfg, train_ids, val_ids, seed, lr=None):
        n = run.count_params(run.model_for(width, cfg))
        n_opt = 2e4 * (budget / 1e11) ** 0.5
        loss = 4.0 + 0.1 * (math.log(n) - math.log(n_opt)) ** 2
        return {"width": width, "params": n, "lr": 0.01, "steps": 1, "val_loss": loss}

    monkeypatch.setattr(run, "train_one", planted)
    cfg = dataclasses.replace(Config(), budgets=(1e11, 4e11), grids=("8 16 32", "16 32 64"))
    res = run.isoflop_profiles(cfg, 0, None, None)
    assert res["all_interior"] and len(res["runs"]) == 6
    assert res["a"] == pytest.approx(0.5, abs=1e-6)
    assert res["a"] + res["b"] == pytest.approx(1.0, abs=1e-12)
    # the optimum beyond the grid: no valley, no exponent
    cfg = dataclasses.replace(cfg, grids=("8 12 16", "8 12 16"))
    res = run.isoflop_profiles(cfg, 0, None, None)
    assert not res["all_interior"] and "a" not in res
