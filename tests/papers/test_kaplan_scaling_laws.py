"""Kaplan scaling laws: the power-law fit recovers planted exponents, and the model ladder
counts non-embedding parameters as the paper does."""

import math

import numpy as np
import pytest

from repro.papers.kaplan_scaling_laws import REPRO, Config
from repro.papers.kaplan_scaling_laws.run import fit_power_law, make_model, parse_shape


def test_fit_recovers_a_planted_power_law():
    n = np.geomspace(1e3, 1e6, 6)
    loss = (8.8e13 / n) ** 0.076  # the paper's N_c and α_N
    fit = fit_power_law(list(n), list(loss))
    assert fit["alpha"] == pytest.approx(0.076, rel=1e-9)
    assert fit["n_c"] == pytest.approx(8.8e13, rel=1e-6)
    assert fit["r2"] == pytest.approx(1.0)


def test_noise_lowers_r2_and_widens_the_interval():
    rng = np.random.default_rng(0)
    n = np.geomspace(1e3, 1e6, 8)
    loss = 20 * n**-0.1 * np.exp(rng.normal(0, 0.02, n.size))
    fit = fit_power_law(list(n), list(loss))
    lo, hi = fit["alpha_ci95"]
    assert lo < 0.1 < hi and hi - lo > 0
    assert 0.5 < fit["r2"] < 1.0
    # a curve that bends (loss with an irreducible floor) fits a straight line worse
    bent = fit_power_law(list(n), list(2.0 + 50 * n**-0.5))
    assert bent["r2"] < fit_power_law(list(n), list(50 * n**-0.5))["r2"]


def test_non_embedding_count_leaves_out_token_and_position_tables():
    cfg = Config()
    for shape in cfg.shapes:
        d, layers = parse_shape(shape)
        m = make_model(shape, cfg)
        total = sum(p.numel() for p in m.parameters())
        assert total - m.non_embedding_params() == (cfg.vocab_size + cfg.seq_len) * d
        # per layer: attention 4d² + 4d, MLP 8d² + 5d, two norms 4d
        assert m.non_embedding_params() == layers * (12 * d * d + 13 * d) + 2 * d


def test_ladders_grow_and_full_spans_two_decades():
    for preset in ("quick", "full"):
        cfg = REPRO.make_config(preset, {})
        sizes = [make_model(s, cfg).non_embedding_params() for s in cfg.shapes]
        assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes), preset
        if preset == "full":  # the fit is only worth reporting over a wide range of N
            assert math.log10(sizes[-1] / sizes[0]) > 1.9


def test_declaration_is_consistent():
    assert REPRO.problems() == []


def test_findings_are_per_seed_and_gated():
    assert REPRO.make_config("quick", {}).seeds == 3
    assert REPRO.make_config("full", {}).seeds == 5
    for c in REPRO.claims:
        assert c.kind == "finding"
        assert [g.metric for g in c.gates] == ["ladder_below_unigram"]
