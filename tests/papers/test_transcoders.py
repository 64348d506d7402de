"""Transcoders reproduction: splicing, sparsity count, decoder constraint, circuit identity."""

import math

import torch
import torch.nn.functional as F

from repro.common.tinylm import LMConfig, TinyLM
from repro.papers.transcoders.dictionary import (
    SparseDictionary,
    TrainSettings,
    direct_attribution,
    fvu,
    input_invariant_weights,
    l0,
    layernorm_frozen,
    layernorm_sigma,
    splice_hook,
    train_dictionary,
)
from repro.papers.transcoders.run import (
    ce_at_budget,
    ce_increase,
    circuit_check,
    frontier_log_ratio,
    level_readings,
)

D = 16


def tiny_lm(ffn: str = "relu") -> TinyLM:
    torch.manual_seed(0)
    model = TinyLM(LMConfig(vocab_size=50, seq_len=12, d_model=D, n_layer=3, n_head=2, ffn=ffn))
    for p in model.parameters():  # larger than the init so the MLP matters to the loss
        torch.nn.init.normal_(p, 0.0, 0.3)
    return model.eval()


def spliced_ce(model, layer, hook, idx, tgt) -> float:
    h = model.blocks[layer].mlp.register_forward_hook(hook) if hook else None
    try:
        with torch.no_grad():
            return model(idx, tgt)[1].item()
    finally:
        if h:
            h.remove()


def test_transcoder_with_the_mlps_own_weights_splices_in_exactly():
    """A ReLU MLP is itself a transcoder whose dictionary is its neurons: splicing that in
    must leave the LM's loss unchanged, and a perturbed copy must not."""
    model = tiny_lm("relu")
    mlp = model.blocks[1].mlp
    tc = SparseDictionary("transcoder", D, mlp.w_in.out_features)
    with torch.no_grad():
        tc.W_enc.copy_(mlp.w_in.weight)
        tc.b_enc.copy_(mlp.w_in.bias)
        tc.W_dec.copy_(mlp.w_out.weight)
        tc.b_dec.copy_(mlp.w_out.bias)
    idx = torch.randint(0, 50, (4, 12), generator=torch.Generator().manual_seed(1))
    tgt = torch.roll(idx, -1, 1)
    base = spliced_ce(model, 1, None, idx, tgt)
    assert abs(spliced_ce(model, 1, splice_hook(tc), idx, tgt) - base) < 1e-6
    with torch.no_grad():
        tc.W_dec.mul_(0.5)
    assert abs(spliced_ce(model, 1, splice_hook(tc), idx, tgt) - base) > 1e-3


def test_sae_with_signed_identity_dictionary_splices_in_exactly():
    """Features [e_k; −e_k] with ReLU reconstruct any vector: x = relu(x) − relu(−x)."""
    model = tiny_lm("gelu")
    sae = SparseDictionary("sae", D, 2 * D)
    eye = torch.eye(D)
    with torch.no_grad():
        sae.W_enc.copy_(torch.cat([eye, -eye]))
        sae.W_dec.copy_(torch.cat([eye, -eye], dim=1))
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    idx = torch.randint(0, 50, (4, 12), generator=torch.Generator().manual_seed(2))
    tgt = torch.roll(idx, -1, 1)
    base = spliced_ce(model, 1, None, idx, tgt)
    assert abs(spliced_ce(model, 1, splice_hook(sae), idx, tgt) - base) < 1e-6


def test_l0_and_fvu_count_what_they_say():
    z = torch.tensor([[0.0, 1.0, 2.0, 0.0], [0.5, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    assert l0(z) == (2 + 1 + 0) / 3
    assert l0(-z) == 0.0  # negative values are not active (ReLU outputs never are)
    y = torch.randn(100, 5, generator=torch.Generator().manual_seed(0))
    assert fvu(y, y) == 0.0
    assert math.isclose(fvu(y.mean(0).expand_as(y), y), 1.0, rel_tol=1e-6)


def test_training_keeps_unit_decoder_columns_and_fits_a_planted_transcoder():
    """Target = a sparse ReLU layer of 24 features on 8-d inputs: a 64-feature transcoder
    with a small λ should explain nearly all of it, with every decoder column of norm 1."""
    gen = torch.Generator().manual_seed(0)
    d, k = 8, 24
    w1 = torch.randn(k, d, generator=gen)
    b1 = -1.5 * torch.ones(k)  # features fire rarely
    w2 = torch.randn(d, k, generator=gen)
    x = torch.randn(4096, d, generator=gen)
    y = F.relu(x @ w1.T + b1) @ w2.T
    s = TrainSettings(n_features=64, l1=1e-3, steps=400, batch=256, lr=3e-3)
    tc, losses = train_dictionary("transcoder", x, y, s, gen)
    norms = tc.W_dec.norm(dim=0)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)
    with torch.no_grad():
        assert fvu(tc(x), y) < 0.1
    assert losses[-1] < 0.3 * losses[0]


def test_projected_decoder_gradient_is_orthogonal_to_each_column():
    dic = SparseDictionary("sae", D, 40, generator=torch.Generator().manual_seed(0)).double()
    dic.normalise_decoder()  # the projection assumes unit columns; float32 ones are not, in float64
    x = torch.randn(32, D, dtype=torch.float64)
    (dic(x) - x).pow(2).sum().backward()
    before = (dic.W_dec.grad * dic.W_dec).sum(0)
    dic.project_decoder_grad()
    along = (dic.W_dec.grad * dic.W_dec).sum(0)
    assert before.abs().max() > 1e-2  # there was a norm-changing part to remove
    assert along.abs().max() < 1e-12 * dic.W_dec.grad.abs().max()


def random_pair(gen):
    early = SparseDictionary("transcoder", D, 30, in_scale=0.7, out_scale=1.9, generator=gen)
    late = SparseDictionary("transcoder", D, 20, in_scale=1.3, out_scale=0.4, generator=gen)
    ln = torch.nn.LayerNorm(D)
    for p in [*early.parameters(), *late.parameters(), *ln.parameters()]:
        torch.nn.init.normal_(p, 0.3, 0.5, generator=gen)
    return early, late, ln


def test_direct_attribution_is_activation_times_fixed_weight():
    """§4.1: with the later LayerNorm's σ frozen, removing early feature i from the residual
    changes late feature j's pre-activation by z_i(x)/σ(x) · w_ij, w_ij from weights alone."""
    gen = torch.Generator().manual_seed(0)
    early, late, ln = (m.double() for m in random_pair(gen))
    x = torch.randn(200, D, generator=gen, dtype=torch.float64)
    resid = torch.randn(200, D, generator=gen, dtype=torch.float64) * 3 + 1
    with torch.no_grad():
        z = early.encode(x)
        w = input_invariant_weights(early, late, ln)
        sigma = layernorm_sigma(ln, resid)[:, 0]
        i = int(z.sum(0).argmax())
        for j in range(5):
            measured = direct_attribution(early, late, ln, resid, z, i, j)
            assert torch.allclose(measured, z[:, i] * w[j, i] / sigma, rtol=0, atol=1e-10)


def test_fixed_weight_matches_autograd_jacobian():
    """w_ij/σ is the derivative of late pre-activation j along f_dec_i (σ held fixed)."""
    gen = torch.Generator().manual_seed(3)
    early, late, ln = (m.double() for m in random_pair(gen))
    resid = torch.randn(1, D, generator=gen, dtype=torch.float64, requires_grad=True)
    sigma = layernorm_sigma(ln, resid).detach()
    pre = F.linear(layernorm_frozen(ln, resid, sigma) / late.in_scale, late.W_enc, late.b_enc)
    j, i = 4, 7
    (grad,) = torch.autograd.grad(pre[0, j], resid)
    w = input_invariant_weights(early, late, ln)
    assert math.isclose(
        (grad[0] @ early.feature_output(i)).item(), (w[j, i] / sigma[0, 0]).item(), rel_tol=1e-10
    )


def test_circuit_check_passes_with_frozen_sigma_and_sees_the_real_layernorm_differ():
    gen = torch.Generator().manual_seed(1)
    early, late, ln = random_pair(gen)
    x = torch.randn(300, D, generator=gen)
    resid = torch.randn(300, D, generator=gen)
    out = circuit_check(early, late, ln, x, resid, pairs=10, gen=gen)
    assert out["attribution_max_rel_err"] < 1e-9
    assert out["recovered_weight_max_rel_spread"] < 1e-9
    # σ recomputed after the ablation is a different, input-dependent quantity
    assert out["frozen_sigma_vs_real_ln_median_rel_err"] > 1e-3
    # circuit_check works on float64 copies and leaves the float32 modules alone
    assert early.W_dec.dtype == torch.float32 and ln.weight.dtype == torch.float32


def pts(*rows):
    return [{"l0": a, "ce_increase": b, "ce_increase_se": c} for a, b, c in rows]


def test_frontier_reading():
    a = pts((4.0, 0.4, 0.01), (16.0, 0.1, 0.01))
    # halfway in log L0 between 4 and 16 is 8: halfway in ΔCE
    assert math.isclose(ce_at_budget(a, 8.0), 0.25)
    assert ce_at_budget(a, 2.0) is None  # the sweep never got that sparse: not measured
    assert ce_at_budget(a, 100.0) == 0.1  # densest point, a conservative reading
    rows = level_readings(a, a, [4.0, 8.0, 16.0])
    assert [r["log_ratio"] for r in rows] == [0.0, 0.0, 0.0]
    assert math.isclose(rows[1]["min_z"], 25.0)
    doubled = [dict(p, ce_increase=2 * p["ce_increase"]) for p in a]
    assert math.isclose(frontier_log_ratio(level_readings(doubled, a, [4.0, 8.0])), math.log(2))
    # a level outside either sweep is not extrapolated: no ratio, so no per-seed value
    rows = level_readings(a, pts((8.0, 0.2, 0.01), (30.0, 0.05, 0.01)), [4.0, 8.0])
    assert rows[0]["log_ratio"] is None and rows[0]["min_z"] == 0.0
    assert frontier_log_ratio(rows) is None
    # an SAE increase at or below zero gives no ratio either
    flat = pts((4.0, -0.001, 0.01), (16.0, 0.0, 0.01))
    assert frontier_log_ratio(level_readings(a, flat, [8.0])) is None


def test_loss_increase_and_its_paired_standard_error():
    base = torch.tensor([3.0, 3.2, 2.9, 3.1])
    spliced = base + torch.tensor([0.1, 0.3, 0.1, 0.3])
    rise, se = ce_increase(spliced, base)
    assert math.isclose(rise, 0.2, rel_tol=1e-6)
    assert math.isclose(se, torch.tensor([0.1, 0.3, 0.1, 0.3]).std().item() / 2, rel_tol=1e-5)


def test_declaration_kinds_seeds_and_equivalence():
    from repro.claims import Equivalent
    from repro.papers.transcoders import REPRO

    assert REPRO.problems() == []
    claims = {c.id: c for c in REPRO.claims}
    assert claims["input-invariant-circuit"].kind == "check"
    assert claims["real-layernorm-breaks-invariance"].kind == "check"
    for cid in ("transcoder-faithful", "on-par-with-sae"):
        assert claims[cid].kind == "finding"
        assert claims[cid].gates[0].metric == "lm_below_unigram"
    assert [g.metric for g in claims["on-par-with-sae"].gates][1:] == ["min_z_at_levels"]
    par = claims["on-par-with-sae"].rule
    assert isinstance(par, Equivalent) and par.center == 0.0
    assert par.margin == math.log(1.2)
    assert REPRO.make_config("quick", {}).seeds == 3
    assert REPRO.make_config("full", {}).seeds == 5
