"""xLSTM: the mLSTM forms agree with each other and with the equations written out, the
stabiliser changes nothing but the overflow, and the LM's blocks are wired causally."""

import math

import pytest
import torch

from repro.papers.xlstm.cells import (
    mlstm_parallel,
    mlstm_parallel_naive,
    mlstm_recurrent,
    slstm_recurrent,
)
from repro.papers.xlstm.model import XLSTM, XLSTMConfig
from repro.papers.xlstm.run import cell_inputs


class Cfg:
    cell_len, cell_heads, cell_dim = 12, 2, 3


def inputs(seed, scale=1.0, dtype=torch.float64):
    return cell_inputs(Cfg, scale, torch.Generator().manual_seed(seed), dtype)


def mlstm_by_definition(q, k, v, i_pre, f_pre):
    """§2.3 written out for one batch element and head at a time, no stabiliser."""
    B, H, T, d = q.shape
    out = torch.empty_like(v)
    for b in range(B):
        for h in range(H):
            C, n = torch.zeros(d, d, dtype=q.dtype), torch.zeros(d, dtype=q.dtype)
            for t in range(T):
                i, f = math.exp(i_pre[b, h, t]), torch.sigmoid(f_pre[b, h, t]).item()
                kt = k[b, h, t] / math.sqrt(d)
                C = f * C + i * torch.outer(v[b, h, t], kt)
                n = f * n + i * kt
                out[b, h, t] = C @ q[b, h, t] / max(abs(n @ q[b, h, t]).item(), 1.0)
    return out


@pytest.mark.parametrize("seed", range(2))
def test_mlstm_forms_match_definition(seed):
    m_args, _ = inputs(seed, scale=3.0)
    ref = mlstm_by_definition(*m_args)
    for y in (
        mlstm_parallel(*m_args),
        mlstm_recurrent(*m_args),
        mlstm_recurrent(*m_args, stabilise=False),
        mlstm_parallel_naive(*m_args),
    ):
        torch.testing.assert_close(y, ref, rtol=1e-9, atol=1e-10)


def test_slstm_stabiliser_changes_nothing_at_moderate_scale():
    _, (x, R) = inputs(3, scale=5.0)
    torch.testing.assert_close(slstm_recurrent(x, R), slstm_recurrent(x, R, stabilise=False))


def test_slstm_step_by_definition():
    _, (x, R) = inputs(4)
    B, T, _, H, dh = x.shape
    h = torch.zeros(B, H, dh, dtype=x.dtype)
    c, n = torch.zeros_like(h), torch.zeros_like(h)
    outs = []
    for t in range(T):
        pre = x[:, t] + torch.einsum("ghij,bhj->bghi", R, h)
        z, i, f, o = (
            torch.tanh(pre[:, 0]),
            pre[:, 1].exp(),
            torch.sigmoid(pre[:, 2]),
            torch.sigmoid(pre[:, 3]),
        )
        c, n = f * c + i * z, f * n + i
        h = o * c / n
        outs.append(h)
    torch.testing.assert_close(slstm_recurrent(x, R), torch.stack(outs, 1))


@pytest.mark.parametrize("scale", [300.0, 3000.0])
def test_stable_finite_where_naive_overflows(scale):
    m_args, s_args = inputs(5, scale=scale, dtype=torch.float32)
    assert not torch.isfinite(mlstm_recurrent(*m_args, stabilise=False)).all()
    assert not torch.isfinite(slstm_recurrent(*s_args, stabilise=False)).all()
    ref = mlstm_parallel(*(t.double() for t in m_args))
    for y in (mlstm_recurrent(*m_args), mlstm_parallel(*m_args)):
        assert torch.isfinite(y).all()
        assert ((y.double() - ref).abs().max() / ref.abs().max()) < 1e-3
    assert torch.isfinite(slstm_recurrent(*s_args)).all()


def perturbed_model(form="parallel"):
    torch.manual_seed(0)
    m = XLSTM(XLSTMConfig(vocab_size=40, d_model=16, blocks="msm", heads=2, mlstm_form=form))
    with torch.no_grad():  # leave the zero-initialised output projections
        for p in m.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return m.eval()


def test_lm_is_causal_and_forms_agree():
    m = perturbed_model()
    idx = torch.randint(0, 40, (2, 15), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = m(idx)
        changed = idx.clone()
        changed[:, 9:] = (changed[:, 9:] + 1) % 40
        torch.testing.assert_close(m(changed)[:, :9], full[:, :9])
        assert (m(changed)[:, 9:] - full[:, 9:]).abs().max() > 1e-3
        for blk in m.blocks:
            if hasattr(blk, "form"):
                blk.form = "recurrent"
        torch.testing.assert_close(m(idx), full, rtol=1e-4, atol=1e-4)


def test_one_training_step_lowers_loss_on_a_repeated_batch():
    m = XLSTM(XLSTMConfig(vocab_size=40, d_model=16, blocks="ms", heads=2))
    idx = torch.randint(0, 40, (4, 16), generator=torch.Generator().manual_seed(2))
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    first = m(idx[:, :-1], idx[:, 1:])[1].item()
    for _ in range(10):
        loss = m(idx[:, :-1], idx[:, 1:])[1]
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first - 0.1


def test_declaration_is_consistent():
    from repro.papers.xlstm import REPRO

    assert REPRO.problems() == []
    findings = {c.id: c for c in REPRO.claims if c.kind == "finding"}
    assert set(findings) == {"slstm-parity-extrapolates", "slstm-beats-transformer-on-parity"}
    gap = findings["slstm-beats-transformer-on-parity"]
    assert [g.metric for g in gap.gates] == [
        "slstm_parity_in_dist",
        "transformer_parity_in_dist",
        "slstm_lr_inside_grid",
        "transformer_lr_inside_grid",
    ]
    assert REPRO.make_config("quick", {}).seeds == 3
    assert REPRO.make_config("full", {}).seeds == 5


# --------------------------------------------------------------------------- parity
from repro.papers.xlstm.parity import (  # noqa: E402
    build,
    parity_batch,
    rotate,
    scaled_accuracy,
    train_parity,
)


def test_parity_targets_and_scaling():
    bits, target = parity_batch(5, 11, torch.Generator().manual_seed(0))
    for b in range(5):
        p = 0
        for t in range(11):
            p ^= int(bits[b, t])
            assert target[b, t] == p
    assert scaled_accuracy(0.5) == 0.0 and scaled_accuracy(1.0) == 1.0
    with pytest.raises(ValueError, match="parity arm"):
        build("mamba", 8, 2, 1)


def test_rotary_scores_depend_only_on_the_offset():
    g = torch.Generator().manual_seed(1)
    q, k = torch.randn(1, 1, 1, 8, generator=g), torch.randn(1, 1, 1, 8, generator=g)
    T = 12
    rq, rk = rotate(q.expand(1, 1, T, 8)), rotate(k.expand(1, 1, T, 8))
    torch.testing.assert_close(rq.norm(dim=-1), q.norm(dim=-1).expand(1, 1, T))
    s = rq[0, 0] @ rk[0, 0].T  # (T, T): q at position t, k at position u
    torch.testing.assert_close(s[5, 2], s[9, 6])  # offset 3 both
    torch.testing.assert_close(s[7, 7], s[0, 0])
    assert (s[5, 2] - s[5, 3]).abs() > 1e-4


@pytest.mark.parametrize("arm", ["slstm", "transformer"])
def test_parity_models_are_causal(arm):
    torch.manual_seed(0)
    m = build(arm, 16, 2, 2).eval()
    bits = torch.randint(0, 2, (3, 20), generator=torch.Generator().manual_seed(2))
    changed = bits.clone()
    changed[:, 12:] = 1 - changed[:, 12:]
    with torch.no_grad():
        a, b = m(bits), m(changed)
    torch.testing.assert_close(a[:, :12], b[:, :12])
    assert (a[:, 12:] - b[:, 12:]).abs().max() > 1e-4


def test_slstm_learns_short_parity():
    kw = dict(d_model=16, heads=2, layers=1, train_len=4, test_len=8, batch=32)
    out = train_parity("slstm", 0, lr=1e-2, steps=200, eval_sequences=128, **kw)
    assert out["in_dist"] > 0.9 and out["dev"] > 0.9
    untrained = train_parity("slstm", 0, lr=1e-2, steps=0, eval_sequences=128, **kw)
    assert untrained["in_dist"] < 0.5
