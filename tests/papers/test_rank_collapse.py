"""Rank collapse: the residual measure, the layer variants and the convergence-order
estimate behave as the maths says."""

import math
from dataclasses import dataclass

import torch

from repro.papers.rank_collapse.run import (
    Layer,
    convergence_order,
    layers_to,
    rel_residual,
    rel_residual_l1inf,
    residual,
    trajectory,
)


@dataclass(frozen=True)
class Tiny:
    tokens: int = 8
    d_model: int = 16
    heads: int = 2
    depth: int = 8


def test_residual_zero_exactly_for_rank_one_rows():
    x = torch.ones(5, 1, dtype=torch.float64) * torch.randn(1, 7, dtype=torch.float64)
    assert rel_residual(x) < 1e-15
    assert rel_residual_l1inf(x) < 1e-15


def test_mean_is_the_least_squares_rank_one_fit():
    x = torch.randn(6, 4, dtype=torch.float64)
    best = residual(x).norm()
    for _ in range(20):
        other = x.mean(0) + 0.1 * torch.randn(4, dtype=torch.float64)
        assert (x - other).norm() >= best


def test_attention_output_rows_are_convex_combinations():
    gen = torch.Generator().manual_seed(0)
    layer = Layer(16, 2, gen)
    x = torch.randn(8, 16, generator=gen, dtype=torch.float64)
    # with identity value/output maps the output lies in the convex hull of the inputs' rows
    layer.wv = torch.eye(16, dtype=torch.float64)
    layer.wo = torch.eye(16, dtype=torch.float64)
    y = layer.attention(x)
    assert (y.max(0).values <= x.max(0).values + 1e-12).all()
    assert (y.min(0).values >= x.min(0).values - 1e-12).all()


def test_mlp_gain_is_pure_scaling():
    gen = torch.Generator().manual_seed(1)
    layer = Layer(16, 2, gen)
    x = torch.randn(8, 16, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(layer.mlp(x, 3.0), 3 * layer.mlp(x))


def test_pure_attention_collapses_and_skip_does_not():
    pure = trajectory(Tiny(), "san", 0)["fro"]
    skip = trajectory(Tiny(), "san+skip", 0)["fro"]
    assert pure[-1] < 1e-10
    assert skip[-1] > 1e-2


def test_convergence_order_of_known_sequences():
    cubic = [0.5]
    for _ in range(3):
        cubic.append(cubic[-1] ** 3)
    q = convergence_order(cubic, floor=1e-300, top=0.9)
    assert all(math.isclose(v, 3.0, rel_tol=1e-12) for v in q)
    geometric = [0.5**k for k in range(1, 30)]
    q = convergence_order(geometric, floor=1e-300, top=0.9)
    assert q[-1] < 1.1  # plain exponential decay: order → 1


def test_layers_to():
    assert layers_to([1.0, 0.1, 1e-7, 1e-9], 1e-6) == 2
    assert layers_to([1.0, 0.5], 1e-6) is None


def test_main_gives_one_value_per_draw(tmp_path):
    """Each finding's sample has one value per draw; the MLP comparisons are paired by draw."""
    from repro.context import RunContext
    from repro.papers.rank_collapse import Config
    from repro.papers.rank_collapse.run import main

    cfg = Config(tokens=8, d_model=16, heads=2, depth=6, draws=3, mlp_gains=(1.0, 4.0))
    ctx = RunContext(out_dir=tmp_path, show_progress=False)
    assert main(cfg, ctx) is None
    m = ctx.metrics
    for key in (
        "san_final",
        "skip_final",
        "skip_mlp_final",
        "ln_final",
        "mlp_extra_layers_to_collapse",
        "lipschitz_extra_layers",
    ):
        assert len(m[key]) == 3, key
    assert len(m["san_convergence_order"]) == m["san_order_samples"] <= 3
    assert set(m["layers_to_collapse_by_mlp_gain"]) == {"1", "4"}
