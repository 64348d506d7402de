"""Peri-LN reproduction: the three placements' equations and the depth measurements."""

import math

import pytest
import torch
import torch.nn.functional as F

from repro.papers.peri_ln.model import (
    FeedForward,
    ModelConfig,
    NormPlacementLM,
    Residual,
    depth_profile,
    growth_ratio,
    lr_at,
)
from repro.papers.peri_ln.run import ClipAndRecord, best_lr, paired, tail_loss

D = 32


def residual(placement: str, seed: int = 0) -> Residual:
    torch.manual_seed(seed)
    r = Residual(FeedForward(ModelConfig(d_model=D)), D, placement)
    for p in r.f.parameters():  # non-zero biases so that a mis-wired bias shows
        torch.nn.init.normal_(p, 0.0, 0.2)
    return r.double()


def ln(x: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(x, (x.shape[-1],))


def per_token_moments(h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return h.mean(-1), h.var(-1, unbiased=False)


@pytest.fixture
def x() -> torch.Tensor:
    return 3.0 * torch.randn(
        4, 7, D, dtype=torch.float64, generator=torch.Generator().manual_seed(1)
    )


def test_post_ln_equation_and_unit_variance_output(x):
    r = residual("post")
    y = r(x)
    torch.testing.assert_close(y, ln(x + r.f(x)))  # x ← LN(x + F(x))
    mu, var = per_token_moments(y)
    torch.testing.assert_close(mu, torch.zeros_like(mu), atol=1e-10, rtol=0)
    torch.testing.assert_close(var, torch.ones_like(var), atol=1e-4, rtol=0)  # LN's eps


def test_pre_ln_equation_and_unbounded_output(x):
    r = residual("pre")
    torch.testing.assert_close(r(x), x + r.f(ln(x)))  # x ← x + F(LN(x))
    # the input norm makes the update blind to the stream's scale (up to LayerNorm's eps) ...
    torch.testing.assert_close(r(10 * x) - 10 * x, r(x) - x, atol=1e-4, rtol=1e-4)
    # ... but nothing bounds the update itself: larger output weights pass straight through,
    # the path to massive activations
    before = r(x) - x
    with torch.no_grad():
        r.f.out.weight.mul_(100)
        r.f.out.bias.mul_(100)
    torch.testing.assert_close(r(x) - x, 100 * before)


def test_peri_ln_equation_and_normalised_update(x):
    r = residual("peri")
    update = r(x) - x
    torch.testing.assert_close(update, ln(r.f(ln(x))))  # x ← x + LN_out(F(LN_in(x)))
    mu, var = per_token_moments(update)  # each sub-layer adds a unit-variance term per token
    torch.testing.assert_close(mu, torch.zeros_like(mu), atol=1e-10, rtol=0)
    torch.testing.assert_close(var, torch.ones_like(var), atol=1e-4, rtol=0)
    with torch.no_grad():  # the output norm absorbs any growth of the sub-layer's weights
        r.f.out.weight.mul_(100)
        r.f.out.bias.mul_(100)
    torch.testing.assert_close(r(x) - x, update, atol=1e-4, rtol=0)  # LayerNorm's eps


def test_norm_layout_per_placement():
    counts = {}
    for p in ("post", "pre", "peri"):
        m = NormPlacementLM(
            ModelConfig(vocab_size=50, seq_len=8, d_model=16, n_layer=3, placement=p)
        )
        counts[p] = sum(isinstance(x, torch.nn.LayerNorm) for x in m.modules())
    # two sub-layers per block; Post-LN one norm each, Pre-LN one each + final, Peri-LN two
    # each + final
    assert counts == {"post": 6, "pre": 7, "peri": 13}
    with pytest.raises(ValueError, match="placement"):
        Residual(torch.nn.Identity(), 4, "sandwich")


def test_forward_returns_stream_at_every_depth():
    cfg = ModelConfig(vocab_size=50, seq_len=8, d_model=16, n_layer=3, n_head=2, placement="peri")
    m = NormPlacementLM(cfg)
    idx = torch.randint(0, 50, (2, 8))
    logits, loss, hidden = m(idx, idx, return_hidden=True)
    assert logits.shape == (2, 8, 50)
    assert len(hidden) == cfg.n_layer + 1 and all(h.shape == (2, 8, 16) for h in hidden)
    torch.testing.assert_close(hidden[1], m.blocks[0](hidden[0]))
    assert 0 < loss.item() < 2 * math.log(50)


def test_variance_growth_at_init_follows_the_placement():
    """At init Peri-LN adds ~1 of variance per sub-layer (linear growth, ratio ≈ L), Pre-LN
    adds only what its 0.02-scale weights produce, Post-LN renormalises to 1 at every block."""
    L = 6
    idx = torch.randint(0, 512, (16, 32), generator=torch.Generator().manual_seed(0))
    var = {}
    for p in ("post", "pre", "peri"):
        torch.manual_seed(0)
        m = NormPlacementLM(
            ModelConfig(vocab_size=512, seq_len=32, d_model=64, n_layer=L, placement=p)
        )
        with torch.no_grad():
            var[p], _ = depth_profile(m(idx, return_hidden=True)[2])
    assert all(abs(v - 1) < 0.05 for v in var["post"][1:])
    assert L / 2 < growth_ratio(var["peri"]) < 2 * L
    assert 1.5 * L < var["peri"][-1] < 3 * L  # 2L sub-layers, each adding ~1
    assert var["pre"][-1] < 0.1


def test_depth_profile_on_planted_states():
    g = torch.Generator().manual_seed(0)
    stds = [0.5, 1.0, 2.0, 4.0]
    hidden = [s * torch.randn(64, 32, 16, generator=g) for s in stds]
    hidden[2][3, 5, 7] = 1000.0  # one planted massive activation
    var, amax = depth_profile(hidden)
    for v, s, i in zip(var, stds, range(4)):
        if i != 2:
            assert v == pytest.approx(s**2, rel=0.03)
    assert var[2] > 2.0**2 + 1000.0**2 / hidden[2].numel() * 0.9  # the outlier shows in Var
    assert amax[2] == 1000.0
    assert amax[3] == pytest.approx(hidden[3].abs().max().item())
    assert growth_ratio(var) == pytest.approx(var[3] / var[1])


def test_pairing_leaves_diverged_runs_undecided():
    assert paired([2.0, None, 9.0], [1.0, 1.0, 3.0], lambda a, b: a / b) == [2.0, None, 3.0]


def test_clip_and_record_keeps_the_raw_norm_and_clips():
    w = torch.nn.Parameter(torch.zeros(4))
    opt = ClipAndRecord(torch.optim.SGD([w], lr=1.0), [w], clip=1.0)
    w.grad = torch.full((4,), 3.0)  # norm 6
    opt.step()
    assert opt.norms == [pytest.approx(6.0)]
    torch.testing.assert_close(w.detach(), torch.full((4,), -0.5))  # clipped to norm 1


def test_lr_schedule():
    assert lr_at(0, 100, 1.0, 10) == pytest.approx(0.1)
    assert lr_at(9, 100, 1.0, 10) == pytest.approx(1.0)
    assert lr_at(100, 100, 1.0, 10) == pytest.approx(0.1)


def test_lr_search_ranks_by_training_tail_and_puts_diverged_runs_last():
    assert tail_loss([9.0] * 90 + [2.0] * 10) == pytest.approx(2.0)  # the last 10% only
    assert tail_loss([3.0, float("nan")]) == math.inf
    trials = {1e-3: {"train_tail": 3.1}, 3e-3: {"train_tail": 2.9}, 1e-2: {"train_tail": math.inf}}
    assert best_lr(trials) == 3e-3
    assert best_lr({1e-3: {"train_tail": 2.0}, 3e-3: {"train_tail": math.inf}}) == 1e-3
