"""Kaplan scaling laws: the power-law fit recovers planted exponents, and the model ladder
counts non-embedding parameters as the paper does."""

import dataclasses
import math

import numpy as np
import pytest

from repro.papers.kaplan_scaling_laws import REPRO, Config
from repro.papers.kaplan_scaling_laws.run import (
    fit_power_law,
    make_model,
    parse_shape,
    peak_lr,
    sample_efficiency,
    tokens_to_reach,
)


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


def test_ladders_grow_over_a_decade_or_more():
    for preset in ("quick", "full"):
        cfg = REPRO.make_config(preset, {})
        sizes = [make_model(s, cfg).non_embedding_params() for s in cfg.shapes]
        assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes), preset
        # the fit is only worth reporting over a wide range of N
        assert math.log10(sizes[-1] / sizes[0]) > (1.8 if preset == "full" else 1.2), preset


def test_one_rate_per_shape_and_bad_shapes_are_refused():
    cfg = Config()
    assert [peak_lr(s, cfg) for s in cfg.shapes] == list(cfg.lrs)
    with pytest.raises(ValueError, match="one rate per shape"):
        peak_lr("16x1", dataclasses.replace(cfg, lrs=(1e-2,)))
    for bad in ("64", "x2", "64x", "0x2", "ax2"):
        with pytest.raises(ValueError, match="d_model"):
            parse_shape(bad)


def test_tokens_to_reach_interpolates_the_first_crossing():
    curve = [(100, 5.0), (200, 4.0), (300, 3.5), (400, 3.9)]
    assert tokens_to_reach(curve, 4.5) == pytest.approx(150.0)
    assert tokens_to_reach(curve, 3.9) == pytest.approx(200 + 100 * 0.1 / 0.5)
    assert tokens_to_reach(curve, 5.5) == 100.0  # reached at the first evaluation
    assert tokens_to_reach(curve, 3.0) is None


def test_sample_efficiency_targets_the_worst_final_loss():
    small = [(100, 5.0), (200, 4.5), (300, 4.2)]
    large = [(100, 4.8), (200, 4.2), (300, 3.9)]
    eff = sample_efficiency({"16x1": small, "48x2": large})
    assert eff["target"] == 4.2
    assert eff["tokens"] == {"16x1": 300.0, "48x2": 200.0}
    assert eff["ratio"] == pytest.approx(2 / 3)
    # a larger model that ends worse is the one that sets the target: the ratio exceeds 1
    worse = [(100, 5.2), (200, 4.6), (300, 4.3)]
    assert sample_efficiency({"16x1": small, "48x2": worse})["ratio"] > 1
    with pytest.raises(ValueError, match="two model sizes"):
        sample_efficiency({"16x1": small})


def test_declaration_is_consistent():
    assert REPRO.problems() == []


def test_findings_are_per_seed_and_gated():
    assert REPRO.make_config("quick", {}).seeds == 3
    assert REPRO.make_config("full", {}).seeds == 5
    for c in REPRO.claims:
        assert c.kind == "finding"
        assert [g.metric for g in c.gates] == [
            "ladder_below_unigram",
            "lr_excess_loss",
        ]


def test_exponent_is_judged_two_sided_about_the_papers_value():
    rule = next(c.rule for c in REPRO.claims if c.id == "exponent-alpha-n")
    assert rule.on_interval(0.06, 0.09) is True
    assert rule.on_interval(0.02, 0.05) is False  # far too flat
    assert rule.on_interval(0.10, 0.14) is False  # far too steep
    assert rule.on_interval(0.04, 0.08) is None
