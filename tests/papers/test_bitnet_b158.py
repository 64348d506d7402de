"""BitNet b1.58 quantisers, the straight-through estimator and the addition-only layer."""

import math

import pytest
import torch
import torch.nn.functional as F

from repro.common.tinylm import LMConfig, TinyLM
from repro.papers.bitnet_b158.bitlinear import (
    BitLinear,
    absmax_int8,
    absmean_ternary,
    addonly_forward,
    addonly_ternary_int,
    sign_binary,
    to_bit_layers,
)


def test_absmean_recovers_a_planted_ternary_matrix():
    g = torch.Generator().manual_seed(0)
    t = torch.randint(-1, 2, (40, 30), generator=g).float()
    w_int, gamma = absmean_ternary(0.37 * t)
    assert torch.equal(w_int, t)
    assert gamma.item() == pytest.approx(0.37 * t.abs().mean().item(), rel=1e-6)


def test_absmean_zero_share_of_a_gaussian():
    # |w| < γ/2 with γ = E|w| = σ√(2/π): P(|z| < ½√(2/π)) = erf(1/(2√π))
    w = torch.randn(400, 500, generator=torch.Generator().manual_seed(1))
    w_int, _ = absmean_ternary(w)
    assert set(w_int.unique().tolist()) == {-1.0, 0.0, 1.0}
    expected = math.erf(1 / (2 * math.sqrt(math.pi)))
    assert (w_int == 0).float().mean().item() == pytest.approx(expected, abs=0.005)


def test_sign_binary_has_no_zero_and_centres_on_the_mean():
    w = torch.randn(50, 60, generator=torch.Generator().manual_seed(2)) + 3.0
    w_int, beta = sign_binary(w)
    assert set(w_int.unique().tolist()) == {-1.0, 1.0}
    # centred on the mean, about half the entries go each way despite the offset of 3
    assert abs(w_int.mean().item()) < 0.05
    assert beta.item() == pytest.approx(w.abs().mean().item(), rel=1e-6)


def test_absmax_int8_codes_and_error():
    x = torch.randn(16, 33, generator=torch.Generator().manual_seed(3)) * 5
    codes, scale = absmax_int8(x)
    assert torch.equal(codes, codes.round())
    assert codes.abs().amax(-1).eq(127).all()  # each token's largest entry maps to ±127
    assert ((codes * scale - x).abs() <= scale / 2 + 1e-6).all()


def test_straight_through_gradient():
    """The latent weight receives the gradient the quantised layer would give its weights."""
    g = torch.Generator().manual_seed(4)
    layer = BitLinear(12, 7)
    x = torch.randn(5, 12, generator=g)
    upstream = torch.randn(5, 7, generator=g)
    (layer(x) * upstream).sum().backward()
    w_int, w_scale = absmean_ternary(layer.weight.detach())
    x_int, x_scale = absmax_int8(x)
    wq = (w_int * w_scale).requires_grad_()
    (F.linear(x_int * x_scale, wq) * upstream).sum().backward()
    torch.testing.assert_close(layer.weight.grad, wq.grad)


def test_addonly_matches_integer_matmul():
    g = torch.Generator().manual_seed(5)
    x = torch.randint(-127, 128, (9, 40), generator=g)
    w = torch.randint(-1, 2, (13, 40), generator=g).float()
    assert torch.equal(addonly_ternary_int(x, w), x @ w.long().T)


@pytest.mark.parametrize("mode", ["ternary", "binary"])
def test_addonly_forward_matches_layer(mode):
    layer = BitLinear(24, 10, mode)
    x = torch.randn(3, 4, 24, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        torch.testing.assert_close(addonly_forward(layer, x), layer(x), rtol=1e-5, atol=1e-6)


def test_addonly_catches_a_wrong_sign():
    """The comparison is sharp: flipping one weight changes the addition-only result."""
    g = torch.Generator().manual_seed(7)
    x = torch.randint(1, 128, (4, 20), generator=g)
    w = torch.ones(3, 20)
    w_bad = w.clone()
    w_bad[1, 5] = -1
    assert not torch.equal(addonly_ternary_int(x, w_bad), x @ w.long().T)


def test_to_bit_layers_swaps_block_linears_only():
    cfg = LMConfig(
        vocab_size=50,
        seq_len=8,
        d_model=16,
        n_layer=2,
        n_head=2,
        norm="rmsnorm",
        ffn="swiglu",
        bias=False,
    )
    torch.manual_seed(0)
    fp = TinyLM(cfg)
    torch.manual_seed(0)
    bit = to_bit_layers(TinyLM(cfg), "ternary")
    n_bit = sum(isinstance(m, BitLinear) for m in bit.modules())
    assert n_bit == 4 * cfg.n_layer  # qkv, proj, w_in, w_out per block
    assert not any(isinstance(m, torch.nn.Linear) for m in bit.blocks.modules())
    assert isinstance(bit.head, torch.nn.Linear)
    # the twins start from the same latent weights
    for (n1, p1), (n2, p2) in zip(fp.named_parameters(), bit.named_parameters()):
        assert n1 == n2 and torch.equal(p1, p2)


def test_ternary_lm_learns_a_repeated_sequence():
    cfg = LMConfig(
        vocab_size=20,
        seq_len=16,
        d_model=32,
        n_layer=1,
        n_head=2,
        norm="rmsnorm",
        ffn="swiglu",
        bias=False,
    )
    torch.manual_seed(0)
    model = to_bit_layers(TinyLM(cfg), "ternary")
    seq = torch.arange(17) % 7  # a period-7 pattern: predictable from the previous token
    x, y = seq[:-1][None].repeat(4, 1), seq[1:][None].repeat(4, 1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    first = None
    for _ in range(60):
        _, loss = model(x, y)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.3 * first


def test_run_reports_paired_per_seed_metrics_and_gates(tmp_path):
    """A tiny run: findings get one paired difference per seed; the layer checks are there."""
    from dataclasses import replace

    from repro.context import RunContext
    from repro.papers.bitnet_b158 import REPRO
    from repro.papers.bitnet_b158.run import main

    cfg = replace(
        REPRO.config(),
        steps=2,
        widths=(16, 24, 32),
        eval_batches=2,
        seeds=2,
        max_docs=20,
        addonly_tokens=4,
    )
    ctx = RunContext(out_dir=tmp_path, show_progress=False)
    main(cfg, ctx)
    m = ctx.metrics
    t = m["val_loss"]["32"]
    assert m["ternary_gap"] == [t["ternary"][i] - t["fp"][i] for i in range(2)]
    assert len(m["gap_slope_per_doubling"]) == 2 and len(m["ternary_minus_binary"]) == 2
    # one ternary − binary difference per width and seed, each named finding on its own width
    for prefix, w in (("", "32"), ("middle_", "24"), ("narrowest_", "16")):
        tw = m["val_loss"][w]
        assert m[f"{prefix}ternary_minus_binary"] == [
            tw["ternary"][i] - tw["binary"][i] for i in range(2)
        ]
    # the all-widths gate is each seed's worst width
    worst = [
        min(m["unigram_nats"] - m["val_loss"][w]["fp"][i] for w in ("16", "24", "32"))
        for i in range(2)
    ]
    assert m["all_widths_fp_below_unigram"] == worst
    assert m["addonly_int_exact"] is True
    kinds = {c.id: c.kind for c in REPRO.claims}
    assert kinds["addonly-equals-matmul"] == kinds["addonly-equals-float-layer"] == "check"
    for claim in REPRO.claims:
        for gate in claim.gates:
            assert len(m[gate.metric]) == 2


def test_gap_slope_is_the_least_squares_slope_per_doubling():
    from repro.papers.bitnet_b158.run import gap_slope

    # gaps falling by 0.01 nats per doubling of the width, exactly and with noise around a line
    assert abs(gap_slope([32, 64, 128], [0.05, 0.04, 0.03]) + 0.01) < 1e-12
    assert abs(gap_slope([32, 64, 128], [0.05, 0.05, 0.03]) + 0.01) < 1e-12
    assert abs(gap_slope([32, 128], [0.01, 0.03]) - 0.01) < 1e-12
