"""FP8 casts, per-tensor scaling and the low-precision linear layer's gradients."""

import pytest
import torch

from repro.common.tinylm import LMConfig, TinyLM
from repro.papers.fp8_lm.fp8 import (
    E4M3,
    E5M2,
    CastStats,
    LowPrecisionLinear,
    cast,
    to_low_precision,
)


def test_formats_are_the_ones_the_paper_uses():
    assert torch.finfo(E4M3).max == 448.0
    assert torch.finfo(E5M2).max == 57344.0


def test_unscaled_cast_flushes_small_gradients():
    g = torch.full((100,), 3e-6)  # below E5M2's smallest subnormal (2^-16 ≈ 1.5e-5)
    stats = CastStats()
    q = cast(g, "fp8_unscaled", E5M2, stats=stats, kind="gradient")
    assert (q == 0).all()
    assert stats.fractions()["gradient"]["underflow"] == 1.0


def test_scaled_cast_keeps_small_gradients():
    g = torch.randn(1000, generator=torch.Generator().manual_seed(0)) * 3e-6
    stats = CastStats()
    q = cast(g, "fp8", E5M2, stats=stats, kind="gradient")
    assert stats.fractions()["gradient"]["underflow"] < 0.01
    # E5M2 keeps 2 mantissa bits: relative error at most 2^-3 for normal numbers
    big = g.abs() > g.abs().max() / 1000
    assert ((q[big] - g[big]).abs() / g[big].abs()).max() <= 0.125 + 1e-6


def test_unscaled_e5m2_overflows_to_inf():
    x = torch.tensor([1e5, -2e5, 1.0])
    stats = CastStats()
    q = cast(x, "fp8_unscaled", E5M2, stats=stats, kind="gradient")
    assert torch.isinf(q[:2]).all() and q[2] == 1.0
    assert stats.fractions()["gradient"]["overflow"] == pytest.approx(2 / 3)


def test_scaled_cast_maps_amax_to_the_top_of_the_format():
    x = torch.randn(64, generator=torch.Generator().manual_seed(1)) * 1e-3
    q = cast(x, "fp8", E4M3)
    i = x.abs().argmax()
    assert q[i] == pytest.approx(x[i].item(), rel=1e-6)  # 448 is exactly representable


@pytest.mark.parametrize("mode", ["fp32", "bf16", "fp8", "fp8_unscaled"])
def test_low_precision_linear_gradients(mode):
    """Forward and both gradients equal float64 products of the cast inputs."""
    g = torch.Generator().manual_seed(2)
    lin = torch.nn.Linear(16, 8, bias=False)
    layer = LowPrecisionLinear(lin, mode)
    x = torch.randn(3, 5, 16, generator=g, requires_grad=True)
    up = torch.randn(3, 5, 8, generator=g)
    y = layer(x)
    (y * up).sum().backward()
    xq = cast(x.detach(), mode, E4M3).double()
    wq = cast(layer.weight.detach(), mode, E4M3).double()
    gq = cast(up, mode, E5M2).double()
    torch.testing.assert_close(y.double(), xq @ wq.T, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(x.grad.double(), gq @ wq, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        layer.weight.grad.double(), gq.reshape(-1, 8).T @ xq.reshape(-1, 16), rtol=1e-5, atol=1e-6
    )


def test_fp8_matmul_error_is_bounded_and_nonzero():
    """E4M3 keeps 3 mantissa bits: the product of cast inputs is close to, not equal to, fp32."""
    g = torch.Generator().manual_seed(3)
    x, w = torch.randn(32, 64, generator=g), torch.randn(16, 64, generator=g)
    exact = x @ w.T
    approx = cast(x, "fp8", E4M3) @ cast(w, "fp8", E4M3).T
    rel = (approx - exact).norm() / exact.norm()
    assert 1e-3 < rel < 0.06


def test_to_low_precision_swaps_block_linears():
    cfg = LMConfig(vocab_size=30, seq_len=8, d_model=16, n_layer=2, n_head=2, bias=False)
    model = to_low_precision(TinyLM(cfg), "fp8")
    assert sum(isinstance(m, LowPrecisionLinear) for m in model.modules()) == 8
    x = torch.randint(0, 30, (2, 8))
    _, loss = model(x, x)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_run_reports_paired_per_seed_metrics_and_gates(tmp_path):
    """A tiny run: every finding's metric is one value per seed, and the learned-gate metrics
    the claims name are there."""
    from dataclasses import replace

    from repro.claims import Equivalent
    from repro.context import RunContext
    from repro.papers.fp8_lm import REPRO
    from repro.papers.fp8_lm.run import main

    cfg = replace(
        REPRO.config(), steps=3, d_model=16, n_layer=1, eval_batches=2, seeds=2, max_docs=20
    )
    ctx = RunContext(out_dir=tmp_path, show_progress=False)
    main(cfg, ctx)
    m = ctx.metrics
    for key in ("fp8_minus_bf16", "unscaled_minus_bf16", "unscaled_gradient_underflow"):
        assert len(m[key]) == 2
    assert m["fp8_minus_bf16"][0] == m["val_loss"]["fp8"][0] - m["val_loss"]["bf16"][0]
    kinds = {c.id: c.kind for c in REPRO.claims}
    assert kinds["fp8-tracks-bf16"] == kinds["unscaled-training-degrades"] == "finding"
    assert kinds["fp8-state-bytes"] == kinds["state-memory-saving"] == "check"
    for claim in REPRO.claims:
        for gate in claim.gates:
            assert len(m[gate.metric]) == 2
    # bytes from the tensors: float32 weight + gradient + two AdamW moments for bf16
    assert m["bf16_state_bytes_per_param"] == 16.0
    assert 6.0 < m["fp8_state_bytes_per_param"] < 6.05
    tracks = next(c for c in REPRO.claims if c.id == "fp8-tracks-bf16")
    assert isinstance(tracks.rule, Equivalent)


def test_fp8_adamw_stores_its_state_in_the_paper_formats_and_tracks_adamw():
    """State dtypes as FP8-LM §2.2 (E4M3 gradient and first moment, FP16 second moment and
    master weight); a few steps on a quadratic stay close to float32 AdamW; bytes counted."""
    from repro.papers.fp8_lm.fp8 import E4M3, FP16, FP8AdamW, training_state_bytes

    torch.manual_seed(0)
    target = torch.randn(32, 16) * 0.02
    w_ref = torch.nn.Parameter(torch.randn(32, 16) * 0.02)
    w_low = torch.nn.Parameter(w_ref.detach().clone())
    start = (w_ref.detach() - target).norm().item()
    ref = torch.optim.AdamW([w_ref], lr=1e-3, betas=(0.9, 0.95), weight_decay=0.0)
    low = FP8AdamW([w_low], [w_low], lr=1e-3, betas=(0.9, 0.95), weight_decay=0.0)
    for _ in range(20):
        for w, opt in ((w_ref, ref), (w_low, low)):
            opt.zero_grad()
            ((w - target) ** 2).sum().backward()
            opt.step()
    end_ref = (w_ref.detach() - target).norm().item()
    end_low = (w_low.detach() - target).norm().item()
    assert end_ref < 0.7 * start  # AdamW moved the weights towards the target
    # the FP8 state changes each step's size by a few percent, not its direction
    assert abs(end_low - end_ref) < 0.05 * start
    assert (w_low.detach() - w_ref.detach()).norm() < 0.05 * start
    st = low.state[w_low]
    assert (st["grad"].dtype, st["m"].dtype, st["v"].dtype, st["w"].dtype) == (
        E4M3,
        E4M3,
        FP16,
        FP16,
    )
    assert training_state_bytes([w_low], low) == 32 * 16 * 6 + 4 * 4
    assert training_state_bytes([w_ref], ref) == 32 * 16 * 16


def test_unscaled_fp16_second_moment_underflows_and_scaling_keeps_it():
    from repro.papers.fp8_lm.fp8 import FP16, load_scaled, store_scaled

    v = torch.full((4, 4), 1e-11)  # g² of a 3e-6 gradient: below FP16's smallest subnormal
    q, s = store_scaled(v, FP16, scaled=False)
    assert torch.all(load_scaled(q, s) == 0)
    q, s = store_scaled(v, FP16)
    torch.testing.assert_close(load_scaled(q, s), v, rtol=1e-3, atol=0)
