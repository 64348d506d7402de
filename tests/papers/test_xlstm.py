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
    assert set(findings) == {"lm-beats-unigram", "on-par-with-transformer"}
    on_par = findings["on-par-with-transformer"]
    assert type(on_par.rule).__name__ == "Equivalent"
    assert [g.metric for g in on_par.gates] == ["xlstm_below_unigram", "transformer_below_unigram"]
    assert REPRO.make_config("quick", {}).seeds == 3
    assert REPRO.make_config("full", {}).seeds == 5
