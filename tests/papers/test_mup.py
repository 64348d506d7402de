"""µP: the parameterisation table, its fixed point at the base width, and the helpers that
read the optimum off a learning-rate sweep."""

import math

import pytest
import torch
import torch.nn.functional as F

from repro.papers.mup.model import MLPLM
from repro.papers.mup.run import best_log2_lr, context_batch, slope


def _model(param, width, base=32, seed=0):
    torch.manual_seed(seed)
    return MLPLM(vocab=50, context=3, emb_dim=8, width=width, param=param, base_width=base)


def test_all_parameterisations_coincide_at_the_base_width():
    x = torch.randint(0, 50, (16, 3))
    outs = [_model(p, 32)(x) for p in ("sp", "mup", "sp-perlayer")]
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])
    groups = [[g["lr"] for g in _model(p, 32).param_groups(1e-3)] for p in ("sp", "mup")]
    assert groups[0] == groups[1]


@pytest.mark.parametrize("param", ["sp", "mup", "sp-perlayer"])
def test_init_and_learning_rates_follow_table_3(param):
    n, base = 512, 32
    m = n / base
    model = _model(param, n, base)
    hid_std = model.w_hid.weight.std().item()
    out_std = model.w_out.weight.std().item()
    assert hid_std == pytest.approx(1 / math.sqrt(n), rel=0.02)
    want_out = 1 / math.sqrt(n * m) if param == "mup" else 1 / math.sqrt(n)
    assert out_std == pytest.approx(want_out, rel=0.03)
    lrs = {id(p): g["lr"] for g in model.param_groups(1.0) for p in g["params"]}
    scaled = 1.0 if param == "sp" else 1 / m
    assert lrs[id(model.w_hid.weight)] == pytest.approx(scaled)
    assert lrs[id(model.w_out.weight)] == pytest.approx(scaled)
    assert lrs[id(model.w_in.weight)] == 1.0 and lrs[id(model.emb.weight)] == 1.0
    assert len(lrs) == sum(1 for _ in model.parameters())  # every parameter in one group


def _logit_change_after_one_adam_step(param, width):
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 50, (64, 3), generator=g)
    y = torch.randint(0, 50, (64,), generator=g)
    model = _model(param, width)
    before = model(x).detach()
    opt = torch.optim.Adam(model.param_groups(1e-2))
    F.cross_entropy(model(x), y).backward()
    opt.step()
    return (model(x).detach() - before).abs().mean().item()


def test_one_adam_step_moves_sp_logits_in_proportion_to_width_and_mup_logits_not():
    widths = (32, 128, 512)
    sp = [_logit_change_after_one_adam_step("sp", w) for w in widths]
    mup = [_logit_change_after_one_adam_step("mup", w) for w in widths]
    assert slope(widths, sp) > 0.7  # Adam's update summed over n aligned coordinates
    assert abs(slope(widths, mup)) < 0.2


def test_slope_recovers_a_power_law():
    xs = [8, 16, 32, 64]
    assert slope(xs, [3 * x**0.75 for x in xs]) == pytest.approx(0.75)


def test_best_log2_lr_finds_the_vertex_and_flags_edges():
    ks = [-8.0, -7.0, -6.0, -5.0, -4.0]
    losses = [(k + 5.7) ** 2 + 3 for k in ks]
    k, edge = best_log2_lr(ks, losses)
    assert k == pytest.approx(-5.7) and not edge
    k, edge = best_log2_lr(ks, [1.0, 2, 3, 4, 5])
    assert k == -8.0 and edge
    # a diverged run (inf) is ignored rather than chosen or crashing the fit
    k, edge = best_log2_lr(ks, [(k + 6) ** 2 for k in ks[:-1]] + [math.inf])
    assert k == pytest.approx(-6.0) and not edge


def test_context_batch_pairs_previous_tokens_with_the_next():
    ids = torch.arange(100)
    x, y = context_batch(ids, torch.tensor([10, 57]), context=4)
    assert x.tolist() == [[6, 7, 8, 9], [53, 54, 55, 56]]
    assert y.tolist() == [10, 57]


def test_sweep_summary_reads_shift_gates_and_transfer_from_a_planted_sweep():
    from types import SimpleNamespace

    from repro.papers.mup.run import sweep_summary

    cfg = SimpleNamespace(widths=(32, 64), log2_lrs=(-6.0, -5.0, -4.0), swept=("mup",))
    losses = {"mup": {32: {-6.0: 5.0, -5.0: 4.8, -4.0: 4.9}, 64: {-6.0: 4.9, -5.0: 4.6, -4.0: 4.7}}}
    best = {"mup": {32: (-5.0, False), 64: (-5.5, False)}}
    out = sweep_summary(cfg, {"losses": losses, "best": best}, unigram=5.3)
    assert out["mup_shift"] == pytest.approx(-0.5)
    assert out["mup_below_unigram"] == pytest.approx(5.3 - 4.8)  # the worst width decides
    assert out["mup_lr_inside_grid"] is True
    assert out["mup_at_narrowest_lr"] == [4.8, 4.6] and out["mup_wider_is_better"] is True
