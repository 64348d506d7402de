"""RMSNorm: agreement with PyTorch's modules, Table 1's invariances, the norm swap, the noise
rule and the interleaved timer (on a fake clock: tests never time anything)."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from repro.common.tinylm import LMConfig, TinyLM
from repro.papers.rmsnorm import REPRO
from repro.papers.rmsnorm import timing as timing_mod
from repro.papers.rmsnorm.norms import LayerNorm, RMSNorm, swap_norms
from repro.papers.rmsnorm.run import invariances, peer_error, per_round_median


@settings(max_examples=25, deadline=None)
@given(
    rows=st.integers(1, 6),
    d=st.integers(1, 96),
    scale=st.sampled_from([1e-2, 1.0, 50.0]),
    seed=st.integers(0, 1000),
)
def test_ours_equals_torch_modules(rows, d, scale, seed):
    g = torch.Generator().manual_seed(seed)
    x = (scale * torch.randn(rows, 3, d, generator=g, dtype=torch.float64)).requires_grad_(True)
    gain = torch.randn(d, generator=g, dtype=torch.float64)
    bias = torch.randn(d, generator=g, dtype=torch.float64)
    pairs = [(RMSNorm(d), torch.nn.RMSNorm(d, eps=1e-6)), (LayerNorm(d), torch.nn.LayerNorm(d))]
    for ours, peer in pairs:
        ours, peer = ours.double(), peer.double()
        with torch.no_grad():
            for m in (ours, peer):
                m.weight.copy_(gain)
                if getattr(m, "bias", None) is not None:
                    m.bias.copy_(bias)
        y1, y2 = ours(x), peer(x)
        torch.testing.assert_close(y1, y2, rtol=1e-10, atol=1e-10)
        up = torch.randn_like(y1)
        g1 = torch.autograd.grad(y1, (x, ours.weight), up)
        g2 = torch.autograd.grad(y2, (x, peer.weight), up)
        for a, b in zip(g1, g2):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


def test_peer_error_is_small_and_would_see_a_wrong_eps():
    assert peer_error(torch.float64, 0) < 1e-12
    assert peer_error(torch.float32, 0) < 1e-5
    x = 1e-3 * torch.randn(4, 8, dtype=torch.float64)
    wrong = torch.nn.RMSNorm(8, eps=1e-2).double()
    assert (RMSNorm(8).double()(x) - wrong(x)).abs().max() > 1e-2


def test_invariances_follow_table_1():
    inv = invariances(0)
    assert inv["rms_rescale_dev"] < 1e-12 and inv["ln_rescale_dev"] < 1e-12
    assert inv["ln_recentre_dev"] < 1e-12
    assert inv["rms_recentre_dev"] > 0.1


def test_swap_replaces_every_layernorm():
    cfg = LMConfig(vocab_size=50, seq_len=8, d_model=16, n_layer=3, n_head=2)
    model = swap_norms(TinyLM(cfg), "rmsnorm")
    kinds = [type(m) for m in model.modules()]
    assert torch.nn.LayerNorm not in kinds
    assert kinds.count(RMSNorm) == 2 * cfg.n_layer + 1
    logits = model(torch.randint(0, 50, (2, 8)))
    assert logits.shape == (2, 8, 50)


def test_per_round_median_takes_the_median_over_widths_of_each_round():
    by_width = {"256": [1.0, 2.0, 3.0], "512": [2.0, 2.0, 5.0], "1024": [3.0, 1.0, 4.0]}
    assert per_round_median(by_width) == [2.0, 2.0, 4.0]


def test_race_reports_the_ratio_of_a_fake_clock():
    clock = [0.0]

    def costs(seconds):
        def f():
            clock[0] += seconds

        return f

    r = timing_mod.race(costs(3e-3), costs(2e-3), rounds=5, iters=2, clock=lambda: clock[0])
    assert r["ratio"] == pytest.approx(1.5)
    assert r["ratios"] == pytest.approx([1.5] * 5)
    assert r["slow_s"] == pytest.approx(3e-3) and r["fast_s"] == pytest.approx(2e-3)


def test_norm_callables_run_backward_and_clear_grads():
    norm = RMSNorm(8)
    fb = timing_mod.norm_callables(norm, torch.randn(4, 8), backward=True)
    fb()
    assert norm.weight.grad is None  # cleared, so repeated calls do not accumulate
    assert math.isfinite(float(timing_mod.norm_callables(norm, torch.randn(4, 8), False)().sum()))


def test_declaration_is_consistent():
    assert REPRO.problems() == []
