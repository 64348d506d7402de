"""DeepNet: Table 1 constants, the initialisation gains, the Post-LN special case against
torch's own Post-LN layer, and the model-update measurement on planted changes."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from repro.context import RunContext
from repro.papers.deepnet import FAILED_MARGIN_NATS, REPRO, Config
from repro.papers.deepnet.model import Block, DeepPostLN, deepnorm_constants, sublayer_parameters
from repro.papers.deepnet.run import early_updates, failed, relative_update, train, trained


@pytest.mark.parametrize("n", [1, 6, 18, 100, 1000])
def test_table1_decoder_only_constants(n):
    alpha, beta = deepnorm_constants(n)
    assert alpha == pytest.approx((2 * n) ** 0.25)
    assert beta == pytest.approx((8 * n) ** -0.25)
    # §4.2: with v = w = β the 2N sub-layers' terms (v² + w²)/α² sum to exactly 1
    assert 2 * n * (beta**2 + beta**2) / alpha**2 == pytest.approx(1.0)


def test_table1_values_at_100_layers():
    alpha, beta = deepnorm_constants(100)
    assert alpha == pytest.approx(3.7606, abs=1e-4)  # 200^(1/4)
    assert beta == pytest.approx(0.18803, abs=1e-5)  # 800^(-1/4)


def test_init_gains_applied():
    """Xavier-normal std is gain·√(2/(fan_in + fan_out)); β on v, out and FFN, 1 on q, k."""
    torch.manual_seed(0)
    d, d_ff, beta = 256, 1024, 0.3
    block = Block(d, 4, d_ff, alpha=2.0, beta=beta)
    q, k, v = block.qkv.weight.split(d)
    square = math.sqrt(2 / (2 * d))
    wide = math.sqrt(2 / (d + d_ff))
    for w, want in (
        (q, square),
        (k, square),
        (v, beta * square),
        (block.o.weight, beta * square),
        (block.ff1.weight, beta * wide),
        (block.ff2.weight, beta * wide),
    ):
        assert w.std().item() == pytest.approx(want, rel=0.03)
    for lin in (block.qkv, block.o, block.ff1, block.ff2):
        assert torch.count_nonzero(lin.bias) == 0


def test_model_uses_table1_or_plain_constants():
    dn = DeepPostLN(50, 8, 16, 12, 2, 64, deepnorm=True)
    plain = DeepPostLN(50, 8, 16, 12, 2, 64, deepnorm=False)
    assert (dn.alpha, dn.beta) == deepnorm_constants(12)
    assert (plain.alpha, plain.beta) == (1.0, 1.0)
    assert all(b.alpha == dn.alpha for b in dn.blocks)


def _torch_post_ln(
    block: Block, d: int, n_head: int, d_ff: int
) -> torch.nn.TransformerEncoderLayer:
    """torch's Post-LN encoder layer holding our block's weights (causal mask given at call)."""
    layer = torch.nn.TransformerEncoderLayer(
        d, n_head, d_ff, dropout=0.0, activation="gelu", batch_first=True, norm_first=False
    ).double()
    with torch.no_grad():
        layer.self_attn.in_proj_weight.copy_(block.qkv.weight)
        layer.self_attn.in_proj_bias.copy_(block.qkv.bias)
        layer.self_attn.out_proj.weight.copy_(block.o.weight)
        layer.self_attn.out_proj.bias.copy_(block.o.bias)
        for ours, theirs in ((block.ff1, layer.linear1), (block.ff2, layer.linear2)):
            theirs.weight.copy_(ours.weight)
            theirs.bias.copy_(ours.bias)
        for ours, theirs in ((block.ln1, layer.norm1), (block.ln2, layer.norm2)):
            theirs.weight.copy_(ours.weight)
            theirs.bias.copy_(ours.bias)
    return layer


@pytest.mark.parametrize("alpha", [1.0, 2.7])
def test_block_matches_torch_post_ln(alpha):
    """α = β = 1 is torch's Post-LN layer; any α scales only the residual inside each LN."""
    torch.manual_seed(1)
    d, n_head, d_ff, T = 16, 2, 64, 7
    block = Block(d, n_head, d_ff, alpha=alpha, beta=1.0).double()
    for p in block.parameters():  # non-trivial LN and bias values, so a mis-wiring shows
        torch.nn.init.normal_(p, 0.0, 0.3)
    layer = _torch_post_ln(block, d, n_head, d_ff)
    x = torch.randn(3, T, d, dtype=torch.float64)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(T, dtype=torch.float64)
    if alpha == 1.0:
        want = layer(x, src_mask=mask, is_causal=True)
    else:  # x_{l+1} = LN(α·x_l + G(x_l)), spelled out with torch's sub-modules
        h = layer.norm1(alpha * x + layer.self_attn(x, x, x, attn_mask=mask)[0])
        want = layer.norm2(alpha * h + layer.linear2(F.gelu(layer.linear1(h))))
    torch.testing.assert_close(block(x), want, rtol=1e-10, atol=1e-10)


def test_deepnorm_with_unit_constants_is_plain_post_ln():
    torch.manual_seed(3)
    a = DeepPostLN(40, 8, 16, 5, 2, 64, deepnorm=True, alpha=1.0, beta=1.0)
    torch.manual_seed(3)
    b = DeepPostLN(40, 8, 16, 5, 2, 64, deepnorm=False)
    x = torch.randint(0, 40, (2, 8))
    torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


def test_relative_update_on_planted_changes():
    torch.manual_seed(0)
    model = DeepPostLN(40, 8, 16, 3, 2, 64, deepnorm=True)
    x = torch.randint(0, 40, (4, 8))
    with torch.no_grad():
        f0 = model.hidden(x)
    assert relative_update(model, f0, x) == 0.0
    with torch.no_grad():
        model.head.weight.add_(1.0)  # the head is not part of F
    assert relative_update(model, f0, x) == 0.0
    c = 0.05
    with torch.no_grad():
        model.blocks[-1].ln2.bias.add_(c)  # moves every coordinate of F by exactly c
    want = c * math.sqrt(f0.numel()) / torch.linalg.norm(f0).item()
    assert relative_update(model, f0, x) == pytest.approx(want, rel=1e-5)


def test_sublayer_parameters_are_attention_and_ffn_only():
    model = DeepPostLN(40, 8, 16, 4, 2, 64, deepnorm=True)
    sub = {id(p) for p in sublayer_parameters(model)}
    assert len(sub) == 4 * 4  # qkv, o, ff1, ff2 weights per layer
    assert len(sublayer_parameters(model, biases=True)) == 4 * 8
    for block in model.blocks:
        for p in (*block.ln1.parameters(), *block.ln2.parameters()):
            assert id(p) not in sub
    assert id(model.tok.weight) not in sub


def _tiny_cfg(**kw) -> Config:
    base = dict(
        vocab_size=30,
        seq_len=8,
        d_model=8,
        n_head=2,
        d_ff=16,
        train_layers=3,
        train_seq_len=8,
        train_d_model=8,
        train_n_head=2,
        train_d_ff=16,
        train_batch=2,
        batch=2,
        steps=4,
        warmup=2,
        depths=(2, 4),
        update_steps=2,
        probe_batch=2,
    )
    return dataclasses.replace(Config(), **{**base, **kw})


def test_training_and_update_measurement_run_on_a_tiny_config(tmp_path):
    torch.manual_seed(0)
    cfg = _tiny_cfg()
    ids = torch.randint(0, cfg.vocab_size, (500,))
    val = [(ids[:16].view(2, 8), ids[1:17].view(2, 8))]
    ctx = RunContext(out_dir=tmp_path, show_progress=False)
    r = train(cfg, True, ids, val, 0, ctx)
    assert r["steps_done"] == cfg.steps and not r["diverged"]
    assert math.isfinite(r["final_val_loss"])
    u = early_updates(cfg, 2, 0, ids, ids[:16].view(2, 8))
    for name in ("post_ln", "deepnorm"):
        assert len(u[name]["adam"]) == len(u[name]["adam_saturating"]) == cfg.update_steps
        for key in ("adam_weights", "sgd_weights", "sgd_sublayers", "sgd_all"):
            assert u[name][key] > 0 and math.isfinite(u[name][key])


def test_divergence_is_recorded_not_raised(tmp_path):
    """An absurd learning rate ends as 'diverged', with no NaN among the recorded numbers."""
    torch.manual_seed(0)
    cfg = _tiny_cfg(lr=1e6, warmup=1, steps=6)
    ids = torch.randint(0, cfg.vocab_size, (500,))
    val = [(ids[:16].view(2, 8), ids[1:17].view(2, 8))]
    r = train(cfg, False, ids, val, 0, RunContext(out_dir=tmp_path, show_progress=False))
    assert r["diverged"] and r["steps_done"] < cfg.steps
    assert r["loss_drop"] is None and r["final_val_loss"] is None
    assert all(math.isfinite(x) for x in r["train_losses"])


def test_trained_and_failed_definitions():
    """DeepNorm 'trains' at the preset's learned margin; Post-LN 'fails' when it diverges or
    ends within FAILED_MARGIN_NATS of unigram. A run between the two is neither."""
    quick, full = Config(), dataclasses.replace(Config(), learned_margin=1.0)
    h1 = 5.3

    def run(below: float | None) -> dict:
        if below is None:
            return {"diverged": True, "final_val_loss": None}
        return {"diverged": False, "final_val_loss": h1 - below}

    assert trained(run(0.6), h1, quick) and not trained(run(0.6), h1, full)
    assert trained(run(1.1), h1, full)
    assert not trained(run(None), h1, quick) and failed(run(None), h1, quick)
    assert failed(run(-0.2), h1, quick) and failed(run(FAILED_MARGIN_NATS - 0.01), h1, quick)
    between = run(FAILED_MARGIN_NATS + 0.1)  # left the plateau a little: not a failure
    assert not failed(between, h1, quick) and not trained(between, h1, quick)


def test_update_step_is_first_order_and_the_old_one_saturates():
    """The update claims use a first-order Adam step: doubling the learning rate doubles
    ‖ΔF‖/‖F‖. At the earlier preset's lr (1e-3) a deep Post-LN's F moves by about its own norm
    and doubling the lr no longer doubles the update: the measurement had saturated."""
    torch.manual_seed(0)
    x = torch.randint(0, 64, (4, 16))
    y = torch.randint(0, 64, (4, 16))

    def step(lr: float) -> float:
        torch.manual_seed(1)
        model = DeepPostLN(64, 16, 16, 24, 2, 64, deepnorm=False)
        with torch.no_grad():
            f0 = model.hidden(x)
        opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.98))
        _, loss = model(x, y)
        loss.backward()
        opt.step()
        return relative_update(model, f0, x)

    small = Config().update_lr
    assert step(2 * small) / step(small) == pytest.approx(2.0, rel=0.05)
    big = Config().saturating_lr
    assert step(big) > 0.3  # F moved by a large share of its norm in one step
    assert step(2 * big) / step(big) < 1.6


def test_declaration_is_consistent():
    assert not REPRO.problems()
    assert REPRO.papers == ("deepnet",)
    assert all(c.kind == "finding" for c in REPRO.claims)
    claims = {c.id: c for c in REPRO.claims}
    # Post-LN's failure is gated on DeepNorm having learned; DeepNorm's learning is its own
    # claim, so it has no gate (a seed that does not learn counts against it)
    assert [g.metric for g in claims["post-ln-fails-deep"].gates] == ["deepnorm_below_unigram"]
    assert claims["deepnorm-trains-deep"].gates == ()
    # the claim's margin is the learned gate's, preset by preset
    gate = claims["post-ln-fails-deep"].gates[0]
    for preset in ("quick", "full"):
        cfg = REPRO.make_config(preset)
        assert cfg.learned_margin == gate.rule_for(preset).limit
        assert cfg.seeds >= {"quick": 3, "full": 5}[preset]
