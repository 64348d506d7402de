"""Sophia: the two curvature estimators are unbiased for what the paper says they estimate, and
the clipped step behaves as the update rule says."""

import pytest
import torch
import torch.nn.functional as F

from repro.papers.sophia.optim import Sophia, gnb_diag, hutchinson_diag

D = torch.float64  # rounding well below the sampling error the tests allow


def _data(seed=0, B=6, d=3, V=4):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, d, generator=g, dtype=D), torch.randint(0, V, (B,), generator=g)


def _mlp_params(seed=0, d=3, h=4, V=4):
    g = torch.Generator().manual_seed(seed)
    w1 = torch.randn(d, h, generator=g, dtype=D).requires_grad_()
    w2 = torch.randn(h, V, generator=g, dtype=D).requires_grad_()
    return [w1, w2]


def _mlp(params, x):
    w1, w2 = params
    return torch.tanh(x @ w1) @ w2


def _flat(ts):
    return torch.cat([t.reshape(-1) for t in ts])


def _exact_hessian_diag(params, x, y):
    def loss_of(flat):
        ws, i = [], 0
        for p in params:
            ws.append(flat[i : i + p.numel()].view_as(p))
            i += p.numel()
        return F.cross_entropy(_mlp(ws, x), y)

    flat = _flat([p.detach() for p in params])
    return torch.autograd.functional.hessian(loss_of, flat).diagonal()


def _exact_gauss_newton_diag(params, x):
    """(1/B) Σ_b J_bᵀ (diag p_b − p_b p_bᵀ) J_b, with J_b the Jacobian of example b's logits."""

    def logits_of(flat):
        ws, i = [], 0
        for p in params:
            ws.append(flat[i : i + p.numel()].view_as(p))
            i += p.numel()
        return _mlp(ws, x)

    flat = _flat([p.detach() for p in params])
    J = torch.autograd.functional.jacobian(logits_of, flat)  # (B, V, P)
    p = logits_of(flat).softmax(-1)  # (B, V)
    H_out = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]  # (B, V, V)
    gn = torch.einsum("bvp,bvw,bwq->pq", J, H_out, J) / x.shape[0]
    return gn.diagonal()


def _mean_and_se(samples):
    s = torch.stack(samples)
    return s.mean(0), s.std(0) / len(samples) ** 0.5


def test_hutchinson_is_unbiased_for_the_hessian_diagonal():
    x, y = _data()
    params = _mlp_params()
    gen = torch.Generator().manual_seed(1)
    samples = []
    for _ in range(600):
        loss = F.cross_entropy(_mlp(params, x), y)
        samples.append(_flat(hutchinson_diag(loss, params, gen)))
    mean, se = _mean_and_se(samples)
    exact = _exact_hessian_diag(params, x, y)
    assert (exact < 0).any(), "the MLP's Hessian diagonal should have negative entries"
    assert ((mean - exact).abs() <= 5 * se + 1e-9).all()


def test_gnb_is_unbiased_for_the_gauss_newton_diagonal():
    x, _ = _data()
    params = _mlp_params()
    gen = torch.Generator().manual_seed(2)
    samples = [_flat(gnb_diag(_mlp(params, x), params, gen)) for _ in range(600)]
    mean, se = _mean_and_se(samples)
    gn = _exact_gauss_newton_diag(params, x)
    assert ((mean - gn).abs() <= 5 * se + 1e-9).all()
    assert (torch.stack(samples) >= 0).all()  # squares: never negative, unlike Hutchinson
    # and it is not the Hessian: the tanh layer adds curvature Gauss-Newton leaves out
    x2, y2 = _data()
    assert (gn - _exact_hessian_diag(params, x2, y2)).abs().max() > 1e-3


def test_for_a_linear_softmax_model_both_estimate_the_same_diagonal():
    """With logits linear in the weights the Hessian of cross-entropy is exactly Gauss-Newton."""
    x, y = _data(3)
    w = torch.randn(3, 4, generator=torch.Generator().manual_seed(4), dtype=D).requires_grad_()
    exact = torch.autograd.functional.hessian(lambda w: F.cross_entropy(x @ w, y), w.detach())
    exact = exact.reshape(12, 12).diagonal()
    gen = torch.Generator().manual_seed(5)
    gnb = [gnb_diag(x @ w, [w], gen)[0].reshape(-1) for _ in range(600)]
    mean, se = _mean_and_se(gnb)
    assert ((mean - exact).abs() <= 5 * se + 1e-9).all()


def test_step_with_exact_curvature_is_newton():
    """f(θ) = ½ Σ a_i θ_i²: with h = a, γ = 1, β1 = 0 and lr 1 the step lands on the minimum
    wherever |θ_i| ≤ 1 (no clipping), and moves by exactly lr elsewhere."""
    a = torch.tensor([0.5, 2.0, 10.0, 1.0], dtype=D)
    theta = torch.tensor([0.3, -0.8, 0.05, 5.0], dtype=D, requires_grad=True)
    opt = Sophia([theta], lr=1.0, betas=(0.0, 0.0), gamma=1.0, weight_decay=0.0)
    opt.update_hessian([a])
    (0.5 * a * theta**2).sum().backward()
    opt.step()
    assert torch.allclose(theta.detach()[:3], torch.zeros(3, dtype=D))
    assert theta.detach()[3].item() == pytest.approx(4.0)  # clipped: |m/h| = 5 > 1
    assert opt.clip_fraction == pytest.approx(0.25)


def test_without_curvature_the_step_is_sign_momentum_bounded_by_lr():
    g = torch.Generator().manual_seed(0)
    theta = torch.randn(100, generator=g, requires_grad=True)
    start = theta.detach().clone()
    opt = Sophia([theta], lr=0.01, weight_decay=0.0)
    (theta**3).sum().backward()
    opt.step()
    step = theta.detach() - start
    assert torch.allclose(step.abs(), torch.full_like(step, 0.01))
    assert torch.equal(torch.sign(step), -torch.sign(start**2))
    assert opt.clip_fraction == 1.0


def test_negative_curvature_is_clipped_not_inverted():
    """A negative Hutchinson estimate must not flip the step uphill: max(γh, ε) makes it a
    sign step along −m."""
    theta = torch.tensor([1.0], requires_grad=True)
    opt = Sophia([theta], lr=0.1, betas=(0.0, 0.0), gamma=1.0, weight_decay=0.0)
    opt.update_hessian([torch.tensor([-4.0])])
    (2 * theta).sum().backward()  # gradient +2
    opt.step()
    assert theta.item() == pytest.approx(0.9)


def test_hessian_ema_and_weight_decay():
    theta = torch.ones(3, requires_grad=True)
    opt = Sophia([theta], lr=0.1, betas=(0.5, 0.9), gamma=1.0, weight_decay=0.2)
    opt.update_hessian([torch.full((3,), 10.0)])
    opt.update_hessian([torch.full((3,), 20.0)])
    assert torch.allclose(opt.state[theta]["h"], torch.full((3,), 0.9 * 1.0 + 0.1 * 20.0))
    theta.grad = torch.zeros(3)
    opt.step()
    assert torch.allclose(theta.detach(), torch.full((3,), 1 - 0.1 * 0.2))


def test_step_ratio_reads_both_directions():
    from repro.papers.sophia.run import first_step_below, step_ratio

    assert first_step_below([0, 10, 20], [5.0, 4.0, 3.0], 3.5) == pytest.approx(15.0)
    assert first_step_below([0, 10, 20], [5.0, 4.0, 3.0], 2.0) is None
    ref = {"steps": [0, 10, 20], "val_loss": [5.0, 4.0, 3.0], "final": 3.0}
    fast = {"steps": [0, 10, 20], "val_loss": [5.0, 3.0, 2.5], "final": 2.5}
    slow = {"steps": [0, 10, 20], "val_loss": [5.0, 4.5, 4.0], "final": 4.0}
    assert step_ratio(ref, fast) == pytest.approx(2.0)  # reached at step 10 of 20
    assert step_ratio(ref, slow) == pytest.approx(0.5)  # ref needed 10 of 20 to reach 4.0


def test_tiny_run_reports_per_seed_metrics_and_gates(tmp_path):
    """Three seeds of a few steps: every finding's metric and gate metric is a per-seed list,
    and the declared claims judge them (untrained arms fail the learned gate: inconclusive)."""
    import dataclasses

    from repro.claims import judge
    from repro.context import RunContext
    from repro.papers.sophia import REPRO, Config
    from repro.papers.sophia.run import main

    cfg = dataclasses.replace(
        Config(), steps=4, eval_every=2, eval_batches=1, batch_size=2, seq_len=16, seeds=3
    )
    ctx = RunContext(out_dir=tmp_path, show_progress=False)
    main(cfg, ctx)
    m = ctx.metrics
    assert m["seeds"] == [0, 1, 2]
    for key in ("sophia_g", "sophia_h"):
        assert len(m[f"{key}_step_ratio"]) == 3
        assert len(m[f"{key}_below_unigram"]) == 3
        assert all(isinstance(b, bool) for b in m[f"{key}_lr_inside_grid"])
        assert all(0.0 <= c <= 1.0 for c in m[f"{key}_clip_fraction_mean"])
        # every seed ran at the rate the first seed chose
        assert set(m[f"{key}_best_lr"]) == {m["tuned_lrs"][key.replace("_", "-")]}
    assert len(m["adamw_below_unigram"]) == 3 and m["tuning_seed"] == 0
    rows = judge(REPRO.claims, m, ctx.skipped, preset="quick", device="cpu", status="ok")
    for row in rows:
        assert row["kind"] == "finding" and row["n"] == 3
        assert row["verdict"] == "inconclusive" and "learned" in row["reason"]
        assert any("clipped share" in g["name"] for g in row["gates"])


def test_grids_of_unequal_size_are_refused(tmp_path):
    import dataclasses

    from repro.context import RunContext
    from repro.papers.sophia import Config
    from repro.papers.sophia.run import main

    cfg = dataclasses.replace(Config(), sophia_g_lrs=(1e-3, 2e-3))
    with pytest.raises(ValueError, match="same size"):
        main(cfg, RunContext(out_dir=tmp_path, show_progress=False))


def test_the_clipped_share_gate_uses_the_authors_range():
    """Sign-momentum (nearly every coordinate clipped) makes the comparison inconclusive."""
    from repro.claims import judge
    from repro.papers.sophia import REPRO

    ok = {"adamw_below_unigram": [1.0] * 3, "sophia_g_below_unigram": [1.0] * 3}
    ok |= {"adamw_lr_inside_grid": [True] * 3, "sophia_g_lr_inside_grid": [True] * 3}
    ok |= {"sophia_g_step_ratio": [2.1, 2.2, 2.0]}
    claim = [c for c in REPRO.claims if c.id == "sophia-g-fewer-steps"]
    good = judge(
        claim,
        ok | {"sophia_g_clip_fraction_mean": [0.7] * 3},
        {},
        preset="quick",
        device="cpu",
        status="ok",
    )[0]
    sign = judge(
        claim,
        ok | {"sophia_g_clip_fraction_mean": [0.98] * 3},
        {},
        preset="quick",
        device="cpu",
        status="ok",
    )[0]
    assert good["verdict"] == "reproduced"
    assert sign["verdict"] == "inconclusive" and "clipped share" in sign["reason"]
