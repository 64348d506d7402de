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
    groups = [
        [(g["lr"], g["lr_mult"]) for g in _model(p, 32).param_groups(1e-3)]
        for p in ("sp", "mup", "sp-perlayer")
    ]
    assert groups[0] == groups[1] == groups[2]


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


def test_sweep_trains_the_base_width_once_and_shares_it(monkeypatch):
    """At the base width the three parameterisations are one model (the test above), so the
    sweep trains those runs once and copies them; every wider run is trained per
    parameterisation."""
    from types import SimpleNamespace

    from repro.papers.mup import run

    calls = []

    def fake_train(cfg, width, param, lr, train_ids, val, seed):
        calls.append((param, width, lr))
        return {"sp": 0.0, "mup": 1.0, "sp-perlayer": 2.0}[param] + width + math.log2(lr) ** 2

    monkeypatch.setattr(run, "train_once", fake_train)
    swept = ("sp", "mup", "sp-perlayer")
    cfg = SimpleNamespace(widths=(32, 128), base_width=32, log2_lrs=(-6.0, -5.0, -4.0), swept=swept)
    out = run.lr_sweep(cfg, None, None, 0, lambda jobs, desc: jobs)
    assert sorted(calls) == sorted(
        [("sp", 32, 2.0**k) for k in cfg.log2_lrs]
        + [(p, 128, 2.0**k) for p in swept for k in cfg.log2_lrs]
    )
    for p in swept[1:]:
        assert out["losses"][p][32] == out["losses"]["sp"][32]
        assert out["losses"][p][128] != out["losses"]["sp"][128]
        assert out["best"][p][32] == out["best"]["sp"][32]
    # a base width outside the swept widths: nothing is shared
    cfg = SimpleNamespace(widths=(64, 128), base_width=32, log2_lrs=(-5.0,), swept=swept)
    calls.clear()
    run.lr_sweep(cfg, None, None, 0, lambda jobs, desc: jobs)
    assert len(calls) == 2 * 3


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


# --------------------------------------------------------------------------- the mup package
# Microsoft's `mup` package as a peer, on the same model: our SP model's weights with the
# output layer swapped for the package's MuReadout, its shapes set against the base width
# (set_base_shapes rescales the readout), trained with the package's MuAdam. Our µP model and
# the package's must then behave the same: the same activation sizes step by step in the
# package's own coordinate check, and the same losses along a learning-rate sweep.
def _mup_pkg():
    return pytest.importorskip(
        "mup",
        reason="the µP peer checks need Microsoft's `mup` package: "
        "pip install --no-deps mup (see the `mup` extra in pyproject.toml)",
    )


VOCAB, CONTEXT, EMB, BASE = 64, 3, 8, 32


def _ours(width, seed=0, param="mup"):
    torch.manual_seed(seed)
    return MLPLM(VOCAB, CONTEXT, EMB, width, param, BASE)


def _peer(width, seed=0):
    mup = _mup_pkg()

    def with_readout(w, s):
        torch.manual_seed(s)
        model = MLPLM(VOCAB, CONTEXT, EMB, w, "sp", BASE)  # SP init, as the package expects
        readout = mup.MuReadout(w, VOCAB, bias=False)
        with torch.no_grad():
            readout.weight.copy_(model.w_out.weight)
        model.w_out = readout
        return model

    model = with_readout(width, seed)
    mup.set_base_shapes(model, with_readout(BASE, 0), delta=with_readout(2 * BASE, 0))
    return model


def _batches(n, seed=1, batch=64):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, VOCAB, (4096,), generator=g)
    out = []
    for _ in range(n):
        pos = torch.randint(CONTEXT, len(ids), (batch,), generator=g)
        out.append(context_batch(ids, pos, CONTEXT))
    return out


def test_mup_package_readout_gives_our_mup_logits_at_init():
    x, _ = _batches(1)[0]
    for width in (32, 128, 512):
        torch.testing.assert_close(_peer(width)(x), _ours(width)(x), rtol=1e-5, atol=1e-7)


def test_mup_package_coordinate_check_matches_ours():
    """The package's coordinate check (`mup.coord_check`, which records every layer's mean
    |output| at each step) on both models: the same sizes at every width and step. And the
    behaviour the check is for: the µP logits do not grow with width, SP's (our SP model with
    one Adam rate, through the same check) do."""
    mup = _mup_pkg()
    from mup.coord_check import _get_coord_data

    widths, lr, steps = (32, 64, 128, 256), 0.01, 4
    kw = dict(
        nsteps=steps,
        cuda=False,
        show_progress=False,
        filter_module_by_name=lambda name: name in ("w_in", "w_hid", "w_out"),
    )
    data = _batches(1)
    ours = _get_coord_data(
        {w: (lambda w=w: _ours(w)) for w in widths},
        data,
        lambda m: torch.optim.Adam(m.param_groups(lr)),
        **kw,
    )
    peer = _get_coord_data(
        {w: (lambda w=w: _peer(w)) for w in widths},
        data,
        lambda m: mup.MuAdam(m.parameters(), lr=lr),
        **kw,
    )
    key = ["width", "module", "t"]
    a = ours.sort_values(key).reset_index(drop=True)
    b = peer.sort_values(key).reset_index(drop=True)
    assert a[key].equals(b[key]) and len(a) == len(widths) * 3 * steps
    assert (a["l1"] - b["l1"]).abs().max() <= 1e-4 * a["l1"].abs().max()
    sp = _get_coord_data(
        {w: (lambda w=w: _ours(w, param="sp")) for w in widths},
        data,
        lambda m: torch.optim.Adam(m.parameters(), lr=lr),
        **kw,
    )

    def logits_slope(df):
        last = df[(df["t"] == steps) & (df["module"] == "w_out")].sort_values("width")
        return slope(list(last["width"]), list(last["l1"]))

    assert logits_slope(b) < 0.2  # flat or shrinking (the random start's share fades)
    assert logits_slope(sp) > logits_slope(b) + 0.5


def test_mup_package_training_matches_ours_so_the_optimum_does():
    """Training curves under the package's MuAdam and our per-layer Adam rates agree at every
    width and rate of a small sweep, so both put the loss minimum at the same rate. (Far above
    the optimum, from about 2^-5, rounding differences between the two grow chaotically.)"""
    mup = _mup_pkg()
    data = _batches(25, seed=2)

    def final_loss(model, opt):
        for x, y in data:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return loss.item()

    for width in (32, 256):
        ours, peer = [], []
        for lr in (2.0**-12, 2.0**-9, 2.0**-6):
            m = _ours(width)
            ours.append(final_loss(m, torch.optim.Adam(m.param_groups(lr))))
            p = _peer(width)
            peer.append(final_loss(p, mup.MuAdam(p.parameters(), lr=lr)))
        assert ours == pytest.approx(peer, rel=1e-4)
        assert min(range(3), key=ours.__getitem__) == min(range(3), key=peer.__getitem__)
